"""The tables of the documentation site that are generated, not written (pure: text out).

- The settings tables come from the code that reads the settings: each variable, its
  default and its meaning from the settings dataclass (the field's default and docstring),
  its valid values from the parser's bounds. A default is written once, in the dataclass.
- The performance tables come from ``docs/performance-data.json``, which
  ``python -m bench.publish`` writes from a bench run: the figures last measured, each table
  with the run that measured them (command, date, commit, machine).

``tools/docs_site.py`` puts them where a page says ``<!-- generated: NAME -->``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

from bench.publish import DATA as PERFORMANCE_DATA
from bench.report import NODE_DEATH_PEERS, NODE_DEATH_PEERS_HEADERS, PEERS
from floating_ip import config as function_config
from floating_ip_forwarder.app import settings as forwarder_config

_VARIABLE = re.compile(r"^``([A-Z][A-Z0-9_]*)``(?: \(else ``[A-Z_]+``\))?:?\s*")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One environment variable as the code defines it."""

    variable: str
    field: str
    default: str
    valid: str
    meaning: str


def field_docstrings(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (the string right after it)."""
    [node] = ast.parse(inspect.getsource(cls)).body
    assert isinstance(node, ast.ClassDef)
    docs: dict[str, str] = {}
    body = node.body
    for field, after in zip(body, [*body[1:], None], strict=True):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = after.value.value
    return docs


def _markdown(docstring: str) -> str:
    """A docstring as one line of Markdown: reST's double backticks become single ones."""
    return " ".join(docstring.split()).replace("``", "`")


def _calls(module: ModuleType, function: Callable[..., Any]) -> Iterator[tuple[str, ast.Call]]:
    """Each call in ``function`` whose first argument is a variable's name, with that name."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and re.fullmatch(r"[A-Z][A-Z0-9_]*", node.args[0].value)
        ):
            yield node.args[0].value, node


def _method(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _evaluate(module: ModuleType, node: ast.expr) -> Any:
    """A bound as the parser computes it (a literal or an expression of module constants)."""
    return eval(compile(ast.Expression(node), module.__name__, "eval"), vars(module))  # noqa: S307


def duration(seconds: float) -> str:
    """Seconds in the largest unit the forwarder's duration parser reads that keeps it whole."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return "0s" if seconds == 0 else f"{seconds * 1000:g}ms"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def forwarder_settings() -> list[Setting]:
    """The forwarder's variables, in the dataclass's order, as ``from_env`` reads them."""
    cls = forwarder_config.ForwarderSettings
    docs = field_docstrings(cls)
    reads = dict(_calls(forwarder_config, forwarder_config.from_env))
    rows = []
    for field in dataclasses.fields(cls):
        doc = docs.get(field.name, "")
        named = _VARIABLE.match(doc)
        if named is None:
            continue
        variable = named.group(1)
        call = reads.get(variable)
        method = _method(call) if call is not None else ""
        default: Any = field.default
        valid = ""
        if method == "duration" and call is not None:
            low = _evaluate(forwarder_config, call.args[2])
            valid = f"a duration, {duration(low)} to 7 days"
            shown = duration(default)
        elif method in ("number", "integer") and call is not None:
            low, high = (_evaluate(forwarder_config, arg) for arg in call.args[2:4])
            valid = f"{_number(low)} to {_number(high)}"
            shown = _number(default)
        elif method == "switch":
            valid = "`on` or `off`"
            shown = "on" if default else "off"
        elif default is dataclasses.MISSING:
            shown = "required"
        elif default in (None, ()):
            shown = ""
        else:
            shown = str(default)
        rows.append(
            Setting(
                variable,
                field.name,
                f"`{shown}`" if shown not in ("", "required") else shown or "unset",
                valid,
                _markdown(doc[named.end() :]),
            )
        )
    return rows


FUNCTION_REQUIRED_ENV = {
    "DIGITALOCEAN_TOKEN": "dop_v1_example",
    "CLUSTER_ID": "0f1e2d3c-4b5a-4697-8877-665544332211",
    "KUBE_API_URL": "https://kube.example",
    "WEB_SECRET": "a-secret-of-at-least-16-chars",
}
"""A value for each variable the function requires: with only these, every other setting
takes its default."""


def function_required() -> set[str]:
    """The variables ``Config.from_env`` reads with ``required``."""
    return {
        variable
        for variable, call in _calls(function_config, function_config.Config.from_env)
        if _method(call) == "required"
    }


def _function_default(value: object) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value in (None, ()):
        return "unset"
    return f"`{value}`"


def function_settings() -> list[Setting]:
    """The function's variables (``config.SETTINGS``), in the dataclass's order."""
    cls = function_config.Config
    docs = field_docstrings(cls)
    defaults = cls.from_env(FUNCTION_REQUIRED_ENV)
    required = function_required()
    rows = []
    for field in dataclasses.fields(cls):
        doc = docs[field.name]
        named = _VARIABLE.match(doc)
        assert named is not None, field.name
        variable = named.group(1)
        shown = (
            "required" if variable in required else _function_default(getattr(defaults, field.name))
        )
        rows.append(Setting(variable, field.name, shown, "", _markdown(doc[named.end() :])))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def forwarder_settings_table() -> str:
    return table(
        ("variable", "default", "valid values", "meaning"),
        [(f"`{s.variable}`", s.default, s.valid, s.meaning) for s in forwarder_settings()],
    )


def function_settings_table() -> str:
    return table(
        ("variable", "default", "meaning"),
        [(f"`{s.variable}`", s.default, s.meaning) for s in function_settings()],
    )


def performance_tables(data: Mapping[str, Any]) -> dict[str, str]:
    """Each table of the performance data as Markdown, by its id, with the run that measured
    it under it (a table whose rows come from several runs numbers them in a first column)."""
    out: dict[str, str] = {}
    for entry in data["tables"]:
        runs = entry["runs"]
        several = len(runs) > 1
        columns = (["run"] if several else []) + entry["columns"]
        rows = [
            ([str(number)] if several else []) + row
            for number, run in enumerate(runs, 1)
            for row in run["rows"]
        ]
        out[entry["id"]] = table(columns, rows) + "\n" + measured_by(runs)
    return out


def _run(run: Mapping[str, Any]) -> str:
    commit = f" at commit {run['commit']}" if run.get("commit") else ""
    return f"`{run['command']}`, {run['date']}{commit}, on {run['machine']}"


def measured_by(runs: Sequence[Mapping[str, Any]]) -> str:
    """The provenance of a table: the command, date, commit and machine of each run."""
    if len(runs) == 1:
        return f"Measured by {_run(runs[0])}.\n"
    lines = [f"- run {number}: {_run(run)}" for number, run in enumerate(runs, 1)]
    return "Measured by:\n\n" + "\n".join(lines) + "\n"


def peers_table() -> str:
    """The failover floors other systems document (``bench.report.PEERS``, which the bench's
    own tables print beside its figures)."""
    return table(("system", "failover", "source"), PEERS)


def node_death_peers_table() -> str:
    """How soon other systems document moving off a dead node (``NODE_DEATH_PEERS``, which
    the bench prints beside its node-death figures)."""
    return table(NODE_DEATH_PEERS_HEADERS, NODE_DEATH_PEERS)


def generated() -> dict[str, str]:
    """Every generated block, by the name a page marks it with."""
    blocks = {
        "forwarder-settings": forwarder_settings_table(),
        "function-settings": function_settings_table(),
        "performance-peers": peers_table(),
        "performance-node-death-peers": node_death_peers_table(),
    }
    data = json.loads(PERFORMANCE_DATA.read_text())
    blocks |= {f"performance-{k}": v for k, v in performance_tables(data).items()}
    return blocks

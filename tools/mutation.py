"""`make mutation`: mutation testing of the pure parts, with mutmut, and a score per module.

What is mutated, and by which tests, is said once: ``[tool.mutation]`` in pyproject.toml.
mutmut names a mutant after the file's path, while the tests import the code by package
(``floating_ip.core.holders``, not ``lib.floating_ip.core.holders``), so the run happens in
a copy of the tree laid out by package (``build/mutation/``): each package of the Makefile's
``SOURCE_ROOTS`` (``lib``, ``in-cluster``) at the top, beside ``tests`` and ``testbed``.
mutmut then runs, for each mutant, only the selected unit tests that call the mutated
function, fastest first, stopping at the first failure.

A surviving mutant either gets a test that kills it or a line in the equivalent-mutant file
(``tests/mutation/equivalent.txt``) saying why no test can tell it from the original. The
run fails when a survivor is not listed, when a listed mutant no longer survives or no
longer makes the change its line quotes (the file went stale), or when a target misses its
goal. The summary goes to stdout and to ``build/mutation/summary.md``.

    .venv/bin/python -m tools.mutation [--only PATH ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "mutation"
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.txt"
ALSO_COPY = ("tests", "testbed")
"""Beside the packages: the tests, and the bed their conftest loads its fixtures from."""

KILLED = frozenset({1, 3, 24, -24, 36, 152, 255})
"""mutmut's exit codes for a mutant a test failed on (3: pytest's internal error; the others:
the CPU or wall-clock limit, i.e. the mutant made a test loop for ever)."""
SURVIVED = 0
NO_TESTS = frozenset({5, 33})

# Loaded at the top of the staged tree only (never by ``make test``): fastest tests first, so
# that ``-x`` stops a mutant's run at the cheapest failing test; Hypothesis replays the same
# examples for every mutant (a test that does not fix them itself is derandomized here) and
# does not shrink a failing one, since one failing example is all a kill needs.
STAGE_CONFTEST = '''\
"""Written by tools/mutation.py for mutation runs only."""

import json
import sys
from pathlib import Path

import pytest
from hypothesis import Phase, settings

settings.register_profile(
    "mutation",
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    derandomize=True,  # the same histories for every mutant: a kill is never luck
    database=None,
)
settings.load_profile("mutation")

# The venv's .pth also lists the repository's source roots: the mutants must win.
import floating_ip  # noqa: E402

assert Path(floating_ip.__file__).is_relative_to(Path(__file__).parent), floating_ip.__file__

_STATS = Path(__file__).with_name("mutmut-stats.json")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    """Each mutant's worker is forked from a process whose lru_caches hold the original
    code's answers: cleared before each test, or a cached function's mutants never run."""
    for name, module in list(sys.modules.items()):
        if name.startswith(("floating_ip.", "floating_ip_forwarder.")):
            for value in list(vars(module).values()):
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _STATS.exists():
        durations = json.loads(_STATS.read_text()).get("duration_by_test", {})
        items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
'''


@dataclass(frozen=True)
class Target:
    path: str
    """As in the repository: a package folder or one module."""
    goal: float
    """Per cent of the non-equivalent mutants that must be killed."""


@dataclass(frozen=True)
class Settings:
    targets: tuple[Target, ...]
    tests: tuple[str, ...]
    markers: str
    import_roots: tuple[str, ...]


@dataclass
class Tally:
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    equivalent: int = 0

    @property
    def total(self) -> int:
        return self.killed + len(self.survived) + len(self.not_covered) + len(self.other)

    def add(self, other: Tally) -> None:
        self.killed += other.killed
        self.survived += other.survived
        self.not_covered += other.not_covered
        self.other += other.other
        self.equivalent += other.equivalent

    @property
    def score(self) -> float:
        judged = self.total - self.equivalent
        return 100.0 if judged == 0 else 100.0 * self.killed / judged


@dataclass(frozen=True)
class Equivalent:
    name: str
    change: str
    """The mutant's changed line as the file quotes it (``-`` old ``=>`` ``+`` new)."""
    reason: str
    line: int


def read_pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def read_settings(source_roots: Sequence[str]) -> Settings:
    """``[tool.mutation]``, and the import roots holding packages (not ``.``)."""
    section = read_pyproject()["tool"]["mutation"]
    targets = tuple(Target(path, float(goal)) for path, goal in section["targets"].items())
    roots = tuple(r for r in source_roots if r != ".")
    return Settings(targets, tuple(section["tests"]), section["markers"], roots)


def staged_path(repo_path: str, roots: Sequence[str]) -> str:
    """``lib/floating_ip/core`` → ``floating_ip/core``: the path under its import root."""
    for root in roots:
        prefix = root.rstrip("/") + "/"
        if repo_path.startswith(prefix):
            return repo_path[len(prefix) :]
    raise SystemExit(f"{repo_path} is under none of the import roots {list(roots)}")


def module_name(staged: str) -> str:
    return staged.removesuffix(".py").replace("/", ".")


def glob_of(staged: str) -> str:
    return staged if staged.endswith(".py") else f"{staged.rstrip('/')}/*.py"


@dataclass(frozen=True)
class Picked:
    target: Target
    globs: list[str]
    """The staged globs of the modules to mutate."""
    partial: bool
    """``--only`` named some of the target's modules: its score is not the target's."""


def chosen(settings: Settings, only: Sequence[str]) -> list[Picked]:
    """Each target to mutate, with the staged globs of its modules (``--only`` narrows)."""
    picked = []
    for target in settings.targets:
        inside = [o for o in only if o.startswith(target.path)]
        if only and not inside and not any(target.path.startswith(o) for o in only):
            continue
        paths = inside or [target.path]
        globs = [glob_of(staged_path(p, settings.import_roots)) for p in paths]
        picked.append(Picked(target, globs, partial=paths != [target.path]))
    if not picked:
        raise SystemExit(f"--only {list(only)} names no target of [tool.mutation]")
    return picked


def stage(settings: Settings, picked: Sequence[Picked]) -> None:
    """Lay out ``build/mutation`` by package, with a pyproject that configures mutmut."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "node_modules", "*.pyc")
    packages = []
    for root in settings.import_roots:
        for package in sorted((ROOT / root).iterdir()):  # packages, namespace ones too
            if package.is_dir() and package.name.isidentifier():
                shutil.copytree(package, STAGE / package.name, ignore=ignore)
                packages.append(package.name)
    for name in ALSO_COPY:
        shutil.copytree(ROOT / name, STAGE / name, ignore=ignore)
    (STAGE / "conftest.py").write_text(STAGE_CONFTEST)

    globs = [glob for pick in picked for glob in pick.globs]
    sources = sorted({glob.split("/")[0] for glob in globs})
    pytest_ini = dict(read_pyproject()["tool"]["pytest"]["ini_options"])
    pytest_ini["pythonpath"] = ["."]  # the staged packages, before the venv's source roots
    mutmut = {
        "source_paths": sources,
        "only_mutate": globs,
        "also_copy": [*[p for p in packages if p not in sources], *ALSO_COPY, "conftest.py"],
        "pytest_add_cli_args_test_selection": [*settings.tests, "-m", settings.markers],
        "pytest_add_cli_args": ["-p", "no:cacheprovider"],
    }
    (STAGE / "pyproject.toml").write_text(
        toml_section("tool.pytest.ini_options", pytest_ini)
        + "\n"
        + toml_section("tool.mutmut", mutmut)
    )


def toml_section(name: str, values: Mapping[str, object]) -> str:
    """The little TOML the staged pyproject needs: strings, numbers and lists of strings."""
    lines = [f"[{name}]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def run_mutmut(children: int, model_examples: int) -> float:
    mutmut = Path(sys.executable).with_name("mutmut")
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 (the venv's mutmut, fixed arguments)
        [str(mutmut), "run", "--max-children", str(children)],
        cwd=STAGE,
        env={**os.environ, "MODEL_EXAMPLES": str(model_examples)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    (STAGE / "mutmut.log").write_text(done.stdout)
    if done.returncode != 0:
        print(done.stdout[-4000:])
        raise SystemExit(f"mutmut failed ({done.returncode}); its log: build/mutation/mutmut.log")
    return time.monotonic() - started


def results(staged_module: str) -> Iterator[tuple[str, int | None]]:
    meta = STAGE / "mutants" / f"{staged_module}.meta"
    yield from json.loads(meta.read_text())["exit_code_by_key"].items()


def tally(staged_module: str) -> Tally:
    found = Tally()
    for name, code in results(staged_module):
        if code in KILLED:
            found.killed += 1
        elif code == SURVIVED:
            found.survived.append(name)
        elif code in NO_TESTS:
            found.not_covered.append(name)
        else:
            found.other.append(f"{name} (exit {code})")
    return found


def read_equivalent(path: Path = EQUIVALENT) -> dict[str, Equivalent]:
    """One entry a line: ``NAME :: - old => + new :: reason``; ``#`` starts a comment line."""
    entries: dict[str, Equivalent] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" :: ", 2)]
        if len(parts) != 3 or not all(parts):
            raise SystemExit(f"{path.name}:{number}: expected 'NAME :: - old => + new :: reason'")
        name, change, reason = parts
        if name in entries:
            raise SystemExit(f"{path.name}:{number}: {name} is listed twice")
        entries[name] = Equivalent(name, change, reason, number)
    return entries


def changed_lines(diff: str) -> str:
    """A mutant's diff as one line: ``- old => + new`` (whitespace squeezed)."""
    removed = [
        " ".join(x[1:].split()) for x in diff.splitlines() if x[:1] == "-" and x[:3] != "---"
    ]
    added = [" ".join(x[1:].split()) for x in diff.splitlines() if x[:1] == "+" and x[:3] != "+++"]
    return f"- {' / '.join(removed)} => + {' / '.join(added)}"


def diffs(names: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each mutant's change, read from the staged mutants (mutmut's own diff)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # noqa: PLC0415 (staged cwd)

    cwd = Path.cwd()
    os.chdir(STAGE)
    try:
        return {name: changed_lines(get_diff_for_mutant(name, path=path)) for name, path in names}
    finally:
        os.chdir(cwd)


def modules_of(globs: Sequence[str]) -> list[str]:
    """The staged modules a target's globs matched, for which mutmut made mutants."""
    mutants = STAGE / "mutants"
    found = {
        str(meta.relative_to(mutants)).removesuffix(".meta")
        for glob in globs
        for meta in mutants.glob(f"{glob}.meta")
    }
    return sorted(found)


def judge(
    picked: Sequence[Picked], equivalent: Mapping[str, Equivalent]
) -> tuple[list[str], list[str]]:
    """The summary's lines, and the problems that fail the run."""
    lines = [
        "| module | mutants | killed | equivalent | not killed | score | goal |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    problems: list[str] = []
    mutated: set[str] = set()
    lost_here: set[str] = set()
    for pick in picked:
        target, whole = pick.target, Tally()
        for module in modules_of(pick.globs):
            found = tally(module)
            mutated.update(name for name, _ in results(module))
            lost = [*found.survived, *found.not_covered]
            lost_here.update(lost)
            changes = diffs((name, module) for name in lost)
            for name in lost:
                entry = equivalent.get(name)
                if entry is None:
                    kind = "survived" if name in found.survived else "no test calls it"
                    problems.append(f"{name} ({kind}): {changes[name]}")
                elif entry.change != changes[name]:
                    problems.append(
                        f"equivalent.txt:{entry.line}: {name} now changes {changes[name]!r}, "
                        f"not {entry.change!r}: review the entry"
                    )
                else:
                    found.equivalent += 1
            problems += [f"{name}: neither killed nor survived" for name in found.other]
            whole.add(found)
            lines.append(row(module_name(module), found, ""))
        if pick.partial:  # some modules only: their rows stand, the target is not judged
            lines.append(row(f"{target.path} (part)", whole, "not judged"))
            continue
        lines.append(row(f"**{target.path}**", whole, f"{target.goal:.0f} %"))
        if whole.score < target.goal:
            problems.append(f"{target.path}: {whole.score:.1f} % < the goal {target.goal:.0f} %")
    problems += [
        f"equivalent.txt:{e.line}: {e.name} is killed now: remove the entry"
        for e in equivalent.values()
        if e.name in mutated and e.name not in lost_here
    ]
    return lines, problems


def row(name: str, found: Tally, goal: str) -> str:
    not_killed = found.total - found.killed - found.equivalent
    return (
        f"| {name} | {found.total} | {found.killed} | {found.equivalent} | {not_killed} "
        f"| {found.score:.1f} % | {goal} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    global STAGE  # noqa: PLW0603 (one run, one place: every step reads it)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="repository paths of targets")
    parser.add_argument(
        "--source-roots", default="lib in-cluster .", help="the Makefile's SOURCE_ROOTS"
    )
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--model-examples",
        type=int,
        default=20,
        help="histories of tests/core/test_model_based.py per mutant it runs for (make test: 100)",
    )
    parser.add_argument("--report-only", action="store_true", help="judge the last run again")
    parser.add_argument("--stage", type=Path, default=STAGE, help="where the run happens")
    args = parser.parse_args(argv)
    STAGE = args.stage.resolve()
    settings = read_settings(args.source_roots.split())
    picked = chosen(settings, args.only)
    equivalent = read_equivalent()
    elapsed = None
    if not args.report_only:
        stage(settings, picked)
        elapsed = run_mutmut(args.children, args.model_examples)
    lines, problems = judge(picked, equivalent)
    if not args.only:  # a whole run made every mutant there is: an entry must name one
        made = {name for pick in picked for m in modules_of(pick.globs) for name, _ in results(m)}
        problems += [
            f"equivalent.txt:{e.line}: {e.name} names no mutant: remove or rename the entry"
            for e in equivalent.values()
            if e.name not in made
        ]
    if elapsed is not None:
        lines.append(
            f"\nmutmut ran for {elapsed / 60:.1f} min ({args.children} workers, "
            f"{args.model_examples} model-based histories per mutant)."
        )
    summary = "\n".join(lines)
    if problems:
        summary += "\n\nTo kill with a test, or to list with the reason in tests/mutation/"
        summary += "equivalent.txt:\n" + "\n".join(f"- {p}" for p in problems)
    print(summary)
    (STAGE / "summary.md").write_text(summary + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

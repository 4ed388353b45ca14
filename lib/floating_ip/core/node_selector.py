"""The ``floating-ip.doks.dev/node-selector`` annotation: which nodes may hold the Service's IP.

Its value is a Kubernetes label selector in the syntax ``kubectl -l`` takes, so a user can
try it with ``kubectl get nodes -l '<selector>'`` first: comma-separated requirements, all of
which must hold —

- ``key=value``, ``key==value``, ``key!=value`` (``!=`` also matches a node without the key);
- ``key in (a,b)``, ``key notin (a,b)`` (``notin`` also matches a node without the key);
- ``key`` (the label exists), ``!key`` (it does not).

An empty value selects every node, as no annotation does. Keys and values are checked as
Kubernetes checks labels, so a typo is reported instead of silently selecting nothing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from floating_ip_common import contract


class Operator(StrEnum):
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator is Operator.EXISTS:
            return value is not None
        if self.operator is Operator.DOES_NOT_EXIST:
            return value is None
        if self.operator is Operator.IN:
            return value is not None and value in self.values
        return value is None or value not in self.values


@dataclass(frozen=True, slots=True)
class NodeSelector:
    """Every requirement must hold; no requirement selects every node."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: tuple[tuple[str, str], ...]) -> bool:
        found = dict(labels)
        return all(requirement.matches(found) for requirement in self.requirements)


SELECT_NOTHING: Final = NodeSelector(
    (Requirement("", Operator.EXISTS),)  # no label has an empty key
)
"""What an invalid selector selects: no node, so the IP stays where it is until it is fixed
(rather than moving to a node the user meant to exclude)."""


class SelectorError(ValueError):
    """The annotation's value is not a label selector; the message names the annotation."""

    def __init__(self, value: str, why: str) -> None:
        super().__init__(f"Annotation {contract.NODE_SELECTOR}: {value!r} {why}")


_NAME: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_PREFIX: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE: Final = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_SET: Final = re.compile(r"^(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQUALITY: Final = re.compile(r"^(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)$")


def _key(text: str, value: str) -> str:
    """A label key: ``[prefix/]name``, as Kubernetes validates it."""
    prefix, _, name = text.rpartition("/")
    if "/" in text and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        raise SelectorError(value, f"has {text!r}, whose prefix is not a DNS subdomain")
    if not _NAME.match(name):
        raise SelectorError(value, f"has {text!r}, which is not a label key")
    return text


def _value(text: str, value: str) -> str:
    if not _VALUE.match(text):
        raise SelectorError(value, f"has {text!r}, which is not a label value")
    return text


def _split(value: str) -> list[str]:
    """The requirements: commas inside ``( )`` separate values, not requirements."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(value):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(value[start:index])
            start = index + 1
        if depth not in (0, 1):
            raise SelectorError(value, "has unbalanced parentheses")
    if depth != 0:
        raise SelectorError(value, "has unbalanced parentheses")
    parts.append(value[start:])
    return [part.strip() for part in parts]


def _requirement(text: str, value: str) -> Requirement:
    if not text:
        raise SelectorError(value, "has an empty requirement")
    if found := _SET.match(text):
        values = [item.strip() for item in found["values"].split(",")]
        if not all(values):
            raise SelectorError(value, f"has {text!r} with an empty value in its list")
        operator = Operator.IN if found["op"] == "in" else Operator.NOT_IN
        checked = frozenset(_value(item, value) for item in values)
        return Requirement(_key(found["key"], value), operator, checked)
    if found := _EQUALITY.match(text):
        operator = Operator.NOT_IN if found["op"] == "!=" else Operator.IN
        return Requirement(
            _key(found["key"], value), operator, frozenset({_value(found["value"], value)})
        )
    if text.startswith("!"):
        return Requirement(_key(text[1:].strip(), value), Operator.DOES_NOT_EXIST)
    if re.fullmatch(r"[^\s!=(),]+", text):
        return Requirement(_key(text, value), Operator.EXISTS)
    raise SelectorError(
        value, f"has {text!r}, which is not key=value, key!=value, key in (…), key or !key"
    )


@functools.lru_cache(maxsize=1024)
def parse_node_selector(value: str) -> NodeSelector:
    """``contract.NODE_SELECTOR``'s value as a selector; ``SelectorError`` names the problem.

    Cached: every node is checked against the same few selectors in every run."""
    if not value.strip():
        return NodeSelector()
    return NodeSelector(tuple(_requirement(part, value) for part in _split(value)))


def node_selector_of(annotation: str | None) -> NodeSelector:
    """The selector a Service's annotation asks for; an invalid one selects no node (the
    Service's status carries the parse error, from ``annotations.read_intent``)."""
    if annotation is None:
        return NodeSelector()
    try:
        return parse_node_selector(annotation)
    except SelectorError:
        return SELECT_NOTHING

"""Path templates in the spec's own notation (``/v2/firewalls/{firewall_id}``).

Routes, faults and log queries all name paths this way, so a test can copy a path from the
DigitalOcean reference and use it unchanged.
"""

from __future__ import annotations

import re
from functools import cache

_PLACEHOLDER = re.compile(r"\{[^/{}]+\}")


@cache
def _compile(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        name = match.group(0)[1:-1]
        parts.append(f"(?P<{name}>[^/]+)")
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts) + "/?")


def match_template(template: str, path: str) -> dict[str, str] | None:
    """The placeholders' values if ``path`` fits ``template`` (one segment each), else None."""
    found = _compile(template).fullmatch(path)
    return None if found is None else found.groupdict()


def method_matches(pattern: str, method: str) -> bool:
    """``*`` matches every method; otherwise the comparison ignores case."""
    return pattern == "*" or pattern.upper() == method.upper()

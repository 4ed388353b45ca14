"""Which of the distributions a built zip ships does a traced invocation use, and which does it
look for in vain: from the ``*.dist-info/RECORD`` files pip wrote into the zip's virtualenv.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


def canonical(name: str) -> str:
    """A distribution name as packaging compares them (``PyYAML`` == ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def shipped(site_packages: Path) -> dict[str, set[Path]]:
    """Each distribution installed in ``site_packages`` and the files its RECORD lists."""
    found: dict[str, set[Path]] = {}
    for record in sorted(site_packages.glob("*.dist-info/RECORD")):
        name = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        with record.open(newline="") as rows:
            files = {(site_packages / row[0]).resolve() for row in csv.reader(rows) if row}
        found[canonical(name)] = files
    return found


@dataclass(frozen=True)
class Usage:
    imported: set[str]
    """Shipped distributions a module was imported from."""
    unused: set[str]
    """Shipped distributions nothing was imported from."""
    stray: set[str]
    """Imported files under site-packages that no shipped distribution lists."""


def usage(site_packages: Path, loaded_files: Iterable[str]) -> Usage:
    dists = shipped(site_packages)
    owner = {file: name for name, files in dists.items() for file in files}
    imported: set[str] = set()
    stray: set[str] = set()
    root = site_packages.resolve()
    for loaded in loaded_files:
        path = Path(loaded).resolve()
        if not path.is_relative_to(root):
            continue
        if path in owner:
            imported.add(owner[path])
        else:
            stray.add(path.relative_to(root).as_posix())
    return Usage(imported, set(dists) - imported, stray)


def missing(not_found: Iterable[str], shipped_names: Iterable[str]) -> dict[str, str]:
    """Modules the invocation looked for in vain that a distribution of THIS environment
    provides and the zip does not ship: module name -> distribution. A guarded import of
    something nobody installed (``brotli`` for urllib3, say) is not counted."""
    ships = {canonical(n) for n in shipped_names}
    providers = metadata.packages_distributions()
    found: dict[str, str] = {}
    for name in not_found:
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top not in providers:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None or spec.origin is None:
            continue
        dist = _owner(Path(spec.origin).resolve(), providers[top])
        if dist is not None and dist not in ships:
            found[name] = dist
    return found


def _owner(file: Path, candidates: list[str]) -> str | None:
    """Which of ``candidates`` (distributions sharing a top-level name) installed ``file``."""
    for name in candidates:
        dist = metadata.distribution(name)
        if any(Path(str(dist.locate_file(f))).resolve() == file for f in dist.files or []):
            return canonical(name)
    return None

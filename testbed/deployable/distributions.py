"""Which of the distributions a built zip ships does a traced invocation use, and which does it
look for in vain: from the ``*.dist-info/RECORD`` files pip wrote into the zip's virtualenv.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from collections.abc import Iterable, Mapping
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
    """Shipped distributions a module was imported from (or would have been: see ``usage``)."""
    unused: set[str]
    """Shipped distributions nothing was imported from."""
    stray: set[str]
    """Imported files under site-packages that no shipped distribution lists."""
    lacking: dict[str, str]
    """Modules imported from outside the zip and the standard library, which no shipped
    distribution provides: module -> file. The runtime would not find them."""


def usage(site_packages: Path, modules: Mapping[str, str], stdlib: Path) -> Usage:
    """Sort the modules a traced process imported (name -> file) by distribution.

    A module imported from another site-packages (the interpreter's own, say, where a
    start-up ``.pth`` may import ``certifi`` before the function runs) counts for the shipped
    distribution providing that name, if any; otherwise it is lacking."""
    dists = shipped(site_packages)
    owner = {file: name for name, files in dists.items() for file in files}
    provides = {
        Path(file).relative_to(site_packages.resolve()).parts[0].removesuffix(".py"): name
        for name, files in dists.items()
        for file in files
        if Path(file).is_relative_to(site_packages.resolve())
    }
    imported: set[str] = set()
    stray: set[str] = set()
    lacking: dict[str, str] = {}
    root = site_packages.resolve()
    zip_root = root.parents[3]  # <zip>/virtualenv/lib/python3.X/site-packages
    for module, loaded in modules.items():
        path = Path(loaded).resolve()
        if path.is_relative_to(root):
            if path in owner:
                imported.add(owner[path])
            else:
                stray.add(path.relative_to(root).as_posix())
        elif path.is_relative_to(zip_root) or (
            path.is_relative_to(stdlib) and "site-packages" not in path.parts
        ):
            continue  # the function's own code, or the standard library
        elif module.partition(".")[0] in provides:
            imported.add(provides[module.partition(".")[0]])
        else:
            lacking[module] = loaded
    return Usage(imported, set(dists) - imported, stray, lacking)


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

"""Byte-compiles the dependency modules a cold start actually imports (run by build.sh).

The runtime unzips the function and imports it on every cold start; without bytecode, Python
compiles some 700 modules first. Compiling all of site-packages would push the zip past the
48 MB limit, so only what the entry point and its first calls import is compiled. The
bytecode is "unchecked-hash": valid whatever the unzipped files' timestamps. Not shipped.
"""

from __future__ import annotations

import py_compile
import sys
from pathlib import Path

site_packages = Path(sys.argv[1]).resolve()
sys.path[:0] = [str(site_packages), *(str(Path(root).resolve()) for root in sys.argv[2:])]

from floating_ip import entry_digitalocean_functions, reconcile  # noqa: E402, F401
from floating_ip.adapters.digitalocean import DigitalOcean  # noqa: E402
from floating_ip.adapters.kubernetes import Kubernetes  # noqa: E402

# What the first call builds: both clients (and what they load lazily).
Kubernetes("https://127.0.0.1", "unused", None).close()
DigitalOcean("unused", "https://127.0.0.1").close()

compiled = 0
for module in list(sys.modules.values()):
    source = getattr(module, "__file__", None)
    if source and source.endswith(".py") and Path(source).resolve().is_relative_to(site_packages):
        py_compile.compile(
            source, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
        compiled += 1
print(f"precompiled {compiled} modules", file=sys.stderr)

"""The helm CLI built from its Go module (``testbed/helm/build.sh``, cached like the control
plane), run with its caches and settings under a temporary folder so tests leave no trace."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from testbed.controlplane import REPO

BUILD_SCRIPT = REPO / "testbed" / "helm" / "build.sh"
CHART = REPO / "charts" / "doks-floating-ip"


def binary() -> Path:
    """The helm binary, building it on first use (minutes, once per machine)."""
    out = subprocess.run([str(BUILD_SCRIPT)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Helm:
    path: Path
    home: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        return subprocess.run(
            [str(self.path), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def template(self, namespace: str, *values: str) -> str:
        """``helm template`` of the chart with ``--set`` values; its stdout, or a clear error."""
        sets = [a for v in values for a in ("--set", v)]
        done = self.run("template", "doks-floating-ip", str(CHART), "-n", namespace, *sets)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return done.stdout

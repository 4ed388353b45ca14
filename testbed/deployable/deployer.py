"""Reading and building the project with the real deployer library (``build-function.js``).

The deployer works on a copy of what ``doctl serverless deploy`` ships (project.yml,
packages/, lib/), so its build output never lands in the checkout, and reads its variables
from an env file the test writes: never from a real ``.env`` or the developer's shell.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from floating_ip.config import SETTINGS

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "build-function.js"
SHIPPED = ("project.yml", "packages", "lib", "in-cluster")
# Left behind by local runs; a fresh checkout has none of them.
LOCAL_LEFTOVERS = ("__pycache__", "*.pyc", "virtualenv", "__deployer__.zip", ".deployed")
SETUP = "npm ci --prefix testbed/deployable"


_BUILD_VALUES = {
    "DIGITALOCEAN_TOKEN": "build-time-token-never-used",
    "DIGITALOCEAN_API_URL": "https://api.digitalocean.com",
    "CLUSTER_ID": "2c9a5b3e-6f1d-4e8a-9b7c-0d1e2f3a4b5c",
    "KUBE_API_URL": "https://2c9a5b3e.k8s.ondigitalocean.com",
    "KUBE_CA_DATA": base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode(),
    "DRY_RUN": "false",
    "NAMESPACES": "ingress",
    "UNASSIGN_UNCLAIMED": "false",
    "CLUSTER_ACCESS": "callback",
}


def build_time_env() -> dict[str, str]:
    """A value for every setting of the function (``config.SETTINGS``), for a zip that is built
    but never run with them; ``WEB_SECRET`` is fresh each time."""
    values = {**_BUILD_VALUES, "WEB_SECRET": secrets.token_hex(16)}
    missing = [name for name in SETTINGS if name not in values]
    if missing:
        raise DeployerError(f"no build-time value for the function's settings {missing}")
    return {name: values[name] for name in SETTINGS}


class DeployerError(AssertionError):
    """The deployer refused the project or failed to build it."""


def project_variables(source_root: Path = REPO) -> set[str]:
    """Every ``${VAR}`` project.yml substitutes (this checkout's, or another tree's)."""
    text = (source_root / "project.yml").read_text()
    return {name.strip() for name in re.findall(r"\$\{([^}]+)\}", text)}


def copy_project(target: Path, source_root: Path = REPO) -> Path:
    """What ``doctl serverless deploy`` ships, from this checkout (or another tree of it; an
    older one may lack a folder added since, such as ``in-cluster``)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        source = source_root / name
        if not source.exists() and source_root != REPO:
            continue
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns(*LOCAL_LEFTOVERS))
        else:
            shutil.copy2(source, target / name)
    return target


def write_env_file(path: Path, values: Mapping[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def _environment(api_host: str, scratch: Path) -> dict[str, str]:
    shadowing = project_variables()
    env = {
        key: value
        for key, value in os.environ.items()
        # The deployer prefers the process environment over the env file, and reads its
        # platform settings and build shell from variables: none may come from the caller.
        if key not in shadowing and not key.startswith("__OW_") and key not in {"shell"}
    }
    env["__OW_API_HOST"] = api_host
    env["NIMBELLA_DIR"] = str(scratch / "nimbella")  # no saved credentials, no global excludes
    env["PYTHON"] = sys.executable  # build.sh's interpreter: this one has virtualenv and pip
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    return env


def run_deployer(
    project: Path, env_file: Path, out: Path, api_host: str, *, read_only: bool = False
) -> dict[str, Any]:
    """Run the deployer on ``project``; its JSON report (``error`` set when it refused)."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "@nimbella" / "nimbella-deployer").is_dir():
        raise DeployerError(f"the deployer is not installed: needs node and `{SETUP}`")
    argv = [node, str(SCRIPT), str(project), str(env_file), str(out)]
    if read_only:
        argv.append("--read-only")
    done = subprocess.run(
        argv,
        cwd=project,
        env=_environment(api_host, out),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise DeployerError(
            f"the deployer exited with {done.returncode} without a report:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        ) from None
    report["log"] = done.stderr
    return report

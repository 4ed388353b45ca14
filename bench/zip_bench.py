"""The deployed function: its zip's size, and its cold start as DigitalOcean's Python runtime
runs it (unzip, activate the virtualenv, import, first ``main``) against the bed; the zip of
the baseline (before the lean zip) beside it, cold-started in turn on the same bed.

Each zip is built once by the real deployer library (what ``doctl serverless deploy`` runs),
from a copy of what it ships. The first cold start answers a resync that places a reserved
IP; the next ones answer idle resyncs (nothing to change), the common case of a cold start.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench import baseline
from floating_ip_common import contract
from testbed.controlplane import ControlPlane, binaries
from testbed.deployable.deployer import (
    REPO,
    SHIPPED,
    DeployerError,
    build_time_env,
    copy_project,
    project_variables,
    run_deployer,
    write_env_file,
)
from testbed.deployable.platform_stub import RuntimesStub
from testbed.deployable.runtime import LoadedFunction
from testbed.do_imitation.server import DoImitation
from testbed.doks import DoksWorld, function_token
from testbed.function_harness import resync
from testbed.kube import KubeBed, Port

COLD_STARTS = 5
"""Idle cold starts timed, after the first one."""
IP = "192.0.2.40"
RUNTIME_PATH = "/usr/local/bin:/usr/bin:/bin"


def build(workdir: Path, source_root: Path | None = None) -> tuple[Path, float]:
    """The function's zip, built by the deployer from this checkout (or ``source_root``);
    and how long the build took."""
    started = time.monotonic()
    # Build-time values: the built function is then run with the bed's settings. An older
    # tree's project.yml may name a setting this one no longer has: any value builds it.
    values = build_time_env()
    for name in project_variables(source_root or REPO) - values.keys():
        values[name] = "set-when-run"
    with RuntimesStub() as stub:
        report = run_deployer(
            copy_project(workdir / "project", *([source_root] if source_root else [])),
            write_env_file(workdir / "deploy.env", values),
            workdir / "out",
            stub.url,
        )
    if not report["ok"]:
        raise DeployerError(f"{report['error']}\n{report['log'][-3000:]}")
    # The build's virtualenv (~170 MB) is in the zip; the folder is not needed any more.
    shutil.rmtree(workdir / "project" / "packages" / "floating-ip" / "reconcile" / "virtualenv")
    [upload] = report["uploaded"]
    return Path(upload["code"]), time.monotonic() - started


def platform_event(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """A request as DigitalOcean Functions hands a ``web: raw`` function its event."""
    return {
        "http": {
            "method": "POST",
            "headers": {k.lower(): v for k, v in headers.items()},
            "body": body.decode(),
            "isBase64Encoded": False,
            "path": "",
            "queryString": "",
        }
    }


def cold_start(zip_path: Path, workdir: Path, env: dict[str, str], token: str) -> dict[str, Any]:
    """One fresh runtime process: until its first answer, then one warm answer."""
    with LoadedFunction(zip_path, workdir / "action", env, workdir / "function.log") as loaded:
        first = loaded.invoke(platform_event(*resync(token)))
        if first.result.get("statusCode") != 200:
            raise RuntimeError(f"the zip's first answer: {json.dumps(first.result)[:2000]}")
        warm = loaded.invoke(platform_event(*resync(token)))
    assert loaded.cold_start_s is not None
    return {
        "cold_start_s": loaded.cold_start_s,
        **loaded.load_timings,
        "first_main_s": first.seconds,
        "warm_main_s": warm.seconds,
        "changes": len(first.result["body"].get("changes", [])),
    }


def run(workdir: Path) -> dict[str, Any]:
    zip_path, build_seconds = build(workdir / "build")
    old_source = baseline.export(workdir / "baseline", *SHIPPED)
    old_zip, old_build_seconds = build(workdir / "build-old", old_source)
    plane = ControlPlane(workdir / "control-plane", binaries()).start()
    try:
        with DoImitation(workdir / "digitalocean", check_contract=False) as do:
            kube = KubeBed(plane.admin_client())
            world = DoksWorld(plane, kube, do)
            for name in ("a", "b"):
                world.add_node(name)
            namespace = kube.create_namespace("bench")
            do.add_reserved_ip(IP, region=world.region)
            kube.create_service(
                namespace, "traefik", [Port(80), Port(443)], annotations={contract.ADDRESS: IP}
            )
            kube.create_pod(namespace, "traefik-1", world.node("a"), {"app": "traefik"})
            kube.sync_endpoint_slices(namespace, "traefik")
            token = function_token(plane, kube)
            # The baseline (old code) reads the token from its environment; this code from the call.
            env = {"PATH": RUNTIME_PATH, **world.function_env(KUBE_TOKEN=token)}
            placing = cold_start(zip_path, workdir / "run-0", env, token)
            if world.holder_of(IP) != "a":
                raise RuntimeError("the zip's first call did not place the reserved IP")
            new: list[dict[str, Any]] = []
            old: list[dict[str, Any]] = []
            for n in range(1, 1 + COLD_STARTS):  # in turn: both see the same machine
                old.append(cold_start(old_zip, workdir / f"run-old-{n}", env, token))
                new.append(cold_start(zip_path, workdir / f"run-{n}", env, token))
    finally:
        plane.stop()
    results = {
        "new": _side(zip_path, build_seconds, new),
        "old": _side(old_zip, old_build_seconds, old),
        "baseline_commit": baseline.BASELINE_COMMIT,
    }
    results["new"]["cold_start_placing_s"] = round(placing["cold_start_s"], 3)
    results["ratios"] = {
        "zip_bytes": round(results["new"]["zip_bytes"] / results["old"]["zip_bytes"], 2),
        "cold_start": round(
            results["new"]["cold_start"]["median_s"] / results["old"]["cold_start"]["median_s"], 2
        ),
        "first_main": round(
            results["new"]["cold_start"]["first_main_s"]
            / results["old"]["cold_start"]["first_main_s"],
            2,
        ),
    }
    return results


def _side(zip_path: Path, build_seconds: float, idle: list[dict[str, Any]]) -> dict[str, Any]:
    rounded = [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in idle]
    return {
        "zip_bytes": zip_path.stat().st_size,
        "build_seconds": round(build_seconds, 1),
        "cold_start": {
            "runs": len(idle),
            "median_s": round(statistics.median(r["cold_start_s"] for r in idle), 3),
            "unzip_s": round(statistics.median(r["unzip_s"] for r in idle), 3),
            "import_s": round(statistics.median(r["import_s"] for r in idle), 3),
            "first_main_s": round(statistics.median(r["first_main_s"] for r in idle), 3),
            "each": rounded,
        },
        "warm_main_s": round(statistics.median(r["warm_main_s"] for r in idle), 3),
    }

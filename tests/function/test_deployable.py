"""The deployable artefact: project.yml read, validated and built by the real deployer library
(what ``doctl serverless deploy`` runs), the upload captured before it leaves the machine, and
the built zip cold-started the way the Python runtime loads it, answering real events.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import sysconfig
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from floating_ip_common import contract
from testbed.deployable import distributions
from testbed.deployable.deployer import (
    REPO,
    DeployerError,
    build_time_env,
    copy_project,
    project_variables,
    run_deployer,
    write_env_file,
)
from testbed.deployable.platform_stub import RuntimesStub
from testbed.deployable.runtime import LoadedFunction
from testbed.doks import DoksWorld
from testbed.function_harness import FunctionRunner, binary_event, move_traefik, serve_traefik
from testbed.kube import KubeBed
from testbed.layout import IN_CLUSTER, LIB

pytestmark = pytest.mark.bed  # starts processes of the bed (or the deployer)

ZIP_LIMIT = 48 * 1024 * 1024  # DigitalOcean Functions' limit for a built function
IP = "192.0.2.10"
# Build-time values (build_time_env); a function built from them is never run (the runtime
# tests use the bed's).
DEPLOY_ENV = build_time_env()


@dataclass(frozen=True)
class Built:
    report: dict[str, Any]
    env: dict[str, str]
    """What the env file said."""
    api_requests: list[str]

    @property
    def action(self) -> dict[str, Any]:
        [action] = self.report["actions"]
        return dict(action)

    @property
    def upload(self) -> dict[str, Any]:
        [upload] = self.report["uploaded"]
        return dict(upload)

    @property
    def zip_path(self) -> Path:
        return Path(self.upload["code"])


@pytest.fixture(scope="session")
def runtimes_stub() -> Iterator[RuntimesStub]:
    with RuntimesStub() as stub:
        yield stub


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, runtimes_stub: RuntimesStub) -> Built:
    """The project built once per session (the virtualenv takes a while)."""
    work = tmp_path_factory.mktemp("deployable")
    env = build_time_env()
    seen = len(runtimes_stub.requests)
    report = run_deployer(
        copy_project(work / "project"),
        write_env_file(work / "deploy.env", env),
        work / "out",
        runtimes_stub.url,
    )
    if not report["ok"]:
        raise DeployerError(f"{report['error']}\n{report['log'][-3000:]}")
    # The zip holds what the tests need; the build's ~170 MB virtualenv is not kept.
    shutil.rmtree(work / "project" / "packages" / "floating-ip" / "reconcile" / "virtualenv")
    return Built(report, env, runtimes_stub.requests[seen:])


def test_project_yml_validates_against_the_platform_runtimes(built: Built) -> None:
    assert "/api/v1" in built.api_requests  # the runtimes table came from the platform
    action = built.action
    assert (action["package"], action["name"]) == ("floating-ip", "reconcile")
    assert action["runtime"] == "python:3.11"
    assert action["main"] == "main"
    assert action["web"] == "raw"
    assert action["webSecure"] == built.env["WEB_SECRET"]
    assert action["limits"] == {"timeout": 30000, "memory": 256}
    # Every variable project.yml names is templated from the env file, as strings.
    assert project_variables() == set(built.env)
    assert action["environment"] == built.env


def test_validation_has_teeth_a_runtime_the_platform_lacks_is_refused(
    tmp_path: Path, runtimes_stub: RuntimesStub
) -> None:
    project = copy_project(tmp_path / "project")
    yml = project / "project.yml"
    assert "runtime: python:3.11" in yml.read_text()
    yml.write_text(yml.read_text().replace("runtime: python:3.11", "runtime: python:3.10"))
    env = build_time_env()
    report = run_deployer(
        project,
        write_env_file(tmp_path / "deploy.env", env),
        tmp_path / "out",
        runtimes_stub.url,
        read_only=True,
    )
    assert not report["ok"]
    assert "'python:3.10' is not a valid runtime value" in report["error"]


def test_the_upload_is_the_zip_with_raw_web_access_behind_the_secret(built: Built) -> None:
    upload = built.upload
    assert upload["name"] == "floating-ip/reconcile"
    assert upload["exec"] == {"binary": True, "kind": "python:3.11", "main": "main"}
    annotations = {a["key"]: a["value"] for a in upload["annotations"]}
    assert annotations["web-export"] is True
    assert annotations["raw-http"] is True
    assert annotations["require-whisk-auth"] == built.env["WEB_SECRET"]
    # The environment reaches the runtime as init parameters (os.environ), not as event keys.
    parameters = {p["key"]: p for p in upload["parameters"]}
    assert set(parameters) == set(built.env)
    assert all(p.get("init") is True for p in parameters.values())
    assert upload["limits"] == {"timeout": 30000, "memory": 256}
    # What was uploaded is byte for byte the zip the build left on disk.
    assert built.zip_path.read_bytes() == Path(built.action["zip"]).read_bytes()


def test_the_zip_holds_the_handler_the_virtualenv_and_the_library_and_nothing_else(
    built: Built,
) -> None:
    size = built.zip_path.stat().st_size
    print(f"built zip: {size / 1e6:.1f} MB")
    assert size < ZIP_LIMIT
    with zipfile.ZipFile(built.zip_path) as archive:
        names = set(archive.namelist())
    for needed in (
        "__main__.py",
        "virtualenv/bin/activate_this.py",
        "floating_ip_common/contract.py",
    ):
        assert needed in names
    shipped_roots = {"floating_ip", "floating_ip_common"}
    assert {n.split("/")[0] for n in names} == {"__main__.py", "virtualenv", *shipped_roots}
    for never in ("build.sh", ".include", "requirements.txt"):
        assert not any(n == never or n.endswith("/" + never) for n in names), never
    shipped = {n for n in names if n.split("/")[0] in shipped_roots and n.endswith(".py")}
    source = {
        p.relative_to(root).as_posix()
        for root in (LIB, IN_CLUSTER)
        for p in root.rglob("*.py")
        if p.parts[len(root.parts)] in shipped_roots
    }
    assert shipped == source
    site = "virtualenv/lib/python3.11/site-packages/"
    for package in ("kubernetes", "pydo", "cloudevents", "requests"):
        assert f"{site}{package}/__init__.py" in names


REQUIRED_BLANK = {
    "DIGITALOCEAN_TOKEN",
    "CLUSTER_ID",
    "KUBE_API_URL",
    "KUBE_CA_DATA",
    "WEB_SECRET",
}
"""The lines .env.example leaves for the user to fill in; every other line has a default."""


def test_an_env_file_filled_in_as_env_example_says_deploys(
    tmp_path: Path, runtimes_stub: RuntimesStub
) -> None:
    example = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key] = value
    # The user fills in what the function needs and keeps the example's defaults: the deployer
    # treats an EMPTY value as unresolved, so every optional line carries a non-empty default.
    assert {k for k, v in example.items() if not v} <= REQUIRED_BLANK
    filled = {k: v or DEPLOY_ENV.get(k, "") for k, v in example.items()}
    filled["WEB_SECRET"] = secrets.token_hex(16)
    report = run_deployer(
        copy_project(tmp_path / "project"),
        write_env_file(tmp_path / ".env.filled", filled),
        tmp_path / "out",
        runtimes_stub.url,
        read_only=True,
    )
    assert report["ok"], report["error"]


# --- the built zip, cold-started and invoked -------------------------------------------------


def web_raw(
    headers: dict[str, str], body: bytes, *, encode: bool = False, method: str = "POST"
) -> dict[str, Any]:
    """An event as DigitalOcean Functions hands a ``web: raw`` request to ``main``."""
    platform = {"host": "faas-nyc1-local.doserverless.invalid", "user-agent": "forwarder/test"}
    return {
        "http": {
            "method": method,
            "headers": {**platform, **{k.lower(): v for k, v in headers.items()}},
            "body": base64.b64encode(body).decode() if encode else body.decode(),
            "isBase64Encoded": encode,
            "path": "",
            "queryString": "",
        }
    }


def structured(kind: str, secret: str, kube_token: str) -> dict[str, Any]:
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/tests", "type": kind}
    headers = {
        "content-type": "application/cloudevents+json",
        contract.AUTH_HEADER: secret,
        contract.KUBE_TOKEN_HEADER: kube_token,
    }
    return web_raw(headers, json.dumps(event).encode())


def assert_placed(answer_body: Any, world: DoksWorld, node: str) -> None:
    assert answer_body["errors"] == [], answer_body["errors"]
    assert world.holder_of(IP) == node


def test_the_built_zip_cold_starts_and_answers_every_event_form(
    built: Built,
    runner: FunctionRunner,
    world: DoksWorld,
    kube: KubeBed,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve_traefik(world, namespace, IP, "a")
    secret = runner.env["WEB_SECRET"]
    subject = f"{namespace}/traefik"
    work = tmp_path / "action"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **runner.env}
    with LoadedFunction(built.zip_path, work, env, tmp_path / "function.log") as function:
        # Binary mode, body as text: the first call is the cold start.
        first = function.invoke(
            web_raw(
                *binary_event(contract.EVENT_SERVICE_CHANGED, subject, kube_token=runner.kube_token)
            )
        )
        assert first.result["statusCode"] == 200, first.result
        assert_placed(first.result["body"], world, "a")
        # Everything it imported came from the zip, not from this machine.
        for module, origin in first.origins.items():
            assert origin is not None and Path(origin).is_relative_to(work), (module, origin)

        # Binary mode, body base64-encoded by the platform.
        move_traefik(world, namespace, 2, "b")
        second = function.invoke(
            web_raw(
                *binary_event(
                    contract.EVENT_SERVICE_CHANGED, subject, kube_token=runner.kube_token
                ),
                encode=True,
            )
        )
        assert second.result["statusCode"] == 200, second.result
        assert_placed(second.result["body"], world, "b")

        # Structured mode.
        move_traefik(world, namespace, 3, "c")
        third = function.invoke(structured(contract.EVENT_RESYNC, secret, runner.kube_token))
        assert third.result["statusCode"] == 200, third.result
        assert_placed(third.result["body"], world, "c")

        # Refusals are answered before any call is made.
        world.do.clear_requests()
        headers, body = binary_event(contract.EVENT_RESYNC, kube_token=runner.kube_token)
        wrong = function.invoke(web_raw({**headers, contract.AUTH_HEADER: "x" * 32}, body))
        assert wrong.result["statusCode"] == 401
        garbled_event = web_raw(headers, body, encode=True)
        garbled_event["http"]["body"] = "%%% not base64 %%%"
        garbled = function.invoke(garbled_event)
        assert garbled.result["statusCode"] == 400
        assert "base64" in garbled.result["body"]["error"]
        assert world.do.requests() == []
        assert world.holder_of(IP) == "c"

    assert function.cold_start_s is not None
    with capsys.disabled():
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in function.load_timings.items())
        print(
            f"\ncold start {function.cold_start_s:.2f}s ({timings},"
            f" first main {first.seconds:.2f}s); warm main {second.seconds:.2f}s,"
            f" {third.seconds:.2f}s"
        )


SITE_PACKAGES = "virtualenv/lib/python3.11/site-packages"
OPTIONAL = {"blinker": "oauthlib's signals fall back to a stub without it"}
"""Guarded imports that find nothing in the zip, on purpose (module: why it may be absent)."""


def test_the_zip_ships_exactly_the_distributions_a_real_invocation_imports(
    built: Built,
    runner: FunctionRunner,
    world: DoksWorld,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """requirements.txt is an allow-list installed with --no-deps: a trace of real invocations
    (a change that places the IP, a move, an idle resync) in the runtime's loader must find
    every distribution it needs in the zip, and nothing shipped may go unused."""
    serve_traefik(world, namespace, IP, "a")
    subject = f"{namespace}/traefik"
    work = tmp_path / "action"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **runner.env}
    with LoadedFunction(built.zip_path, work, env, tmp_path / "function.log") as function:
        placed = function.invoke(
            web_raw(
                *binary_event(contract.EVENT_SERVICE_CHANGED, subject, kube_token=runner.kube_token)
            )
        )
        assert_placed(placed.result["body"], world, "a")
        move_traefik(world, namespace, 2, "b")
        moved = function.invoke(
            web_raw(
                *binary_event(contract.EVENT_SERVICE_CHANGED, subject, kube_token=runner.kube_token)
            )
        )
        assert_placed(moved.result["body"], world, "b")
        idle = function.invoke(
            structured(contract.EVENT_RESYNC, runner.env["WEB_SECRET"], runner.kube_token)
        )
        assert idle.result["statusCode"] == 200, idle.result
        stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
        used = distributions.usage(work / SITE_PACKAGES, idle.modules, stdlib)
        missing = distributions.missing(idle.not_found, distributions.shipped(work / SITE_PACKAGES))
    with capsys.disabled():
        print(f"\nimported {len(used.imported)} distributions: {', '.join(sorted(used.imported))}")
        print(f"shipped, never imported: {', '.join(sorted(used.unused)) or 'none'}")
    assert used.lacking == {}, f"imported from outside the zip: {used.lacking}"
    missing = {m: d for m, d in missing.items() if m.partition(".")[0] not in OPTIONAL}
    assert missing == {}, f"looked for in vain, the zip lacks their distributions: {missing}"
    assert used.stray == set(), f"imported files no shipped distribution lists: {used.stray}"
    assert used.unused == set(), f"shipped but never imported (drop them): {used.unused}"
    # The allow-list and what the trace needs are one and the same.
    allowed = {
        distributions.canonical(line.split("==")[0])
        for line in (REPO / "packages/floating-ip/reconcile/requirements.txt").read_text().split()
        if "==" in line
    }
    assert used.imported == allowed
    with zipfile.ZipFile(built.zip_path) as archive:
        names = archive.namelist()
    for left_out in ("kubernetes/aio/", "pydo/aio/"):
        assert not any(n.startswith(f"{SITE_PACKAGES}/{left_out}") for n in names), left_out

"""The annotator against hostile input: a corpus of bad configuration values, and of bad
answers from the metadata service and the Kubernetes API, served by scripted loopback
servers (plain HTTP for the metadata service, HTTPS from the bed's CA for the API).

Every case: the documented exit code, a message naming the problem, no write (no PATCH) with
a bad value, and the token nowhere in the output. Time is bounded by the annotator's own
deadline (the FAST flags); the cases assert on outcomes, not on durations.
"""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from floating_ip_annotator import cli
from floating_ip_annotator.errors import ExitCode
from floating_ip_common.contract import ANCHOR_IPV4, DROPLET_ID
from testbed.tls import TestCA

TOKEN = "eyJhbGciOi.hostile-corpus-token.c2lnbmF0dXJl"
ANCHOR = "10.17.0.5"
DROPLET = 3164494
ANCHOR_PATH = "/metadata/v1/interfaces/public/0/anchor_ipv4/address"
ID_PATH = "/metadata/v1/id"
POD_PATH = "/api/v1/namespaces/web/pods/ingress-0"
NODE_PATH = "/api/v1/nodes/pool-a"
FAST = ["--timeout", "3", "--request-timeout", "1", "--attempts", "2"]

# --- scripted servers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Step = bytes | float
"""What a server does: send these bytes, or wait this many seconds (cut short on stop)."""
Script = Callable[[Request], list[Step]]


def response(
    status: int,
    body: bytes | str = b"",
    *,
    headers: dict[str, str] | None = None,
    length: int | None = None,
) -> bytes:
    """A raw HTTP/1.1 answer; ``length`` overrides Content-Length (to cut a body short)."""
    data = body.encode() if isinstance(body, str) else body
    head = [
        f"HTTP/1.1 {status} Scripted",
        f"Content-Length: {len(data) if length is None else length}",
    ]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    head += ["Connection: close", "", ""]
    return "\r\n".join(head).encode() + data


def ok(body: bytes | str) -> list[Step]:
    return [response(200, body)]


@dataclass
class ScriptedServer:
    """A loopback server answering every request by ``script``; logs what it was asked."""

    script: Script
    context: ssl.SSLContext | None = None
    seen: list[Request] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _server: socketserver.ThreadingTCPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> ScriptedServer:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._answer(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = False
        server.block_on_close = True  # stop() joins every request thread
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def requests(self, method: str | None = None) -> list[Request]:
        return [seen for seen in self.seen if method in (None, seen.method)]

    def _answer(self, connection: socket.socket) -> None:
        stream: socket.socket = connection
        try:
            if self.context is not None:
                stream = self.context.wrap_socket(connection, server_side=True)
            reader = stream.makefile("rb")
            request_line = reader.readline().decode("latin-1").split()
            if len(request_line) < 2:
                return
            headers: dict[str, str] = {}
            while (line := reader.readline().decode("latin-1").strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = reader.read(int(headers.get("content-length", "0")))
            request = Request(request_line[0], request_line[1], headers, body)
            self.seen.append(request)
            for step in self.script(request):
                if isinstance(step, float):
                    if self.stopping.wait(step):
                        return
                else:
                    stream.sendall(step)
        except (OSError, ssl.SSLError):
            pass  # the client gave up (timed out, refused the certificate): expected here
        finally:
            stream.close()


def drip_headers(every: float) -> list[Step]:
    """The status line, then a header a byte at a time, for ever (each read succeeds)."""
    steps: list[Step] = [b"HTTP/1.1 200 OK\r\n"]
    for _ in range(200):
        steps += [every, b"X"]
    return steps


def drip(data: bytes, every: float) -> list[Step]:
    """Headers at once, then the body a byte at a time."""
    head = response(200, b"", length=len(data))
    steps: list[Step] = [head]
    for byte in data:
        steps += [every, bytes([byte])]
    return steps


# --- the metadata service and the API, well-behaved unless told otherwise ------------------


def pod(annotations: object = None, **meta: object) -> dict[str, object]:
    metadata: dict[str, object] = {"name": "ingress-0", "namespace": "web", "resourceVersion": "7"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"kind": "Pod", "metadata": {**metadata, **meta}, "spec": {}}


def good_metadata(request: Request) -> list[Step]:
    if request.path.endswith(ANCHOR_PATH):
        return ok(ANCHOR)
    if request.path.endswith(ID_PATH):
        return ok(str(DROPLET))
    return [response(404, "not found")]


def good_api(request: Request) -> list[Step]:
    if request.method == "PATCH":
        return ok(json.dumps(pod(json.loads(request.body)["metadata"]["annotations"])))
    return ok(json.dumps(pod()))


@dataclass
class Bed:
    metadata: ScriptedServer
    api: ScriptedServer
    elsewhere: ScriptedServer
    """A third server redirects point to: it must never be asked anything."""
    workdir: Path
    ca_file: Path

    def environ(self, **changes: str) -> dict[str, str]:
        environ = {
            "POD_NAME": "ingress-0",
            "POD_NAMESPACE": "web",
            "NODE_NAME": "pool-a",
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.api.port),
            "METADATA_URL": f"http://127.0.0.1:{self.metadata.port}",
        }
        return {**environ, **changes}

    def run(
        self, capsys: pytest.CaptureFixture[str], *argv: str, **environ: str
    ) -> tuple[int, str]:
        """One run in this process, as ``python -m floating_ip_annotator`` would: the exit
        code and everything printed. The token is never in what was printed."""
        full = [*FAST, "--token-file", str(self.workdir / "token"), "--ca-file", str(self.ca_file)]
        try:
            code = cli.main([*full, *argv], self.environ(**environ))
        except SystemExit as exited:  # argparse refusing a flag
            code = int(exited.code or 0)
        printed = capsys.readouterr()
        output = printed.out + printed.err
        assert TOKEN not in output
        return code, output

    def patches(self) -> int:
        return len(self.api.requests("PATCH"))


@pytest.fixture(scope="module")
def bed_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCA, ssl.SSLContext]:
    ca = TestCA(tmp_path_factory.mktemp("hostile-ca"))
    serving = ca.issue("api", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(serving.cert), str(serving.key))
    return ca, context


@pytest.fixture
def bed(bed_ca: tuple[TestCA, ssl.SSLContext], tmp_path: Path) -> Iterator[Bed]:
    ca, context = bed_ca
    (tmp_path / "token").write_text(TOKEN + "\n")
    servers = [
        ScriptedServer(good_metadata).start(),
        ScriptedServer(good_api, context).start(),
        ScriptedServer(good_api, context).start(),
    ]
    try:
        yield Bed(*servers, workdir=tmp_path, ca_file=ca.ca_file)
    finally:
        for server in servers:
            server.stop()


def test_the_scripted_bed_lets_a_good_run_through(
    bed: Bed, capsys: pytest.CaptureFixture[str]
) -> None:
    """The corpus below is only meaningful if the same bed, well-behaved, succeeds."""
    code, output = bed.run(capsys)
    assert (code, bed.patches()) == (ExitCode.OK, 1), output
    (patch,) = bed.api.requests("PATCH")
    assert json.loads(patch.body)["metadata"] == {
        "resourceVersion": "7",
        "annotations": {ANCHOR_IPV4: ANCHOR, DROPLET_ID: str(DROPLET)},
    }
    assert patch.headers["authorization"] == f"Bearer {TOKEN}"


# --- configuration -------------------------------------------------------------------------

HUGE = "a" * 100_000


@pytest.mark.parametrize(
    ("argv", "environ", "words"),
    [
        ([], {"METADATA_URL": "http://127.0.0.1:notaport"}, "is not a URL"),
        ([], {"METADATA_URL": "http://127.0.0.1:99999"}, "is not a URL"),
        ([], {"METADATA_URL": "gopher://169.254.169.254"}, "not an http(s) URL"),
        ([], {"METADATA_URL": "http://169.254.169.254/\r\nX-Injected: 1"}, "control characters"),
        ([], {"METADATA_URL": "http://169.254.169.254 /"}, "whitespace"),
        ([], {"METADATA_URL": "http://169.254.169.254/?next=/evil"}, "has a query"),
        ([], {"METADATA_URL": "http://169.254.169.254/#x"}, "has a query or fragment"),
        ([], {"METADATA_URL": "http://root:hunter2@169.254.169.254"}, "must not carry credentials"),
        (["--metadata-url", "file:///etc/passwd"], {}, "not an http(s) URL"),
        (
            [],
            {"POD_NAME": "../../nodes/pool-a"},
            "POD_NAME '../../nodes/pool-a' is not a Kubernetes",
        ),
        ([], {"POD_NAME": ".."}, "POD_NAME '..' is not a Kubernetes name"),
        ([], {"POD_NAME": "ingress%2F0"}, "POD_NAME 'ingress%2F0' is not a Kubernetes name"),
        ([], {"POD_NAME": "ingress-0\nannotated pod web/x"}, "is not a Kubernetes name"),
        ([], {"POD_NAME": "Ingress-0"}, "is not a Kubernetes name"),
        ([], {"POD_NAME": HUGE}, "at most 253 characters"),
        ([], {"POD_NAMESPACE": "web.example"}, "POD_NAMESPACE 'web.example' is not a Kubernetes"),
        ([], {"POD_NAMESPACE": "a" * 64}, "at most 63 characters"),
        ([], {"POD_NAMESPACE": ""}, "POD_NAMESPACE is not set"),
        (["--node"], {"NODE_NAME": "pool-a/status"}, "NODE_NAME 'pool-a/status' is not a"),
        (["--node"], {"NODE_NAME": "pool-a?dryRun=All"}, "is not a Kubernetes name"),
        (["--node"], {"NODE_NAME": ""}, "NODE_NAME is not set"),
        (
            [],
            {"KUBERNETES_SERVICE_PORT": "https"},
            "KUBERNETES_SERVICE_PORT: 'https' is not a port",
        ),
        ([], {"KUBERNETES_SERVICE_PORT": "0"}, "is not a port"),
        ([], {"KUBERNETES_SERVICE_PORT": "65536"}, "is not a port"),
        ([], {"KUBERNETES_SERVICE_PORT": "443/x"}, "is not a port"),
        ([], {"KUBERNETES_SERVICE_HOST": "evil.example/x?"}, "is not an IP address or host name"),
        ([], {"KUBERNETES_SERVICE_HOST": "u@127.0.0.1"}, "is not an IP address or host name"),
        ([], {"KUBERNETES_SERVICE_HOST": "10.0.0.1\r\nHost: x"}, "is not an IP address"),
        ([], {"KUBERNETES_SERVICE_HOST": ""}, "KUBERNETES_SERVICE_HOST and"),
    ],
)
def test_a_bad_setting_is_refused_before_any_request(
    bed: Bed,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    environ: dict[str, str],
    words: str,
) -> None:
    code, output = bed.run(capsys, *argv, **environ)
    assert code == ExitCode.CONFIG, output
    assert words in output
    assert HUGE not in output, "a huge value is quoted cut short"
    assert "hunter2" not in output
    assert (bed.metadata.requests(), bed.api.requests()) == ([], [])


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--timeout", "soon", "invalid _seconds value: 'soon'"),
        ("--timeout", "inf", "'inf' is not a number of seconds between 0 and 3600"),
        ("--timeout", "1e309", "is not a number of seconds"),
        ("--timeout", "nan", "is not a number of seconds"),
        ("--timeout", "-1", "is not a number of seconds"),
        ("--request-timeout", "86400", "is not a number of seconds between 0 and 3600"),
        ("--attempts", "1e9", "'1e9' is not a whole number from 1 to 100"),
        ("--attempts", "99999999999999999999", "is not a whole number from 1 to 100"),
        ("--attempts", "٣", "is not a whole number"),
        ("--attempts", "0", "is not a whole number"),
    ],
)
def test_a_bad_number_is_refused_with_the_configuration_code(
    bed: Bed, capsys: pytest.CaptureFixture[str], flag: str, value: str, words: str
) -> None:
    code, output = bed.run(capsys, flag, value)
    assert code == ExitCode.CONFIG
    assert f"argument {flag}" in output
    assert words in output
    assert (bed.metadata.requests(), bed.api.requests()) == ([], [])


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (b"\xff\xfe\x00t\x00o\x00k", "contains bytes a token never has"),
        (TOKEN.encode() + b"\r\nX-Injected: 1", "contains bytes a token never has"),
        (b"part one part two", "contains bytes a token never has"),
        (b"x" * (64 * 1024 + 1), "is larger than 65536 bytes"),
    ],
)
def test_a_bad_token_file_is_refused_without_quoting_it(
    bed: Bed, capsys: pytest.CaptureFixture[str], content: bytes, words: str
) -> None:
    (bed.workdir / "token").write_bytes(content)
    code, output = bed.run(capsys)
    assert code == ExitCode.CONFIG, output
    assert words in output
    assert "X-Injected" not in output
    assert "part one" not in output
    assert bed.api.requests() == []


def test_a_token_file_that_never_ends_is_refused(
    bed: Bed, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = bed.run(capsys, "--token-file", "/dev/zero")
    assert code == ExitCode.CONFIG
    assert "larger than 65536 bytes" in output


# --- the metadata service's answers ----------------------------------------------------------


def metadata_answering(
    anchor: list[Step] | None = None, droplet_id: list[Step] | None = None
) -> Script:
    def script(request: Request) -> list[Step]:
        if request.path.endswith(ANCHOR_PATH) and anchor is not None:
            return anchor
        if request.path.endswith(ID_PATH) and droplet_id is not None:
            return droplet_id
        return good_metadata(request)

    return script


@pytest.mark.bed  # waits out retries and drips: with the bed tests, not make unit
@pytest.mark.parametrize(
    ("script", "code", "words"),
    [
        (
            metadata_answering(ok(ANCHOR + " " * 10_000)),
            ExitCode.METADATA_INVALID,
            "more than 4096 bytes",
        ),
        (
            metadata_answering(ok("1" * 1_000_000)),
            ExitCode.METADATA_INVALID,
            "more than 4096 bytes",
        ),
        (
            metadata_answering(droplet_id=ok("9" * 5000)),
            ExitCode.METADATA_INVALID,
            "more than 4096",
        ),
        (
            metadata_answering(ok(b"\xff\xfe1\x000\x00")),
            ExitCode.METADATA_INVALID,
            "not an IPv4 address",
        ),
        (
            metadata_answering(ok("<!doctype html><title>Captive portal</title>")),
            ExitCode.METADATA_INVALID,
            "'<!doctype html><title>Captive portal</title>' for anchor_ipv4",
        ),
        (metadata_answering(ok("fd00:17::5")), ExitCode.METADATA_INVALID, "an IPv6 address"),
        (metadata_answering(ok("::ffff:10.17.0.5")), ExitCode.METADATA_INVALID, "an IPv6 address"),
        (metadata_answering(ok("10.17.0.5 garbage")), ExitCode.METADATA_INVALID, "not an IPv4"),
        (metadata_answering(ok("10.17.0.5\x00")), ExitCode.METADATA_INVALID, "not an IPv4 address"),
        (metadata_answering(ok("10.17.0.5/16")), ExitCode.METADATA_INVALID, "not an IPv4 address"),
        (metadata_answering(ok("164.90.155.12")), ExitCode.METADATA_INVALID, "a public address"),
        (metadata_answering(ok("169.254.169.254")), ExitCode.METADATA_INVALID, "link-local"),
        (metadata_answering(droplet_id=ok("3164494 ")), ExitCode.OK, "annotated"),
        (
            metadata_answering(droplet_id=ok("-3164494")),
            ExitCode.METADATA_INVALID,
            "not a positive",
        ),
        (
            metadata_answering(droplet_id=ok("3164494\n42")),
            ExitCode.METADATA_INVALID,
            "not a positive",
        ),
        (
            metadata_answering([response(302, headers={"Location": "http://198.51.100.1/"})]),
            ExitCode.METADATA_INVALID,
            "a redirect (HTTP 302)",
        ),
        (
            metadata_answering([response(200, "10.17", length=9)]),
            ExitCode.METADATA_UNREACHABLE,
            "cut short",
        ),
        (
            metadata_answering([response(200, ANCHOR, length=4000)]),
            ExitCode.METADATA_UNREACHABLE,
            "cut short",
        ),
        (metadata_answering(drip(ANCHOR.encode(), 0.3)), ExitCode.METADATA_UNREACHABLE, "too slow"),
        (metadata_answering(drip_headers(0.3)), ExitCode.METADATA_UNREACHABLE, "too slow"),
        (
            metadata_answering([b"SSH-2.0-OpenSSH_9.6\r\n"]),
            ExitCode.METADATA_UNREACHABLE,
            "after 2 attempts",
        ),
        (metadata_answering([]), ExitCode.METADATA_UNREACHABLE, "without an answer"),
        (
            metadata_answering([response(503, "x" * 100_000)]),
            ExitCode.METADATA_UNREACHABLE,
            "HTTP 503",
        ),
    ],
)
def test_a_hostile_metadata_answer_is_named_and_nothing_is_written(
    bed: Bed, capsys: pytest.CaptureFixture[str], script: Script, code: ExitCode, words: str
) -> None:
    bed.metadata.script = script
    found, output = bed.run(capsys)
    assert found == code, output
    assert words in output
    if code is not ExitCode.OK:
        assert bed.api.requests() == [], "the API is asked only once the metadata is good"


# --- the Kubernetes API's answers ------------------------------------------------------------


def api_answering(get: list[Step] | None = None, patch: list[Step] | None = None) -> Script:
    def script(request: Request) -> list[Step]:
        if request.method == "GET" and get is not None:
            return get
        if request.method == "PATCH" and patch is not None:
            return patch
        return good_api(request)

    return script


def status(code: int, message: str) -> bytes:
    return response(code, json.dumps({"kind": "Status", "code": code, "message": message}))


NINE_MIB = json.dumps(pod({"big": "x" * (9 * 1024 * 1024)}))


@pytest.mark.bed  # waits out retries and drips: with the bed tests, not make unit
@pytest.mark.parametrize(
    ("script", "code", "words"),
    [
        (api_answering(ok("<html>Welcome to nginx</html>")), ExitCode.KUBE_REJECTED, "non-JSON"),
        (api_answering(ok(b"\xff\xfe{}")), ExitCode.KUBE_REJECTED, "non-JSON"),
        (api_answering(ok("[" * 200_000 + "]" * 200_000)), ExitCode.KUBE_REJECTED, "non-JSON"),
        (api_answering(ok('{"metadata": {"na')), ExitCode.KUBE_REJECTED, "non-JSON"),
        (api_answering(ok("[]")), ExitCode.KUBE_REJECTED, "a non-object"),
        (api_answering(ok('{"metadata": []}')), ExitCode.KUBE_REJECTED, "without metadata"),
        (
            api_answering(ok(json.dumps(pod(resourceVersion=None)))),
            ExitCode.KUBE_REJECTED,
            "without a resourceVersion",
        ),
        (
            api_answering(ok(json.dumps(pod(resourceVersion=7)))),
            ExitCode.KUBE_REJECTED,
            "without a resourceVersion",
        ),
        (
            api_answering(ok(json.dumps(pod(annotations=["x"])))),
            ExitCode.KUBE_REJECTED,
            "not a map of strings",
        ),
        (
            api_answering(ok(json.dumps(pod({"a": 1})))),
            ExitCode.KUBE_REJECTED,
            "not a map of strings",
        ),
        (api_answering(ok(NINE_MIB)), ExitCode.KUBE_REJECTED, "more than 8388608 bytes"),
        (
            api_answering(
                [response(302, headers={"Location": "https://127.0.0.1:{elsewhere}/steal"})]
            ),
            ExitCode.KUBE_REJECTED,
            "redirected reading pod web/ingress-0 (HTTP 302) to https://127.0.0.1:",
        ),
        (
            api_answering(
                patch=[response(307, headers={"Location": "https://127.0.0.1:{elsewhere}/"})]
            ),
            ExitCode.KUBE_REJECTED,
            "redirected patching pod web/ingress-0 (HTTP 307)",
        ),
        (api_answering([response(301)]), ExitCode.KUBE_REJECTED, "(HTTP 301) to nowhere"),
        (api_answering([status(410, "Gone")]), ExitCode.KUBE_REJECTED, "HTTP 410 reading pod"),
        (api_answering(patch=[status(410, "Gone")]), ExitCode.KUBE_REJECTED, "HTTP 410 patching"),
        (
            api_answering(patch=[status(409, "the object has been modified")]),
            ExitCode.KUBE_UNREACHABLE,
            "2 attempts: HTTP 409 patching",
        ),
        (api_answering([status(409, "conflict")]), ExitCode.KUBE_UNREACHABLE, "HTTP 409 reading"),
        (
            api_answering([response(200, json.dumps(pod()), length=100_000)]),
            ExitCode.KUBE_UNREACHABLE,
            "cut short",
        ),
        (
            api_answering(drip_headers(0.3)),
            ExitCode.KUBE_UNREACHABLE,
            "answer too slow: not complete within",
        ),
        (
            api_answering(drip(json.dumps(pod()).encode(), 0.05)),
            ExitCode.KUBE_UNREACHABLE,
            "too slow",
        ),
        (api_answering([]), ExitCode.KUBE_UNREACHABLE, "without an answer"),
        (
            api_answering([status(500, f"Authorization: Bearer {TOKEN}")]),
            ExitCode.KUBE_UNREACHABLE,
            "Bearer <token>",
        ),
        (
            api_answering([response(401, f"bad token {TOKEN}")]),
            ExitCode.PERMISSION,
            "bad token <token>",
        ),
        (
            api_answering(
                [status(403, "denied\nfloating-ip-annotator: annotated pod web/ingress-0")]
            ),
            ExitCode.PERMISSION,
            "'denied\\nfloating-ip-annotator: annotated",
        ),
        (
            api_answering([response(404, "\x1b[2J" + "x" * 100_000)]),
            ExitCode.KUBE_REJECTED,
            "not found (404): '\\x1b[2J",
        ),
    ],
)
def test_a_hostile_api_answer_is_named_and_nothing_bad_is_written(
    bed: Bed, capsys: pytest.CaptureFixture[str], script: Script, code: ExitCode, words: str
) -> None:
    elsewhere = str(bed.elsewhere.port)

    def placed(request: Request) -> list[Step]:
        return [
            step.replace(b"{elsewhere}", elsewhere.encode()) if isinstance(step, bytes) else step
            for step in script(request)
        ]

    bed.api.script = placed
    found, output = bed.run(capsys)
    assert found == code, output
    assert words.replace("{elsewhere}", elsewhere) in output
    assert len(output) < 2000, "an answer is quoted cut short"
    assert bed.elsewhere.requests() == [], "a redirect is never followed"
    for patch in bed.api.requests("PATCH"):  # any write carries exactly the good values
        assert json.loads(patch.body)["metadata"]["annotations"] == {
            ANCHOR_IPV4: ANCHOR,
            DROPLET_ID: str(DROPLET),
        }
    assert len(bed.api.requests()) <= 4, "retries are bounded by --attempts"


@pytest.mark.bed  # waits out retries and drips: with the bed tests, not make unit
@pytest.mark.parametrize(
    ("spec", "code", "words"),
    [
        ({"providerID": 3164494}, ExitCode.KUBE_REJECTED, "providerID is not text"),
        ({"providerID": "digitalocean://42"}, ExitCode.MISMATCH, "'digitalocean://42' but the"),
        ("not a spec", ExitCode.OK, "annotated node pool-a"),
    ],
)
def test_a_node_of_the_wrong_shape_or_droplet_is_not_annotated(
    bed: Bed,
    capsys: pytest.CaptureFixture[str],
    spec: object,
    code: ExitCode,
    words: str,
) -> None:
    node = {"kind": "Node", "metadata": {"name": "pool-a", "resourceVersion": "3"}, "spec": spec}
    bed.api.script = api_answering(ok(json.dumps(node)))
    found, output = bed.run(capsys, "--node")
    assert found == code, output
    assert words in output
    assert bed.api.requests()[0].path == NODE_PATH
    assert bed.patches() == (1 if code is ExitCode.OK else 0)

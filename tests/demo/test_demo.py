"""``make demo``: its pure parts (what changed, how it reads), then the whole demo as a person
runs it, in a process of its own: every step must reach its expected state, the narration
must say so (and, where the machine can run the data path, which node's pod answered the
client across each move), and nothing it started may outlive it, also when interrupted."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo import conditions
from demo.data_path import ClientSaw
from demo.logs import LogTail, parse_call, parse_forwarder_problem
from demo.model import (
    Change,
    Droplet,
    IpState,
    Kind,
    Opening,
    ServiceState,
    Snapshot,
    StepResult,
    diff,
)
from demo.render import Style, client_lines, holder_table, summary
from floating_ip_common import contract
from testbed.dataplane import namespaces
from testbed.dataplane.traffic import MoveSeen

pytestmark = pytest.mark.bed  # starts processes of the bed (or the deployer)

from testbed.layout import REPO  # noqa: E402

A, B = Droplet("node-a", 1, "10.17.0.5"), Droplet("node-b", 2, "10.17.0.6")
DROPLETS = {1: A, 2: B}
WEB = frozenset({Opening(80, "tcp"), Opening(443, "tcp"), Opening(443, "udp")})


def snapshot(
    holder: int | None = None,
    *,
    locked: bool = False,
    target: int | None = None,
    external_ips: tuple[str, ...] = (),
    openings: frozenset[Opening] = frozenset(),
) -> Snapshot:
    return Snapshot(
        (IpState("192.0.2.10", holder, locked, target), IpState("192.0.2.11", None, False)),
        (ServiceState("web/traefik", "192.0.2.10", external_ips),),
        openings,
    )


# --- what changed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (snapshot(), snapshot(), []),
        (
            snapshot(1),
            snapshot(1, locked=True, target=2),
            [Change(Kind.ACTION, "192.0.2.10", "assign to node-b: action in progress")],
        ),
        (
            snapshot(1, locked=True, target=2),
            snapshot(2),
            [
                Change(
                    Kind.HOLDER,
                    "192.0.2.10",
                    "now on node-b (droplet 2), the action took 2.0 s",
                )
            ],
        ),
        (
            snapshot(1),
            snapshot(7),
            [Change(Kind.HOLDER, "192.0.2.10", "now on droplet 7, outside the cluster")],
        ),
        (snapshot(1), snapshot(None), [Change(Kind.HOLDER, "192.0.2.10", "unassigned")]),
        (
            snapshot(external_ips=("10.17.0.5",)),
            snapshot(external_ips=("10.17.0.5", "10.17.0.6")),
            [
                Change(
                    Kind.SERVICE,
                    "web/traefik",
                    "externalIPs [10.17.0.5] → [10.17.0.5, 10.17.0.6]",
                )
            ],
        ),
        (
            snapshot(openings=frozenset({Opening(22, "tcp")})),
            snapshot(openings=WEB),
            [
                Change(Kind.FIREWALL, "firewall", "opened 80/tcp 443/tcp 443/udp"),
                Change(Kind.FIREWALL, "firewall", "closed 22/tcp"),
            ],
        ),
    ],
)
def test_diff_says_what_changed(before: Snapshot, after: Snapshot, expected: list[Change]) -> None:
    assert diff(before, after, DROPLETS, now=12.0, locked_since={"192.0.2.10": 10.0}) == expected


# --- what a step expects ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seen", "missing"),
    [
        (snapshot(2, external_ips=("10.17.0.6",), openings=WEB), []),
        (
            snapshot(1, external_ips=("10.17.0.5", "10.17.0.6"), openings=WEB),
            [
                "192.0.2.10 should be on node-b, is on node-a",
                "web/traefik externalIPs should be [10.17.0.6], are [10.17.0.5, 10.17.0.6]",
            ],
        ),
        (
            snapshot(2, locked=True, external_ips=("10.17.0.6",)),
            [
                "192.0.2.10 still has an action in progress",
                "the firewall should open 80/tcp 443/tcp 443/udp",
            ],
        ),
    ],
)
def test_a_step_names_what_is_still_missing(seen: Snapshot, missing: list[str]) -> None:
    check = conditions.all_of(
        conditions.ip_on("192.0.2.10", B, DROPLETS),
        conditions.external_ips("web/traefik", conditions.anchor_of(B)),
        conditions.opened(WEB),
    )
    assert check(seen) == missing


def test_a_second_ip_must_rest_on_another_droplet() -> None:
    check = conditions.ip_apart("192.0.2.11", "192.0.2.10", DROPLETS)
    both_on_a = Snapshot(
        (IpState("192.0.2.10", 1, False), IpState("192.0.2.11", 1, False)), (), frozenset()
    )
    apart = Snapshot(
        (IpState("192.0.2.10", 1, False), IpState("192.0.2.11", 2, False)), (), frozenset()
    )
    assert check(both_on_a) == ["192.0.2.11 shares node-a with 192.0.2.10"]
    assert check(apart) == []
    assert conditions.holder_anchor("192.0.2.11", DROPLETS)(apart) == ("10.17.0.6",)


# --- how it reads -------------------------------------------------------------------------


def test_the_holder_table_is_aligned_and_plain_without_colour() -> None:
    lines = holder_table(Style(color=False), snapshot(1, locked=True, target=2), DROPLETS)
    assert lines == [
        "    reserved IP  holder node      droplet  anchor     claimed by",
        "    192.0.2.10   node-a → node-b  1        10.17.0.5  web/traefik",
        "    192.0.2.11   —                —        —          —",
        "    firewall opens: nothing",
    ]


def test_colour_codes_do_not_shift_the_columns() -> None:
    results = [
        StepResult(1, "first", True, 2.5, 1.9),
        StepResult(2, "second step", False, None),
    ]
    plain = summary(Style(color=False), results)
    coloured = summary(Style(color=True), results)
    assert [re.sub(r"\x1b\[[\d;]*m", "", line) for line in coloured] == plain
    assert plain == [
        "    #  step            IP landed  all done",
        "    1  first        ✓  1.9 s      2.5 s",
        "    2  second step  ✗  —          —",
    ]


def test_a_move_reads_as_who_answered_and_the_gap_per_protocol() -> None:
    seen = MoveSeen(
        outage={"TCP": 2.5, "UDP": 0.01},
        lost={"TCP": 5, "UDP": 0},
        failures={"TCP": {"refused": 2, "timeout": 3}, "UDP": {}},
        last_old={"TCP": 110.0, "UDP": 112.33},
        first_new={"TCP": 112.5, "UDP": 112.34},
        established="reset",
    )
    saw = ClientSaw("traefik-1", "node-a", "traefik-2", "node-b", seen)
    assert client_lines(Style(color=False), saw, started=100.0) == [
        "      client: traefik-1 on node-a answered before, traefik-2 on node-b after",
        "        TCP  gap 2.50 s (+10.00 s → +12.50 s), 5 requests lost: 2 refused, 3 timeout",
        "        UDP  gap 0.01 s (+12.33 s → +12.34 s), nothing lost",
        "        an open TCP connection: reset",
    ]


def test_function_answers_and_forwarder_complaints_are_read_from_their_logs(
    tmp_path: Path,
) -> None:
    resync = f'{{"status": 200, "trigger": "{contract.EVENT_RESYNC}", "changes": 0}}'
    moved = (
        f'{{"status": 200, "trigger": "{contract.EVENT_SERVICE_CHANGED}", "changes": 4,'
        ' "seconds": 2.9}'
    )
    log = tmp_path / "function.log"
    log.write_text(f"[gunicorn] booting\n{resync}\n{moved[:20]}")
    tail = LogTail(log)
    assert [parse_call(line) for line in tail.new_lines()] == [None, parse_call(resync)]
    with log.open("a") as more:
        more.write(moved[20:] + "\n")
    (call,) = [parse_call(line) for line in tail.new_lines()]
    assert call is not None and not call.quiet
    assert call.describe() == "service.changed → 200 · 4 changes · 2.90 s"
    assert parse_call(resync) is not None and parse_call(resync).quiet
    warning = '{"level": "warning", "message": "event not delivered", "subject": "web/traefik"}'
    assert parse_forwarder_problem(warning) == "event not delivered (subject=web/traefik)"
    assert parse_forwarder_problem('{"level": "info", "message": "event delivered"}') is None


# --- the whole demo, as `make demo` runs it ------------------------------------------------

LANDED = r"✓ step {} reached in [\d.]+ s, {} landed after [\d.]+ s\n +"
OUTCOMES = [
    LANDED.format(1, r"[\d.]+") + r"created for it: [\d.]+ on node-c-\w+; firewall opens 8000/tcp",
    r"✓ step 2 reached in [\d.]+ s\n +the IP created for it was released",
    LANDED.format(3, r"192\.0\.2\.10")
    + r"192\.0\.2\.10 on node-a-\w+, externalIPs \[10\.17\.0\.5\],"
    r" firewall opens 80/tcp 443/tcp 443/udp",
    LANDED.format(4, r"192\.0\.2\.10")
    + r"192\.0\.2\.10 followed to node-b-\w+, externalIPs \[10\.17\.0\.6\]",
    LANDED.format(5, r"192\.0\.2\.10")
    + r"192\.0\.2\.10 moved to node-c-\w+, externalIPs \[10\.17\.0\.7\]",
    LANDED.format(6, r"192\.0\.2\.11")
    + r"192\.0\.2\.11 on node-a-\w+, a different droplet from 192\.0\.2\.10's \(node-c-\w+\)",
    r"✓ step 7 reached in [\d.]+ s\n +firewall closed 80/tcp 443/tcp 443/udp;"
    r" 22/tcp stays open for gitea-ssh; 192\.0\.2\.10 stays on node-c-\w+, unclaimed",
    LANDED.format(8, r"192\.0\.2\.11")
    + r"192\.0\.2\.11 moved to node-b-\w+ \(its Lease stale, node Unreachable\),"
    r" externalIPs \[10\.17\.0\.6\]",
]


GAP = r"gap [\d.]+ s \(\+[\d.]+ s → \+[\d.]+ s\), "
ANSWERED = r"client: {} on {}-\w+ answered before, {} on {}-\w+ after\n"
MOVES = [
    # Step 4: the pod moved; its replacement on b answers once the IP is there.
    ANSWERED.format("traefik-1", "node-a", "traefik-2", "node-b")
    + rf" +TCP  {GAP}.*\n +UDP  {GAP}",
    # Step 5: b NotReady, its pod still serving until the IP reaches c.
    ANSWERED.format("traefik-2", "node-b", "traefik-3", "node-c")
    + rf" +TCP  {GAP}.*\n +UDP  {GAP}",
    # Step 8: a lost power; nothing answers until the IP reaches b, and requests are lost.
    # The open connection does not survive: it times out while nothing answers, or, if its
    # retransmission reaches b first, b refuses it (it has no state for it).
    ANSWERED.format("gitea-2", "node-a", "gitea-3", "node-b")
    + rf" +TCP  {GAP}[1-9]\d* requests lost: (\d+ refused, )?[1-9]\d* timeout\n"
    + r" +an open TCP connection: (timeout|refused|reset)\n",
]
"""What the client saw at each move, where the machine can run the data path."""


def demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "demo", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float) -> str:
    """The demo's whole output; past ``timeout`` it is interrupted (it then stops what it
    started) and the test fails."""
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
        pytest.fail(f"the demo took longer than {timeout:.0f} s:\n{out}")
    return out


def workdir_of(out: str) -> Path:
    found = re.search(r"working files: ([^\s\x1b]+)", out)
    assert found, out
    return Path(found.group(1))


def processes_using(workdir: Path) -> list[str]:
    """Processes whose command line or environment names the demo's working files."""
    needle = str(workdir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if needle in seen:
            found.append(f"{entry.name}: {(entry / 'cmdline').read_bytes()[:200]!r}")
    return found


@pytest.fixture
def kept() -> Iterator[list[Path]]:
    """Working directories a demo kept (after a failure or an interruption): removed here."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("cluster_access", ["callback", "relay"])
def test_the_demo_tells_the_whole_story_and_stops_everything(
    kept: list[Path], cluster_access: str
) -> None:
    process = demo(
        "--action-latency", "0.3", "--step-timeout", "20", "--cluster-access", cluster_access
    )
    out = finish(process, timeout=150)
    workdir = workdir_of(out)
    kept.append(workdir)

    assert process.returncode == 0, out
    assert "all 8 steps reached their expected state" in out, out
    for outcome in OUTCOMES:
        assert re.search(outcome, out), f"missing: {outcome}\n{out}"
    # The changes reached the function through the forwarder, and were narrated as they came.
    assert re.search(r"192\.0\.2\.10 +assign to node-b-\w+: action in progress", out), out
    assert re.search(r"192\.0\.2\.10 +now on node-c-\w+ \(droplet \d+\)", out), out
    assert re.search(r"function +service\.changed → 200 · \d+ changes", out), out
    # Where the machine can, a client's requests were answered across each move by the pod
    # on the IP's new holder; where it cannot, the demo said why and told the story as well.
    reason = namespaces.unavailable()
    if reason is None:
        for move in MOVES:
            assert re.search(move, out), f"missing: {move}\n{out}"
    else:
        assert f"data path not shown: {reason}" in out, out
    # The power loss is found by the Lease alone, with the setting the demo says it uses.
    assert "NODE_LEASE_STALE_AFTER, set to 4s here" in out, out
    assert re.search(r"node node-a-\w+ loses power: its kubelet stops renewing Lease", out), out
    assert "\x1b[" not in out  # not a terminal: no colour
    assert not workdir.exists()  # removed after a successful run
    assert processes_using(workdir) == []


@pytest.mark.slow
def test_an_interrupted_demo_stops_everything_it_started(kept: list[Path]) -> None:
    process = demo("--no-contract-check", "--color", "always")
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "── 1." in line:
            break
    process.send_signal(signal.SIGINT)
    out = "".join(lines) + finish(process, timeout=60)
    workdir = workdir_of(out)
    kept.append(workdir)

    assert process.returncode == 130, out
    assert "interrupted: everything stopped" in out
    assert "\x1b[" in out  # colour, as asked
    assert processes_using(workdir) == []
    assert (workdir / "function.log").exists()  # logs are kept for a look after a failure

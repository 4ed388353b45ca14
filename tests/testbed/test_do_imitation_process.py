"""The imitation run as ``python -m testbed.do_imitation``, as demos and benchmarks use it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pydo
import pytest
import requests

from testbed.do_imitation.remote import RemoteImitation

pytestmark = pytest.mark.bed  # starts processes of the bed (or the deployer)

from testbed.layout import REPO  # noqa: E402


def wait_for_file(path: Path, process: subprocess.Popen[str], seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the imitation exited early with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {seconds} s")
        time.sleep(0.05)
    return json.loads(path.read_text())


@pytest.mark.slow
def test_the_imitation_serves_from_a_process_of_its_own(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "clusters": [{"name": "demo", "nodes": [{"id": 101}, {"id": 102}]}],
                "reserved_ips": [{"ip": "192.0.2.5", "droplet_id": 101}],
            }
        )
    )
    state = tmp_path / "state"
    command = [sys.executable, "-m", "testbed.do_imitation", "--state-dir", str(state)]
    process = subprocess.Popen(
        [*command, "--seed", str(seed)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        facts = wait_for_file(state / "imitation.json", process)
        do = pydo.Client(
            facts["token"], endpoint=facts["url"], connection_verify=facts["ca_file"], retry_total=0
        )
        assert do.reserved_ips.get("192.0.2.5")["reserved_ip"]["droplet"]["id"] == 101
        remote = RemoteImitation.from_state_dir(state)
        remote.fail_next("GET", "/v2/droplets/{id}", 500)
        with pytest.raises(Exception, match="500"):
            do.droplets.get(102)
        remote.change_settings(action_latency=None)
        do.reserved_ips_actions.post("192.0.2.5", {"type": "assign", "droplet_id": 102})
        assert remote.state()["pending_actions"]
        assert remote.complete_pending_actions() == 1
        assert [(r.method, r.status, r.fault) for r in remote.requests()][-2:] == [
            ("GET", 500, True),
            ("POST", 201, False),
        ]
        requests.get(
            facts["url"] + "/v2/droplets",
            params={"per_page": 999},
            headers={"Authorization": f"Bearer {facts['token']}"},
            verify=facts["ca_file"],
            timeout=10,
        )
        violations = remote.contract_violations(forget=True)
        assert [(v.side, v.path) for v in violations] == [("request", "/v2/droplets?per_page=999")]
        assert remote.contract_violations() == []
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr
    assert json.loads(stdout.splitlines()[0]) == facts
    assert "CONTRACT: GET /v2/droplets?per_page=999: the CLIENT" in stderr

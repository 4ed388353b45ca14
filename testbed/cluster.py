"""``make cluster-up`` / ``make cluster-down``: the bed's control plane for a person to explore.

``up`` starts etcd and kube-apiserver in the background and prints, as its last line, the path
of an admin kubeconfig. ``down`` stops them and removes their state.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from testbed import processes
from testbed.controlplane import REPO, ControlPlane, binaries

STATE = REPO / ".cluster"
PIDS = STATE / "pids.json"


def up() -> int:
    if PIDS.exists():
        print(f"already running; kubeconfig:\n{STATE / 'admin.kubeconfig'}")
        return 0
    plane = ControlPlane(STATE, binaries()).start()
    PIDS.write_text(json.dumps(plane.pids))
    print(f"kube-apiserver {plane.url} is ready (stop it with: make cluster-down)")
    print(plane.kubeconfig_path)
    return 0


def down() -> int:
    if PIDS.exists():
        for pid in json.loads(PIDS.read_text()):
            processes.stop_pid(int(pid))
    shutil.rmtree(STATE, ignore_errors=True)
    print("stopped")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    return up() if parser.parse_args(argv).command == "up" else down()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

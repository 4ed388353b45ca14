"""A private network namespace in which the bed's pod addresses (10.244.x.y) are real.

The apiserver refuses loopback endpoint addresses, so the bed gives pods 10.244.x.y. Inside a
namespace made by ``unshare -rn`` that whole range sits on ``lo``: listeners bind there, the
forwarder's probes reach them, and nothing ever leaves the machine. Everything a node-death
test needs (control plane, DigitalOcean imitation, function, forwarder, "pods") runs inside.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess

POD_RANGE = "10.244.0.0/16"
PROBE_ADDRESS = "10.244.255.254"
"""An address of the range, to tell whether this process is inside such a namespace."""

_SETUP = f'ip addr add {POD_RANGE} dev lo && ip link set lo up && exec "$@"'


def wrap(argv: list[str]) -> list[str]:
    """``argv`` run inside a new private network namespace with the pod range on ``lo``."""
    return ["unshare", "-rn", "sh", "-c", _SETUP, "sh", *argv]


def unavailable() -> str | None:
    """Why no such namespace can be made here, or ``None`` when one can."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install util-linux iproute2)"
    done = subprocess.run(wrap(["true"]), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"unshare -rn failed: {done.stderr.strip()}"
    return None


def inside() -> bool:
    """True when the pod range is local here (inside a namespace made by ``wrap``)."""
    with contextlib.closing(socket.socket()) as sock:
        try:
            sock.bind((PROBE_ADDRESS, 0))
        except OSError:
            return False
    return True

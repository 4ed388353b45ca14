"""Run the imitation in a process of its own (demos, benchmarks, other languages' tests).

    python -m testbed.do_imitation --state-dir DIR [--port N] [--seed seed.json]

Writes DIR/ca.pem (the CA to trust) and DIR/imitation.json, prints that same JSON on one
line ({"url", "ca_file", "token", "control_url"}), reports contract violations on stderr as
they happen, and serves until interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from testbed.do_imitation.contract import ContractViolation
from testbed.do_imitation.seed import apply_seed
from testbed.do_imitation.server import DoImitation


def _report(violation: ContractViolation) -> None:
    print(f"CONTRACT: {violation.describe()}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.do_imitation")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", help="the accepted token (default: a random one)")
    parser.add_argument("--seed", type=Path, help="a JSON seed document (see seed.py)")
    parser.add_argument("--no-contract", action="store_true", help="skip the spec checks")
    args = parser.parse_args(argv)

    args.state_dir.mkdir(parents=True, exist_ok=True)
    imitation = DoImitation(
        args.state_dir,
        host=args.host,
        port=args.port,
        token=args.token,
        check_contract=not args.no_contract,
        on_violation=_report,
    )
    if args.seed is not None:
        made = apply_seed(imitation, json.loads(args.seed.read_text()))
        print(f"seeded: {json.dumps(made)}", file=sys.stderr, flush=True)
    stop = threading.Event()

    def on_signal(_number: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with imitation:
        facts = {
            "url": imitation.url,
            "ca_file": str(imitation.ca_file),
            "token": imitation.token,
            "control_url": imitation.control_url,
        }
        written = args.state_dir / "imitation.json.tmp"
        written.write_text(json.dumps(facts, indent=2) + "\n")
        written.replace(args.state_dir / "imitation.json")  # readers never see half a file
        print(json.dumps(facts), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

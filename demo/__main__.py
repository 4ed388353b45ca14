"""``python -m demo``: start everything, play the story, stop everything, say how it went.

Exit status: 0 every step reached its expected state; 1 a step missed it (or the DigitalOcean
API contract was broken); 2 something did not start or failed; 130 interrupted (Ctrl-C or
SIGTERM). Whatever the end, everything the demo started is stopped.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from demo import render
from demo.model import StepResult
from demo.narrator import Narrator
from demo.observe import Observer
from demo.options import Options, parse
from demo.runner import play
from demo.scenario import story
from demo.system import System, running
from demo.watch import Watch
from testbed.do_imitation.contract import summarise

REACHED, MISSED, BROKEN, INTERRUPTED = 0, 1, 2, 130
TITLE = "doks-floating-ip: the whole system on this machine, narrated"


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    say = Narrator(render.Style(options.color))
    workdir = Path(tempfile.mkdtemp(prefix="floating-ip-demo-"))
    say.print(say.style.paint(TITLE, "bold"))
    say.print(say.style.paint(f"working files: {workdir}", "dim"))
    say.print()
    _interrupt_on_signals()
    try:
        with running(options, workdir, say) as system:
            try:
                code = _tell(system, options, say)
            finally:
                _shield()
                say.print()
                say.say("demo", "stopping everything")
        say.say("demo", "everything stopped")
    except KeyboardInterrupt:
        say.say("demo", "interrupted: everything stopped", "yellow")
        code = INTERRUPTED
    except Exception as error:  # any failure: one clear message, after a clean stop
        say.say("demo", f"failed: {error}", "red")
        code = BROKEN
    if options.keep or code != REACHED:
        say.print(say.style.paint(f"logs and working files kept in {workdir}", "dim"))
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return code


def _tell(system: System, options: Options, say: Narrator) -> int:
    observer = Observer(system.do, system.kube, system.namespace, system.ips, system.firewall_name)
    watch = Watch(
        observer,
        say,
        system.by_id(),
        system.function_log,
        system.forwarder_log,
        verbose=options.verbose,
    )
    watch.skip_logs()
    say.print()
    say.lines(render.holder_table(say.style, watch.last, watch.droplets))
    steps = story(system, say)
    results = play(steps, watch, say, options.deadline, system.data_path)
    return _conclude(system, len(steps), results, say)


def _conclude(system: System, steps: int, results: list[StepResult], say: Narrator) -> int:
    style = say.style
    say.print(render.heading(style, "Summary"))
    say.lines(render.summary(style, results))
    violations = system.do.contract_violations()
    if violations:
        say.print(style.paint("  the DigitalOcean API contract was broken:", "red", "bold"))
        say.print(summarise(violations))
        return MISSED
    if len(results) == steps and all(r.reached for r in results):
        say.print(style.paint(f"  all {steps} steps reached their expected state", "green", "bold"))
        return REACHED
    say.print(
        style.paint("  a step missed its expected state: the story stops there", "red", "bold")
    )
    return MISSED


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM end the demo alike: it stops everything it started."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        _shield()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _shield() -> None:
    """From here on the demo is stopping: a further signal must not cut that short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())

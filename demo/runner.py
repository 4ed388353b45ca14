"""Playing the story: each step's change, then watching until its expected state is reached
or its deadline passes; the holder table after each step and a summary at the end. Across a
step with a probe, where the demo has a data path, a client sends requests to the reserved IP:
the step is reached only once another pod answers it, and the narration says what it saw."""

from __future__ import annotations

import time
from dataclasses import replace

from demo import render
from demo.data_path import ANSWER_TIMEOUT, DataPath, Probe
from demo.model import StepResult
from demo.narrator import Narrator
from demo.scenario import Step
from demo.watch import Watch
from testbed.dataplane.traffic import INTERVAL

LOOK_INTERVAL = 0.1
ANSWER_GRACE = 1.5
"""After the state is reached: how long to wait for the function's answer that reached it,
so that its line belongs to this step."""


def play(
    steps: list[Step],
    watch: Watch,
    say: Narrator,
    deadline: float,
    data_path: DataPath | None = None,
) -> list[StepResult]:
    """Run the steps in order; stop at the first that misses its expected state."""
    results: list[StepResult] = []
    for number, step in enumerate(steps, 1):
        say.print(render.heading(say.style, f"{number}. {step.title}"))
        step.prepare()
        watch.look()
        probe = step.probe
        answering = _client_before(data_path, probe, say) if data_path and probe else ""
        step.act()
        result = _await(number, step, watch, say, deadline)
        if data_path and probe and result.reached:
            result = _client_after(data_path, probe, answering, result, say)
        say.print()
        say.lines(render.holder_table(say.style, watch.last, watch.droplets))
        results.append(result)
        if not result.reached:
            break
    return results


def _await(number: int, step: Step, watch: Watch, say: Narrator, deadline: float) -> StepResult:
    changed = time.monotonic()
    answers_before = watch.changing_calls
    while True:
        snapshot = watch.look()
        missing = step.expect(snapshot)
        took = time.monotonic() - changed
        if not missing:
            landings = {ip: at - changed for ip, at in watch.landed_at.items() if at >= changed}
            landed = max(landings.values(), default=None)
            _await_answer(watch, answers_before)
            when = "".join(f", {ip} landed after {t:.1f} s" for ip, t in landings.items())
            say.print(render.verdict(say.style, number, True, f"reached in {took:.1f} s{when}"))
            say.print(f"      {step.outcome(snapshot)}")
            return StepResult(number, step.summary(snapshot), True, took, landed)
        if took > deadline:
            say.print(
                render.verdict(
                    say.style, number, False, f"missed its expected state within {deadline:g} s:"
                )
            )
            for item in missing:
                say.print(f"      - {item}")
            return StepResult(number, step.summary(snapshot), False, None)
        time.sleep(LOOK_INTERVAL)


def _client_before(data_path: DataPath, probe: Probe, say: Narrator) -> str:
    """Start the client; the pod answering it before the move."""
    pod = data_path.before(probe)
    say.say(
        "client",
        f"sends to {probe} every {INTERVAL * 1000:g} ms through the edge:"
        f" {pod} on {data_path.node_of[pod]} answers",
    )
    return pod


def _client_after(
    data_path: DataPath, probe: Probe, old: str, result: StepResult, say: Narrator
) -> StepResult:
    """Wait for another pod's answers; the step is missed if none come."""
    saw = data_path.after(probe, old)
    if saw is None:
        say.print(
            render.verdict(
                say.style,
                result.number,
                False,
                f"missed: no pod but {old} answered at {probe} within {ANSWER_TIMEOUT:g} s",
            )
        )
        return replace(result, reached=False)
    say.lines(render.client_lines(say.style, saw, say.started))
    return result


def _await_answer(watch: Watch, answers_before: int) -> None:
    until = time.monotonic() + ANSWER_GRACE
    while watch.changing_calls == answers_before and time.monotonic() < until:
        time.sleep(LOOK_INTERVAL)
        watch.look()

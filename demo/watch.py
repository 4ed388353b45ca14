"""Looking again and again: each look's changes, the function's answers and the forwarder's
complaints become narration lines as they happen."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from demo.logs import LogTail, parse_call, parse_forwarder_problem
from demo.model import Droplet, Snapshot, diff
from demo.narrator import Narrator
from demo.observe import Observer


class Watch:
    def __init__(
        self,
        observer: Observer,
        narrator: Narrator,
        droplets: Mapping[int, Droplet],
        function_log: Path,
        forwarder_log: Path,
        *,
        verbose: bool,
    ) -> None:
        self.observer = observer
        self.narrator = narrator
        self.droplets = droplets
        self.verbose = verbose
        self.function_log = LogTail(function_log)
        self.forwarder_log = LogTail(forwarder_log)
        self.changing_calls = 0
        """Function answers seen so far that changed something (or failed)."""
        self.landed_at: dict[str, float] = {}
        """When (monotonic) each reserved IP was last seen arriving on a droplet."""
        self._locked_since: dict[str, float] = {}
        self.last = observer.snapshot()

    def skip_logs(self) -> None:
        """Forget what the logs said so far (the start-up is narrated apart)."""
        self.function_log.new_lines()
        self.forwarder_log.new_lines()

    def look(self) -> Snapshot:
        snapshot = self.observer.snapshot()
        now = self.narrator.now()
        for state in snapshot.ips:
            if state.locked:
                self._locked_since.setdefault(state.ip, now)
        for change in diff(
            self.last, snapshot, self.droplets, now=now, locked_since=self._locked_since
        ):
            self.narrator.change(change)
        before = {state.ip: state.droplet_id for state in self.last.ips}
        for state in snapshot.ips:
            if not state.locked:
                self._locked_since.pop(state.ip, None)
            if state.droplet_id is not None and state.droplet_id != before.get(state.ip):
                self.landed_at[state.ip] = time.monotonic()
        self.last = snapshot
        self._read_logs()
        return snapshot

    def _read_logs(self) -> None:
        for text in self.function_log.new_lines():
            call = parse_call(text)
            if call is None:
                continue
            if not call.quiet:
                self.changing_calls += 1
            if call.status != 200:
                self.narrator.say("function", call.describe(), "red")
            elif self.verbose or not call.quiet:
                self.narrator.say("function", call.describe(), "dim")
        for text in self.forwarder_log.new_lines():
            problem = parse_forwarder_problem(text)
            if problem is not None:
                self.narrator.say("forwarder", problem, "yellow")

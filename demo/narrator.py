"""Where the narration goes: stdout, one line at a time, stamped with the time since start."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import TextIO

from demo import render
from demo.model import Change
from demo.render import Style


class Narrator:
    def __init__(
        self,
        style: Style,
        out: TextIO = sys.stdout,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.style = style
        self.out = out
        self.clock = clock
        self.started = clock()
        self._gone = False

    def now(self) -> float:
        """Seconds since the demo started."""
        return self.clock() - self.started

    def say(self, who: str, text: str, *colours: str) -> None:
        self.print(render.line(self.style, self.now(), who, text, *colours))

    def change(self, change: Change) -> None:
        self.print(render.change_line(self.style, self.now(), change))

    def lines(self, lines: Iterable[str]) -> None:
        for text in lines:
            self.print(text)

    def print(self, text: str = "") -> None:
        """Write a line; when the reader has gone (a closed pipe), the first write fails,
        which ends the demo cleanly, and later ones are dropped."""
        if self._gone:
            return
        try:
            self.out.write(text + "\n")
            self.out.flush()
        except BrokenPipeError:
            self._gone = True
            raise

"""A built function zip, loaded by ``ow_loader.py`` in a fresh interpreter (a cold start),
answering activations: the test side of the runtime imitation.

The interpreter is the base Python 3.11 (not this virtualenv) started isolated (``-I``), so
the function can only import what its zip brings.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from testbed.processes import stop

LOADER = Path(__file__).resolve().parent / "ow_loader.py"
ACTION_NAME = "/fn-local-check/floating-ip/reconcile"
API_HOST = "https://faas-nyc1-local.doserverless.invalid"


def base_python() -> Path:
    """The interpreter this virtualenv was made from: what the runtime image would have."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return Path(sys.base_prefix) / "bin" / version


@dataclass
class Answer:
    result: dict[str, Any]
    seconds: float
    """How long ``main`` ran."""
    origins: dict[str, str | None]
    """Where each probed module was imported from."""
    modules: dict[str, str]
    """Every module imported so far in this process, and its file."""
    not_found: list[str]
    """Every module an import looked for and found nowhere (guarded imports included)."""


@dataclass
class LoadedFunction:
    zip_path: Path
    work_dir: Path
    env: dict[str, str]
    log: Path
    timeout_ms: int = 30_000
    handler: str = "main"
    cold_start_s: float | None = None
    """Process start until the first ``main`` returned."""
    load_timings: dict[str, float] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = None
    _answers: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    _started: float = 0.0

    def __enter__(self) -> LoadedFunction:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        read_end, write_end = os.pipe()
        argv = [str(base_python()), "-I", str(LOADER), str(self.zip_path), str(self.work_dir)]
        self._started = time.monotonic()
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [*argv, str(write_end)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_end,),
                env=self.env,
                start_new_session=True,
            )
        os.close(write_end)
        threading.Thread(target=self._read, args=(read_end,), daemon=True).start()
        try:
            self._send({"main": self.handler})
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is not None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            stop(self._process)
        # The unpacked function is ~170 MB: keep only its log.
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def invoke(self, event: dict[str, Any], timeout: float = 60.0) -> Answer:
        """One activation, as the platform sends it to an initialised container."""
        self._send(
            {
                "value": event,
                "action_name": ACTION_NAME,
                "activation_id": uuid.uuid4().hex,
                "transaction_id": uuid.uuid4().hex,
                "deadline": int(time.time() * 1000) + self.timeout_ms,
                "api_host": API_HOST,
            }
        )
        if not self.load_timings:
            loaded = self._next(timeout)
            if not loaded.get("ok"):
                raise AssertionError(f"the function did not start: {loaded}{self._tail()}")
            self.load_timings = loaded["timings"]
        answer = self._next(timeout)
        if self.cold_start_s is None:
            self.cold_start_s = time.monotonic() - self._started
        return Answer(
            answer["result"],
            answer["seconds"],
            answer["origins"],
            answer["modules"],
            answer["not_found"],
        )

    def _send(self, message: dict[str, Any]) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(json.dumps(message).encode() + b"\n")
        self._process.stdin.flush()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, encoding="utf-8") as results:
            for line in results:
                self._answers.put(json.loads(line))

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            return self._answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer within {timeout:.0f}s{self._tail()}") from None

    def _tail(self, lines: int = 40) -> str:
        text = (
            self.log.read_text(errors="replace").splitlines()[-lines:] if self.log.exists() else []
        )
        return "\n--- function log ---\n" + "\n".join(text)

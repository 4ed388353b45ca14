"""Loads a built function zip the way DigitalOcean's Python runtime (OpenWhisk's) does, in the
interpreter that runs this script, and serves activations from stdin.

    python -I ow_loader.py <zip> <work-dir> <result-fd>

Like the runtime: the zip is unpacked into the working directory, ``__main__.py`` becomes
``main__.py`` (a module cannot be imported as ``__main__``), ``virtualenv/bin/activate_this.py``
is executed, the directory joins ``sys.path`` and the handler is imported from ``main__``.

stdin carries one JSON object per line: first ``{"main": "<handler>"}``, then activations
``{"value": <event>, "action_name", "activation_id", "transaction_id", "deadline" (epoch ms),
"api_host"}``. Each answer is one JSON line on ``<result-fd>``; stdout and stderr stay the
function's own log, as on the platform. Standard library only: nothing from the developer's
environment may leak into what the function imports.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any

# What the function imports from its zip; their origins prove nothing came from elsewhere.
PROBED_MODULES = ("floating_ip", "kubernetes", "pydo", "cloudevents", "requests", "yaml")


class NotFoundTrace:
    """Last on ``sys.meta_path``: asked only for modules no real finder has, it records their
    names (an import guarded by ``try``/``except ImportError`` fails silently otherwise)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        self.names.add(fullname)


TRACE = NotFoundTrace()


class Context:
    """The second argument of ``main``, with the attributes the platform documents."""

    def __init__(self, activation: dict[str, Any]) -> None:
        self.function_name = str(activation["action_name"])
        self.activation_id = str(activation["activation_id"])
        self.request_id = str(activation["transaction_id"])
        self.deadline = int(activation["deadline"])
        self.api_host = str(activation["api_host"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline - int(time.time() * 1000))


def forget_site_packages() -> None:
    """The function may import only what its zip brings and the standard library. This
    interpreter's own site-packages (and whatever its start-up ``.pth`` files imported from
    there) is put out of reach, or the trace would credit it for what the zip lacks."""
    sys.path[:] = [p for p in sys.path if "site-packages" not in Path(p).parts]
    for name, module in list(sys.modules.items()):
        if "site-packages" in Path(getattr(module, "__file__", None) or "").parts:
            del sys.modules[name]


def load(zip_path: Path, work_dir: Path, handler: str) -> tuple[Any, dict[str, float]]:
    forget_site_packages()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(work_dir)
    os.chdir(work_dir)
    Path("__main__.py").rename("main__.py")
    timings["unzip_s"] = time.perf_counter() - started

    started = time.perf_counter()
    activate = work_dir / "virtualenv" / "bin" / "activate_this.py"
    code = compile(activate.read_text(), str(activate), "exec")
    exec(code, {"__file__": str(activate)})  # the runtime does exactly this
    timings["activate_s"] = time.perf_counter() - started

    started = time.perf_counter()
    sys.path.append(str(work_dir))
    main = getattr(__import__("main__", fromlist=[handler]), handler)
    timings["import_s"] = time.perf_counter() - started
    return main, timings


def loaded_modules() -> dict[str, str]:
    """Every module imported so far and its file: the trace of what the function needs."""
    files = {name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}
    return {n: f for n, f in sorted(files.items()) if isinstance(f, str) and f != __file__}


def origins() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PROBED_MODULES:
        module = sys.modules.get(name)
        found[name] = getattr(module, "__file__", None) if module else None
    return found


def serve(zip_path: Path, work_dir: Path, result_fd: int) -> None:
    out = os.fdopen(result_fd, "w", encoding="utf-8")

    def answer(payload: dict[str, Any]) -> None:
        out.write(json.dumps(payload) + "\n")
        out.flush()

    sys.meta_path.append(TRACE)
    init = json.loads(sys.stdin.readline())
    try:
        main, timings = load(zip_path, work_dir, init.get("main", "main"))
    except Exception as error:
        traceback.print_exc()
        answer({"ok": False, "error": f"cannot start: {error}"})
        return
    answer({"ok": True, "timings": timings, "origins": origins()})
    for line in sys.stdin:
        activation = json.loads(line)
        started = time.perf_counter()
        try:
            result = main(activation["value"], Context(activation))
        except Exception as error:
            traceback.print_exc()
            result = {"error": str(error)}
        answer(
            {
                "result": result,
                "seconds": time.perf_counter() - started,
                "origins": origins(),
                "modules": loaded_modules(),
                "not_found": sorted(TRACE.names),
            }
        )


if __name__ == "__main__":
    serve(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), int(sys.argv[3]))

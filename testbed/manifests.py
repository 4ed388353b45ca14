"""Running a shipped container's command outside a cluster, exactly as its manifest states it:
the ConfigMaps it mounts written out as files under a temporary root, its ``command`` and
``args`` as given, its environment with absolute paths moved under that root."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]


def kustomize(kubectl: str, directory: Path) -> list[Doc]:
    """``kubectl kustomize directory``, parsed; a clear error with kustomize's own words."""
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory}: {done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(docs: Sequence[Doc], kind: str, name: str) -> Doc:
    """The object named ``name``, or generated from it (``name-<hash>``)."""
    pattern = re.compile(re.escape(name) + r"(-[a-z0-9]{10})?")
    (found,) = [d for d in docs if d["kind"] == kind and pattern.fullmatch(d["metadata"]["name"])]
    return found


def config_maps(docs: Sequence[Doc]) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}


def mount_config_maps(
    pod_spec: Mapping[str, Any],
    container: Mapping[str, Any],
    maps: Mapping[str, Doc],
    root: Path,
) -> list[Path]:
    """Write each ConfigMap volume the container mounts to ``root`` + its mountPath (every key
    a file, or the volume's ``items`` where it lists them); the folders written."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    written = []
    for mount in container.get("volumeMounts", []):
        source = volumes[mount["name"]].get("configMap")
        if source is None:
            continue
        data: dict[str, str] = maps[source["name"]].get("data", {})
        paths = {i["key"]: i["path"] for i in source.get("items", [])} or {k: k for k in data}
        target = rooted(root, mount["mountPath"])
        for key, path in paths.items():
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_text(data[key])
        written.append(target)
    return written


def rooted(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def command_line(container: Mapping[str, Any]) -> list[str]:
    """The container's ``command`` + ``args``; ``python`` becomes this interpreter with ``-S``
    (no site-packages: only the standard library, as in the official image)."""
    argv = [*container["command"], *container.get("args", [])]
    if argv[0] != "python":
        raise ValueError(f"expected a python command, not {argv[0]!r}")
    return [sys.executable, "-S", *argv[1:]]


def plain_env(container: Mapping[str, Any], root: Path) -> dict[str, str]:
    """The container's literal ``env`` values, with PYTHONPATH moved under ``root``."""
    env = {v["name"]: v["value"] for v in container.get("env", []) if "value" in v}
    if "PYTHONPATH" in env:
        env["PYTHONPATH"] = ":".join(str(rooted(root, p)) for p in env["PYTHONPATH"].split(":"))
    return env

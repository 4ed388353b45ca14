"""The in-cluster code ships as it is in the repository: the kustomize Component lists every
module of in-cluster/, one ConfigMap per folder, and each pod mounts every folder of the
packages it imports (the Helm chart reads the same folder through files/code)."""

from __future__ import annotations

import sys
from typing import Any

import yaml

from testbed.layout import IN_CLUSTER, REPO
from testbed.python_imports import absolute_imports

CHART_CODE = REPO / "charts" / "doks-floating-ip" / "files" / "code"


def code_folders() -> list[str]:
    """Every folder of in-cluster/ that holds a module, relative to it."""
    folders = {p.parent.relative_to(IN_CLUSTER).as_posix() for p in IN_CLUSTER.rglob("*.py")}
    return sorted(f for f in folders if "__pycache__" not in f)


def code_config_map(folder: str) -> str:
    return folder.replace("/", "-").replace("_", "-") + "-code"


def test_the_component_lists_every_module_once_per_folder() -> None:
    component = yaml.safe_load((IN_CLUSTER / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    listed = {g["name"]: sorted(g["files"]) for g in component["configMapGenerator"]}
    expected = {
        code_config_map(folder): sorted(
            p.relative_to(IN_CLUSTER).as_posix() for p in (IN_CLUSTER / folder).glob("*.py")
        )
        for folder in code_folders()
    }
    assert listed == expected


def test_the_chart_ships_the_same_folder() -> None:
    assert CHART_CODE.is_symlink()
    assert CHART_CODE.resolve() == IN_CLUSTER


def _pods() -> dict[str, dict[str, Any]]:
    """The base's workloads by the package their container runs."""
    pods: dict[str, dict[str, Any]] = {}
    for name in ("event-forwarder.yaml", "node-annotator.yaml"):
        for doc in yaml.safe_load_all((REPO / "deploy" / "base" / name).read_text()):
            if doc and doc["kind"] in ("Deployment", "DaemonSet"):
                spec = doc["spec"]["template"]["spec"]
                for container in spec.get("initContainers", []) + spec["containers"]:
                    if container.get("command", [""])[0] == "python":
                        pods[container["command"][2].split(".")[0]] = {
                            "container": container,
                            "volumes": spec["volumes"],
                        }
    return pods


def _imported_packages(package: str) -> set[str]:
    """The project's top-level packages that ``package``'s modules import, itself included."""
    found = {package}
    todo = [package]
    while todo:
        for path in (IN_CLUSTER / todo.pop()).rglob("*.py"):
            for name in absolute_imports(path):
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in found:
                    assert (IN_CLUSTER / top).is_dir(), f"{path} imports {name}"
                    found.add(top)
                    todo.append(top)
    return found


def test_each_pod_mounts_every_folder_it_imports_and_nothing_else() -> None:
    pods = _pods()
    assert set(pods) == {"floating_ip_forwarder", "floating_ip_annotator"}
    for package, pod in pods.items():
        needed = {f for f in code_folders() if f.split("/")[0] in _imported_packages(package)}
        volumes = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
        mounted = {
            m["mountPath"].removeprefix("/app/"): volumes[m["name"]]
            for m in pod["container"]["volumeMounts"]
            if m["name"] in volumes
        }
        assert mounted == {f: code_config_map(f) for f in needed}, package
        # A ConfigMap volume is read-only: a folder with its own modules cannot have another
        # mounted inside it, so a package that has subpackages has no modules of its own.
        for outer in needed:
            assert not any(inner.startswith(outer + "/") for inner in needed), outer

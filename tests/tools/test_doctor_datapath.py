"""The doctor's datapath check on canned kubectl answers: which proxy serves the anchor."""

from __future__ import annotations

import json
import subprocess

from tools import doctor


class CannedKubectl(doctor.Kubectl):
    """kubectl answering the DaemonSets of kube-system and Cilium's ConfigMap."""

    def __init__(self, daemonsets: list[str], cilium_config: dict[str, str] | None) -> None:
        super().__init__("kubectl")
        self.daemonsets, self.cilium_config = daemonsets, cilium_config

    def run(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        if args[1] == "daemonsets":
            items = [{"metadata": {"name": name}} for name in self.daemonsets]
            return subprocess.CompletedProcess(args, 0, json.dumps({"items": items}), "")
        if self.cilium_config is None:
            return subprocess.CompletedProcess(args, 1, "", "NotFound")
        return subprocess.CompletedProcess(args, 0, json.dumps({"data": self.cilium_config}), "")


def check(kube: doctor.Kubectl) -> doctor.Result:
    [result] = doctor.check_datapath(kube, doctor.Setup("floating-ip"))
    return result


def test_kube_proxy_is_the_proven_datapath() -> None:
    result = check(CannedKubectl(["kube-proxy", "cilium", "csi-do-node"], None))
    assert result.ok and result.detail.startswith("kube-proxy")


def test_cilium_replacing_kube_proxy_passes_naming_what_to_check_by_hand() -> None:
    result = check(CannedKubectl(["cilium", "csi-do-node"], {"kube-proxy-replacement": "true"}))
    assert result.ok
    assert "kube-proxy-replacement true: not proven" in result.detail
    assert "cilium-dbg service list" in result.detail


def test_no_known_proxy_fails() -> None:
    result = check(CannedKubectl(["csi-do-node"], None))
    assert not result.ok and "neither kube-proxy nor Cilium" in result.detail

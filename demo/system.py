"""Everything the demo runs, started in order and stopped in reverse order, whatever happens.

In-process: the DigitalOcean API and metadata imitations. Processes: etcd, kube-apiserver,
the function (functions-framework), the forwarder; the annotator runs once per pod (see
``cluster.py``). Where asked and where the machine can (``data_path.py``): a kube-proxy per
node, in the node's network namespace.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from kubernetes import client as k8s

from demo import manifests
from demo.cluster import Controllers, InitContainer
from demo.data_path import MODE, DataPath, kube_proxy_or_why
from demo.errors import DemoError
from demo.logs import LogTail, parse_call
from demo.manifests import Account, ForwarderDeploy
from demo.model import Droplet
from demo.narrator import Narrator
from demo.options import Options
from floating_ip_common import contract
from testbed import processes
from testbed.controlplane import ControlPlane, binaries
from testbed.dataplane.network import CLIENT_ADDRESS
from testbed.do_imitation.contract import default_spec_path, load_spec
from testbed.do_imitation.server import DoImitation
from testbed.doks import WEB_SECRET, DoksWorld
from testbed.kube import KubeBed
from testbed.layout import FUNCTION_PYTHONPATH, IN_CLUSTER
from testbed.metadata import MetadataService
from testbed.pods import NODE_LEASE_NAMESPACE, KubeletLease
from testbed.tls import TestCA

REPO = Path(__file__).resolve().parents[1]
NODES = ("node-a", "node-b", "node-c")
RESERVED_IPS = ("192.0.2.10", "192.0.2.11")
"""The account's own reserved IPs; a third is created for the Service asking for ``auto``
(the account may hold three)."""
NAMESPACE = "web"
FORWARDER_POD = "event-forwarder-demo"
START_TIMEOUT = 60.0
TOKEN_SECONDS = 3600
# The forwarder and the annotator ship in images with the standard library only: run them
# without site-packages, so that a stray import would fail here as it would there.
IMAGE_PYTHON = (sys.executable, "-S")
IMAGE_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}

FUNCTION_THREADS = 8
KEEP_ALIVE = 3600

T = TypeVar("T")


@dataclass(frozen=True)
class System:
    control_plane: ControlPlane
    kube: KubeBed
    do: DoImitation
    cluster_id: str
    region: str
    droplets: tuple[Droplet, ...]
    """node-a, node-b, node-c."""
    ips: tuple[str, ...]
    namespace: str
    controllers: Controllers
    kubelets: Mapping[str, KubeletLease]
    """By node name: each renews its node's Lease until stopped (the node loses power)."""
    function_log: Path
    forwarder_log: Path
    forwarder: subprocess.Popen[bytes]
    """The forwarder's one replica (stopped with the system; a bench may stop it sooner)."""
    forwarder_env: Mapping[str, str]
    """Its environment: another replica of it is this with its own POD_NAME and port."""
    data_path: DataPath | None = None
    """Packets to the reserved IPs, where asked and where this machine can make them."""

    @property
    def firewall_name(self) -> str:
        return contract.FIREWALL_NAME_PREFIX + self.cluster_id

    def by_id(self) -> dict[int, Droplet]:
        return {d.droplet_id: d for d in self.droplets}

    def power_off(self, droplet: Droplet) -> None:
        """The droplet loses power: its kubelet stops renewing its Lease and, where the demo
        has a data path, no packet reaches the node any more."""
        self.kubelets[droplet.node].stop()
        if self.data_path is not None:
            self.data_path.power_off(droplet)


@dataclass(frozen=True)
class _Cloud:
    """The DigitalOcean side: the API imitation, the cluster's droplets, the CA it trusts."""

    ca: TestCA
    do: DoImitation
    world: DoksWorld
    droplets: tuple[Droplet, ...]
    metadata: MetadataService


@dataclass(frozen=True)
class _Function:
    url: str
    """Its HTTPS address."""
    log: Path


@contextmanager
def running(options: Options, workdir: Path, say: Narrator) -> Iterator[System]:
    with ExitStack() as stack:
        yield _Startup(stack, options, workdir, say).run()


class _Startup:
    """Starts each part in turn; each registers its own stop with the stack at once."""

    def __init__(self, stack: ExitStack, options: Options, workdir: Path, say: Narrator) -> None:
        self.stack = stack
        self.options = options
        self.workdir = workdir
        self.say = say
        self.tokens = workdir / "tokens"
        self.tokens.mkdir()

    def run(self) -> System:
        spec = default_spec_path()
        check = self.options.check_contract and spec.is_file()
        # Parsing the 3 MB spec takes seconds of CPU, starting the control plane seconds of
        # waiting: do both at once (the imitation then finds the spec in the cache).
        loading = threading.Thread(target=load_spec, args=(spec,), daemon=True)
        if check:
            loading.start()
        plane = _timed(self.say, "control plane ready: etcd and kube-apiserver", self._plane)
        if check:
            loading.join()
        kube = KubeBed(plane.admin_client())
        self.stack.callback(kube.api.close)
        cloud = self._cloud(plane, kube, check)
        kubelets = self._kubelets(kube, cloud.droplets)
        data_path = self._data_path(cloud) if self.options.data_path else None

        deploy = manifests.apply_forwarder_base(plane)
        if self.options.cluster_access == "relay":
            manifests.kubectl(plane, "apply", "-f", str(manifests.RELAY_RBAC))
        kube.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
        annotator = manifests.apply_annotator_rbac(plane, NAMESPACE)
        self.say.say(
            "setup",
            f"applied the forwarder's kustomize base (namespace {deploy.account.namespace}) and"
            f" the annotator's RBAC (namespace {NAMESPACE})",
        )
        function = self._function(cloud, kube, deploy)
        forwarder_log, forwarder, forwarder_env = self._forwarder(
            cloud, plane, kube, deploy, function
        )

        token = self.tokens / "annotator"
        token.write_text(_mint(kube, annotator))
        init = InitContainer(plane, cloud.metadata, token, IMAGE_PYTHON, IMAGE_ENV)
        return System(
            control_plane=plane,
            kube=kube,
            do=cloud.do,
            cluster_id=cloud.world.cluster_id,
            region=cloud.world.region,
            droplets=cloud.droplets,
            ips=RESERVED_IPS,
            namespace=NAMESPACE,
            controllers=Controllers(kube, init, data_path),
            kubelets=kubelets,
            function_log=function.log,
            forwarder_log=forwarder_log,
            forwarder=forwarder,
            forwarder_env=forwarder_env,
            data_path=data_path,
        )

    def _plane(self) -> ControlPlane:
        plane = ControlPlane(self.workdir / "control-plane", binaries()).start()
        self.stack.callback(plane.stop)
        return plane

    def _cloud(self, plane: ControlPlane, kube: KubeBed, check: bool) -> _Cloud:
        """The DOKS cluster in the DigitalOcean imitation, its Nodes (without anchors: the
        pods get theirs from the annotator), two reserved IPs, each droplet's metadata."""
        ca = TestCA(self.workdir / "pki")
        do = DoImitation(self.workdir / "digitalocean", ca=ca, check_contract=check).start()
        self.stack.callback(do.stop)
        do.set_action_latency(self.options.action_latency)
        world = DoksWorld(plane, kube, do)
        found = [world.add_node(name, anchor_on_node=False) for name in NODES]
        droplets = tuple(Droplet(d.node, d.droplet_id, d.anchor_ip) for d in found)
        for ip in RESERVED_IPS:
            do.add_reserved_ip(ip, region=world.region)
        self.say.say(
            "setup",
            f"DigitalOcean imitation: DOKS cluster {world.cluster_id[:8]}… in {world.region},"
            f" droplets {', '.join(str(d.droplet_id) for d in droplets)}",
        )
        self.say.say(
            "setup",
            f"reserved IPs {', '.join(RESERVED_IPS)}; an assignment takes"
            f" {self.options.action_latency:g} s; "
            + ("every API call checked against the OpenAPI spec" if check else "calls unchecked"),
        )
        metadata = MetadataService().start()
        self.stack.callback(metadata.stop)
        for droplet in droplets:
            metadata.add_droplet(
                droplet.droplet_id, anchor_ipv4=droplet.anchor, hostname=droplet.node
            )
        self.say.say(
            "setup",
            "metadata imitation: each droplet's anchor IP, "
            + ", ".join(f"{d.node} {d.anchor}" for d in droplets)
            + " (the Nodes carry none)",
        )
        return _Cloud(ca, do, world, droplets, metadata)

    def _kubelets(self, kube: KubeBed, droplets: tuple[Droplet, ...]) -> dict[str, KubeletLease]:
        """Each node's kubelet renewing its Lease in kube-node-lease, as on a live node."""
        # The apiserver creates the namespace itself, shortly after it starts.
        processes.wait_until(
            lambda: (
                NODE_LEASE_NAMESPACE
                in {n.metadata.name for n in kube.core.list_namespace().items if n.metadata}
            ),
            timeout=START_TIMEOUT,
            what=f"namespace {NODE_LEASE_NAMESPACE}",
            interval=0.2,
        )
        period = self.options.kubelet_renewal
        kubelets = {}
        for droplet in droplets:
            kubelet = KubeletLease(kube.api, droplet.node, period).start()
            self.stack.callback(kubelet.stop)
            kubelets[droplet.node] = kubelet
        self.say.say(
            "setup",
            f"kubelets: each node renews its Lease in {NODE_LEASE_NAMESPACE} every {period:g} s",
        )
        return kubelets

    def _data_path(self, cloud: _Cloud) -> DataPath | None:
        """The nodes as network namespaces with kube-proxy, the provider's edge delivering
        the reserved IPs, a client beyond it; or one line saying why not, and none."""
        binary = kube_proxy_or_why()
        if isinstance(binary, str):
            self.say.say("setup", f"data path not shown: {binary}; no packets are sent", "yellow")
            return None
        workdir = self.workdir / "data-path"
        workdir.mkdir()
        data_path = _timed(
            self.say,
            f"data path ready: a kube-proxy ({MODE}) in each node's network namespace, an edge"
            f" delivering each reserved IP to its holder's anchor, a client at {CLIENT_ADDRESS}",
            lambda: DataPath(cloud.world, RESERVED_IPS, workdir, binary),
        )
        self.stack.callback(data_path.close)
        return data_path

    def _function(self, cloud: _Cloud, kube: KubeBed, deploy: ForwarderDeploy) -> _Function:
        """The function: functions-framework's app for the ``reconcile`` target, served by
        gunicorn as the functions-framework command serves it, but over HTTPS (the
        forwarder sends its secret only over HTTPS, as to DigitalOcean Functions), with no
        cluster credential: the forwarder mints a token of the shipped function identity and
        sends it with each event."""
        if deploy.function_account is None:
            raise DemoError("the forwarder's kustomize base ships no identity for the function")
        env = cloud.world.function_env()
        if self.options.cluster_access == "relay":
            # No way to the apiserver at all: the state comes with each event.
            env = {k: v for k, v in env.items() if not k.startswith("KUBE_")}
            env["CLUSTER_ACCESS"] = "relay"
        port = processes.free_port()
        certificate = cloud.ca.issue("function", "127.0.0.1", "localhost")
        source = REPO / "lib" / "floating_ip" / "entry_functions_framework.py"
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            f"functions_framework:create_app(target='reconcile', source='{source}')",
            f"--bind=127.0.0.1:{port}",
            f"--certfile={certificate.cert}",
            f"--keyfile={certificate.key}",
            "--workers=1",
            f"--threads={FUNCTION_THREADS}",
            "--timeout=0",
            # Longer than the demo: an idle connection of the forwarder is never closed under it.
            f"--keep-alive={KEEP_ALIVE}",
            "--graceful-timeout=5",
            "--log-level=error",
        ]
        log = self.workdir / "function.log"
        function = _spawn(argv, log, {**env, "PYTHONPATH": FUNCTION_PYTHONPATH})
        self.stack.callback(processes.stop, function)
        url = f"https://127.0.0.1:{port}/"
        trust = ssl.create_default_context(cafile=str(cloud.ca.ca_file))
        _timed(
            self.say,
            "function ready: functions-framework, over HTTPS",
            lambda: processes.wait_until(
                lambda: _answers(url, trust),
                timeout=START_TIMEOUT,
                what="the function",
                interval=0.1,
                process=function,
                log=log,
            ),
        )
        return _Function(url, log)

    def _forwarder(
        self,
        cloud: _Cloud,
        plane: ControlPlane,
        kube: KubeBed,
        deploy: ForwarderDeploy,
        function: _Function,
    ) -> tuple[Path, subprocess.Popen[bytes], dict[str, str]]:
        """The forwarder with its Deployment's settings and ServiceAccount; ready once its
        first resync has reached the function. Returns its log, process and environment."""
        token = self.tokens / "event-forwarder"
        token.write_text(_mint(kube, deploy.account))
        env = {
            **deploy.settings,
            **IMAGE_ENV,
            "FUNCTION_URL": function.url,
            "FUNCTION_CA_FILE": str(cloud.ca.ca_file),
            "WEB_SECRET": WEB_SECRET,
            "CLUSTER_ID": cloud.world.cluster_id,
            "KUBE_API_URL": plane.url,
            "KUBE_TOKEN_FILE": str(token),
            "KUBE_CA_FILE": str(plane.ca.ca_file),
            "POD_NAMESPACE": deploy.account.namespace,
            "POD_NAME": FORWARDER_POD,
            "METRICS_PORT": str(processes.free_port()),
            # The bed's pod IPs are not on this machine's network: send nothing to them.
            "NODE_PROBES": "off",
            "PYTHONPATH": str(IN_CLUSTER),
            "CLUSTER_ACCESS": self.options.cluster_access,
            **dict(self.options.forwarder_env),
        }
        answers = LogTail(function.log)
        log = self.workdir / "forwarder.log"
        forwarder = _spawn([*IMAGE_PYTHON, "-m", "floating_ip_forwarder.app"], log, env)
        self.stack.callback(processes.stop, forwarder)

        def resynced() -> bool:
            calls = [parse_call(line) for line in answers.new_lines()]
            return any(c and c.trigger == contract.EVENT_RESYNC and c.status == 200 for c in calls)

        account = f"{deploy.account.namespace}/{deploy.account.name}"
        _timed(
            self.say,
            f"forwarder ready, as {account}: its first resync reached the function",
            lambda: processes.wait_until(
                resynced,
                timeout=START_TIMEOUT,
                what="the forwarder's first resync",
                interval=0.1,
                process=forwarder,
                log=log,
            ),
        )
        return log, forwarder, env


def _timed(say: Narrator, what: str, start: Callable[[], T]) -> T:
    began = time.monotonic()
    result = start()
    say.say("setup", f"{what} ({time.monotonic() - began:.1f} s)")
    return result


def _mint(kube: KubeBed, account: Account) -> str:
    return kube.mint_token(account.namespace, account.name, TOKEN_SECONDS)


def _spawn(argv: list[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """A process in its own session (a terminal's Ctrl-C reaches only the demo, which then
    stops it), with only the environment given (as a container gets), logging to ``log``."""
    environ = {"PATH": os.environ.get("PATH", ""), **env}
    try:
        return processes.start(argv, log, env=environ, cwd=REPO)
    except OSError as error:
        raise DemoError(f"cannot start {argv[0]}: {error}") from error


def _answers(url: str, context: ssl.SSLContext) -> bool:
    """Whether an HTTPS server answers at ``url`` at all (any status)."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True

"""A real node joined to the test control plane: containerd and runc (Debian's packages),
the CNI bridge, host-local and loopback plugins (Debian's containernetworking-plugins), and
a kubelet built from the same Kubernetes module as the control plane (build-binaries.sh).
Pods on it run in containers of the images tests/cluster/build-images.sh built.

    node = RealNode(cluster, images_dir)
    node.start()        # imports the images into containerd, returns once the Node is Ready
    ...
    node.stop()

The node is named `localhost`: the API server dials a node's Hostname address first for
`kubectl logs`, and that name resolves on any machine. Its kubelet serves on 127.0.0.1
(anonymous, AlwaysAllow: the test API server has no kubelet client certificate).

kube-proxy (iptables mode) routes Services; the `kubernetes` Service (10.0.0.1:443) gets
an EndpointSlice made here (the test API server keeps none: it listens on 127.0.0.1, which
no pod can reach): the host's address, where a TCP forwarder (tcp_forward.py) passes
connections on to the API server. There is no cluster DNS (pods use the host's
resolv.conf). One real node runs on a machine at
a time (a lock file); containerd's root, with the imported images, is kept across runs in
~/.cache/nas-operator/real-node/.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from .controlplane import Cluster, free_port
from .kube import Kube
from .paths import CACHE_ROOT, REPO_ROOT, binary
from .processes import spawn, stop_group
from .real_node_pki import write_kube_proxy_kubeconfig, write_node_kubeconfig
from .pki import Pki

NODE_NAME = "localhost"
POD_SUBNET = "10.213.0.0/24"
BRIDGE = "nasrn0"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
STATE_ROOT = CACHE_ROOT / "real-node"
LOCK_WAIT_SECONDS = 1800


class RealNodeUnavailable(RuntimeError):
    """What this machine lacks for a real node, with the command that installs it."""


def check_prerequisites() -> None:
    missing = [tool for tool in ("containerd", "ctr", "runc", "ip", "iptables")
               if shutil.which(tool) is None]
    if not (CNI_BIN_DIR / "bridge").exists():
        missing.append(str(CNI_BIN_DIR / "bridge"))
    if missing:
        raise RealNodeUnavailable(f"missing {', '.join(missing)}: run tests/cluster/install-tools.sh")
    if os.geteuid() != 0:
        raise RealNodeUnavailable("a real node (containerd, kubelet) needs root")
    binary("kubelet")  # fails with `make binaries`


def host_ip() -> str:
    """The address the host's default route leaves from (the node's InternalIP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("198.51.100.1", 9))  # no packet is sent for a UDP connect
        return probe.getsockname()[0]


def images_env(images_dir: Path) -> dict[str, str]:
    """OPERATOR_IMAGE, TRAINER_IMAGE, PAUSE_IMAGE of a build-images.sh output folder."""
    lines = (images_dir / "images.env").read_text().split()
    return dict(line.split("=", 1) for line in lines)


class RealNode:
    def __init__(self, cluster: Cluster, images_dir: Path) -> None:
        self.cluster = cluster
        self.images_dir = images_dir
        self.images = images_env(images_dir)
        self.dir = cluster.run_dir / "real-node"
        self.socket = self.dir / "containerd.sock"
        self.procs: dict[str, subprocess.Popen] = {}
        self._lock_file = None
        self.started_at = time.time()
        self.node_ip = host_ip()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        check_prerequisites()
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._clean_leftovers()
            self.dir.mkdir(parents=True, exist_ok=True)
            self._start_containerd()
            self._import_images()
            self._start_api_route()
            self._start_kubelet()
            self._wait_ready(timeout=120)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kubelet first, then every container still running, then containerd; mounts,
        network namespaces, the bridge and kube-proxy's rules are removed. Idempotent."""
        for name in ("kubelet", "kube-proxy", "api-forward"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                stop_group(proc, grace=10.0)
        if "containerd" in self.procs:
            self._remove_all_containers()
            stop_group(self.procs.pop("containerd"), grace=10.0)
        self._kill_pod_processes()
        _unmount_under(self.dir)
        _unmount_under(STATE_ROOT)
        self._remove_network()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def log(self, name: str) -> Path:
        """`containerd`, `kubelet` or `api-forward`."""
        return self.dir / f"{name}.log"

    # -- faults --------------------------------------------------------------------

    def kill_container(self, container_id: str) -> None:
        """SIGKILLs a container's processes through containerd, as the OOM killer or a
        crash would end it; the kubelet sees it exit and restarts it per the pod's policy.
        `container_id` as in a pod's status (`containerd://<id>`)."""
        self._ctr("tasks", "kill", "--all", "--signal", "SIGKILL",
                  container_id.removeprefix("containerd://"))

    # -- parts ---------------------------------------------------------------------

    def _take_lock(self) -> None:
        self._lock_file = open(STATE_ROOT / "lock", "w")
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RealNodeUnavailable(
                        f"another test run holds the real node ({STATE_ROOT / 'lock'}) "
                        f"for more than {LOCK_WAIT_SECONDS} s")
                time.sleep(2)

    def _clean_leftovers(self) -> None:
        """What a SIGKILLed earlier run left: pod processes (the shims die with their
        run, the containers do not), mounts, the bridge and kube-proxy's rules."""
        self._kill_pod_processes()
        _unmount_under(STATE_ROOT)
        shutil.rmtree(STATE_ROOT / "state", ignore_errors=True)
        self._remove_network()

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.log(name), "ab") as log:
            self.procs[name] = spawn(argv, run_id=self.cluster.run_id, log=log, cwd=REPO_ROOT)

    def _start_containerd(self) -> None:
        cni_conf = self.dir / "cni"
        cni_conf.mkdir(exist_ok=True)
        (cni_conf / "10-nas-test.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0",
            "name": "nas-test",
            "plugins": [{
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]],
                         "routes": [{"dst": "0.0.0.0/0"}],
                         "dataDir": str(self.dir / "ipam")},
            }],
        }))
        section = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{STATE_ROOT / 'root'}"
state = "{STATE_ROOT / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{STATE_ROOT / 'opt'}"
[{section}]
  sandbox_image = "{self.images['PAUSE_IMAGE']}"
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  # No CAP_SYS_RESOURCE on this kind of machine: a negative oom_score_adj (the pause
  # container's -998, a Guaranteed pod's -997) would fail every start.
  restrict_oom_score_adj = true
  [{section}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{section}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{section}.containerd.runtimes.runc.options]
        BinaryName = "{shutil.which('runc')}"
        SystemdCgroup = false
  [{section}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
"""
        (self.dir / "containerd.toml").write_text(config)
        self._spawn("containerd", ["containerd", "--config", str(self.dir / "containerd.toml")])
        deadline = time.monotonic() + 60
        while self._ctr("version", check=False).returncode != 0:
            self._check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"containerd did not answer; read {self.log('containerd')}")
            time.sleep(0.2)

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["ctr", "--address", str(self.socket), "--namespace", "k8s.io",
                                 *args], capture_output=True, text=True, timeout=900)
        if check and result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {result.stderr.strip()}")
        return result

    def _import_images(self) -> None:
        """Imports the built images once; containerd's root keeps them for later runs.
        Earlier builds go first, so the disk never holds two trainer images."""
        self._prune_images(keep=set(self.images.values()))
        present = set(self._ctr("images", "ls", "-q").stdout.split())
        for name, ref in (("pause", "PAUSE_IMAGE"), ("operator", "OPERATOR_IMAGE"),
                          ("trainer", "TRAINER_IMAGE")):
            if self.images[ref] in present:
                continue
            self._ctr("images", "import", "--base-name", self.images[ref].rsplit(":", 1)[0],
                      str(self.images_dir / f"{name}.oci.tar"))
            if self.images[ref] not in set(self._ctr("images", "ls", "-q").stdout.split()):
                raise RuntimeError(f"{name}.oci.tar did not import as {self.images[ref]}")
        self._prune_images(keep=set(self.images.values()))

    def _prune_images(self, keep: set[str]) -> None:
        """Images of earlier builds (several GB each) go, before and after a new build is
        imported: their names and the `sha256:<id>` names the CRI plugin gives them (same
        manifest)."""
        rows = [line.split()[:3] for line in self._ctr("images", "ls").stdout.splitlines()[1:]]
        kept_digests = {digest for ref, _, digest in rows if ref in keep}
        for ref, _, digest in rows:
            if ref.startswith(("localhost/nas-", "sha256:")) and digest not in kept_digests:
                self._ctr("images", "rm", ref, check=False)

    def _start_api_route(self) -> None:
        """kube-proxy routes the `kubernetes` Service (10.0.0.1:443) to an EndpointSlice
        made here: the host's address, where a TCP forwarder passes the connections on to
        the API server, which listens on 127.0.0.1 only (no pod can reach that, and an
        endpoint may not be a loopback address)."""
        forward_port = free_port()
        self._spawn("api-forward", [sys.executable, "-m", "tests.cluster.tcp_forward",
                                    f"--listen={self.node_ip}:{forward_port}",
                                    f"--to=127.0.0.1:{self.cluster.port}"])
        with self.cluster.api_client() as api:
            Kube(api).request("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes-real-node",
                             "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [self.node_ip], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": forward_port, "protocol": "TCP"}],
            })
        pki = Pki(self.cluster.run_dir / "pki")
        self.kube_proxy_healthz = free_port()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(write_kube_proxy_kubeconfig(
                pki, self.cluster.server, self.dir / "pki"))},
            "mode": "iptables",
            "clusterCIDR": POD_SUBNET,
            "hostnameOverride": NODE_NAME,
            "bindAddress": "127.0.0.1",
            "healthzBindAddress": f"127.0.0.1:{self.kube_proxy_healthz}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "nodePortAddresses": ["primary"],
            # 0: leave the host's conntrack settings as they are
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                          "tcpCloseWaitTimeout": "0s"},
        }
        (self.dir / "kube-proxy.yaml").write_text(yaml.safe_dump(config))
        self._spawn("kube-proxy", [str(binary("kube-proxy")),
                                   f"--config={self.dir / 'kube-proxy.yaml'}", "--v=1"])

    def _start_kubelet(self) -> None:
        pki = Pki(self.cluster.run_dir / "pki")
        kubeconfig = write_node_kubeconfig(pki, self.cluster.server, NODE_NAME, self.dir / "pki")
        self.kubelet_port = free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": "127.0.0.1",
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(pki.ca_cert)}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs",  # no systemd on these machines; containerd's too
            "failCgroupV1": False,  # hybrid cgroups here
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "podLogsDir": str(self.dir / "pod-logs"),
            "failSwapOn": False,
            "resolvConf": "/etc/resolv.conf",
            "clusterDomain": "cluster.local",
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            # A shared CI disk must not make the kubelet evict pods or delete the images
            # it cannot pull again.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "shutdownGracePeriod": "0s",
            "maxPods": 50,
        }
        (self.dir / "kubelet.yaml").write_text(yaml.safe_dump(config))
        self._spawn("kubelet", [
            str(binary("kubelet")),
            f"--config={self.dir / 'kubelet.yaml'}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={self.dir / 'kubelet'}",
            f"--cert-dir={self.dir / 'kubelet-certs'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={self.node_ip}",
            "--node-labels=nas-test/real-node=true",
            "--v=1",
        ])

    def _wait_ready(self, timeout: float) -> None:
        with self.cluster.api_client() as api:
            kube = Kube(api)

            def ready() -> bool:
                node = kube.get_or_none(f"/api/v1/nodes/{NODE_NAME}")
                return bool(node) and not node["spec"].get("taints") and any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in node.get("status", {}).get("conditions") or [])

            deadline = time.monotonic() + timeout
            while not (ready() and self._kube_proxy_synced()):
                self._check_running()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node {NODE_NAME} not Ready (or kube-proxy not synced) "
                                       f"after {timeout:.0f}s; read "
                                       f"{self.log('kubelet')}:\n{_tail(self.log('kubelet'))}")
                time.sleep(0.5)

    def _kube_proxy_synced(self) -> bool:
        """kube-proxy's /healthz answers 200 once it has programmed the Services."""
        try:
            url = f"http://127.0.0.1:{self.kube_proxy_healthz}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}; read "
                                   f"{self.log(name)}:\n{_tail(self.log(name))}")

    def _remove_all_containers(self) -> None:
        tasks = self._ctr("tasks", "ls", "-q", check=False).stdout.split()
        for task in tasks:
            self._ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task, check=False)
        for task in tasks:
            self._ctr("tasks", "delete", "--force", task, check=False)
        containers = self._ctr("containers", "ls", "-q", check=False).stdout.split()
        if containers:
            self._ctr("containers", "rm", *containers, check=False)

    def _kill_pod_processes(self) -> None:
        """Every process in the kubelet's pod cgroups (cgroupfs driver: `kubepods`)."""
        for hierarchy in Path("/sys/fs/cgroup").glob("*/kubepods"):
            for procs in hierarchy.rglob("cgroup.procs"):
                for pid in procs.read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass

    def _remove_network(self) -> None:
        _ip("link", "del", BRIDGE, check=False)
        # kube-proxy's iptables rules (the kubelet's own two chains stay, as on any node)
        subprocess.run([str(binary("kube-proxy")), "--cleanup"], capture_output=True, timeout=60)
        netns = Path("/run/netns")
        if netns.is_dir():  # containerd's per-pod namespaces whose sandbox was not removed
            for entry in netns.glob("cni-*"):
                if entry.stat().st_mtime >= self.started_at - 1 or not _netns_in_use(entry):
                    _ip("netns", "del", entry.name, check=False)


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _netns_in_use(entry: Path) -> bool:
    """Whether any process lives in the network namespace bound at `entry`."""
    try:
        inode = entry.stat().st_ino
    except OSError:
        return False
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "ns" / "net").stat().st_ino == inode:
                    return True
            except OSError:
                continue
    return False


def _unmount_under(root: Path) -> None:
    """Lazily unmounts every mount point under `root`, deepest first."""
    prefix = str(root.resolve()) + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"

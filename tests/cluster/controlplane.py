"""A real Kubernetes control plane on loopback: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, and the test node agent playing kubelet.

    with ControlPlane.start() as cluster:
        ...  # cluster.kubeconfig, cluster.server, cluster.run_dir

Everything a run writes (certificates, etcd data, one log per component, one log per pod
container) lives in `~/.cache/nas-operator/run/<run id>/`; the newest few runs are kept
for reading logs after a failure.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import pki as pki_mod
from .logs import pod_log as read_pod_log
from .paths import RUN_ROOT, REPO_ROOT, binary, venv_bin
from .processes import owner_alive, spawn, stop_group, sweep, write_owner

NODE_NAMES = ("node-a", "node-b")
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
KEEP_RUNS = 5  # run dirs kept for their logs; older ones are deleted at start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """What a test needs to talk to the running control plane."""

    run_id: str
    run_dir: Path
    kubeconfig: Path  # admin (system:masters) kubeconfig
    server: str  # https://127.0.0.1:<port>
    ca_file: Path
    node_names: tuple[str, ...]
    etcd_url: str
    startup_seconds: dict[str, float] = field(default_factory=dict)
    plane: "ControlPlane | None" = field(default=None, repr=False, compare=False)

    @property
    def port(self) -> int:
        return int(self.server.rsplit(":", 1)[1])

    def component_log(self, name: str) -> Path:
        """Log of `etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`
        or `node-agent`."""
        return self.run_dir / f"{name}.log"

    def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """Everything a pod's container wrote (all restarts, appended); the only
        container when `container` is None."""
        return read_pod_log(self.run_dir, namespace, pod, container)

    def compact_etcd(self) -> int:
        """Compacts etcd's history up to now, as a long-running cluster does every few
        minutes: watches from older resource versions then end with 410 Gone. Returns
        the revision compacted to."""
        def post(path: str, body: dict) -> dict:
            request = urllib.request.Request(f"{self.etcd_url}{path}", json.dumps(body).encode(),
                                             {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())

        # etcd's JSON gateway: a range read tells the current revision.
        revision = int(post("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})
                       ["header"]["revision"])
        post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def api_client(self):
        """A fresh Python client ApiClient with admin credentials."""
        import kubernetes

        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))

    # -- faults (tests/e2e/test_faults_e2e.py) ------------------------------------------

    def restart_api_server_and_etcd(self, down_seconds: float = 0.0) -> float:
        """SIGKILLs kube-apiserver and etcd, keeps them down ``down_seconds``, starts
        them again on the same ports and data and waits for /readyz. Returns the seconds
        the API was unreachable. The scheduler and the controller manager are restarted
        with them, as on a control-plane node that reboots: across an API server restart
        their informers could miss events for minutes (the scheduler never saw a new
        claim for 5 minutes), which is upstream's business, not the operator's."""
        assert self.plane is not None
        return self.plane.restart(
            ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"),
            down_seconds)

    def start_node_agent(self, node: str) -> None:
        """Starts one more node agent, for a new Node ``node`` only (its own process,
        so it can be lost alone); returns once the Node is Ready and untainted."""
        assert self.plane is not None
        self.plane.start_node_agent(node)

    def kill_node_agent(self, node: str) -> None:
        """SIGKILLs the agent of ``node`` started by ``start_node_agent``: its pods'
        processes die with it (parent-death signal) and nobody reports them again."""
        assert self.plane is not None
        self.plane.kill(f"node-agent-{node}")


class ControlPlane:
    def __init__(self, run_dir: Path, path_prefix: Path | None = None) -> None:
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.path_prefix = path_prefix or venv_bin()
        self.procs: dict[str, subprocess.Popen] = {}
        self.argv: dict[str, tuple[list[str], Path | None]] = {}  # for restarts
        self.cluster: Cluster | None = None
        self._ready_url = ""
        self._ca_context: ssl.SSLContext | None = None

    # -- lifecycle -----------------------------------------------------------------

    @classmethod
    def start(cls, path_prefix: Path | None = None) -> "ControlPlane":
        """Starts a fresh control plane with its nodes; on any failure stops what
        was started and raises with the log to read."""
        from .reap import reap_orphans  # ends what a SIGKILLed earlier run left

        reap_orphans()
        run_dir = RUN_ROOT / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        run_dir.mkdir(parents=True)
        write_owner(run_dir)
        prune_old_runs(keep=KEEP_RUNS)
        plane = cls(run_dir, path_prefix)
        try:
            plane._start()
        except BaseException:
            plane.stop()
            raise
        return plane

    def __enter__(self) -> Cluster:
        assert self.cluster is not None
        return self.cluster

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stops the node agent first (it ends the pods), then the control plane, then
        sweeps anything of this run still alive. Idempotent."""
        extra_agents = [n for n in self.procs if n.startswith("node-agent-")]
        for name in (*extra_agents, "node-agent", "kube-scheduler", "kube-controller-manager",
                     "kube-apiserver", "etcd"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                stop_group(proc, grace=10.0 if name == "node-agent" else 5.0)
        sweep(self.run_id)
        shutil.rmtree(self.run_dir / "etcd-data", ignore_errors=True)

    # -- start-up ------------------------------------------------------------------

    def _start(self) -> None:
        t0 = time.monotonic()
        pki = pki_mod.generate(self.run_dir / "pki")
        ports = {name: free_port() for name in ("etcd", "etcd-peer", "apiserver", "cm", "sched")}
        server = f"https://127.0.0.1:{ports['apiserver']}"
        kubeconfig = pki_mod.write_kubeconfig(
            self.run_dir / "admin.kubeconfig", server, pki, pki_mod.ADMIN)
        cm_kubeconfig = pki_mod.write_kubeconfig(
            self.run_dir / "controller-manager.kubeconfig", server, pki,
            pki_mod.CONTROLLER_MANAGER)
        sched_kubeconfig = pki_mod.write_kubeconfig(
            self.run_dir / "scheduler.kubeconfig", server, pki, pki_mod.SCHEDULER)
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        self.cluster = Cluster(self.run_id, self.run_dir, kubeconfig, server, pki.ca_cert,
                               NODE_NAMES, etcd_url, plane=self)
        timings = self.cluster.startup_seconds
        timings["pki"] = time.monotonic() - t0

        self._spawn("etcd", [
            str(binary("etcd")),
            "--name=nas-test",
            f"--data-dir={self.run_dir / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-cluster=nas-test=http://127.0.0.1:{ports['etcd-peer']}",
            "--unsafe-no-fsync",  # throwaway data: durability buys nothing here
            "--log-level=warn",
        ])
        self._spawn("kube-apiserver", [
            str(binary("kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--cert-dir={self.run_dir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
            "TaintNodesByCondition,PodSecurity,Priority,DefaultTolerationSeconds,"
            "DefaultStorageClass,StorageObjectInUseProtection,PersistentVolumeClaimResize,"
            "RuntimeClass,DefaultIngressClass,MutatingAdmissionWebhook,"
            "ValidatingAdmissionPolicy,ValidatingAdmissionWebhook,ResourceQuota",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            f"--service-cluster-ip-range={pki_mod.SERVICE_CLUSTER_IP_RANGE}",
            # Endpoints may not hold a loopback address, and in-cluster clients are told
            # 127.0.0.1 directly by the node agent: no `kubernetes` endpoint to maintain.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ])
        # Started now so that its Python start-up overlaps the API server's; it waits
        # for the API server itself.
        self._spawn("node-agent", [
            sys.executable, "-m", "tests.cluster.node_agent",
            f"--kubeconfig={kubeconfig}",
            f"--run-dir={self.run_dir}",
            f"--nodes={','.join(NODE_NAMES)}",
            f"--path-prefix={self.path_prefix}",
        ], cwd=REPO_ROOT)
        import kubernetes  # noqa: F401  (slow to import: overlap it with the API server's start)

        ca_context = ssl.create_default_context(cafile=str(pki.ca_cert))
        self._ready_url, self._ca_context = f"{server}/readyz", ca_context
        self._wait_healthy("kube-apiserver", self._ready_url, ca_context, timeout=90)
        timings["etcd+apiserver"] = time.monotonic() - t0 - timings["pki"]

        t1 = time.monotonic()
        insecure = ssl._create_unverified_context()  # their serving certs are self-signed
        common = ["--bind-address=127.0.0.1", "--leader-elect=false", "--v=1"]
        self._spawn("kube-controller-manager", [
            str(binary("kube-controller-manager")),
            f"--kubeconfig={cm_kubeconfig}",
            f"--authentication-kubeconfig={cm_kubeconfig}",
            f"--authorization-kubeconfig={cm_kubeconfig}",
            f"--secure-port={ports['cm']}",
            f"--cert-dir={self.run_dir / 'controller-manager-certs'}",
            "--controllers=*",
            f"--service-account-private-key-file={pki.sa_private_key}",
            f"--root-ca-file={pki.ca_cert}",
            "--use-service-account-credentials",
            f"--service-cluster-ip-range={pki_mod.SERVICE_CLUSTER_IP_RANGE}",
            *common,
        ])
        self._spawn("kube-scheduler", [
            str(binary("kube-scheduler")),
            f"--kubeconfig={sched_kubeconfig}",
            f"--authentication-kubeconfig={sched_kubeconfig}",
            f"--authorization-kubeconfig={sched_kubeconfig}",
            f"--secure-port={ports['sched']}",
            f"--cert-dir={self.run_dir / 'scheduler-certs'}",
            *common,
        ])
        self._wait_healthy("kube-controller-manager",
                           f"https://127.0.0.1:{ports['cm']}/healthz", insecure, timeout=60)
        self._wait_healthy("kube-scheduler",
                           f"https://127.0.0.1:{ports['sched']}/healthz", insecure, timeout=60)
        self._wait_nodes_ready(timeout=60)
        self._wait_controllers_working(timeout=60)
        timings["controllers+nodes"] = time.monotonic() - t1
        timings["total"] = time.monotonic() - t0

    def _spawn(self, name: str, argv: list[str], cwd: Path | None = None) -> None:
        self.argv[name] = (argv, cwd)
        with open(self.run_dir / f"{name}.log", "ab") as log:
            self.procs[name] = spawn(argv, run_id=self.run_id, log=log, cwd=cwd)

    # -- faults --------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILLs a component's process group (no goodbye, as a crash or power loss)."""
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def restart(self, names: tuple[str, ...], down_seconds: float) -> float:
        """Kills ``names`` (in that order), waits ``down_seconds``, starts them again in
        the reverse order with their first arguments (same ports, same data dir), those
        after the API server once it is ready. Returns the seconds the API was down."""
        t0 = time.monotonic()
        for name in names:
            self.kill(name)
        time.sleep(down_seconds)
        assert self._ca_context is not None
        down = 0.0
        for name in reversed(names):
            argv, cwd = self.argv[name]
            self._spawn(name, argv, cwd)
            if name == "kube-apiserver":  # the controllers exit if it says no at their start
                self._wait_healthy(name, self._ready_url, self._ca_context, timeout=90)
                down = time.monotonic() - t0
        return down

    def start_node_agent(self, node: str) -> None:
        assert self.cluster is not None
        argv, cwd = self.argv["node-agent"]
        argv = [a if not a.startswith("--nodes=") else f"--nodes={node}" for a in argv]
        self._spawn(f"node-agent-{node}", argv, cwd)
        self._wait_nodes_ready(timeout=60, names=(node,))

    def _check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode} during start-up; "
                    f"read {self.run_dir / (name + '.log')}:\n{_tail(self.run_dir / (name + '.log'))}")

    def _wait_healthy(self, name: str, url: str, context: ssl.SSLContext, timeout: float) -> None:
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(url, context=context, timeout=2) as response:
                    return response.status == 200
            except (urllib.error.URLError, OSError):
                return False

        self._wait(f"{name} to answer {url}", healthy, timeout, self.run_dir / f"{name}.log")

    def _wait_nodes_ready(self, timeout: float, names: tuple[str, ...] = NODE_NAMES) -> None:
        """Nodes exist, report Ready and carry no taint (the not-ready taint is what
        keeps the scheduler away from a fresh node)."""
        from .kube import Kube

        assert self.cluster is not None
        with self.cluster.api_client() as api:
            kube = Kube(api)

            def ready() -> bool:
                nodes = {n["metadata"]["name"]: n for n in kube.get("/api/v1/nodes")["items"]}
                return all(
                    name in nodes
                    and not nodes[name]["spec"].get("taints")
                    and any(c["type"] == "Ready" and c["status"] == "True"
                            for c in nodes[name].get("status", {}).get("conditions") or [])
                    for name in names)

            self._wait("nodes to be Ready", ready, timeout, self.run_dir / "node-agent.log")

    def _wait_controllers_working(self, timeout: float) -> None:
        """The controllers every namespace needs before pods can run in it: the
        `default` ServiceAccount (pods are refused without it) and the
        `kube-root-ca.crt` ConfigMap (the service-account volume projects it)."""
        from .kube import Kube

        assert self.cluster is not None
        with self.cluster.api_client() as api:
            kube = Kube(api)
            self._wait("the default ServiceAccount and kube-root-ca.crt",
                       lambda: kube.get_or_none("/api/v1/namespaces/default/serviceaccounts/default")
                       and kube.get_or_none("/api/v1/namespaces/default/configmaps/kube-root-ca.crt"),
                       timeout, self.run_dir / "kube-controller-manager.log")

    def _wait(self, what: str, done: Callable[[], bool], timeout: float, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self._check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                   f"read {log}:\n{_tail(log)}")
            time.sleep(0.1)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def prune_old_runs(keep: int) -> None:
    """Deletes the oldest run dirs of finished runs, keeping the newest `keep`."""
    if not RUN_ROOT.is_dir():
        return
    runs = sorted((d for d in RUN_ROOT.iterdir() if d.is_dir()), key=lambda d: d.name)
    for old in runs[:-keep]:
        if not owner_alive(old):
            shutil.rmtree(old, ignore_errors=True)

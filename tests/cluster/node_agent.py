"""The test node agent: plays kubelet for a few Nodes of the test cluster.

    python -m tests.cluster.node_agent --kubeconfig K --run-dir D --nodes node-a,node-b

Registers each Node (cpu 8, memory 32Gi, pods 110, nvidia.com/gpu 2), keeps its Lease
and Ready condition fresh, and runs every pod bound to it (pod_runtime.PodWorker). Also
provisions PersistentVolumes for the default StorageClass (provisioner.py). Ends its
pods when told to stop (SIGTERM/SIGINT).
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import signal
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from .kube import MERGE_PATCH, Kube, pod_path
from .paths import K8S_VERSION
from .pod_env import NodeFacts
from .pod_runtime import NodeRuntime, PodWorker
from .pod_status import now_iso
from .processes import RUN_MARKER
from .provisioner import Provisioner
from .volumes import ClaimRegistry
from .watching import list_watch

log = logging.getLogger("node-agent")

Obj = dict[str, Any]
CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi",
            "nvidia.com/gpu": "2"}
HOST_IP = "127.0.0.1"
LEASE_SECONDS = 40
RENEW_SECONDS = 10
STATUS_HEARTBEAT_SECONDS = 60
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def micro_time() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Node:
    """One Node: registration, heartbeats, and the workers of its pods."""

    def __init__(self, kube: Kube, name: str, rt: NodeRuntime, stop: threading.Event) -> None:
        self.kube, self.name, self.rt, self.stop = kube, name, rt, stop
        self.workers: dict[str, PodWorker] = {}
        self.finished: set[str] = set()  # uids whose worker ended: never run twice
        self.lock = threading.Lock()

    # -- registration and heartbeats -------------------------------------------------

    def register(self) -> None:
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": {
                "kubernetes.io/hostname": self.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "nas-test",
                "nvidia.com/gpu.present": "true",
            }},
        }
        try:
            self.kube.request("POST", "/api/v1/nodes", node)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._patch_status()
        self._renew_lease()
        # The API server taints every new Node not-ready; the node lifecycle controller
        # would lift it within seconds of seeing Ready, the agent does not wait for it.
        current = self.kube.get(f"/api/v1/nodes/{self.name}")
        taints = [t for t in current["spec"].get("taints") or [] if t["key"] != NOT_READY_TAINT]
        self.kube.request("PATCH", f"/api/v1/nodes/{self.name}",
                          {"spec": {"taints": taints or None}}, content_type=MERGE_PATCH)

    def _patch_status(self) -> None:
        now = now_iso()
        conditions = [
            {"type": t, "status": "False", "reason": f"KubeletHasSufficient{r}",
             "message": f"kubelet has sufficient {r.lower()}",
             "lastHeartbeatTime": now, "lastTransitionTime": now}
            for t, r in (("MemoryPressure", "Memory"), ("DiskPressure", "Disk"),
                         ("PIDPressure", "PID"))
        ] + [{"type": "Ready", "status": "True", "reason": "KubeletReady",
              "message": "test node agent is posting ready status",
              "lastHeartbeatTime": now, "lastTransitionTime": now}]
        status = {
            "capacity": CAPACITY,
            "allocatable": CAPACITY,
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": HOST_IP},
                          {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": self.name, "systemUUID": self.name, "bootID": self.rt.run_id,
                "kernelVersion": platform.release(), "osImage": "nas-operator test node",
                "containerRuntimeVersion": "nas-test://1", "kubeletVersion": f"v{K8S_VERSION}",
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
            },
        }
        self.kube.request("PATCH", f"/api/v1/nodes/{self.name}/status", {"status": status},
                          content_type="application/strategic-merge-patch+json")

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        try:
            self.kube.request("PATCH", path, {"spec": {"renewTime": micro_time()}},
                              content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status != 404:
                raise
            node = self.kube.get(f"/api/v1/nodes/{self.name}")
            self.kube.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": "kube-node-lease",
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                                  "name": self.name,
                                                  "uid": node["metadata"]["uid"]}]},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS,
                         "renewTime": micro_time()}})

    def _heartbeats(self) -> None:
        since_status = 0.0
        while not self.stop.wait(RENEW_SECONDS):
            try:
                self._renew_lease()
                since_status += RENEW_SECONDS
                if since_status >= STATUS_HEARTBEAT_SECONDS:
                    self._patch_status()
                    since_status = 0.0
            except Exception:
                log.exception("node %s: heartbeat failed", self.name)

    # -- pods ------------------------------------------------------------------------

    def start(self) -> None:
        self.register()
        threading.Thread(target=self._heartbeats, daemon=True,
                         name=f"heartbeat {self.name}").start()
        threading.Thread(
            target=list_watch, daemon=True, name=f"pods {self.name}",
            args=(self.kube, "/api/v1/pods", self._on_event, self._on_list, self.stop),
            kwargs={"fieldSelector": f"spec.nodeName={self.name}"}).start()

    def _on_list(self, pods: list[Obj]) -> None:
        present = {p["metadata"]["uid"] for p in pods}
        with self.lock:
            missing = [w for uid, w in self.workers.items() if uid not in present]
        for worker in missing:  # deleted while the watch was down
            worker.deleted()
        for pod in pods:
            self._on_event("ADDED", pod)

    def _on_event(self, type_: str, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            worker = self.workers.get(uid)
            if type_ == "DELETED":
                if worker:
                    worker.deleted()
                return
            if worker:
                worker.update(pod)
                return
            terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            if uid in self.finished or terminal:
                if pod["metadata"].get("deletionTimestamp"):
                    self._complete_deletion(pod)
                return
            worker = PodWorker(self.rt, pod, self._worker_done)
            self.workers[uid] = worker
        log.info("pod %s/%s: starting on %s", pod["metadata"]["namespace"],
                 pod["metadata"]["name"], self.name)
        worker.thread.start()

    def _worker_done(self, uid: str) -> None:
        with self.lock:
            worker = self.workers.pop(uid, None)
            self.finished.add(uid)
        # Deleted while it finished: the deletion is ours to complete.
        if worker and not worker.gone and worker.pod["metadata"].get("deletionTimestamp"):
            self._complete_deletion(worker.pod)

    def _complete_deletion(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            self.kube.request("DELETE", pod_path(meta["namespace"], meta["name"]), {
                "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta["uid"]}})
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("cannot delete pod %s/%s: %s", meta["namespace"], meta["name"], exc)

    def shutdown(self) -> None:
        """Ends every pod's processes (the node goes away with the test run)."""
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.gone = True
            worker.wake.set()
        for worker in workers:
            worker.thread.join(timeout=5)


def wait_for_api_server(kube: Kube, stop: threading.Event, timeout: float = 120) -> None:
    """The agent starts with the control plane: wait until the API server is ready
    and its system namespaces (kube-node-lease) exist."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        try:
            kube.get("/api/v1/namespaces/kube-node-lease")
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"API server not ready after {timeout:g}s: {exc}") from exc
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description="test node agent (plays kubelet)")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--nodes", default="node-a,node-b")
    parser.add_argument("--path-prefix", default="",
                        help="folders put first on PATH in pods (the project's virtualenv)")
    parser.add_argument("--backoff-base", type=float, default=1.0,
                        help="seconds before the first container restart (kubelet: 10)")
    parser.add_argument("--image-entrypoints", type=Path,
                        help="JSON {image: [command...]} for containers without a command")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(threadName)s: %(message)s")

    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(str(args.kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = 64  # one watch per node, a worker per pod
    kube = Kube(kubernetes.client.ApiClient(configuration))
    api_port = int(configuration.host.rsplit(":", 1)[1])
    entrypoints = json.loads(args.image_entrypoints.read_text()) if args.image_entrypoints else {}
    run_id = os.environ.get(RUN_MARKER, args.run_dir.name)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    wait_for_api_server(kube, stop)
    Provisioner(kube, args.run_dir / "volumes").start(stop)
    claims = ClaimRegistry()  # shared: ReadWriteOnce is about nodes
    nodes = []
    for name in args.nodes.split(","):
        facts = NodeFacts(name=name, host_ip=HOST_IP, api_port=api_port,
                          path_prefix=args.path_prefix, allocatable=CAPACITY)
        rt = NodeRuntime(kube=kube, node=facts, run_dir=args.run_dir, run_id=run_id,
                         claims=claims, backoff_base=args.backoff_base, entrypoints=entrypoints)
        node = Node(kube, name, rt, stop)
        node.start()
        nodes.append(node)
    log.info("nodes %s registered", args.nodes)
    while not stop.wait(1.0):  # a timed wait lets the signal handlers run
        pass
    log.info("stopping: ending pods")
    for node in nodes:
        node.shutdown()


if __name__ == "__main__":
    main()

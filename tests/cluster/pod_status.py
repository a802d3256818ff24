"""Pod status as kubelet reports it, computed from what the node agent knows about each
container. Pure functions: no API calls, no processes."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRecord:
    """One container of a pod: its current and previous state, as kubelet reports them
    (`state` is {"waiting": ...}, {"running": ...} or {"terminated": ...})."""

    name: str
    image: str
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    restart_count: int = 0
    container_id: str = ""

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> Obj | None:
        return self.state.get("terminated")

    def as_status(self) -> Obj:
        status = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.running,  # no readiness probes: ready while running
            "started": self.running,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def pod_phase(containers: list[ContainerRecord], restart_policy: str) -> str:
    """Kubelet's phase rules (getPhase) for the regular containers, init containers done.
    A container waiting to be restarted counts as stopped, not as waiting."""
    running = waiting = stopped = succeeded = 0
    for c in containers:
        if c.running:
            running += 1
        elif c.terminated is not None:
            stopped += 1
            succeeded += c.terminated["exitCode"] == 0
        elif c.last_state.get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if restart_policy == "Never" else "Running"


def _condition(previous: list[Obj], type_: str, ok: bool, reason: str | None = None) -> Obj:
    status = "True" if ok else "False"
    before = next((c for c in previous if c.get("type") == type_), None)
    changed = before is None or before.get("status") != status
    condition = {
        "type": type_,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now_iso() if changed else before.get("lastTransitionTime"),
    }
    if reason and not ok:
        condition["reason"] = reason
    return condition


# Kubelet's own conditions (kubetypes.PodConditionsByKubelet). The agent writes the last
# four; PodScheduled is the scheduler's, and is kept as the API server has it. Every other
# condition (DisruptionTarget from the Eviction API, preemption, the taint manager or the
# pod GC; readiness gates; ...) belongs to someone else and is never written by the agent.
AGENT_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")


def build_status(
    pod: Obj,
    *,
    phase: str,
    host_ip: str,
    start_time: str,
    init_containers: list[ContainerRecord],
    containers: list[ContainerRecord],
    initialized: bool,
    sandbox_ready: bool,
    reason: str | None = None,
    message: str | None = None,
) -> Obj:
    """The pod's full `status` as kubelet's mergePodStatus makes it: the agent's
    conditions (keeping their transition times while their status does not change),
    then every other condition of the pod as the API server has it (PodScheduled,
    DisruptionTarget, ...). Send it with `status_patch`, which leaves those others out."""
    previous = (pod.get("status") or {}).get("conditions") or []
    all_ready = bool(containers) and all(c.running for c in containers)
    terminal = phase in ("Succeeded", "Failed")
    ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    conditions = [
        _condition(previous, "PodReadyToStartContainers", sandbox_ready and not terminal),
        _condition(previous, "Initialized", initialized, "ContainersNotInitialized"),
        _condition(previous, "Ready", all_ready, ready_reason),
        _condition(previous, "ContainersReady", all_ready, ready_reason),
    ]
    conditions += [c for c in previous if c.get("type") not in AGENT_CONDITIONS]
    status: Obj = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": host_ip,  # pods share the host's network
        "podIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": [c.as_status() for c in containers],
        "reason": reason,
        "message": message,
    }
    if init_containers:
        status["initContainerStatuses"] = [c.as_status() for c in init_containers]
    return status


def status_patch(status: Obj, uid: str) -> Obj:
    """The strategic merge patch (application/strategic-merge-patch+json) that writes
    `status` as kubelet's status manager does: `conditions` merge by type, and only the
    agent's own are sent, so a condition someone else adds or changes meanwhile (the
    Eviction API's DisruptionTarget) is never lost or reverted, whatever the order of the
    writes; no resourceVersion, so no conflicts. `metadata.uid` is a precondition (a
    different uid is an immutable-field error, 422): a pod made again under the same name
    never gets the old pod's status."""
    own = [c for c in status["conditions"] if c.get("type") in AGENT_CONDITIONS]
    return {"metadata": {"uid": uid}, "status": {**status, "conditions": own}}

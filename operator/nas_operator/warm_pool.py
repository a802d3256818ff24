"""Warm pool decisions (spec.trials.mode WarmPool), pure: no API calls.

A worker pod holds at most one assignment, or one pack of them, and answers each (their
JSON: contract 8, ``nas_contracts.warm_pool``). A Trial runs on the worker named
in its ``status.podName`` with the assignment whose attempt is its ``status.attempts``;
any other assignment of it is an orphan (left by an operator that lost a race or died).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nas_contracts.warm_pool import answers_in, assignments_in, run_key

from .names import LABEL_POD_HASH
from .results import parse_result, short_message
from .trial_status import succeeded_status, terminated_state


def assignments_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs the pod holds: its assignment, or each of its pack."""
    return assignments_in(pod["metadata"].get("annotations"))


def answer_of(pod: dict[str, Any], assignment: dict[str, Any]) -> dict[str, Any] | None:
    """The worker's answer to ``assignment``, one of the pod's (None until it answered)."""
    return answers_in(pod["metadata"].get("annotations")).get(run_key(assignment))


def trial_key(trial: dict[str, Any], attempt: Any) -> tuple[Any, Any, Any]:
    return trial["metadata"]["name"], trial["metadata"]["uid"], attempt


def pod_hash(pod: dict[str, Any]) -> str:
    return (pod["metadata"].get("labels") or {}).get(LABEL_POD_HASH, "")


def pod_ended(pod: dict[str, Any]) -> bool:
    """The worker will answer nothing more: its process ended or the pod is going away."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed") or bool(pod["metadata"].get("deletionTimestamp"))


def is_idle(pod: dict[str, Any]) -> bool:
    """Running, not going away, holding no assignment: it can take a Trial now."""
    return (
        (pod.get("status") or {}).get("phase") == "Running"
        and not pod_ended(pod)
        and not assignments_of(pod)
    )


def disrupted(pod: dict[str, Any] | None) -> bool:
    """Lost to someone else (deleted, evicted, preempted, node lost), not a crash: a run
    lost this way does not use a retry, as with a Job's DisruptionTarget pods."""
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return True
    return any(
        c.get("type") == "DisruptionTarget" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def holds(pod: dict[str, Any] | None, trial: dict[str, Any]) -> bool:
    """Whether ``pod`` runs ``trial``'s current attempt (alone or in a pack)."""
    if pod is None:
        return False
    status = trial.get("status") or {}
    key = trial_key(trial, status.get("attempts"))
    return status.get("podName") == pod["metadata"]["name"] and any(
        run_key(a) == key for a in assignments_of(pod)
    )


def adoptable(pod: dict[str, Any], trial: dict[str, Any]) -> bool:
    """An assignment written just before its operator died, the Trial still Pending: the
    next operator completes the step (sets the Trial Running) instead of running it twice."""
    status = trial.get("status") or {}
    key = trial_key(trial, int(status.get("attempts") or 0) + 1)
    return (
        not pod_ended(pod)
        and status.get("phase", "Pending") == "Pending"
        and any(run_key(a) == key for a in assignments_of(pod))
    )


def running_status(old: dict[str, Any], pod_name: str, attempt: int, now: str) -> dict[str, Any]:
    """The Trial's status once assigned; startTime is its first run's (timeoutSeconds counts
    from there, across retries, like a Job's activeDeadlineSeconds)."""
    return {
        **old,
        "phase": "Running",
        "reason": "",
        "message": "",
        "podName": pod_name,
        "attempts": attempt,
        "startTime": old.get("startTime") or now,
    }


def requeued_status(old: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    """Back to Pending without using a retry (disruption, suspension)."""
    return {**old, "phase": "Pending", "reason": reason, "message": short_message(message)}


def crashed_status(old: dict[str, Any], message: str, retries: int, now: str) -> dict[str, Any]:
    """A run that ended in a retryable error: Pending again while retries remain."""
    failed = int(old.get("failedAttempts") or 0) + 1
    if failed > retries:
        return {
            **old,
            "phase": "Failed",
            "reason": "RetriesExhausted",
            "message": short_message(message),
            "failedAttempts": failed,
            "completionTime": now,
        }
    return {
        **old,
        "phase": "Pending",
        "reason": "",
        "message": short_message(f"attempt {old.get('attempts')} failed, retrying: {message}"),
        "failedAttempts": failed,
    }


def answered_status(
    old: dict[str, Any], answer: dict[str, Any], retries: int, now: str
) -> dict[str, Any]:
    """The Trial's status from its worker's answer, read as a Job's termination message."""
    raw = json.dumps(answer.get("result"))
    result = parse_result(raw)
    if result is not None and result.error:
        if not result.permanent:
            return crashed_status(old, result.error, retries, now)
        return {
            **old,
            "phase": "Failed",
            "reason": "PermanentError",
            "message": short_message(result.error),
            "completionTime": now,
        }
    return {**old, **succeeded_status(result, raw), "completionTime": now}


def crash_message(pod: dict[str, Any] | None) -> str:
    term = terminated_state(pod) if pod is not None else None
    if not term:
        return "the worker pod ended"
    detail = (term.get("message") or term.get("reason") or "").strip()
    return f"worker pod {pod['metadata']['name']} exited {term.get('exitCode')}: {detail}"


@dataclass(frozen=True)
class Pending:
    name: str
    index: int
    pod_hash: str  # the pod its trainer snapshot makes
    generation: int = 1  # spec.searchGeneration: its trainer snapshot
    age: float = float("inf")  # seconds since the Trial was created (inf: unknown)


def choose_assignments(
    pending: list[Pending], idle: list[dict[str, Any]], per_worker: int = 1
) -> list[tuple[Pending, dict[str, Any]]]:
    """Pending Trials (oldest index first) paired with idle workers of their pod hash, up
    to ``per_worker`` Trials each (spec.trials.packing.maxPerWorker). Each Trial goes to
    the worker of its hash holding fewest so far (ties: by name), so with fewer Trials
    than the workers could hold none idles while another holds a full pack."""
    free = sorted(idle, key=lambda p: p["metadata"]["name"])
    held: dict[str, int] = {p["metadata"]["name"]: 0 for p in free}
    pairs = []
    for trial in sorted(pending, key=lambda t: t.index):
        fits = [p for p in free
                if pod_hash(p) == trial.pod_hash and held[p["metadata"]["name"]] < per_worker]
        if fits:
            worker = min(fits, key=lambda p: held[p["metadata"]["name"]])  # stable: by name
            held[worker["metadata"]["name"]] += 1
            pairs.append((trial, worker))
    return pairs


# Trials come from the controller in bursts (a result in, a Trial out); waiting this long
# after the youngest one lets a burst fill a pack instead of starting packs of one.
PACK_FILL_SECONDS = 2.0


def pack_fill_wait(pending: list[Pending], idle: int, per_worker: int) -> float:
    """Seconds to hold off assigning so that more Trials join the packs (0: assign now):
    only while the idle workers could hold more than wait and a Trial came in just now.
    Bounded: a steady stream fills the packs, and a burst's end starts them."""
    if per_worker <= 1 or not pending or not idle or len(pending) >= idle * per_worker:
        return 0.0
    youngest = min(t.age for t in pending)
    return max(0.0, PACK_FILL_SECONDS - youngest)


def idle_workers_to_recycle(
    waiting: list[Pending], idle: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Idle workers no waiting Trial can use while some Trial waits for a worker of another
    pod hash: deleted, to be rebuilt from the snapshot those Trials need."""
    wanted = {t.pod_hash for t in waiting}
    if not wanted:
        return []
    return [p for p in idle if pod_hash(p) not in wanted]


def worker_index(pod: dict[str, Any], search: str) -> int | None:
    suffix = pod["metadata"]["name"].removeprefix(f"{search}-worker-")
    return int(suffix) if suffix.isdigit() else None

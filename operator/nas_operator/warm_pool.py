"""Warm pool decisions (spec.trials.mode WarmPool), pure: no API calls.

A worker pod holds at most one assignment (annotation ``archsearch.io/assignment``, JSON
{trial, uid, attempt, architecture, config, outputDir, startTime}) and answers it in
``archsearch.io/result`` ({trial, uid, attempt, result}). A Trial runs on the worker named
in its ``status.podName`` with the assignment whose attempt is its ``status.attempts``;
any other assignment of it is an orphan (left by an operator that lost a race or died).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .names import ASSIGNMENT_ANNOTATION, LABEL_POD_HASH, RESULT_ANNOTATION
from .results import parse_result, short_message
from .trial_status import succeeded_status, terminated_state


def annotation_json(pod: dict[str, Any], key: str) -> dict[str, Any] | None:
    raw = (pod["metadata"].get("annotations") or {}).get(key)
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def run_key(doc: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(trial, uid, attempt): which run of which Trial an assignment or answer is about."""
    return doc.get("trial"), doc.get("uid"), doc.get("attempt")


def assignment_of(pod: dict[str, Any]) -> dict[str, Any] | None:
    return annotation_json(pod, ASSIGNMENT_ANNOTATION)


def answer_of(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The worker's answer to the pod's current assignment (None until it answered)."""
    assignment, answer = assignment_of(pod), annotation_json(pod, RESULT_ANNOTATION)
    if assignment is None or answer is None or run_key(answer) != run_key(assignment):
        return None
    return answer


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
        and assignment_of(pod) is None
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
    """Whether ``pod`` runs ``trial``'s current attempt."""
    if pod is None:
        return False
    assignment = assignment_of(pod)
    status = trial.get("status") or {}
    return (
        assignment is not None
        and status.get("podName") == pod["metadata"]["name"]
        and run_key(assignment)
        == (trial["metadata"]["name"], trial["metadata"]["uid"], status.get("attempts"))
    )


def adoptable(pod: dict[str, Any], trial: dict[str, Any]) -> bool:
    """An assignment written just before its operator died, the Trial still Pending: the
    next operator completes the step (sets the Trial Running) instead of running it twice."""
    assignment = assignment_of(pod)
    status = trial.get("status") or {}
    return (
        assignment is not None
        and not pod_ended(pod)
        and status.get("phase", "Pending") == "Pending"
        and run_key(assignment)
        == (
            trial["metadata"]["name"],
            trial["metadata"]["uid"],
            int(status.get("attempts") or 0) + 1,
        )
    )


def build_assignment(
    trial: dict[str, Any], attempt: int, config: dict[str, Any], output_dir: str | None, now: str
) -> dict[str, Any]:
    assignment = {
        "trial": trial["metadata"]["name"],
        "uid": trial["metadata"]["uid"],
        "attempt": attempt,
        "architecture": trial["spec"]["architecture"],
        "config": config,
        "startTime": now,
    }
    if output_dir:
        assignment["outputDir"] = output_dir
    return assignment


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


def choose_assignments(
    pending: list[Pending], idle: list[dict[str, Any]]
) -> list[tuple[Pending, dict[str, Any]]]:
    """Pending Trials (oldest index first) paired with idle workers of their pod hash."""
    free = sorted(idle, key=lambda p: p["metadata"]["name"])
    pairs = []
    for trial in sorted(pending, key=lambda t: t.index):
        worker = next((p for p in free if pod_hash(p) == trial.pod_hash), None)
        if worker is not None:
            free.remove(worker)
            pairs.append((trial, worker))
    return pairs


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

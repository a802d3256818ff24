"""A Trial's status, derived from its Job and the Job's pods (pure; no API calls).

Everything is recomputed from what is observed, so any event (Job, pod, Trial, or the
periodic repair) can trigger it and an operator restart loses nothing.
"""

from __future__ import annotations

from typing import Any

from nas_contracts.trial import FINISHED_PHASES

from .names import TRAINER_CONTAINER
from .results import TrialResult, parse_result, short_message
from .summary import summarize

FINISHED = FINISHED_PHASES
JOB_FAILURE_REASONS = {
    "PodFailurePolicy": "PermanentError",
    "BackoffLimitExceeded": "RetriesExhausted",
    "DeadlineExceeded": "Timeout",
}


def is_finished(trial: dict[str, Any]) -> bool:
    return (trial.get("status") or {}).get("phase") in FINISHED


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"  # an Indexed Job's pods


def terminated_state(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The trainer container's terminated state, if it has ended."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == TRAINER_CONTAINER:
            state = status.get("state") or {}
            return state.get("terminated") or (status.get("lastState") or {}).get("terminated")
    return None


def _started(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")


def _by_creation(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"])
    )


def _rank_zero(pod: dict[str, Any]) -> bool:
    """Not a later index of a multi-node trial's Indexed Job: only index 0 writes the result."""
    index = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX, "0")
    return index == "0"


def _result_of(pods: list[dict[str, Any]], exit_zero: bool) -> tuple[TrialResult | None, str]:
    """The result JSON (and raw message) of the newest pod that ended as asked (a result:
    index 0's; an error: any index's)."""
    for pod in reversed(_by_creation(pods)):
        if exit_zero and not _rank_zero(pod):
            continue
        term = terminated_state(pod)
        if term is None or (term.get("exitCode") == 0) != exit_zero:
            continue
        message = term.get("message") or ""
        return parse_result(message), message or str(term.get("reason") or "")
    return None, ""


def succeeded_status(result: TrialResult | None, raw: str) -> dict[str, Any]:
    """The status of a Trial whose trainer ended well (exit 0; or a warm worker's answer
    without an error): Succeeded with its reward, or InvalidResult."""
    if result is None or not result.succeeded:
        return {
            "phase": "Failed",
            "reason": "InvalidResult",
            "message": short_message(
                "the trainer exited 0 without a result JSON with a numeric reward in its "
                f"termination message: {raw!r}"
            ),
        }
    status: dict[str, Any] = {
        "phase": "Succeeded",
        "reason": "Completed",
        "reward": result.reward,
        "metrics": result.metrics,
        "message": "",
    }
    if result.seconds is not None:
        status["seconds"] = result.seconds
    if result.parameters is not None:
        status["parameters"] = result.parameters
    if result.epochs:
        status["epochs"] = result.epochs
    if result.estimate is not None:  # spec.trainer.sharedWeights (ENAS)
        status.update(reason="Estimated", estimate=result.estimate,
                      message="scored on the search's shared weights (spec.trainer."
                      "sharedWeights), not trained alone")
    if result.stopped_early:  # a partial result (spec.earlyStopping)
        status.update(reason="StoppedEarly", stoppedEarly=True,
                      message=short_message(result.stop_reason or "stopped early"))
    return status


def _failed(job_condition: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    result, raw = _result_of(pods, exit_zero=False)
    reason = JOB_FAILURE_REASONS.get(
        job_condition.get("reason", ""), job_condition.get("reason") or "Failed"
    )
    detail = (result.error if result and result.error else raw) or job_condition.get("message", "")
    return {"phase": "Failed", "reason": reason, "message": short_message(detail)}


def derive_trial_status(
    trial: dict[str, Any], job: dict[str, Any] | None, pods: list[dict[str, Any]]
) -> dict[str, Any]:
    """The Trial's new status; a finished Trial keeps the status it has."""
    old = dict(trial.get("status") or {})
    if old.get("phase") in FINISHED:
        return old
    summary = summarize(trial["spec"].get("architecture") or {})
    return {**derive_job_status(old, job, pods), "summary": summary}


def derive_job_status(
    old: dict[str, Any], job: dict[str, Any] | None, pods: list[dict[str, Any]]
) -> dict[str, Any]:
    """What a training Job and its pods say: phase, reason, message, reward, metrics, ...

    ``old`` is the status derived before (its ``jobName`` tells a lost Job from one not
    made yet). Shared by Trials and the search's final training.
    """
    status: dict[str, Any] = {}
    if job is None:
        if old.get("jobName"):
            status.update(
                phase="Failed",
                reason="JobLost",
                message=f"Job {old['jobName']} was deleted before it finished",
            )
        else:
            status.update(phase="Pending", reason="Creating", message="")
        return {**old, **status}
    job_status = job.get("status") or {}
    ordered = _by_creation(pods)
    status["jobName"] = job["metadata"]["name"]
    # Never decreases: an evicted pod is deleted, yet it was an attempt. A pod deleted
    # after it failed (`kubectl delete pod`, a lost node) is gone from the list, but the
    # Job counted it: its finished pods are attempts too.
    started = sum(1 for p in ordered if _started(p))
    counted = int(job_status.get("failed") or 0) + int(job_status.get("succeeded") or 0)
    status["attempts"] = max(started, counted, int(old.get("attempts") or 0))
    if ordered:
        status["podName"] = ordered[-1]["metadata"]["name"]
    if job_status.get("startTime"):
        status["startTime"] = job_status["startTime"]
    if (cond := _condition(job, "Complete")) is not None:
        if any(_rank_zero(p) and terminated_state(p) is not None for p in pods):
            result, raw = _result_of(pods, exit_zero=True)
            status.update(succeeded_status(result, raw))
        else:  # the result was only in the pod's termination message: not a trainer error
            status.update(
                phase="Failed",
                reason="ResultLost",
                message=f"Job {job['metadata']['name']} completed, but its pod was deleted "
                "before the operator read the result from it (a pod deleted as it finished, "
                "or its node lost); the result is gone",
            )
        status["completionTime"] = job_status.get("completionTime") or cond.get(
            "lastTransitionTime"
        )
    elif (cond := _condition(job, "Failed")) is not None:
        status.update(_failed(cond, pods))
        status["completionTime"] = cond.get("lastTransitionTime")
    elif (job.get("spec") or {}).get("suspend") and not job_status.get("active"):
        status.update(phase="Pending", reason="Suspended", message="the search is suspended")
    elif any((p.get("status") or {}).get("phase") == "Running" for p in ordered):
        running = [p for p in ordered if (p.get("status") or {}).get("phase") == "Running"]
        status.update(
            phase="Running", reason="", message="", podName=running[-1]["metadata"]["name"]
        )
    else:
        status.update(phase="Pending", reason="", message="")
    return {**old, **status}


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The merge patch from ``old`` to ``new`` (top-level keys; removed keys become None)."""
    patch = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch

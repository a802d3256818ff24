"""Run a Trial: make its Job once, then keep its status in line with the Job and pods.

Called on every event of a Trial, of its Job and of its pods, and by the periodic
repair; it reads what exists and writes only differences, so calling it twice (or from
two operators) is harmless. Status writes carry the resourceVersion they were computed
from: a concurrent writer makes one of them retry on fresh data instead of overwriting.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.client.rest import ApiException

from . import events, metrics
from .builders.rendezvous import build_service, nodes_of
from .builders.trial_job import build_trial_job
from .children import trainer_snapshot_for
from .config import OperatorSettings
from .k8s import KubeApi
from .refusals import Refused
from .search_record import SearchRecord, trial_generation
from .names import (
    API_VERSION,
    LABEL_TRIAL,
    SEARCH_KIND,
    TRIAL_KIND,
    job_name,
)
from .search_status import parse_time
from .summary import summarize
from .trial_status import FINISHED, derive_trial_status, status_patch

log = logging.getLogger(__name__)
CONFLICT_RETRIES = 3


def _create_job(
    api: KubeApi, trial: dict[str, Any], search: dict[str, Any] | None, settings: OperatorSettings
) -> tuple[dict[str, Any] | None, bool]:
    """(the Job, whether this call made it); (None, False) without a search."""
    if search is None:
        return None, False
    run, warning = trainer_snapshot_for(api, search, trial_generation(trial))
    if warning:
        events.warning(trial, "TrainerSnapshotMissing", warning)
    # No Event for the Job: status.jobName says it, and one Event per trial outcome is
    # enough at 20,000 trials (the Job controller adds its own).
    job = build_trial_job(trial, run, settings, suspend=SearchRecord.of(search).suspend)
    if nodes_of(run.trainer) > 1:  # before the Job: its pods are named by this Service
        api.create(build_service(job))
    return api.create(job)


def _duration(status: dict[str, Any]) -> float | None:
    if not status.get("startTime") or not status.get("completionTime"):
        return None
    return (parse_time(status["completionTime"]) - parse_time(status["startTime"])).total_seconds()


def _announce_finish(trial: dict[str, Any], status: dict[str, Any]) -> None:
    meta = trial["metadata"]
    metrics.record_trial_finished(
        meta["namespace"],
        trial["spec"]["searchName"],
        status["phase"],
        status.get("reason", ""),
        _duration(status),
    )
    if status["phase"] == "Succeeded":
        events.normal(trial, "Succeeded", f"reward {status['reward']:.6g}")
    else:
        events.warning(
            trial, status.get("reason") or "Failed", status.get("message") or "the trial failed"
        )


def sync_trial(
    api: KubeApi, namespace: str, name: str, settings: OperatorSettings
) -> dict[str, Any] | None:
    """Bring the Trial ``namespace/name`` up to date; returns its new status (None if gone)."""
    for _ in range(CONFLICT_RETRIES):
        trial = api.get(API_VERSION, TRIAL_KIND, namespace, name)
        if trial is None:
            return None
        old = trial.get("status") or {}
        if old.get("phase") in FINISHED:
            return old
        job = api.get("batch/v1", "Job", namespace, job_name(name))
        made = False  # a Job made just now has no pods yet: no need to list them
        if job is None and not old.get("jobName"):
            search = api.get(
                API_VERSION, SEARCH_KIND, namespace, trial["spec"]["searchName"]
            )
            if search is not None and SearchRecord.of(search).warm_pool:
                return old  # no Job: the warm pool (warm_pool_sync.py) runs this Trial
            try:
                job, made = _create_job(api, trial, search, settings)
            except Refused as err:
                return _refused(api, trial, search, old, err)
            if job is None:
                new = {
                    **old,
                    "phase": "Failed",
                    "reason": "SearchNotFound",
                    "message": f"ArchitectureSearch {trial['spec']['searchName']} does not exist",
                }
                return write_trial_status(api, trial, old, new)
        pods = (
            api.list("v1", "Pod", namespace, f"{LABEL_TRIAL}={name}")
            if job is not None and not made
            else []
        )
        new = derive_trial_status(trial, job, pods)
        try:
            return write_trial_status(api, trial, old, new)
        except Refused as err:
            log.error("status of trial %s/%s refused: %s", namespace, name, err)
            events.warning_once(trial, "StatusRefused", err.sentence())
            return None
        except ApiException as err:
            if err.status != 409:
                raise
            log.debug("trial %s/%s changed while syncing; retrying", namespace, name)
    return None


def _refused(
    api: KubeApi,
    trial: dict[str, Any],
    search: dict[str, Any] | None,
    old: dict[str, Any],
    err: Refused,
) -> dict[str, Any] | None:
    """The API server refused the Trial's Job (or the trainer snapshot it is built from):
    the same spec gets the same answer, so the Trial fails at once and counts as a failed
    trial (spec.trials.maxFailed ends a search whose every Job is refused)."""
    reason = "JobRefused" if err.kind == "Job" else "CreateRefused"
    new = {
        **old,
        "phase": "Failed",
        "reason": reason,
        "message": err.sentence(),
        "summary": summarize(trial["spec"].get("architecture") or {}),
    }
    try:
        written = write_trial_status(api, trial, old, new)  # posts the Warning on the Trial
    except Refused as refusal:
        events.warning_once(trial, "StatusRefused", refusal.sentence())
        return None
    except ApiException as conflict:
        if conflict.status != 409:
            raise
        return None  # changed meanwhile: its next event syncs it again
    if search is not None:
        events.warning(search, reason, f"trial {trial['metadata']['name']}: {err.sentence()}")
    return written


def write_trial_status(
    api: KubeApi, trial: dict[str, Any], old: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """Patch the Trial's status from ``old`` to ``new``, conditional on the resourceVersion
    it was read at (409 when it changed); announces a finish (metrics, Event)."""
    patch = status_patch(old, new)
    if not patch:
        return new
    meta = trial["metadata"]
    api.patch(
        API_VERSION,
        TRIAL_KIND,
        meta["namespace"],
        meta["name"],
        {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": patch},
        subresource="status",
    )
    if new.get("phase") in FINISHED:
        _announce_finish(trial, new)
    return new

"""Keep the best architecture's weights: point at them, or run the final training Job.

Called by the search's status pass once the controller has decided (not TooManyFailures)
and no Trial is active; returns the new ``status.final``. Idempotent like every other
child: the Job has a fixed name, a create answering 409 means it exists, and a Job that
vanished after ``status.final.jobName`` was written is reported lost, never made again.
"""

from __future__ import annotations

from typing import Any

from . import events
from .builders.final_job import build_final_job
from .children import ensure, trainer_snapshot_for
from .config import OperatorSettings
from .final_status import FINAL_DONE, final_from_job, skip_reason, skipped, trial_weights
from .k8s import KubeApi
from .names import (
    API_VERSION,
    COMPONENT_FINAL,
    LABEL_COMPONENT,
    LABEL_SEARCH,
    TRIAL_KIND,
    final_job_name,
)
from .records import PodRecord
from .refusals import Refused
from .search_record import SearchRecord, trial_generation


def _controller_holds_volume(pod: PodRecord | None) -> bool:
    """The controller pod exits after its decision; until then a ReadWriteOnce claim may be
    attached to its node only, and a final pod elsewhere would wait for it."""
    return pod is not None and pod.phase not in ("Succeeded", "Failed")


def sync_final(
    api: KubeApi,
    search: dict[str, Any],
    best: dict[str, Any] | None,
    pod: PodRecord | None,
    settings: OperatorSettings,
) -> dict[str, Any]:
    meta = search["metadata"]
    old = (search.get("status") or {}).get("final") or {}
    if old.get("phase") in FINAL_DONE:
        return old
    reason = skip_reason(search, best)
    if reason or best is None:
        return skipped(reason, best)
    job = api.get("batch/v1", "Job", meta["namespace"], final_job_name(meta["name"]))
    if job is None and not old.get("jobName"):
        if SearchRecord.of(search).suspend:
            return {"phase": "Pending", "trial": best["name"], "message": "the search is suspended"}
        if _controller_holds_volume(pod):
            return {
                "phase": "Pending",
                "trial": best["name"],
                "message": "waiting for the controller pod to exit and free the volume",
            }
        trial = api.get(API_VERSION, TRIAL_KIND, meta["namespace"], best["name"])
        if trial is None:
            return skipped(f"the best trial {best['name']} was deleted", best)
        generation = trial_generation(trial)
        try:
            run, warning = trainer_snapshot_for(api, search, generation)
            if warning:
                events.warning(search, "TrainerSnapshotMissing", warning)
            if run.mount_search_volume and not run.shares_weights:
                weights = trial_weights(best["index"])
                return skipped(
                    f"the pod of {best['name']} wrote its weights to the volume", best, weights
                )
            job, created = ensure(api, build_final_job(search, trial, run, settings))
        except Refused as err:
            # permanent: the search keeps its best architecture, without kept weights
            message = f"final training not started: {err.sentence()}"
            events.warning(search, "FinalTrainingRefused", message)
            return {"phase": "Failed", "trial": best["name"], "message": message}
        if created:
            events.normal(
                search,
                "FinalTrainingStarted",
                f"training {best['name']} (reward {best['reward']:.6g}) again in Job "
                f"{job['metadata']['name']} to keep its weights on the volume",
            )
    selector = f"{LABEL_SEARCH}={meta['name']},{LABEL_COMPONENT}={COMPONENT_FINAL}"
    pods = api.list("v1", "Pod", meta["namespace"], selector) if job is not None else []
    return final_from_job(old, old.get("trial") or best["name"], job, pods)


def announce_final(search: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    """Events for a final training that just ended (after its status was written)."""
    phase = after.get("phase")
    if phase == before.get("phase") or not after.get("jobName"):
        return
    if phase == "Succeeded":
        events.normal(search, "FinalTrainingSucceeded", after.get("message", ""))
    elif phase == "Failed":
        events.warning(
            search,
            "FinalTrainingFailed",
            f"{after.get('message', '')}; the search still succeeds, without kept weights",
        )

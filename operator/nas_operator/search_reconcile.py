"""One pass over one search: its controller pod, its status, its metrics, trial repair,
and once it has decided, its final training (final_training.py).

Runs from the status loop (at a bounded rate, never per Trial event). The Trial counts
and the best trial come from the kopf index, so a pass costs one GET of the search, a
status patch only when something changed, and a pod create/delete when needed.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.client.rest import ApiException

from . import events, metrics
from .builders.controller_pod import build_controller_pod
from .builders.storage import claim_name
from .config import OperatorSettings
from .final_training import announce_final, sync_final
from .k8s import KubeApi
from .names import API_VERSION, SEARCH_KIND
from .records import PodRecord, TrialRecord
from .refusals import Refused
from .search_record import SearchRecord
from .search_status import (
    FINAL,
    PodAction,
    Refusal,
    backoff_left,
    best_trial,
    controller_pod_action,
    controller_progress,
    count_trials,
    derive_search_status,
    in_final_stage,
    restarts_in_a_row,
    utcnow,
)
from .trial_status import status_patch
from .warm_pool_sync import sync_warm_pool

log = logging.getLogger(__name__)
OPERATOR_FIELDS_IGNORED = ("controller",)  # the controller's part of the status


def _operator_status(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in OPERATOR_FIELDS_IGNORED}


def _act_on_pod(
    api: KubeApi,
    search: dict[str, Any],
    action: PodAction,
    pod: PodRecord | None,
    settings: OperatorSettings,
    status: dict[str, Any],
) -> None:
    """Create or delete the controller pod; records controllerPod/Restarts in ``status``."""
    old = search.get("status") or {}
    meta = search["metadata"]
    if action is PodAction.CREATE:
        created_pod, created = api.create(build_controller_pod(search, settings))
        if created and old.get("controllerPod"):
            status["controllerRestarts"] = int(old.get("controllerRestarts") or 0) + 1
            status["controllerRestartsInARow"] = restarts_in_a_row(old) + 1
            status["controllerProgress"] = controller_progress(old)
            metrics.CONTROLLER_RESTARTS.labels(meta["namespace"], meta["name"]).inc()
            events.warning(
                search,
                "ControllerReplaced",
                f"replaced controller pod {created_pod['metadata']['name']}",
            )
        elif created:
            events.normal(
                search,
                "ControllerCreated",
                f"created controller pod {created_pod['metadata']['name']}",
            )
        status["controllerPod"] = created_pod["metadata"]["name"]
    elif action is PodAction.DELETE and pod is not None:
        api.delete("v1", "Pod", meta["namespace"], pod.name, uid=pod.uid)
        if status["phase"] == "Failed":
            status["controllerPod"] = None
            events.normal(
                search,
                "ControllerStopped",
                f"deleted controller pod {pod.name}: the search failed; a new spec resumes it",
            )
        elif status["phase"] == "Suspended":
            status["controllerPod"] = None
            events.normal(
                search,
                "ControllerStopped",
                f"deleted controller pod {pod.name}: the search is suspended",
            )
        else:
            events.warning(
                search,
                "ControllerEnded",
                f"controller pod {pod.name} ended ({pod.message}); replacing it",
            )


def reconcile_search(
    api: KubeApi,
    namespace: str,
    name: str,
    records: list[TrialRecord],
    pod: PodRecord | None,
    settings: OperatorSettings,
) -> float | None:
    """One pass over a search's status and controller pod. Returns the seconds after which
    it needs another pass that no event will ask for (a controller pod's back-off, a warm
    trial's timeout), or None."""
    search = api.get(API_VERSION, SEARCH_KIND, namespace, name)
    if search is None or search["metadata"].get("deletionTimestamp"):
        return None
    old = search.get("status") or {}
    if old.get("observedGeneration") is None:
        return None  # its children are not made yet (on.create runs first)
    refusal = None
    final = None
    pool_due = None
    try:
        if SearchRecord.of(search).warm_pool:  # an ended search's pool is released
            pool_due = sync_warm_pool(api, search, records, settings)
        if in_final_stage(search, count_trials(records)):
            final = sync_final(api, search, best_trial(records), pod, settings)
    except Refused as err:
        refusal = refusal_of(search, err)
    now = utcnow()
    volume = volume_condition(api, search)

    def derive() -> dict[str, Any]:
        status = derive_search_status(
            search, records, pod, now, settings.controller_restart_limit, final, refusal, volume
        )
        for key in ("controllerPod", "controllerRestarts", "controllerRestartsInARow",
                    "controllerProgress", "observedGeneration"):
            if key in old:
                status[key] = old[key]
        if status["phase"] in ("Suspended", "Failed") and pod is None:
            # stopped on purpose, so the next create is no restart; said again on every
            # pass because the pass that deleted the pod may have lost its status write (409)
            status["controllerPod"] = None
        return status

    status = derive()
    action = controller_pod_action(
        search,
        status["phase"],
        pod,
        now,
        settings.controller_restart_backoff_seconds,
        _failed_reason(status),
    )
    try:
        _act_on_pod(api, search, action, pod, settings, status)
    except Refused as err:
        refusal = refusal_of(search, err)
        status = derive()
    if status.get("controllerPod") is None:
        status.pop("controllerPod", None)
    patch = status_patch(_operator_status(old), status)
    if patch:
        try:
            api.patch(
                API_VERSION,
                SEARCH_KIND,
                namespace,
                name,
                {
                    "metadata": {"resourceVersion": search["metadata"]["resourceVersion"]},
                    "status": patch,
                },
                subresource="status",
            )
        except Refused as err:
            # told once; retried on the next resync (a pass's own writes are bounded, so
            # this is the server's limits changing, or a bug: either way a user must see it)
            log.error("status of %s/%s refused: %s", namespace, name, err)
            events.warning_once(search, "StatusRefused", err.sentence())
            return pool_due
        except ApiException as err:
            if err.status != 409:
                raise
            return pool_due  # changed meanwhile: that change marks the search for the next pass
        announce_final(search, old.get("final") or {}, status.get("final") or {})
        _announce_phase(search, old.get("phase"), status)
    best = (status.get("best") or {}).get("reward")
    metrics.record_search(namespace, name, status["phase"], status["trials"], best)
    if action is PodAction.NONE and pod is not None and pod.phase in ("Failed", "Succeeded"):
        wait = backoff_left(search, pod, now, settings.controller_restart_backoff_seconds)
        return sooner(pool_due, wait + 0.1 if wait > 0 else None)
    return pool_due


def sooner(*delays: float | None) -> float | None:
    """The earliest of the passes asked for (None: none asked)."""
    asked = [d for d in delays if d is not None]
    return min(asked) if asked else None


def refusal_of(search: dict[str, Any], err: Refused) -> Refusal:
    """A refused write as the search's Failed reason; told at once as a Warning Event."""
    reason = f"{err.action.capitalize()}Refused"
    message = f"{err.sentence()}; fix the spec (or the namespace's policy) and apply again"
    events.warning(search, reason, message)
    return Refusal(reason, message)


def _failed_reason(status: dict[str, Any]) -> str:
    cond = next((c for c in status["conditions"] if c["type"] == "Failed"), {})
    return str(cond.get("reason") or "") if cond.get("status") == "True" else ""


def volume_condition(api: KubeApi, search: dict[str, Any]) -> tuple[bool, str, str] | None:
    """Whether the claim a search names (spec.storage.claimName) exists; looked at only
    while it may be missing (before the search runs), None otherwise (kept as it was)."""
    claim = SearchRecord.of(search).storage.claim_name
    status = search.get("status") or {}
    previous = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "VolumeReady"), None
    )
    looked = status.get("phase") in (None, "Pending") or (
        previous is not None and previous.get("status") != "True"
    )
    if not claim or status.get("phase") in FINAL or not looked:
        return None
    if api.get("v1", "PersistentVolumeClaim", search["metadata"]["namespace"], claim) is None:
        return (
            False,
            "ClaimNotFound",
            f"PersistentVolumeClaim {claim} (spec.storage.claimName) does not exist yet: the "
            "controller pod waits for it; create it in this namespace or fix the name",
        )
    return True, "ClaimFound", f"PersistentVolumeClaim {claim_name(search)} exists"


def _announce_phase(search: dict[str, Any], before: str | None, status: dict[str, Any]) -> None:
    phase = status["phase"]
    if phase == before:
        return
    condition = {"Succeeded": "Complete", "Failed": "Failed", "Suspended": "Suspended"}.get(phase)
    detail = (
        next((c for c in status["conditions"] if c["type"] == condition), {}) if condition else {}
    )
    message = detail.get("message") or detail.get("reason") or f"the search is {phase}"
    if phase == "Failed":
        events.warning(search, "SearchFailed", message)
    else:
        events.normal(search, f"Search{phase}", message)


def trials_to_repair(
    records: list[TrialRecord], jobs: dict[str, bool | None], limit: int = 50
) -> list[str]:
    """Unfinished Trials whose Job is missing or finished: an event was missed; resync them.

    ``jobs`` maps a trial name to whether its Job finished (None when there is no Job).
    """
    stale = [
        r.name
        for r in records
        if r.phase not in ("Succeeded", "Failed") and jobs.get(r.name) in (None, True)
    ]
    return stale[:limit]

"""Which events of a trial's Job and pods can change the Trial's status (trial_status.py).

Each event that passes costs a sync (a GET of the Trial and the Job, a list of its pods);
a pod sends about seven events in its life and a Job five, most of them bookkeeping
(scheduling, conditions, finalizers, deletion by the cleanup). At 1,000 trials at once the
skipped ones are most of the operator's work. What a filter might miss, the status loop's
repair (search_reconcile.trials_to_repair) still catches: an unfinished Trial whose Job
finished or is gone is synced on the next pass.

``type`` is the watch event's type; None for kopf's initial listing (always synced).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TERMINAL = ("Succeeded", "Failed")


def job_finished(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def job_event_matters(
    type_: str | None, spec: Mapping[str, Any], status: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> bool:
    """A Job's end (Complete/Failed), its suspension, its loss before the end, a listing.
    A finished Job's later events (the cleanup deleting it) change nothing."""
    if type_ is None:
        return True
    if job_finished(status):
        return type_ != "DELETED" and not meta.get("deletionTimestamp")
    return type_ == "DELETED" or bool(spec.get("suspend"))


def pod_event_matters(
    type_: str | None, status: Mapping[str, Any], meta: Mapping[str, Any]
) -> bool:
    """A new pod (its name), a running one, its end, its loss before the end, a listing.
    A pending pod's scheduling and a finished pod's deletion change nothing."""
    if type_ is None:
        return True
    phase = status.get("phase")
    if phase in TERMINAL:
        return type_ != "DELETED" and not meta.get("deletionTimestamp")
    return type_ in ("ADDED", "DELETED") or phase == "Running"

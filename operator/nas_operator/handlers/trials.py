"""Trial handlers: every event of a Trial, its Job or its pods resyncs that Trial.

Plain event handlers (no kopf progress annotations, no finalizer on Trials); what an
event handler misses, the status loop's repair catches.
"""

from __future__ import annotations

from typing import Any

import kopf

from .. import metrics
from ..config import SETTINGS
from ..event_filters import job_event_matters, pod_event_matters
from ..k8s import api
from ..names import (
    COMPONENT_CONTROLLER,
    COMPONENT_TRIAL,
    GROUP,
    LABEL_COMPONENT,
    LABEL_SEARCH,
    LABEL_TRIAL,
    MODE_WARM_POOL,
    TRIAL_PLURAL,
    VERSION,
)
from ..status_loop import LOOP
from ..trial_status import FINISHED
from ..trial_sync import sync_trial
from .workers import pool_pass


@kopf.on.event(GROUP, VERSION, TRIAL_PLURAL)
@metrics.instrumented("trial")
def trial_event(
    event: kopf.RawEvent,
    namespace: str,
    name: str,
    spec: kopf.Spec,
    status: kopf.Status,
    trial_jobs: kopf.Index,
    searches: kopf.Index,
    trials_by_search: kopf.Index,
    **_: Any,
) -> None:
    """A new Trial gets its Job (or, mode WarmPool, a worker); later ones are followed
    through their Job's (or worker's) events."""
    search_name = spec.get("searchName")
    LOOP.mark(namespace, search_name)
    if (
        event["type"] == "DELETED"
        or status.get("phase") in FINISHED
        or (namespace, name) in trial_jobs
        or status.get("jobName")  # its Job is made: its Job's and pods' events follow it
    ):
        return
    if MODE_WARM_POOL in searches.get((namespace, search_name), []):
        if status.get("phase", "Pending") == "Pending":
            pool_pass(namespace, search_name, trials_by_search)
        return
    sync_trial(api(), namespace, name, SETTINGS)


def _job_matters(type: str | None, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                 **_: Any) -> bool:
    return job_event_matters(type, spec, status, meta)


def _pod_matters(type: str | None, status: kopf.Status, meta: kopf.Meta, **_: Any) -> bool:
    return pod_event_matters(type, status, meta)


# when=: only the events that can change the Trial (event_filters.py) cost a sync
@kopf.on.event("batch", "v1", "jobs", labels={LABEL_COMPONENT: COMPONENT_TRIAL}, when=_job_matters)
@metrics.instrumented("trial_job")
def trial_job_event(namespace: str, labels: kopf.Labels, **_: Any) -> None:
    sync_trial(api(), namespace, labels[LABEL_TRIAL], SETTINGS)
    LOOP.mark(namespace, labels.get(LABEL_SEARCH))


@kopf.on.event("v1", "pods", labels={LABEL_COMPONENT: COMPONENT_TRIAL}, when=_pod_matters)
@metrics.instrumented("trial_pod")
def trial_pod_event(namespace: str, labels: kopf.Labels, **_: Any) -> None:
    sync_trial(api(), namespace, labels[LABEL_TRIAL], SETTINGS)


@kopf.on.event("v1", "pods", labels={LABEL_COMPONENT: COMPONENT_CONTROLLER})
def controller_pod_event(namespace: str, labels: kopf.Labels, **_: Any) -> None:
    LOOP.mark(namespace, labels.get(LABEL_SEARCH))

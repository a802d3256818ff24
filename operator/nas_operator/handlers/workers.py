"""Warm pool handlers (spec.trials.mode WarmPool): an event of a worker pod (an answer, a
death) or a new Pending Trial runs a pass of its search's pool at once, so a worker waits
for its next Trial no longer than the API round trips; the status loop's pass repairs
what an event missed."""

from __future__ import annotations

from typing import Any

import kopf

from .. import metrics
from ..config import SETTINGS
from ..k8s import api
from ..names import (
    API_VERSION,
    COMPONENT_WORKER,
    LABEL_COMPONENT,
    LABEL_SEARCH,
    SEARCH_KIND,
)
from ..refusals import Refused
from ..search_record import SearchRecord
from ..status_loop import LOOP
from ..warm_pool_sync import sync_warm_pool


def pool_pass(namespace: str, search_name: str, trials_by_search: kopf.Index) -> None:
    search = api().get(API_VERSION, SEARCH_KIND, namespace, search_name)
    if (
        search is None
        or search["metadata"].get("deletionTimestamp")
        or not SearchRecord.of(search).warm_pool
        or (search.get("status") or {}).get("observedGeneration") is None
    ):
        return
    records = list(trials_by_search.get((namespace, search_name), []))
    try:
        due = sync_warm_pool(api(), search, records, SETTINGS)
    except Refused:
        LOOP.mark(namespace, search_name)  # its status pass meets it too and fails the search
        return
    if due is not None:  # a running trial's timeout: no event will come then
        LOOP.mark_in(namespace, search_name, due)


@kopf.on.event("v1", "pods", labels={LABEL_COMPONENT: COMPONENT_WORKER})
@metrics.instrumented("worker_pod")
def worker_pod_event(
    namespace: str, labels: kopf.Labels, trials_by_search: kopf.Index, **_: Any
) -> None:
    search_name = labels.get(LABEL_SEARCH)
    if search_name:
        pool_pass(namespace, search_name, trials_by_search)
        LOOP.mark(namespace, search_name)

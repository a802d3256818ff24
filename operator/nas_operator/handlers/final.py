"""Final training handlers: an event of the final Job or its pods marks its search, whose
status pass reads them (final_training.py)."""

from __future__ import annotations

from typing import Any

import kopf

from ..names import COMPONENT_FINAL, LABEL_COMPONENT, LABEL_SEARCH
from ..status_loop import LOOP


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_COMPONENT: COMPONENT_FINAL})
def final_job_event(namespace: str, labels: kopf.Labels, **_: Any) -> None:
    LOOP.mark(namespace, labels.get(LABEL_SEARCH))


@kopf.on.event("v1", "pods", labels={LABEL_COMPONENT: COMPONENT_FINAL})
def final_pod_event(namespace: str, labels: kopf.Labels, **_: Any) -> None:
    LOOP.mark(namespace, labels.get(LABEL_SEARCH))

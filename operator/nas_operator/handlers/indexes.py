"""kopf indexes: in-memory views the status loop and the handlers read instead of listing.

https://kopf.readthedocs.io/en/stable/indexing/ : kopf fills every index from its
initial listing before any other handler runs.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..search_record import TrialsSpec
from ..names import (
    COMPONENT_CONTROLLER,
    COMPONENT_TRIAL,
    GROUP,
    LABEL_COMPONENT,
    SEARCH_PLURAL,
    TRIAL_PLURAL,
    VERSION,
)
from ..records import (
    JobRecord,
    PodRecord,
    TrialRecord,
    job_record,
    pod_record,
    search_of,
    trial_of,
    trial_record,
)


@kopf.index(GROUP, VERSION, SEARCH_PLURAL)
def searches(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], str]:
    """Each search's spec.trials.mode (Job or WarmPool)."""
    return {(namespace, name): TrialsSpec.of(spec).mode}


@kopf.index(GROUP, VERSION, TRIAL_PLURAL)
def trials_by_search(
    namespace: str, body: kopf.Body, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], TrialRecord]:
    return {(namespace, spec.get("searchName", "")): trial_record(body)}


@kopf.index("batch", "v1", "jobs", labels={LABEL_COMPONENT: COMPONENT_TRIAL})
def trial_jobs(namespace: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], JobRecord]:
    return {(namespace, trial_of(body)): job_record(body)}


@kopf.index("v1", "pods", labels={LABEL_COMPONENT: COMPONENT_CONTROLLER})
def controller_pods(namespace: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], PodRecord]:
    return {(namespace, search_of(body)): pod_record(body)}

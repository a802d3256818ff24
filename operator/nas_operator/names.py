"""Names, labels and API coordinates shared by every builder and handler.

Every object the operator makes has a deterministic name derived from its search or
trial, so a restarted operator (or a second one) finds what exists instead of creating
it twice: a create that answers 409 AlreadyExists means "already done".
"""

from __future__ import annotations

# The contract's names (docs/contracts.md), re-exported for the operator's modules.
from nas_contracts.api import (  # noqa: F401
    API_VERSION,
    GROUP,
    SEARCH_KIND,
    SEARCH_PLURAL,
    TRIAL_KIND,
    TRIAL_PLURAL,
    VERSION,
)
from nas_contracts.cluster import (  # noqa: F401
    COMPONENT_CONTROLLER,
    COMPONENT_FINAL,
    COMPONENT_RBAC,
    COMPONENT_SNAPSHOT,
    COMPONENT_STORAGE,
    COMPONENT_TRIAL,
    COMPONENT_WORKER,
    CONTROLLER_CONTAINER,
    DATA_VOLUME,
    LABEL_COMPONENT,
    LABEL_GENERATION,
    LABEL_MANAGED_BY,
    LABEL_POD_HASH,
    LABEL_TRIAL,
    MANAGED_BY,
    MODE_JOB,
    MODE_WARM_POOL,
    SNAPSHOT_KEY,
    TRAINER_CONTAINER,
    controller_name,
    final_job_name,
    pvc_name,
    snapshot_name,
    worker_account,
    worker_name,
)
from nas_contracts.trial import LABEL_SEARCH, LABEL_TRIAL_INDEX, trial_name  # noqa: F401
from nas_contracts.volume import MOUNT_PATH as DATA_MOUNT_PATH  # noqa: F401
from nas_contracts.warm_pool import ASSIGNMENT_ANNOTATION, RESULT_ANNOTATION  # noqa: F401

# The operator's own: its admission policies
ADMISSION_POLICY_NAME = "archsearch.io-controller-trials"
STATUS_POLICY_NAME = "archsearch.io-controller-status"
WORKER_POLICY_NAME = "archsearch.io-worker-pods"
SEARCH_POD_POLICY_NAME = "archsearch.io-search-pods"


def job_name(trial: str) -> str:
    """A trial's Job has the trial's name (contract 4)."""
    return trial


def search_labels(search: str, component: str) -> dict[str, str]:
    return {LABEL_SEARCH: search, LABEL_COMPONENT: component, LABEL_MANAGED_BY: MANAGED_BY}


def owner_reference(obj: dict, controller: bool = True) -> dict:
    """An owner reference to ``obj`` (a search or a trial), for garbage collection."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }

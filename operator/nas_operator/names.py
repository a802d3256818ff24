"""Names, labels and API coordinates shared by every builder and handler.

Every object the operator makes has a deterministic name derived from its search or
trial, so a restarted operator (or a second one) finds what exists instead of creating
it twice: a create that answers 409 AlreadyExists means "already done".
"""

from __future__ import annotations

GROUP = "archsearch.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
SEARCH_KIND = "ArchitectureSearch"
SEARCH_PLURAL = "architecturesearches"
TRIAL_KIND = "Trial"
TRIAL_PLURAL = "trials"

LABEL_SEARCH = "archsearch.io/search"
LABEL_TRIAL = "archsearch.io/trial"
LABEL_TRIAL_INDEX = "archsearch.io/trial-index"
LABEL_COMPONENT = "archsearch.io/component"
LABEL_GENERATION = "archsearch.io/generation"
LABEL_POD_HASH = "archsearch.io/pod-hash"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "nas-operator"

COMPONENT_CONTROLLER = "controller"
COMPONENT_TRIAL = "trial"
COMPONENT_STORAGE = "storage"
COMPONENT_RBAC = "rbac"
COMPONENT_SNAPSHOT = "trainer-snapshot"
COMPONENT_FINAL = "final-training"
COMPONENT_WORKER = "worker"

# spec.trials.mode: a Job per Trial, or warm worker pods that train successive Trials
MODE_JOB = "Job"
MODE_WARM_POOL = "WarmPool"
# a warm worker's pod annotations: the operator's assignment, the worker's answer
ASSIGNMENT_ANNOTATION = "archsearch.io/assignment"
RESULT_ANNOTATION = "archsearch.io/result"

TRAINER_CONTAINER = "trainer"
CONTROLLER_CONTAINER = "controller"
DATA_VOLUME = "search-data"
DATA_MOUNT_PATH = "/data"
SNAPSHOT_KEY = "trainer.json"

ADMISSION_POLICY_NAME = "archsearch.io-controller-trials"
STATUS_POLICY_NAME = "archsearch.io-controller-status"
WORKER_POLICY_NAME = "archsearch.io-worker-pods"
SEARCH_POD_POLICY_NAME = "archsearch.io-search-pods"


def controller_name(search: str) -> str:
    """The controller pod, its ServiceAccount, Role, RoleBinding and Lease."""
    return f"{search}-controller"


def worker_name(search: str, index: int) -> str:
    """Warm worker pod ``index`` of a search (mode WarmPool)."""
    return f"{search}-worker-{index}"


def worker_account(search: str) -> str:
    """The warm workers' ServiceAccount, Role and RoleBinding."""
    return f"{search}-worker"


def trials_mode(search: dict) -> str:
    return ((search.get("spec") or {}).get("trials") or {}).get("mode") or MODE_JOB


def pvc_name(search: str) -> str:
    return f"{search}-data"


def snapshot_name(search: str, generation: int) -> str:
    return f"{search}-trainer-{generation}"


def trial_name(search: str, index: int) -> str:
    return f"{search}-{index:05d}"


def job_name(trial: str) -> str:
    """A trial's Job has the trial's name (contract 4)."""
    return trial


def final_job_name(search: str) -> str:
    """The Job that retrains the best architecture (not a trial: no digits, no trial label)."""
    return f"{search}-final"


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

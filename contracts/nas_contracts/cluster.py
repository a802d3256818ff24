"""Section 7: operator, controller and trial pods: the objects' names, labels and env,
who may refuse what, and how the controller tells an error no restart mends.

Every object the operator makes has a name derived from its search or trial, so a
restarted operator (or a second one) finds what exists instead of making it twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .result import EXIT_PERMANENT as _EXIT_PERMANENT
from .trial import LABEL_SEARCH, LABEL_TRIAL_INDEX  # noqa: F401  (section 4's, used here too)

LABEL_TRIAL = "archsearch.io/trial"
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

# spec.trainer's keys that shape the pod; NAS_TRAINER_CONFIG is spec.trainer without them
TRAINER_POD_FIELDS = frozenset({
    "image", "command", "args", "resources", "nodeSelector", "tolerations", "affinity",
    "priorityClassName", "env", "volumes", "volumeMounts", "mountSearchVolume",
    "imagePullPolicy", "runtimeClassName", "serviceAccountName", "imagePullSecrets",
    "nodes",
})

TRAINER_CONTAINER = "trainer"
CONTROLLER_CONTAINER = "controller"
DATA_VOLUME = "search-data"  # the search volume, at volume.MOUNT_PATH
TMP_VOLUME = "tmp"  # every pod's writable emptyDir (the root filesystem is read-only)
TMP_MOUNT_PATH = "/tmp"
SNAPSHOT_KEY = "trainer.json"

# the env of the pods the operator makes (and of ``nas run``'s trial processes)
ENV_SEARCH_NAME = "NAS_SEARCH_NAME"
ENV_NAMESPACE = "NAS_NAMESPACE"
ENV_POD_NAME = "NAS_POD_NAME"
ENV_POD_UID = "NAS_POD_UID"
ENV_DATA_DIR = "NAS_DATA_DIR"
ENV_ARCHITECTURE = "NAS_ARCHITECTURE"
ENV_TRAINER_CONFIG = "NAS_TRAINER_CONFIG"
ENV_TRIAL_NAME = "NAS_TRIAL_NAME"
ENV_TRIAL_INDEX = "NAS_TRIAL_INDEX"
ENV_OUTPUT_DIR = "NAS_OUTPUT_DIR"
# a trial spanning spec.trainer.nodes pods (an Indexed Job): how many, and where rank 0's
# rendezvous listens (<job>-0.<job>, the Job's headless Service); each pod's node rank is
# the Job's own JOB_COMPLETION_INDEX
ENV_NODES = "NAS_NODES"
ENV_RENDEZVOUS_HOST = "NAS_RENDEZVOUS_HOST"
ENV_RENDEZVOUS_PORT = "NAS_RENDEZVOUS_PORT"
ENV_NODE_RANK = "JOB_COMPLETION_INDEX"
RENDEZVOUS_PORT = 29500
MAX_NODES = 64

# HTTP statuses by which the API server refuses an object: the same body gets the same
# answer, so they are reported, never retried in a loop
REFUSED_STATUSES = frozenset({400, 403, 413, 422})


def controller_name(search: str) -> str:
    """The controller pod, its ServiceAccount, Role, RoleBinding and Lease."""
    return f"{search}-controller"


def worker_name(search: str, index: int) -> str:
    """Warm worker pod ``index`` of a search (mode WarmPool)."""
    return f"{search}-worker-{index}"


def worker_account(search: str) -> str:
    """The warm workers' ServiceAccount, Role and RoleBinding."""
    return f"{search}-worker"


def pvc_name(search: str) -> str:
    return f"{search}-data"


def snapshot_name(search: str, generation: int) -> str:
    return f"{search}-trainer-{generation}"


def final_job_name(search: str) -> str:
    """The Job that retrains the best architecture (not a trial: no digits, no trial label)."""
    return f"{search}-final"


# --- the controller's exit ------------------------------------------------------------

CONTROLLER_EXIT_DONE = 0  # decided, suspended, deleted or SIGTERM
CONTROLLER_EXIT_RESTART = 1  # anything a new pod may get past
CONTROLLER_EXIT_PERMANENT = _EXIT_PERMANENT  # nas-train's 3: no restart mends it
# the reasons of an exit 3
INVALID_SPEC = "InvalidSpec"
TRIAL_REFUSED = "TrialRefused"
STATUS_REFUSED = "StatusRefused"
INVALID_CONFIGURATION = "InvalidConfiguration"
EXIT_MESSAGE_LIMIT = 3000  # characters of the message: the kubelet keeps 4 KiB in all


@dataclass(frozen=True)
class ControllerExit:
    """What a controller that exits 3 says in its termination message."""

    reason: str
    message: str
    generation: int | None = None  # the search's metadata.generation it is about

    def to_message(self) -> str:
        message = self.message
        if len(message) > EXIT_MESSAGE_LIMIT:
            message = message[:EXIT_MESSAGE_LIMIT] + "..."
        doc: dict[str, Any] = {"reason": self.reason, "message": message}
        if self.generation is not None:
            doc["generation"] = int(self.generation)
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def of_message(cls, text: str) -> "ControllerExit":
        """The termination message read back; plain text is an InvalidSpec's message."""
        try:
            said: Any = json.loads(text)
        except (ValueError, TypeError, RecursionError):
            said = None
        if not isinstance(said, dict):
            said = {"message": text}
        generation = said.get("generation")
        return cls(
            reason=str(said.get("reason") or INVALID_SPEC),
            message=str(said.get("message") or "the controller found the spec invalid"),
            generation=generation
            if isinstance(generation, int) and not isinstance(generation, bool)
            else None,
        )

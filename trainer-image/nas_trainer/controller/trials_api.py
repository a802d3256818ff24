"""Trial objects (contract 4): names, bodies, and the calls that create and read them.

A Trial is the write-ahead record of a proposal: once it exists the proposal can no
longer be lost, and its name fixes its index, so ``AlreadyExists`` on create means
"this index was already written" and the existing object is adopted, never replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kubernetes import client
from kubernetes.client.rest import ApiException
# the contract's coordinates, also read through here by the controller's other modules
from nas_contracts.api import API_VERSION, GROUP, SEARCH_KIND, TRIAL_KIND, VERSION
from nas_contracts.api import SEARCH_PLURAL as SEARCHES
from nas_contracts.api import TRIAL_PLURAL as TRIALS
from nas_contracts.architecture import trial_architecture
from nas_contracts.trial import FINISHED_PHASES, LABEL_SEARCH, trial_index, trial_labels, trial_name

from nas_trainer.controller.informer import list_custom_objects
from nas_trainer.controller.permanent import StatusRefused, TrialRefused, is_refusal
from nas_trainer.controller.retry import retrying

def search_owner_reference(search_obj: dict[str, Any]) -> dict[str, Any]:
    meta = search_obj["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": SEARCH_KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        # the operator, not this controller, is the search's controller
        "controller": False,
        "blockOwnerDeletion": False,
    }


def build_trial(
    search_obj: dict[str, Any],
    index: int,
    architecture: dict[str, Any],
    log_prob: float | None,
    policy_version: int,
) -> dict[str, Any]:
    """The Trial body for one proposal; ``architecture`` is contract 2's JSON."""
    meta = search_obj["metadata"]
    search = meta["name"]
    spec: dict[str, Any] = {
        "searchName": search,
        "index": index,
        "architecture": trial_architecture(architecture),
        "policyVersion": int(policy_version),
        "searchGeneration": int(meta.get("generation") or 1),
    }
    if log_prob is not None:
        spec["logProb"] = float(log_prob)
    return {
        "apiVersion": API_VERSION,
        "kind": TRIAL_KIND,
        "metadata": {
            "name": trial_name(search, index),
            "namespace": meta["namespace"],
            "labels": trial_labels(search, index),
            "ownerReferences": [search_owner_reference(search_obj)],
        },
        "spec": spec,
    }


@dataclass(frozen=True)
class TrialView:
    """What the controller reads from a Trial object."""

    index: int
    name: str
    architecture: dict[str, Any]
    log_prob: float | None
    policy_version: int
    phase: str
    reward: float | None
    metrics: dict[str, Any]
    reason: str
    message: str
    seconds: float | None = None
    parameters: int | None = None
    stopped_early: bool = False   # status.stoppedEarly: a partial result (spec.earlyStopping)
    epochs: int | None = None

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES

    @property
    def hash(self) -> str:
        return str(self.architecture.get("hash", ""))


def view_trial(obj: dict[str, Any]) -> TrialView:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    reward = status.get("reward")
    return TrialView(
        index=trial_index(obj),
        name=obj["metadata"]["name"],
        architecture=dict(spec.get("architecture") or {}),
        log_prob=spec.get("logProb"),
        policy_version=int(spec.get("policyVersion") or 0),
        phase=str(status.get("phase") or "Pending"),
        reward=float(reward) if reward is not None else None,
        metrics=dict(status.get("metrics") or {}),
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        seconds=float(status["seconds"]) if status.get("seconds") is not None else None,
        parameters=int(status["parameters"]) if status.get("parameters") is not None else None,
        stopped_early=status.get("stoppedEarly") is True,
        epochs=int(status["epochs"]) if status.get("epochs") is not None else None,
    )


class TrialsApi:
    """The few API calls on Trials and on the search that the controller makes, each
    retried through transient errors while ``check`` (the write guard, once the lease is
    held) lets this controller go on."""

    def __init__(self, api: client.CustomObjectsApi, namespace: str, search: str) -> None:
        self.api = api
        self.namespace = namespace
        self.search = search
        self.check: Callable[[], None] | None = None

    @property
    def selector(self) -> str:
        return f"{LABEL_SEARCH}={self.search}"

    def create_or_adopt(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the Trial; if its index was already written, return the existing one.
        A create retried after a lost response finds its own Trial: adopted the same way."""
        name = body["metadata"]["name"]
        try:
            created = retrying(
                lambda: self.api.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, TRIALS, body),
                f"creating trial {name}", self.check)
            return created, True
        except ApiException as err:
            if is_refusal(err):  # the same Trial would be refused again: permanent
                raise TrialRefused(name, err) from err
            if err.status != 409:
                raise
        existing = retrying(
            lambda: self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, TRIALS, name),
            f"reading trial {name}", self.check)
        return existing, False

    def list_trials(self) -> list[dict[str, Any]]:
        items, _ = retrying(
            lambda: list_custom_objects(self.api, GROUP, VERSION, self.namespace, TRIALS,
                                        label_selector=self.selector),
            "listing trials", self.check)
        return items

    def read_search(self) -> dict[str, Any]:
        return retrying(
            lambda: self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, SEARCHES, self.search),
            f"reading search {self.search}", self.check)

    def patch_search_status(self, patch: dict[str, Any], give_up_after_s: float = 120.0
                            ) -> dict[str, Any]:
        try:
            return retrying(
                lambda: self.api.patch_namespaced_custom_object_status(
                    GROUP, VERSION, self.namespace, SEARCHES, self.search, {"status": patch}),
                f"patching the status of {self.search}", self.check, give_up_after_s)
        except ApiException as err:
            if is_refusal(err):  # a decision the server will never take: tell, do not loop
                raise StatusRefused(self.search, err) from err
            raise

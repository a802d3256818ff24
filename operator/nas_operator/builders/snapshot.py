"""Trainer snapshots: ``spec.trainer`` (and how trials run) as it was at one generation.

A Trial records the search generation it was made under; its Job is built from the
snapshot of that generation, an immutable ConfigMap ``<search>-trainer-<generation>``
owned by the search, so editing spec.trainer never changes trials already proposed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..search_record import DEFAULT_RETRIES, DEFAULT_TIMEOUT_SECONDS, SearchRecord
from ..names import (
    COMPONENT_SNAPSHOT,
    LABEL_GENERATION,
    SNAPSHOT_KEY,
    owner_reference,
    search_labels,
    snapshot_name,
)
from .storage import claim_name, trial_pods_mount_volume


@dataclass(frozen=True)
class TrainerSnapshot:
    """How the trials of one generation run: the snapshot's JSON, typed (its keys are
    unchanged, so snapshots written before read the same)."""

    generation: int
    trainer: Mapping[str, Any]  # spec.trainer as it was
    retries: int  # spec.trials.retries
    timeout_seconds: int  # spec.trials.timeoutSeconds
    claim_name: str  # the search volume's claim
    mount_search_volume: bool  # trial pods mount it (at /data)

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> "TrainerSnapshot":
        return cls(
            generation=int(doc.get("generation") or 1),
            trainer=dict(doc.get("trainer") or {}),
            retries=int(doc.get("retries", DEFAULT_RETRIES)),
            timeout_seconds=int(doc.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)),
            claim_name=str(doc.get("claimName") or ""),
            mount_search_volume=bool(doc.get("mountSearchVolume")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "trainer": dict(self.trainer),
            "retries": self.retries,
            "timeoutSeconds": self.timeout_seconds,
            "claimName": self.claim_name,
            "mountSearchVolume": self.mount_search_volume,
        }

    def with_epochs(self, epochs: int) -> "TrainerSnapshot":
        return dataclasses.replace(self, trainer={**self.trainer, "epochs": epochs})

    @property
    def shares_weights(self) -> bool:
        """spec.trainer.sharedWeights: trials are scored on a supernet and keep no weights
        of their own."""
        return "sharedWeights" in self.trainer

    def standalone(self) -> "TrainerSnapshot":
        """Without spec.trainer.sharedWeights: the child trains alone (the final training
        of a shared-weights search retrains its best from scratch)."""
        trainer = {k: v for k, v in self.trainer.items() if k != "sharedWeights"}
        return dataclasses.replace(self, trainer=trainer)


def trial_run_spec(search: dict[str, Any], claim_access_modes: list[str]) -> TrainerSnapshot:
    """What a trial Job needs from its search, resolved now (claim, whether to mount it)."""
    record = SearchRecord.of(search)
    trainer = dict(search["spec"].get("trainer") or {})
    return TrainerSnapshot(
        generation=record.generation,
        trainer=trainer,
        retries=record.trials.retries,
        timeout_seconds=record.trials.timeout_seconds,
        claim_name=claim_name(search),
        mount_search_volume=trial_pods_mount_volume(trainer, claim_access_modes),
    )


def build_trainer_snapshot(search: dict[str, Any], claim_access_modes: list[str]) -> dict[str, Any]:
    name = search["metadata"]["name"]
    run = trial_run_spec(search, claim_access_modes)
    labels = search_labels(name, COMPONENT_SNAPSHOT)
    labels[LABEL_GENERATION] = str(run.generation)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": snapshot_name(name, run.generation),
            "namespace": search["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(search)],
        },
        "immutable": True,
        "data": {SNAPSHOT_KEY: json.dumps(run.to_json(), sort_keys=True)},
    }


def read_trainer_snapshot(config_map: dict[str, Any]) -> TrainerSnapshot:
    return TrainerSnapshot.of(json.loads(config_map["data"][SNAPSHOT_KEY]))

"""Trainer snapshots: ``spec.trainer`` (and how trials run) as it was at one generation.

A Trial records the search generation it was made under; its Job is built from the
snapshot of that generation, an immutable ConfigMap ``<search>-trainer-<generation>``
owned by the search, so editing spec.trainer never changes trials already proposed.
"""

from __future__ import annotations

import json
from typing import Any

from ..search_record import SearchRecord
from ..names import (
    COMPONENT_SNAPSHOT,
    LABEL_GENERATION,
    SNAPSHOT_KEY,
    owner_reference,
    search_labels,
    snapshot_name,
)
from .storage import claim_name, trial_pods_mount_volume


def trial_run_spec(search: dict[str, Any], claim_access_modes: list[str]) -> dict[str, Any]:
    """What a trial Job needs from its search, resolved now (claim, whether to mount it)."""
    record = SearchRecord.of(search)
    trainer = dict(search["spec"].get("trainer") or {})
    return {
        "generation": record.generation,
        "trainer": trainer,
        "retries": record.trials.retries,
        "timeoutSeconds": record.trials.timeout_seconds,
        "claimName": claim_name(search),
        "mountSearchVolume": trial_pods_mount_volume(trainer, claim_access_modes),
    }


def build_trainer_snapshot(search: dict[str, Any], claim_access_modes: list[str]) -> dict[str, Any]:
    name = search["metadata"]["name"]
    run = trial_run_spec(search, claim_access_modes)
    labels = search_labels(name, COMPONENT_SNAPSHOT)
    labels[LABEL_GENERATION] = str(run["generation"])
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": snapshot_name(name, run["generation"]),
            "namespace": search["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(search)],
        },
        "immutable": True,
        "data": {SNAPSHOT_KEY: json.dumps(run, sort_keys=True)},
    }


def read_trainer_snapshot(config_map: dict[str, Any]) -> dict[str, Any]:
    return json.loads(config_map["data"][SNAPSHOT_KEY])

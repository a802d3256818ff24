"""A warm worker pod (spec.trials.mode WarmPool): ``nas-worker`` training successive Trials.

Built by the same pod builder as the trial Jobs from one trainer snapshot; labelled with
that snapshot's generation and a hash of its pod-shaping fields, so a Trial runs only on
a worker whose pod is the one its own Job would have had.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from nas_contracts import cluster as contract

from ..config import OperatorSettings
from ..names import (
    COMPONENT_WORKER,
    LABEL_GENERATION,
    LABEL_POD_HASH,
    owner_reference,
    search_labels,
    worker_account,
    worker_name,
)
from .trial_job import POD_FIELDS, trainer_pod_spec
from .snapshot import TrainerSnapshot

WORKER_COMMAND = ["nas-worker"]


def pod_fields_hash(run: TrainerSnapshot) -> str:
    """A hash of what shapes the pod in the trainer snapshot ``run`` (not epochs, not the
    learning rate: those travel in each assignment)."""
    trainer = run.trainer
    shaping = {
        "trainer": {k: v for k, v in trainer.items() if k in POD_FIELDS},
        "mountSearchVolume": run.mount_search_volume,
        "claimName": run.claim_name if run.mount_search_volume else None,
    }
    text = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _env(search_name: str) -> list[dict[str, Any]]:
    def field(path: str) -> dict[str, Any]:
        return {"fieldRef": {"fieldPath": path}}

    return [
        {"name": contract.ENV_SEARCH_NAME, "value": search_name},
        {"name": contract.ENV_POD_NAME, "valueFrom": field("metadata.name")},
        {"name": contract.ENV_NAMESPACE, "valueFrom": field("metadata.namespace")},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def build_worker_pod(
    search: dict[str, Any], run: TrainerSnapshot, settings: OperatorSettings, index: int
) -> dict[str, Any]:
    """Worker ``index`` of ``search``, built from the trainer snapshot ``run``."""
    name = search["metadata"]["name"]
    spec = trainer_pod_spec(
        run,
        settings,
        _env(name),
        mount_volume=run.mount_search_volume,
        command=WORKER_COMMAND,
    )
    # The worker reads and answers its own pod: its own ServiceAccount, whatever the
    # trainer's (mode WarmPool runs only the built-in trainer).
    spec["serviceAccountName"] = worker_account(name)
    spec["automountServiceAccountToken"] = True
    labels = search_labels(name, COMPONENT_WORKER)
    labels[LABEL_GENERATION] = str(run.generation)
    labels[LABEL_POD_HASH] = pod_fields_hash(run)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": worker_name(name, index),
            "namespace": search["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(search)],
        },
        "spec": spec,
    }

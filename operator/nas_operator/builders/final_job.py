"""The final training Job: the best architecture trained once more, its weights kept.

Trial pods of a ReadWriteOnce volume do not mount it (the controller pod holds it), so
their weights are lost with them; once the controller has decided and exited, this Job
retrains the best trial's architecture with the volume mounted and ``NAS_OUTPUT_DIR``
at ``/data/best``, where the trainer writes ``model.pt``, ``result.json`` and
``epochs.jsonl`` (contract 3). Built like a trial Job (same image, resources, pod
placement, security, podFailurePolicy and retries) from the trainer snapshot of the best
trial's generation; owned by the search, not by a Trial.
"""

from __future__ import annotations

import math
from typing import Any

from nas_contracts.volume import FINAL_DIR

from ..config import OperatorSettings
from ..search_record import SearchRecord
from ..names import COMPONENT_FINAL, DATA_MOUNT_PATH, final_job_name, owner_reference, search_labels
from .trial_job import build_training_job
from .snapshot import TrainerSnapshot


def final_epochs(search: dict[str, Any]) -> int | None:
    """``spec.finalTraining.epochs``, else None (the trainer's own epochs)."""
    return SearchRecord.of(search).final_epochs


def final_run(search: dict[str, Any], run: TrainerSnapshot) -> TrainerSnapshot:
    """The trainer snapshot with the final training's epochs in place of the trials', and
    training the child alone (a shared-weights search's trials were estimates)."""
    epochs = final_epochs(search)
    run = run.standalone()
    if epochs is None:
        return run
    return run.with_epochs(epochs)


def final_deadline_seconds(search: dict[str, Any], run: TrainerSnapshot) -> int:
    """The trial timeout, stretched by as many times as the final training has more epochs."""
    timeout = run.timeout_seconds
    epochs, trial_epochs = final_epochs(search), run.trainer.get("epochs")
    if epochs is None or not trial_epochs:
        return timeout
    return timeout * max(1, math.ceil(epochs / int(trial_epochs)))


def build_final_job(
    search: dict[str, Any],
    best: dict[str, Any],
    run: TrainerSnapshot,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """The Job retraining the Trial ``best``; ``run`` is the snapshot of its generation."""
    name = search["metadata"]["name"]
    metadata = {
        "name": final_job_name(name),
        "namespace": search["metadata"]["namespace"],
        "labels": search_labels(name, COMPONENT_FINAL),
        "ownerReferences": [owner_reference(search)],
    }
    return build_training_job(
        best,
        final_run(search, run),
        settings,
        metadata=metadata,
        output_dir=f"{DATA_MOUNT_PATH}/{FINAL_DIR}",
        suspend=SearchRecord.of(search).suspend,
        deadline_seconds=final_deadline_seconds(search, run),
    )

"""Checks `nas run` and `nas validate` make before a search starts: settings the manifest
parser accepts (the CRD's rules are per field) but with which the built-in trainer fails
every trial the same way. Refused here, a user reads one message naming the field instead
of spec.trials.maxFailed failed trials. Torch-free: the trainer's own tables
(nas_trainer.trainer_options), not copies.
"""
from __future__ import annotations

from .manifest import SearchManifest
from .trainer_options import (BUILD_OPTIONS, DATASET_OPTIONS, DATASETS, IMAGE_METRICS,
                              LANGUAGE_METRICS, LANGUAGE_SPACES, TEXT_DATASETS, TRAINED_SPACES)


def trainer_problem(manifest: SearchManifest) -> str | None:
    """Why the built-in trainer cannot train this search's children, or None."""
    space = manifest.space.name
    if not manifest.uses_builtin_trainer or space not in TRAINED_SPACES:
        return None  # the user's own trainer, or answered from a table
    document = manifest.trainer.document
    dataset = manifest.trainer.dataset
    if dataset is None:
        fitting = [d for d in DATASETS if (d in TEXT_DATASETS) == (space in LANGUAGE_SPACES)]
        return (f"spec.trainer.dataset is required to train {space} children with the "
                f"built-in trainer: one of {', '.join(fitting)}; or set "
                f"spec.trainer.command to run your own trainer")
    known = DATASET_OPTIONS.get(dataset, ())
    unknown = sorted(set(document.get("datasetOptions") or {}) - set(known))
    if unknown:
        return (f"spec.trainer.datasetOptions.{unknown[0]} is not an option of dataset "
                f"{dataset} (valid: {', '.join(known) or 'none'})")
    known = BUILD_OPTIONS[space]
    unknown = sorted(set(document.get("model") or {}) - set(known))
    if unknown:
        return (f"spec.trainer.model.{unknown[0]} is not an option of the {space} builder "
                f"(valid: {', '.join(known) or 'none'})")
    metric = (document.get("reward") or {}).get("metric")
    metrics = LANGUAGE_METRICS if space in LANGUAGE_SPACES else IMAGE_METRICS
    if metric is not None and metric not in metrics:
        return (f"spec.trainer.reward.metric must be one of {', '.join(metrics)} for space "
                f"{space} (got {metric!r})")
    return None

"""spec.trials.packing in a manifest: the combinations a pack of Trials on one warm worker
cannot run, refused by `nas validate` in the words of the CRD's rules (contract 8)."""
from __future__ import annotations

from typing import Any, Mapping

from nas_contracts.warm_pool import MAX_PACK

from .manifest_errors import ManifestError

MODE_MESSAGE = ("spec.trials.packing needs spec.trials.mode WarmPool (a pack is several Trials "
                "given to one warm worker at once; a Job runs one Trial): remove packing or use "
                "mode WarmPool")
SHARED_WEIGHTS_MESSAGE = ("spec.trials.packing.maxPerWorker > 1 does not apply with "
                          "spec.trainer.sharedWeights (one supernet scores and trains one child "
                          "at a time): remove one of them")
PROCESSES_MESSAGE = ("spec.trials.packing.maxPerWorker > 1 needs spec.trainer.processes 1 (a "
                     "pack's children train together in the worker's one process): remove "
                     "processes or packing")
EARLY_STOPPING_MESSAGE = ("spec.trials.packing.maxPerWorker > 1 does not apply with "
                          "spec.earlyStopping (children trained together run all their "
                          "epochs): remove one of them")


def check_packing(max_per_worker: int | None, mode: str, trainer: Mapping[str, Any],
                  early_stopping: Any) -> None:
    """``max_per_worker``: spec.trials.packing.maxPerWorker (None: no packing field);
    ``trainer``: spec.trainer as written (its own ranges are checked elsewhere);
    ``early_stopping``: the parsed spec.earlyStopping, None when absent."""
    if max_per_worker is None:
        return
    if mode != "WarmPool":
        raise ManifestError(MODE_MESSAGE)
    if max_per_worker <= 1:
        return
    if trainer.get("sharedWeights") is not None:
        raise ManifestError(SHARED_WEIGHTS_MESSAGE)
    processes = trainer.get("processes")
    if isinstance(processes, int) and not isinstance(processes, bool) and processes > 1:
        raise ManifestError(PROCESSES_MESSAGE)
    if early_stopping is not None:  # train_packed reports no progress per epoch
        raise ManifestError(EARLY_STOPPING_MESSAGE)


__all__ = ["MAX_PACK", "check_packing"]

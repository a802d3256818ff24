"""spec.trainer.sharedWeights in a manifest, refused by `nas validate` and `nas run` with
the words the CRD's rules use at admission. Torch-free."""
from __future__ import annotations

from typing import Any

from ..manifest_errors import ManifestError
from .settings import SPACES, SharedWeights

SPACE_MESSAGE = ("spec.trainer.sharedWeights needs spec.searchSpace.name macro-cnn or nasnet, "
                 "the spaces with a supernet: remove sharedWeights or search one of them")
PARALLELISM_MESSAGE = ("spec.trials.parallelism must be 1 with spec.trainer.sharedWeights: one "
                       "supernet trains one child at a time")
VOLUME_MESSAGE = ("spec.trainer.sharedWeights needs the trial pods to mount the search volume "
                  "(the supernet is kept there, beside the trials): set "
                  "spec.trainer.mountSearchVolume: true, or spec.storage.accessModes: "
                  "[ReadWriteMany] for a volume the operator makes")
EARLY_STOPPING_MESSAGE = ("spec.earlyStopping does not apply with spec.trainer.sharedWeights (a "
                          "child is scored on the supernet, not trained for epochs): remove one "
                          "of them")


def check_shared_weights(value: Any, space: Any, trials: Any, trainer: Any, storage: Any,
                         early_stopping: Any) -> SharedWeights | None:
    """The parsed settings, or None when absent; raises ManifestError naming what to fix.
    ``space``, ``trials``, ``trainer``, ``storage``: the manifest's parsed sections."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ManifestError(f"spec.trainer.sharedWeights must be an object (got {value!r})")
    try:
        settings = SharedWeights.from_dict(value)
    except ValueError as err:
        raise ManifestError(f"spec.{err}") from err
    if space.name not in SPACES:
        raise ManifestError(SPACE_MESSAGE)
    if trials.parallelism != 1:
        raise ManifestError(PARALLELISM_MESSAGE)
    if not storage.reached_by_trials(trainer):
        raise ManifestError(VOLUME_MESSAGE)
    if early_stopping is not None:
        raise ManifestError(EARLY_STOPPING_MESSAGE)
    return settings

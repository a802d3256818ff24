"""spec.earlyStopping, parsed and checked once (the CRD carries the same rules as schema
and CEL, in the same words)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..manifest_errors import ManifestError

POLICIES = ("asha", "median")
NEEDS_VOLUME_MESSAGE = (
    "spec.earlyStopping needs the trial pods to mount the search volume (each trial reports "
    "its epochs there and reads the stop there): set spec.trainer.mountSearchVolume: true, or "
    "spec.storage.accessModes: [ReadWriteMany] for a volume the operator makes")
TABLE_MESSAGE = (
    "spec.earlyStopping cannot stop nas-bench-graph trials of the built-in trainer: they are "
    "answered from a table, without epochs; remove spec.earlyStopping")
GRACE_MESSAGE = ("spec.earlyStopping.gracePeriod must be < spec.trainer.epochs (got {grace} >= "
                 "{epochs}): no trial could be stopped before its last epoch")


@dataclass(frozen=True)
class EarlyStoppingSpec:
    """`policy`: asha (asynchronous successive halving: at the epochs gracePeriod·η^k a
    trial goes on only if it is in the top 1/η of the trials that reached that epoch) or
    median (at every epoch from gracePeriod on, a trial below the median of the others at
    that epoch stops). No trial is judged before `min_trials` trials (itself included)
    reported the epoch, nor at its last epoch."""

    policy: str = "asha"
    grace_period: int = 1          # epochs every trial trains before it can be stopped
    reduction_factor: int = 3      # asha: η
    min_trials: int = 3

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "gracePeriod": self.grace_period,
                "reductionFactor": self.reduction_factor, "minTrials": self.min_trials}


def parse_early_stopping(value: Any, space: Any, trainer: Any, storage: Any
                         ) -> EarlyStoppingSpec | None:
    """spec.earlyStopping of a manifest whose space, trainer and storage sections are parsed
    (nas_trainer.manifest's SpaceSpec, TrainerSpec, StorageSpec); None when it is absent.
    Raises ManifestError naming the field and what to set."""
    from ..manifest import _Section  # the manifest's field reader: the same messages

    if value is None:
        return None
    section = _Section(value, "spec.earlyStopping")
    spec = EarlyStoppingSpec(
        policy=section.string("policy", "asha", choices=POLICIES) or "asha",
        grace_period=section.integer("gracePeriod", 1, minimum=1, maximum=100_000) or 1,
        reduction_factor=section.integer("reductionFactor", 3, minimum=2, maximum=100) or 3,
        min_trials=section.integer("minTrials", 3, minimum=1, maximum=100_000) or 3)
    section.finish()
    if space.name == "nas-bench-graph" and trainer.command is None:
        raise ManifestError(TABLE_MESSAGE)
    if not storage.reached_by_trials(trainer):
        raise ManifestError(NEEDS_VOLUME_MESSAGE)
    if trainer.epochs is not None and spec.grace_period >= trainer.epochs:
        raise ManifestError(GRACE_MESSAGE.format(grace=spec.grace_period, epochs=trainer.epochs))
    return spec

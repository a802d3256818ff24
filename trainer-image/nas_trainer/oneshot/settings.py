"""spec.trainer.sharedWeights: estimate each child on weights shared by all children
(ENAS) instead of training it from scratch. Torch-free: `nas validate` reads it too."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

# the spaces with a supernet (oneshot/supernets.py maps each to its builder)
SPACES = ("macro-cnn", "nasnet")
SUPERNET_FOLDER = "supernet"  # beside trials/ in the search's results folder


@dataclass(frozen=True)
class SharedWeights:
    steps_per_child: int = 20     # training steps of the shared weights on each child
    score_batches: int = 0        # validation batches a child is scored on (0: all)
    retrain_top: int = 1          # `nas run`: the best this many are retrained from scratch

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> "SharedWeights":
        doc = dict(doc or {})
        names = {"stepsPerChild": "steps_per_child", "scoreBatches": "score_batches",
                 "retrainTop": "retrain_top"}
        unknown = sorted(set(doc) - set(names))
        if unknown:
            raise ValueError(f"trainer.sharedWeights has no field {unknown[0]!r} "
                             f"(it has {', '.join(names)})")
        values = {}
        for key, name in names.items():
            if key in doc:
                value = doc[key]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"trainer.sharedWeights.{key} must be an integer "
                                     f"(got {value!r})")
                values[name] = value
        settings = cls(**values)
        if settings.steps_per_child < 1:
            raise ValueError("trainer.sharedWeights.stepsPerChild must be >= 1 "
                             f"(got {settings.steps_per_child})")
        if settings.score_batches < 0:
            raise ValueError("trainer.sharedWeights.scoreBatches must be >= 0 "
                             f"(got {settings.score_batches})")
        if not 1 <= settings.retrain_top <= 20:
            raise ValueError("trainer.sharedWeights.retrainTop must be between 1 and 20 "
                             f"(got {settings.retrain_top})")
        return settings

"""The child-network trainer: `train_architecture(architecture_json, TrainerConfig)`.

Modules, one job each: config (spec.trainer parsed once), device_data (datasets on the
device, batched augmentation), engine (a training step eager or as a CUDA graph),
image / language (the two kinds of training), reward, result (contract 3 and the trial
folder), tabular (nas-bench-graph lookups), packing (several children on one GPU),
run (one trial end to end).
"""
from __future__ import annotations

import importlib
from typing import Any

# Imported on first use (PEP 562): a tabular trial pod needs result.py and tabular.py
# only, and importing torch would cost it seconds.
_EXPORTS = {"ConfigError": ".config", "RewardConfig": ".config", "TrainerConfig": ".config",
            "TrialResult": ".result", "error_json": ".result",
            "write_termination_message": ".result",
            "TrialOutcome": ".run", "train_architecture": ".run"}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


__all__ = ["ConfigError", "RewardConfig", "TrainerConfig", "TrialOutcome", "TrialResult",
           "error_json", "train_architecture", "write_termination_message"]

"""The child-network trainer: `train_architecture(architecture_json, TrainerConfig)`.

Modules, one job each: config (spec.trainer parsed once), device_data (datasets on the
device, batched augmentation), engine (a training step eager or as a CUDA graph),
image / language (the two kinds of training), reward, result (contract 3 and the trial
folder), tabular (nas-bench-graph lookups), packing (several children on one GPU),
run (one trial end to end).
"""
from .config import ConfigError, RewardConfig, TrainerConfig
from .result import TrialResult, error_json, write_termination_message
from .run import TrialOutcome, train_architecture

__all__ = ["ConfigError", "RewardConfig", "TrainerConfig", "TrialOutcome", "TrialResult",
           "error_json", "train_architecture", "write_termination_message"]

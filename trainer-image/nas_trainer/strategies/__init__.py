"""Search strategies by name: `make_strategy(name, space, seed, **hyperparameters)`.

Hyperparameters use their manifest names (contract 1), e.g.
`make_strategy("reinforce", space, seed=0, learningRate=1e-3, batchSize=4)`.
Strategies are imported on first use: reinforce and ppo need torch, tpe needs optuna.
"""
from __future__ import annotations

import importlib
from typing import Any

from ..spaces.base import SearchSpace
from .base import Strategy
from .hyperparameters import (HYPERPARAMETERS, STRATEGY_NAMES, check_strategy_name,
                              hyperparameter_arguments)
from .table import TableRun, run_on_table

_CLASSES = {
    "reinforce": ("reinforce", "ReinforceStrategy"),
    "ppo": ("ppo", "PpoStrategy"),
    "regularized-evolution": ("evolution", "RegularizedEvolution"),
    "tpe": ("tpe", "TpeStrategy"),
    "random": ("random_search", "RandomSearch"),
}


def strategy_class(name: str) -> type[Strategy]:
    check_strategy_name(name)
    module, attribute = _CLASSES[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


def make_strategy(name: str, space: SearchSpace, seed: int = 0, **hyperparameters: Any
                  ) -> Strategy:
    """A fresh strategy; ValueError names an unknown strategy or a bad hyperparameter."""
    arguments = hyperparameter_arguments(name, hyperparameters)
    return strategy_class(name)(space, seed, **arguments)


__all__ = ["Strategy", "STRATEGY_NAMES", "HYPERPARAMETERS", "make_strategy", "strategy_class",
           "run_on_table", "TableRun"]

"""Strategy hyperparameters by their manifest names (contract 1), checked without
importing any strategy (so `nas validate` and the manifest parser stay torch-free)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

POLICY_STRATEGIES = ("reinforce", "ppo")
STRATEGY_NAMES = ("reinforce", "ppo", "regularized-evolution", "tpe", "random")


@dataclass(frozen=True)
class Hyperparameter:
    name: str                          # manifest (camelCase) name
    argument: str                      # the strategy constructor's keyword
    kind: type                         # int, float or str
    strategies: tuple[str, ...]
    check: Callable[[Any], bool]
    rule: str                          # the check, in words, for messages


HYPERPARAMETERS: dict[str, Hyperparameter] = {h.name: h for h in (
    Hyperparameter("lstmLayers", "lstm_layers", int, POLICY_STRATEGIES,
                   lambda v: v >= 1, ">= 1"),
    Hyperparameter("hiddenSize", "hidden_size", int, POLICY_STRATEGIES,
                   lambda v: v >= 1, ">= 1"),
    Hyperparameter("learningRate", "learning_rate", float, POLICY_STRATEGIES,
                   lambda v: v > 0, "> 0"),
    Hyperparameter("baselineDecay", "baseline_decay", float, POLICY_STRATEGIES,
                   lambda v: 0 <= v < 1, "in [0, 1)"),
    Hyperparameter("entropyWeight", "entropy_weight", float, POLICY_STRATEGIES,
                   lambda v: v >= 0, ">= 0"),
    Hyperparameter("batchSize", "batch_size", int, POLICY_STRATEGIES,
                   lambda v: v >= 1, ">= 1"),
    Hyperparameter("rewardNormalization", "reward_normalization", str, POLICY_STRATEGIES,
                   lambda v: v in ("none", "std", "rank"), "one of none, std, rank"),
    Hyperparameter("failureReward", "failure_reward", float, POLICY_STRATEGIES,
                   lambda v: True, "a number"),
    Hyperparameter("clipEpsilon", "clip_epsilon", float, ("ppo",),
                   lambda v: 0 < v < 1, "in (0, 1)"),
    Hyperparameter("ppoEpochs", "ppo_epochs", int, ("ppo",), lambda v: v >= 1, ">= 1"),
    Hyperparameter("population", "population", int, ("regularized-evolution",),
                   lambda v: v >= 1, ">= 1"),
    Hyperparameter("sampleSize", "sample_size", int, ("regularized-evolution",),
                   lambda v: v >= 1, ">= 1"),
    Hyperparameter("startupTrials", "startup_trials", int, ("tpe",),
                   lambda v: v >= 0, ">= 0"),
)}


def check_strategy_name(name: str) -> None:
    if name not in STRATEGY_NAMES:
        raise ValueError(f"unknown strategy {name!r} (valid: {', '.join(STRATEGY_NAMES)})")


def hyperparameter_arguments(strategy: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check manifest-named hyperparameters for `strategy`; return constructor keywords.

    ValueError messages start with the hyperparameter's name, e.g.
    "learningRate must be > 0 (got -1)".
    """
    check_strategy_name(strategy)
    arguments: dict[str, Any] = {}
    for name, value in values.items():
        spec = HYPERPARAMETERS.get(name)
        if spec is None:
            valid = [h.name for h in HYPERPARAMETERS.values() if strategy in h.strategies]
            raise ValueError(f"{name} is not a hyperparameter of {strategy} "
                             f"(valid: {', '.join(valid) or 'none'})")
        if strategy not in spec.strategies:
            raise ValueError(f"{name} does not apply to {strategy} "
                             f"(it is for {', '.join(spec.strategies)})")
        if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, spec.kind):
            kind = {int: "an integer", float: "a number", str: "a string"}[spec.kind]
            raise ValueError(f"{name} must be {kind} (got {value!r})")
        if not spec.check(value):
            raise ValueError(f"{name} must be {spec.rule} (got {value!r})")
        arguments[spec.argument] = value
    population = arguments.get("population", 10)
    if arguments.get("sample_size", min(3, population)) > population:
        raise ValueError(f"sampleSize must be <= population "
                         f"(got {arguments.get('sample_size')} > {population})")
    return arguments

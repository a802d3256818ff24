"""Strategy hyperparameters by their manifest names (contract 1), checked without
importing any strategy (so `nas validate` and the manifest parser stay torch-free).

Each one's type, bounds and choices are data, not code: the CRD's `spec.strategy` schema
declares the same (tests/unit/test_manifest_crd_agreement.py keeps them equal)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

POLICY_STRATEGIES = ("reinforce", "ppo")
STRATEGY_NAMES = ("reinforce", "ppo", "regularized-evolution", "tpe", "random")
REWARD_NORMALIZATIONS = ("none", "std", "rank")
PRESETS = ("tuned", "paper")      # reinforce/ppo: the benchmark's choice, or the paper's
LEARN_FROM = ("batch", "all")
# regularized-evolution's defaults (the strategy's own): sampleSize defaults to
# min(3, population), and must be <= population.
DEFAULT_POPULATION = 10
DEFAULT_SAMPLE_SIZE = 3


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Hyperparameter:
    name: str                          # manifest (camelCase) name
    argument: str                      # the strategy constructor's keyword
    kind: type                         # int, float or str
    strategies: tuple[str, ...]
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False    # minimum < value rather than minimum <= value
    exclusive_maximum: bool = False
    choices: tuple[str, ...] = ()      # for kind str

    def check(self, value: Any) -> bool:
        if self.choices and value not in self.choices:
            return False
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum
                                         else value < self.minimum):
            return False
        if self.maximum is not None and (value >= self.maximum if self.exclusive_maximum
                                         else value > self.maximum):
            return False
        return True

    @property
    def rule(self) -> str:
        """The check, in words, for messages."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return (f"in {'(' if self.exclusive_minimum else '['}{_number(low)}, "
                    f"{_number(high)}{')' if self.exclusive_maximum else ']'}")
        if low is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {_number(low)}"
        if high is not None:
            return f"{'<' if self.exclusive_maximum else '<='} {_number(high)}"
        return {int: "an integer", float: "a number", str: "a string"}[self.kind]


HYPERPARAMETERS: dict[str, Hyperparameter] = {h.name: h for h in (
    Hyperparameter("lstmLayers", "lstm_layers", int, POLICY_STRATEGIES, 1, 8),
    Hyperparameter("hiddenSize", "hidden_size", int, POLICY_STRATEGIES, 1, 4096),
    Hyperparameter("learningRate", "learning_rate", float, POLICY_STRATEGIES, 0,
                   exclusive_minimum=True),
    Hyperparameter("baselineDecay", "baseline_decay", float, POLICY_STRATEGIES, 0, 1,
                   exclusive_maximum=True),
    Hyperparameter("entropyWeight", "entropy_weight", float, POLICY_STRATEGIES, 0),
    Hyperparameter("batchSize", "batch_size", int, POLICY_STRATEGIES, 1, 1024),
    Hyperparameter("rewardNormalization", "reward_normalization", str, POLICY_STRATEGIES,
                   choices=REWARD_NORMALIZATIONS),
    Hyperparameter("failureReward", "failure_reward", float, POLICY_STRATEGIES),
    Hyperparameter("temperature", "temperature", float, POLICY_STRATEGIES, 0,
                   exclusive_minimum=True),
    Hyperparameter("tanhConstant", "tanh_constant", float, POLICY_STRATEGIES, 0),
    Hyperparameter("preset", "preset", str, POLICY_STRATEGIES, choices=PRESETS),
    Hyperparameter("riskSeekingQuantile", "risk_seeking_quantile", float, POLICY_STRATEGIES,
                   0, 1),
    Hyperparameter("priorityQueueSize", "priority_queue_size", int, POLICY_STRATEGIES, 0,
                   10000),
    Hyperparameter("learnFrom", "learn_from", str, POLICY_STRATEGIES, choices=LEARN_FROM),
    Hyperparameter("candidateSamples", "candidate_samples", int, POLICY_STRATEGIES, 0,
                   100000),
    Hyperparameter("entropyHalfLife", "entropy_half_life", float, POLICY_STRATEGIES, 0),
    Hyperparameter("clipEpsilon", "clip_epsilon", float, ("ppo",), 0, 1,
                   exclusive_minimum=True, exclusive_maximum=True),
    Hyperparameter("ppoEpochs", "ppo_epochs", int, ("ppo",), 1, 100),
    Hyperparameter("population", "population", int, ("regularized-evolution",), 1, 100000),
    Hyperparameter("sampleSize", "sample_size", int, ("regularized-evolution",), 1, 100000),
    Hyperparameter("startupTrials", "startup_trials", int, ("tpe",), 0),
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
    if strategy == "regularized-evolution":
        population = arguments.get("population", DEFAULT_POPULATION)
        if "sample_size" not in arguments:
            # A small population without a sampleSize: the tournament takes all of it.
            if population < DEFAULT_SAMPLE_SIZE:
                arguments["sample_size"] = population
        elif arguments["sample_size"] > population:
            given = "" if "population" in arguments else f" (default {DEFAULT_POPULATION})"
            raise ValueError(f"sampleSize must be <= population{given} "
                             f"(got {arguments['sample_size']} > {population})")
    return arguments

"""Tree-structured Parzen Estimator through Optuna's ask/tell API.

Each decision is a categorical parameter over its choice indices. The state is the
seed plus the log of asks and tells: replaying it into a new study with the same seeded
sampler rebuilds exactly the same sampler state. A trial stopped early (spec.earlyStopping)
is told as Optuna's PRUNED with its reward as the intermediate value at the epochs it
reached: TPE ranks pruned trials below every completed one.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from ..architecture import Architecture
from ..spaces.base import MAX_DRAWS, SearchSpace
from .base import Strategy


class TpeStrategy(Strategy):
    name = "tpe"

    def __init__(self, space: SearchSpace, seed: int = 0, startup_trials: int = 10) -> None:
        super().__init__(space, seed)
        self.startup_trials = startup_trials
        self.distributions = {d.name: CategoricalDistribution(list(range(len(d.choices))))
                              for d in space.decisions}
        self._reset()

    def _reset(self) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # The manifest's seed is any integer >= 0; Optuna's (numpy's legacy RandomState)
        # must fit in 32 bits.
        sampler = optuna.samplers.TPESampler(seed=self.seed % 2**32,
                                             n_startup_trials=self.startup_trials)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        # Asked, not yet told Optuna trials per token sequence (oldest first).
        self.pending: dict[tuple[int, ...], list[int]] = defaultdict(list)
        self.open_trials: dict[int, optuna.Trial] = {}   # asked, by trial number
        self.events: list[list[Any]] = []

    def ask(self, n: int = 1) -> list[Architecture]:
        self.events.append(["ask", n])
        return [self._ask_one() for _ in range(n)]

    def _ask_one(self) -> Architecture:
        for _ in range(MAX_DRAWS):
            trial = self.study.ask(self.distributions)
            tokens = tuple(trial.params[d.name] for d in self.space.decisions)
            try:
                arch = self.space.from_tokens(tokens)
            except ValueError:
                # An invalid corner of the space: teach TPE nothing, draw again.
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            self.pending[tokens].append(trial.number)
            self.open_trials[trial.number] = trial
            return arch
        raise RuntimeError("TPE proposed no valid architecture")

    def tell(self, arch: Architecture, reward: float) -> None:
        self.events.append(["tell", list(arch.tokens), float(reward)])
        self._finish(arch.tokens, float(reward))

    def tell_failure(self, arch: Architecture, reason: str = "") -> None:
        self.events.append(["fail", list(arch.tokens)])
        self._finish(arch.tokens, None)

    def tell_partial(self, arch: Architecture, reward: float, epochs: int | None) -> None:
        self.events.append(["partial", list(arch.tokens), float(reward), epochs])
        self._finish_pruned(arch.tokens, float(reward), epochs)

    def _finish_pruned(self, tokens: tuple[int, ...], reward: float, epochs: int | None) -> None:
        step = max(int(epochs or 1), 1)
        waiting = self.pending.get(tuple(tokens))
        if waiting:
            trial = self.open_trials.pop(waiting.pop(0))
            trial.report(reward, step)
            self.study.tell(trial, state=TrialState.PRUNED)
            return
        params = {d.name: t for d, t in zip(self.space.decisions, tokens)}
        self.study.add_trial(optuna.trial.create_trial(
            params=params, distributions=self.distributions, state=TrialState.PRUNED,
            intermediate_values={step: reward}))

    def _finish(self, tokens: tuple[int, ...], reward: float | None) -> None:
        waiting = self.pending.get(tuple(tokens))
        state = TrialState.COMPLETE if reward is not None else TrialState.FAIL
        if waiting:
            number = waiting.pop(0)
            self.open_trials.pop(number, None)
            self.study.tell(number, reward, state=state)
            return
        # Told about an architecture it never asked for: record it as a finished trial.
        params = {d.name: t for d, t in zip(self.space.decisions, tokens)}
        self.study.add_trial(optuna.trial.create_trial(
            params=params, distributions=self.distributions, value=reward, state=state))

    def state_dict(self) -> dict[str, Any]:
        return {"strategy": self.name, "seed": self.seed, "events": [list(e) for e in self.events]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_state(state)
        if state["seed"] != self.seed:
            raise ValueError(f"state was made with seed {state['seed']}, this strategy has "
                             f"seed {self.seed}: replay would differ")
        self._reset()
        for event in state["events"]:
            if event[0] == "ask":
                self.ask(event[1])
            elif event[0] == "tell":
                self.events.append(list(event))
                self._finish(tuple(event[1]), float(event[2]))
            elif event[0] == "partial":
                self.events.append(list(event))
                self._finish_pruned(tuple(event[1]), float(event[2]), event[3])
            else:
                self.events.append(list(event))
                self._finish(tuple(event[1]), None)

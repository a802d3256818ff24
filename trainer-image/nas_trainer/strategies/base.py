"""The one interface every search strategy implements (an ask/tell loop like Optuna's)."""
from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping

from ..architecture import Architecture
from ..spaces.base import SearchSpace


class Strategy(ABC):
    """Proposes architectures of `space` and learns from their rewards.

    - `ask(n)` returns n architectures to evaluate (they may repeat known ones);
    - `tell(arch, reward)` / `tell_failure(arch, reason)` report results, in any order
      and for any architecture of the space (not only asked ones);
    - `state_dict()` / `load_state_dict()`: a strategy restored into a fresh instance built
      with the same arguments continues exactly as the saved one would have, RNG included.
      The state holds JSON-able values, plus torch tensors for torch policies.
    """

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed

    @abstractmethod
    def ask(self, n: int = 1) -> list[Architecture]:
        """The next n architectures to evaluate."""

    @abstractmethod
    def tell(self, arch: Architecture, reward: float) -> None:
        """The reward of an evaluated architecture."""

    def tell_failure(self, arch: Architecture, reason: str = "") -> None:
        """An architecture that could not be evaluated (ignored unless overridden)."""

    def tell_partial(self, arch: Architecture, reward: float, epochs: int | None) -> None:
        """The reward of a trial stopped early (spec.earlyStopping) after `epochs` epochs.

        By default it is told as a reward: the rule stopped the trial because it trailed
        its peers at that epoch, and its reward there, lower than a full training's, says
        so. Strategies that can mark a partial result (TPE: a pruned trial) override this.
        """
        self.tell(arch, reward)

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned (possibly after a JSON round trip)."""

    def metrics(self) -> dict[str, float]:
        """Numbers worth exporting (e.g. policy entropy and baseline)."""
        return {}

    def _check_state(self, state: Mapping[str, Any]) -> None:
        if state.get("strategy") != self.name:
            raise ValueError(f"state is of strategy {state.get('strategy')!r}, not {self.name!r}")


def random_state_to_json(rng: random.Random) -> list[Any]:
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]


def random_state_from_json(rng: random.Random, state: Any) -> None:
    version, internal, gauss_next = state
    rng.setstate((version, tuple(internal), gauss_next))

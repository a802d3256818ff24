"""Random search: every architecture drawn uniformly over token sequences."""
from __future__ import annotations

import random
from typing import Any, Mapping

from ..architecture import Architecture
from ..spaces.base import SearchSpace
from .base import Strategy, random_state_from_json, random_state_to_json


class RandomSearch(Strategy):
    name = "random"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.rng = random.Random(seed)

    def ask(self, n: int = 1) -> list[Architecture]:
        return [self.space.random(self.rng) for _ in range(n)]

    def tell(self, arch: Architecture, reward: float) -> None:
        pass  # random search learns nothing

    def state_dict(self) -> dict[str, Any]:
        return {"strategy": self.name, "rng": random_state_to_json(self.rng)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_state(state)
        random_state_from_json(self.rng, state["rng"])

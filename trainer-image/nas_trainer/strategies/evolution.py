"""Regularized (aging) evolution, Real et al. 2019.

Each ask samples S members of the population at random and mutates the best of them in
one decision; each tell adds the child and removes the oldest member. Until the
population holds P members, asks are random.
"""
from __future__ import annotations

import random
from collections import deque
from typing import Any, Mapping

from ..architecture import Architecture
from ..spaces.base import SearchSpace
from .base import Strategy, random_state_from_json, random_state_to_json


class RegularizedEvolution(Strategy):
    name = "regularized-evolution"

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 10,
                 sample_size: int = 3) -> None:
        super().__init__(space, seed)
        if population < 1 or not 1 <= sample_size <= population:
            raise ValueError(f"need population >= 1 and 1 <= sampleSize <= population "
                             f"(got population={population}, sampleSize={sample_size})")
        self.population_size = population
        self.sample_size = sample_size
        self.rng = random.Random(seed)
        # Oldest first: (tokens, reward).
        self.population: deque[tuple[tuple[int, ...], float]] = deque()

    def ask(self, n: int = 1) -> list[Architecture]:
        return [self._ask_one() for _ in range(n)]

    def _ask_one(self) -> Architecture:
        if len(self.population) < self.population_size:
            return self.space.random(self.rng)
        sample = self.rng.sample(range(len(self.population)), self.sample_size)
        parent_tokens, _ = max((self.population[i] for i in sample), key=lambda member: member[1])
        return self.space.mutate(self.space.from_tokens(parent_tokens), self.rng)

    def tell(self, arch: Architecture, reward: float) -> None:
        self.population.append((tuple(arch.tokens), float(reward)))
        if len(self.population) > self.population_size:
            self.population.popleft()  # aging: the oldest dies, not the worst

    def state_dict(self) -> dict[str, Any]:
        return {"strategy": self.name, "rng": random_state_to_json(self.rng),
                "population": [[list(tokens), reward] for tokens, reward in self.population]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_state(state)
        random_state_from_json(self.rng, state["rng"])
        self.population = deque((tuple(tokens), float(reward))
                                for tokens, reward in state["population"])

    def metrics(self) -> dict[str, float]:
        if not self.population:
            return {}
        return {"population_best": max(r for _, r in self.population)}

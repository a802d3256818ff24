"""Run any strategy against a tabular benchmark (architecture hash -> reward), for
benchmarks that compare strategies over many seeds."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..spaces.base import SearchSpace

# Stop a deduplicating run after this many known proposals in a row (as the search loop).
MAX_CONSECUTIVE_KNOWN = 50


@dataclass
class TableRun:
    """One run: the hash and reward of every evaluation, in order."""

    hashes: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    exhausted: bool = False  # dedup run that stopped because only known archs came

    def best_so_far(self) -> list[float]:
        best, curve = float("-inf"), []
        for reward in self.rewards:
            best = max(best, reward)
            curve.append(best)
        return curve

    @property
    def best_index(self) -> int:
        return max(range(len(self.rewards)), key=self.rewards.__getitem__)

    @property
    def best_hash(self) -> str:
        return self.hashes[self.best_index]

    @property
    def best_reward(self) -> float:
        return self.rewards[self.best_index]


def run_on_table(strategy_name: str, space: SearchSpace, table: Mapping[str, float],
                 budget: int, seed: int = 0, *, parallelism: int = 1, dedup: bool = False,
                 **hyperparameters: Any) -> TableRun:
    """Evaluate `budget` architectures proposed by a fresh strategy, rewards read from
    `table`. Asks come `parallelism` at a time and are told in order.

    Without dedup every query counts against the budget (NAS-Bench-201's convention);
    with dedup a known architecture is told its reward again without counting, as the
    search loop does, and the run ends early if only known ones keep coming.
    """
    from . import make_strategy  # the registry imports this module

    strategy = make_strategy(strategy_name, space, seed, **hyperparameters)
    run = TableRun()
    known: dict[str, float] = {}
    consecutive_known = 0
    while len(run.rewards) < budget:
        for arch in strategy.ask(min(parallelism, budget - len(run.rewards))):
            if arch.hash not in table:
                raise KeyError(f"architecture {arch.hash} ({dict(arch.canonical)}) is not in "
                               f"the table")
            reward = table[arch.hash]
            strategy.tell(arch, reward)
            if dedup and arch.hash in known:
                consecutive_known += 1
                continue
            consecutive_known = 0
            known[arch.hash] = reward
            run.hashes.append(arch.hash)
            run.rewards.append(reward)
        if dedup and (consecutive_known >= MAX_CONSECUTIVE_KNOWN
                      or len(known) == space.size()):
            run.exhausted = True
            break
    return run

"""The reward of a trained child, as in the papers by default:
(best validation accuracy over the last 5 epochs)³ for images (Zoph & Le),
c / (best validation perplexity)² with c = 80 for language models."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from .config import RewardConfig


def higher_is_better(metric: str) -> bool:
    return not any(word in metric for word in ("loss", "perplexity", "error"))


def best_recent(history: Sequence[Mapping[str, float | None]], metric: str,
                last_epochs: int) -> float:
    """Best finite value of `metric` over the last epochs; NaN when there is none."""
    recent = [epoch.get(metric) for epoch in history[-last_epochs:]]
    finite = [v for v in recent if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan
    return max(finite) if higher_is_better(metric) else min(finite)


def transform(value: float, name: str, c: float) -> float:
    """Non-finite values (a diverged child) earn 0, the worst reward of every transform."""
    if not math.isfinite(value):
        return 0.0
    if name == "identity":
        return value
    if name == "square":
        return value ** 2
    if name == "cube":
        return value ** 3
    if value <= 0:
        return 0.0
    if name == "inverse":
        return c / value
    if name in ("inverse-square", "inverse_square"):
        return c / value ** 2
    raise ValueError(f"unknown reward transform {name!r}")


def compute_reward(history: Sequence[Mapping[str, float | None]], reward: RewardConfig
                   ) -> tuple[float, float]:
    """(reward, the best metric value it was computed from)."""
    if history and all(reward.metric not in epoch for epoch in history):
        raise ValueError(f"reward metric {reward.metric!r} is not recorded; "
                         f"available: {sorted(history[-1])}")
    best = best_recent(history, reward.metric, reward.last_epochs)
    return transform(best, reward.transform, reward.c), best

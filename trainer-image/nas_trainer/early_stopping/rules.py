"""The stopping rules, pure: given every trial's reward per epoch, should this running
trial stop now? Rewards are higher-is-better, as every strategy reads them.

- ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020):
  rungs at gracePeriod·η^k epochs; a trial that reaches a rung goes on only if its reward
  there is among the best ⌊n/η⌋ (at least 1) of the n trials that reached that rung so far.
  Judged once per rung, when the trial gets there (asynchronous: nobody waits for a rung
  to fill).
- Median stopping (Golovin et al., "Google Vizier", KDD 2017): from gracePeriod on, a
  trial whose reward at its latest epoch is below the median of the other trials' rewards
  at that epoch stops.

Neither judges a trial at its last two epochs, nor at an epoch fewer than `min_trials`
trials (itself included) reported. The trainer looks for a stop right after it reports an
epoch, before the search has read that report: a stop decided at epoch k ends the training
after epoch k+1 at the earliest, so a decision at the second-to-last epoch would save
nothing (and would announce a stop that never happens).
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Mapping

from .spec import EarlyStoppingSpec

Curves = Mapping[int, Mapping[int, float]]   # trial index -> {epoch: reward}


@dataclass(frozen=True)
class StopDecision:
    epoch: int        # the epoch judged: the trial stops once it has trained this many
    message: str


def rungs(spec: EarlyStoppingSpec, total_epochs: int) -> list[int]:
    """ASHA's rung epochs below the last epoch."""
    found, epoch = [], spec.grace_period
    while epoch < total_epochs:
        found.append(epoch)
        epoch *= spec.reduction_factor
    return found


def at_epoch(curves: Curves, epoch: int) -> dict[int, float]:
    return {index: curve[epoch] for index, curve in curves.items() if epoch in curve}


def asha(spec: EarlyStoppingSpec, index: int, epoch: int, curves: Curves
         ) -> StopDecision | None:
    """Judge trial `index` at rung `epoch`."""
    values = at_epoch(curves, epoch)
    if index not in values or len(values) < spec.min_trials:
        return None
    keep = max(1, len(values) // spec.reduction_factor)
    cutoff = sorted(values.values(), reverse=True)[keep - 1]
    mine = values[index]
    if mine >= cutoff:
        return None
    return StopDecision(epoch, f"stopped by ASHA at epoch {epoch}: reward {mine:.4f} is not in "
                               f"the top {keep} of {len(values)} trials there (cutoff "
                               f"{cutoff:.4f}, reduction factor {spec.reduction_factor})")


def median_rule(spec: EarlyStoppingSpec, index: int, epoch: int, curves: Curves
                ) -> StopDecision | None:
    """Judge trial `index` at `epoch` (its latest)."""
    values = at_epoch(curves, epoch)
    if index not in values or len(values) < max(2, spec.min_trials):
        return None
    others = [v for i, v in values.items() if i != index]
    middle = median(others)
    mine = values[index]
    if mine >= middle:
        return None
    return StopDecision(epoch, f"stopped by the median rule at epoch {epoch}: reward "
                               f"{mine:.4f} is below the median {middle:.4f} of "
                               f"{len(others)} other trials there")


def judge(spec: EarlyStoppingSpec, index: int, judged: int, total_epochs: int,
          curves: Curves) -> tuple[StopDecision | None, int]:
    """(the decision, the latest epoch judged) for a running trial whose epochs up to
    `judged` were judged already."""
    curve = curves.get(index) or {}
    latest = max((e for e in curve if e <= total_epochs - 2), default=0)
    if latest <= judged:
        return None, judged
    if spec.policy == "asha":
        for rung in rungs(spec, total_epochs):
            if judged < rung <= latest and rung in curve:
                decision = asha(spec, index, rung, curves)
                if decision is not None:
                    return decision, rung
        return None, latest
    if latest >= spec.grace_period:
        return median_rule(spec, index, latest, curves), latest
    return None, latest

"""The search loop of the controller pod: the shared SearchLoop plus what Kubernetes adds.

The write-ahead and resume rule (the loop's, extended here):

1. Proposals are checkpointed before their Trials exist. `fill()` asks the strategy,
   assigns indices and writes the checkpoint (strategy state *after* the ask, RNG
   included, and the proposals as in-flight entries) and only then creates the Trials.
   A kill between the two loses nothing: the resumed loop creates the recorded
   proposals under their recorded indices. The strategy never re-asks, so its state
   always matches the Trials that exist and the policy version never goes back.
2. A Trial's name is its index, so creating one twice cannot happen: AlreadyExists
   means a previous controller wrote it, and it is adopted.
3. A result is appended to trials.jsonl before the strategy is told; the checkpoint
   after the tell drops it from the in-flight entries. On resume, an in-flight entry
   whose result is in trials.jsonl is told then, once (the checkpoint written by the
   kill's victim predates the tell).
4. Trials the volume does not know (index at or beyond the checkpoint's next index,
   e.g. the volume was replaced) are adopted as in flight and their results told as
   they come; the index counter continues after the largest index that exists.
5. A goal or too many failures stop the loop at once, but its running Trials go on
   (the controller may not stop them, and the operator counts them): the controller
   waits for them and records them too, before it reports the decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from nas_trainer.controller.executor import KubernetesExecutor, architecture_of
from nas_trainer.controller.metrics import ControllerMetrics
from nas_trainer.controller.status import StatusReporter
from nas_trainer.controller.trials_api import TrialsApi, TrialView, view_trial
from nas_trainer.results import ResultsFolder, TrialRecord
from nas_trainer.search import Budget, Executor, SearchLoop
from nas_trainer.spaces.base import SearchSpace
from nas_trainer.strategies.base import Strategy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdoptionPlan:
    """What a resuming controller does with the Trials that exist."""

    adopt: list[TrialView] = field(default_factory=list)  # unknown to the volume: in flight
    ignored: list[int] = field(default_factory=list)  # below next_index, unknown: abandoned
    next_index: int = 0


def plan_adoption(trials: Iterable[TrialView], next_index: int, known: set[int]) -> AdoptionPlan:
    """Decide, from the Trials listed by label, which the loop must adopt.

    ``known`` are the indices the volume accounts for (finished in trials.jsonl or in
    flight in the checkpoint). Unknown Trials at or past ``next_index`` were written by a
    controller whose checkpoint is not on this volume: they are adopted. Unknown ones
    below it were abandoned when a decision (goal, failures) stopped the search.
    """
    adopt, ignored = [], []
    top = next_index
    for view in sorted(trials, key=lambda v: v.index):
        if view.index in known:
            continue
        if view.index >= next_index:
            adopt.append(view)
            top = max(top, view.index + 1)
        else:
            ignored.append(view.index)
    return AdoptionPlan(adopt=adopt, ignored=ignored, next_index=top)


class KubernetesSearchLoop(SearchLoop):
    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        executor: KubernetesExecutor,
        folder: ResultsFolder,
        budget: Budget,
        trials_api: TrialsApi,
        status: StatusReporter,
        epoch: int,
        on_trial: Callable[[TrialRecord, SearchLoop], None] | None = None,
        wait_seconds: float = 5.0,
        metrics: ControllerMetrics | None = None,
        early_stopping: Callable[[KubernetesExecutor], Executor] | None = None,
    ) -> None:
        # spec.earlyStopping wraps the executor the loop waits on; the Kubernetes-only call
        # (expect) still goes to the KubernetesExecutor itself.
        waited_on = early_stopping(executor) if early_stopping is not None else executor
        super().__init__(space, strategy, waited_on, folder, budget, on_trial=on_trial,
                         wait_seconds=wait_seconds)
        self.k8s_executor = executor
        self.trials_api = trials_api
        self.status = status
        self.epoch = epoch
        self.metrics = metrics

    @property
    def policy_version(self) -> int:
        return int(getattr(self.strategy, "policy_version", 0))

    def resume(self) -> None:
        super().resume()
        views = [view_trial(obj) for obj in self.trials_api.list_trials()]
        plan = plan_adoption(views, self.next_index, set(self.records) | set(self.in_flight))
        for view in plan.adopt:
            log.info("adopting trial %s, unknown to the volume", view.name)
            self.in_flight[view.index] = architecture_of(self.space, view)
        if plan.ignored:
            log.info("trials %s were abandoned by an earlier decision", plan.ignored)
        self.next_index = plan.next_index
        self.resumed = self.resumed or bool(views)

    def record_late_trials(self) -> None:
        """Wait for the Trials of this search that have no result on the volume (those
        running when the loop stopped) and record them. Restart-safe: it works from the
        Trials that exist, not from what this process remembers."""
        for obj in self.trials_api.list_trials():
            view = view_trial(obj)
            if view.index not in self.records and view.index not in self.in_flight:
                self.in_flight[view.index] = architecture_of(self.space, view)
                self.k8s_executor.expect(view)
        while self.in_flight:
            self.drain()

    def checkpoint(self) -> None:
        super().checkpoint()
        self.status.progress(self.progress_message(), self.policy_version, self.next_index,
                             self.epoch)
        if self.metrics is not None:  # after every change, so a resumed controller shows it at once
            self.metrics.set_state(best_reward=self.best.reward if self.best else None,
                                   in_flight=len(self.in_flight),
                                   policy_version=self.policy_version, epoch=self.epoch,
                                   policy_stats=self.strategy.metrics())

    def progress_message(self) -> str:
        best = f", best {self.best.reward:.4f} (trial {self.best.index})" if self.best else ""
        return (f"{len(self.records)}/{self.budget.max_trials} trials finished, "
                f"{len(self.in_flight)} running, {self.failed} failed{best}")

    def loop_state(self) -> dict[str, Any]:
        state = super().loop_state()
        state["epoch"] = self.epoch  # which controller wrote this checkpoint
        return state

"""Executor for evaluators that answer within the calling process (tabular benchmarks,
plain Python functions)."""
from __future__ import annotations

import time
from typing import Protocol

from ..search import TrialOutcome, TrialRequest


class Evaluator(Protocol):
    """Evaluates one architecture synchronously. Raising ValueError means the
    architecture cannot be evaluated (a permanent failure)."""

    def evaluate(self, request: TrialRequest) -> TrialOutcome: ...


class InProcessExecutor:
    """Runs each submitted trial, in submission order, when the loop waits."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.queue: list[TrialRequest] = []

    def submit(self, request: TrialRequest) -> None:
        if all(queued.index != request.index for queued in self.queue):
            self.queue.append(request)

    def wait(self, timeout: float | None) -> list[TrialOutcome]:
        queue, self.queue = self.queue, []
        return [self._evaluate(request) for request in queue]

    def cancel(self) -> None:
        self.queue.clear()

    def _evaluate(self, request: TrialRequest) -> TrialOutcome:
        started = time.perf_counter()
        try:
            return self.evaluator.evaluate(request)
        except ValueError as err:
            return TrialOutcome(request.index, succeeded=False, reason="PermanentError",
                                message=str(err), seconds=time.perf_counter() - started)

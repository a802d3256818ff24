"""The search's side of early stopping: follow the running trials' progress.jsonl, judge
them by the rule, write stop.json for those to stop.

    monitor = EarlyStoppingMonitor(spec, folder.trial_dir, on_stop=...)
    executor = EarlyStoppingExecutor(executor, monitor)    # what the SearchLoop runs

The curves are read from the trial folders, not kept elsewhere: a restarted controller
(or `nas run` continued) rebuilds them with `load_existing` and loses nothing.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from ..search import Executor, TrialOutcome, TrialRequest
from .files import read_progress, read_stop, write_stop
from .rules import StopDecision, judge
from .spec import EarlyStoppingSpec

log = logging.getLogger(__name__)

OnStop = Callable[[int, StopDecision], None]


class EarlyStoppingMonitor:
    def __init__(self, spec: EarlyStoppingSpec, trial_dir: Callable[[int], Path],
                 on_stop: OnStop | None = None,
                 before_write: Callable[[], None] | None = None) -> None:
        self.spec = spec
        self.trial_dir = trial_dir
        self.on_stop = on_stop
        self.before_write = before_write      # the controller's write guard (lease, epoch)
        self.curves: dict[int, dict[int, float]] = {}
        self.totals: dict[int, int] = {}
        self.judged: dict[int, int] = {}      # running trial -> latest epoch judged
        self.running: set[int] = set()
        self.stopped: set[int] = set()        # a stop.json was written (by us or before)

    def load_existing(self, trials_root: Path) -> None:
        """Read the curves of every trial folder there (a resumed search's history)."""
        if not trials_root.is_dir():
            return
        for folder in sorted(trials_root.iterdir()):
            if folder.name.isdigit():
                self._read(int(folder.name))

    def watch(self, index: int) -> None:
        self.running.add(index)
        self.judged.setdefault(index, 0)
        if read_stop(self.trial_dir(index)) is not None:
            self.stopped.add(index)

    def finished(self, index: int) -> None:
        """The trial ended: its last epochs count for the others from now on."""
        self._read(index)
        self.running.discard(index)
        self.judged.pop(index, None)

    def poll(self) -> list[int]:
        """Read the running trials' progress and stop those the rule says; returns them."""
        for index in self.running:
            self._read(index)
        stopped = []
        for index in sorted(self.running - self.stopped):
            total = self.totals.get(index)
            if total is None:
                continue
            decision, self.judged[index] = judge(self.spec, index, self.judged.get(index, 0),
                                                 total, self.curves)
            if decision is not None:
                self._stop(index, decision)
                stopped.append(index)
        return stopped

    def _read(self, index: int) -> None:
        values, total = read_progress(self.trial_dir(index))
        if total is not None:
            self.totals[index] = total
        curve = self.curves.setdefault(index, {})
        for epoch, value in values.items():
            curve.setdefault(epoch, value)    # first seen wins: a retried attempt starts over

    def _stop(self, index: int, decision: StopDecision) -> None:
        if self.before_write is not None:
            self.before_write()
        write_stop(self.trial_dir(index), decision.epoch, decision.message)
        self.stopped.add(index)
        log.info("trial %d: %s", index, decision.message)
        if self.on_stop is not None:
            self.on_stop(index, decision)


class EarlyStoppingExecutor:
    """Wraps the search's executor: between its waits (every `poll_seconds`) the monitor
    looks at the running trials. Everything else is the wrapped executor's."""

    def __init__(self, inner: Executor, monitor: EarlyStoppingMonitor,
                 poll_seconds: float = 0.5) -> None:
        self.inner = inner
        self.monitor = monitor
        self.poll_seconds = poll_seconds

    def submit(self, request: TrialRequest) -> None:
        self.inner.submit(request)
        self.monitor.watch(request.index)

    def wait(self, timeout: float | None) -> list[TrialOutcome]:
        deadline = time.monotonic() + (timeout if timeout is not None else 3600.0)
        while True:
            self.monitor.poll()
            remaining = max(0.0, deadline - time.monotonic())
            outcomes = self.inner.wait(min(self.poll_seconds, remaining))
            if outcomes:
                for outcome in outcomes:
                    self.monitor.finished(outcome.index)
                return outcomes
            if time.monotonic() >= deadline:
                return []

    def cancel(self) -> None:
        self.inner.cancel()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)   # executor-specific calls (expect, replaced, ...)

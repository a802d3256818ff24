"""The search loop shared by `nas run` and the controller pod.

    loop = SearchLoop(space, strategy, executor, ResultsFolder(out), Budget(max_trials=200))
    summary = loop.run()

The loop asks the strategy for architectures, keeps up to `parallelism` trials running
on an Executor, tells the strategy every result, and checkpoints after every change. It
knows nothing of how a trial runs: an Executor takes TrialRequests and later returns
TrialOutcomes. In-process evaluators (tabular benchmarks), local subprocesses (`nas-train`)
and Kubernetes Trials all fit.

Guarantees:
- deduplication by hash: an architecture proposed again is answered from the results
  (the strategy is told again, so it still learns; the budget is not charged); one still
  running is answered when it finishes;
- write-ahead: a trial's index, architecture and sampling meta are checkpointed before it
  is submitted, and its result is appended to trials.jsonl (the source of truth) before
  the strategy hears of it; resuming after a kill at any instant re-submits the trials
  that were in flight (an executor adopts them if it can) and repeats none that finished.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from .architecture import Architecture
from .results import FAILED, SUCCEEDED, ResultsFolder, TrialRecord, utc_now
from .spaces.base import SearchSpace
from .strategies.base import Strategy

MAX_TRIALS_REACHED = "MaxTrialsReached"
GOAL_REACHED = "GoalReached"
SPACE_EXHAUSTED = "SpaceExhausted"
TOO_MANY_FAILURES = "TooManyFailures"
LOOP_STATE_VERSION = 1


@dataclass(frozen=True)
class Budget:
    """When a search ends. `max_trials` counts evaluated trials, failed ones included;
    the search fails once `max_failed` trials failed (0: at the first failure)."""

    max_trials: int
    parallelism: int = 1
    max_failed: int = 10
    goal: float | None = None
    # A strategy that proposes only known architectures this many times in a row is
    # taken to have exhausted what it can find.
    max_known_in_a_row: int = 50

    def __post_init__(self) -> None:
        if self.max_trials < 1 or self.parallelism < 1 or self.max_failed < 0:
            raise ValueError(f"budget needs max_trials >= 1, parallelism >= 1, max_failed >= 0 "
                             f"(got {self.max_trials}, {self.parallelism}, {self.max_failed})")


@dataclass(frozen=True)
class TrialRequest:
    """A trial to run: its index in the search and the architecture (meta included)."""

    index: int
    architecture: Architecture


@dataclass(frozen=True)
class TrialOutcome:
    """What became of a trial. `reason` says why it failed, in the Trial status's words:
    PermanentError, RetriesExhausted, Timeout, InvalidResult."""

    index: int
    succeeded: bool
    reward: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    message: str = ""
    seconds: float | None = None
    parameters: int | None = None
    stopped_early: bool = False      # a partial result: the reward at `epochs` (early stopping)
    epochs: int | None = None
    # what ran, when not what was submitted (an index a replaced controller had written
    # with another architecture: the Trial is what runs, so it is what is recorded and told)
    architecture: Architecture | None = None


class Executor(Protocol):
    """Runs trials. `submit` must return quickly and be idempotent per index: after a
    restart the loop submits the trials that were in flight again, and an executor that
    can find a running one (a Kubernetes Trial) adopts it instead of starting another."""

    def submit(self, request: TrialRequest) -> None: ...

    def wait(self, timeout: float | None) -> list[TrialOutcome]:
        """Block until at least one submitted trial finished (or `timeout` seconds passed);
        return each finished trial's outcome once."""
        ...

    def cancel(self) -> None:
        """Stop every running trial (the search ended early)."""
        ...


@dataclass
class SearchSummary:
    reason: str
    trials: int                 # evaluated trials (failed included)
    succeeded: int
    failed: int
    best: TrialRecord | None
    known_proposals: int        # proposals answered from earlier results
    seconds: float
    resumed: bool


class SearchLoop:
    def __init__(self, space: SearchSpace, strategy: Strategy, executor: Executor,
                 folder: ResultsFolder, budget: Budget, *,
                 on_trial: Callable[[TrialRecord, "SearchLoop"], None] | None = None,
                 wait_seconds: float = 5.0) -> None:
        self.space, self.strategy, self.executor = space, strategy, executor
        self.folder, self.budget = folder, budget
        self.on_trial = on_trial
        self.wait_seconds = wait_seconds
        self.records: dict[int, TrialRecord] = {}
        self.by_hash: dict[str, TrialRecord] = {}
        self.best: TrialRecord | None = None
        self.failed = 0
        self.in_flight: dict[int, Architecture] = {}
        self.waiting: list[Architecture] = []   # proposals of a hash still in flight
        self.next_index = 0
        self.known_in_a_row = 0
        self.known_proposals = 0
        self.resumed = False

    # --- the loop -------------------------------------------------------------------
    def run(self) -> SearchSummary:
        started = time.monotonic()
        self.resume()
        if self.stop_reason() in (GOAL_REACHED, TOO_MANY_FAILURES):
            self._abandon_in_flight()  # decided before the restart: nothing to re-run
        self.checkpoint()
        for index, arch in sorted(self.in_flight.items()):
            self.executor.submit(TrialRequest(index, arch))
        while True:
            reason = self.stop_reason()
            if reason in (GOAL_REACHED, TOO_MANY_FAILURES):
                if self.in_flight:
                    self.executor.cancel()
                    self._abandon_in_flight()
                    self.checkpoint()
                break
            if reason is None:
                self.fill()
                reason = self.stop_reason()
            if not self.in_flight:
                if reason is None:  # cannot happen: fill() starts a trial or sets a reason
                    raise RuntimeError("search loop stalled with nothing in flight")
                break
            self.drain()
        return SearchSummary(reason=reason, trials=len(self.records),
                             succeeded=len(self.records) - self.failed, failed=self.failed,
                             best=self.best, known_proposals=self.known_proposals,
                             seconds=time.monotonic() - started, resumed=self.resumed)

    def stop_reason(self) -> str | None:
        """Why the search should stop now, or None. Max trials and space exhaustion let
        running trials finish; a goal or too many failures stop at once."""
        budget = self.budget
        if budget.goal is not None and self.best is not None and self.best.reward >= budget.goal:
            return GOAL_REACHED
        if self.failed >= max(budget.max_failed, 1):
            return TOO_MANY_FAILURES
        if len(self.records) >= budget.max_trials:
            return MAX_TRIALS_REACHED
        if self.exhausted():
            return SPACE_EXHAUSTED
        return None

    def exhausted(self) -> bool:
        size = self.space.size()
        distinct = len(self.by_hash) + len(self.in_flight)  # in-flight hashes are all new
        return (self.known_in_a_row >= self.budget.max_known_in_a_row
                or (size is not None and distinct >= size))

    def fill(self) -> None:
        """Ask for architectures until `parallelism` trials run (or the budget or the
        space is used up); write them ahead, then submit them."""
        budget = self.budget
        slots = min(budget.parallelism - len(self.in_flight),
                    budget.max_trials - len(self.records) - len(self.in_flight))
        started: list[TrialRequest] = []
        while slots > 0 and not self.exhausted():
            for arch in self.strategy.ask(slots):
                if arch.hash in self.by_hash:
                    self._answer_known(arch, self.by_hash[arch.hash])
                elif any(arch.hash == running.hash for running in self.in_flight.values()):
                    self.waiting.append(arch)
                    self._count_known()
                else:
                    self.known_in_a_row = 0
                    request = TrialRequest(self.next_index, arch)
                    self.in_flight[request.index] = arch
                    self.next_index += 1
                    started.append(request)
                    slots -= 1
        if started:
            self.checkpoint()  # write-ahead: nothing runs that a restart would not know
            for request in started:
                self.executor.submit(request)

    def drain(self) -> None:
        """Wait a while for trials to finish; record those that did, then checkpoint."""
        outcomes = self.executor.wait(self.wait_seconds)
        for outcome in outcomes:
            self.finish(outcome)
        if outcomes:
            self.checkpoint()

    def finish(self, outcome: TrialOutcome) -> None:
        """Record a finished trial, then tell the strategy (and answer waiting duplicates)."""
        arch = self.in_flight.pop(outcome.index, None)
        if arch is None:
            return  # not ours, or already recorded (an executor reporting twice)
        arch = outcome.architecture or arch
        record = TrialRecord(
            index=outcome.index, hash=arch.hash, architecture=arch.to_json(),
            status=SUCCEEDED if outcome.succeeded else FAILED,
            reward=float(outcome.reward) if outcome.succeeded else None,
            metrics=dict(outcome.metrics), reason=outcome.reason, message=outcome.message,
            seconds=outcome.seconds, parameters=outcome.parameters,
            log_prob=arch.meta.get("log_prob"), policy_version=arch.meta.get("policy_version"),
            finished_at=utc_now(), stopped_early=outcome.succeeded and outcome.stopped_early,
            epochs=outcome.epochs)
        self.folder.append_trial(record)  # the source of truth, before anyone learns of it
        self._index(record)
        if self.best is record:
            self.folder.write_best(record)
        self._tell(arch, record)
        for duplicate in [w for w in self.waiting if w.hash == arch.hash]:
            self.waiting.remove(duplicate)
            self._tell(duplicate, record)
        if self.on_trial is not None:
            self.on_trial(record, self)

    # --- bookkeeping ----------------------------------------------------------------
    def _abandon_in_flight(self) -> None:
        """Forget running trials once the search is decided; they count nowhere."""
        self.in_flight.clear()
        self.waiting.clear()

    def _index(self, record: TrialRecord) -> None:
        self.records[record.index] = record
        self.by_hash.setdefault(record.hash, record)
        if not record.succeeded:
            self.failed += 1
        elif self.best is None or record.reward > self.best.reward:
            self.best = record

    def _tell(self, arch: Architecture, record: TrialRecord) -> None:
        if record.succeeded and record.stopped_early:
            self.strategy.tell_partial(arch, record.reward, record.epochs)
        elif record.succeeded:
            self.strategy.tell(arch, record.reward)
        else:
            self.strategy.tell_failure(arch, record.reason or "Failed")

    def _answer_known(self, arch: Architecture, record: TrialRecord) -> None:
        self._tell(arch, record)
        self._count_known()

    def _count_known(self) -> None:
        self.known_in_a_row += 1
        self.known_proposals += 1

    # --- checkpoint and resume ------------------------------------------------------
    def loop_state(self) -> dict[str, Any]:
        return {
            "version": LOOP_STATE_VERSION,
            "next_index": self.next_index,
            "in_flight": [{"index": i, "architecture": a.to_json(include_meta=True)}
                          for i, a in sorted(self.in_flight.items())],
            "waiting": [a.to_json(include_meta=True) for a in self.waiting],
            "known_in_a_row": self.known_in_a_row,
            "known_proposals": self.known_proposals,
        }

    def checkpoint(self) -> None:
        self.folder.save_checkpoint(self.loop_state(), self.strategy.state_dict())

    def resume(self) -> None:
        """Rebuild the loop from the folder: finished trials from trials.jsonl, the rest
        from the checkpoint. Trials that finished after the checkpoint are told now."""
        self.folder.repair()
        for record in self.folder.read_trials():
            self._index(record)
        saved = self.folder.load_checkpoint()
        self.resumed = bool(self.records) or saved is not None
        if self.best is not None:
            self.folder.write_best(self.best)
        if saved is None:
            # No checkpoint (first start, or it was lost): a fresh strategy hears every result.
            for record in sorted(self.records.values(), key=lambda r: r.index):
                self._tell(self._architecture(record.architecture), record)
            self.next_index = max(self.records, default=-1) + 1
            return
        loop, strategy_state = saved
        if loop.get("version") != LOOP_STATE_VERSION:
            raise ValueError(f"checkpoint loop state version {loop.get('version')} is not "
                             f"{LOOP_STATE_VERSION}")
        self.strategy.load_state_dict(strategy_state)
        self.next_index = int(loop["next_index"])
        self.known_in_a_row = int(loop["known_in_a_row"])
        self.known_proposals = int(loop["known_proposals"])
        for entry in loop["in_flight"]:
            arch = self._architecture(entry["architecture"])
            record = self.records.get(entry["index"])
            if record is None:
                self.in_flight[entry["index"]] = arch
            else:
                self._tell(arch, record)  # finished after the checkpoint was written
        for doc in loop["waiting"]:
            arch = self._architecture(doc)
            if arch.hash in self.by_hash:
                self._tell(arch, self.by_hash[arch.hash])
            else:
                self.waiting.append(arch)

    def _architecture(self, doc: Mapping[str, Any]) -> Architecture:
        return self.space.parse(doc)


def run_search(space: SearchSpace, strategy: Strategy, executor: Executor,
               folder: ResultsFolder, budget: Budget, **options: Any) -> SearchSummary:
    """Run (or continue) a search to its end; see SearchLoop."""
    return SearchLoop(space, strategy, executor, folder, budget, **options).run()

"""One controller run: take over the search, run its loop to a decision, report it.

    ControllerRunner(config, api_client).run() -> Decision | None

Order matters: the lease first (so no other controller writes), then the fencing epoch
(so a stale one that still writes is refused), then the volume and the Trials.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from kubernetes import client

from nas_trainer.controller.config import ControllerConfig
from nas_trainer.controller.events import EventRecorder
from nas_trainer.controller.executor import BudgetChanged, KubernetesExecutor
from nas_trainer.controller.fencing import Fence
from nas_trainer.controller.guard import FencedResultsFolder, WriteGuard
from nas_trainer.controller.lease import LeaderLease, lease_name
from nas_trainer.controller.loop import KubernetesSearchLoop
from nas_trainer.controller.metrics import ControllerMetrics
from nas_trainer.controller.permanent import PermanentError, check_spec
from nas_trainer.controller.status import StatusReporter
from nas_trainer.controller.trials_api import API_VERSION, TrialsApi, search_owner_reference, trial_name
from nas_trainer.evaluators import with_early_stopping
from nas_trainer.manifest import SearchManifest
from nas_trainer.results import CHECKPOINT_DIR, TrialRecord
from nas_trainer.search import GOAL_REACHED, TOO_MANY_FAILURES, Budget, Executor, SearchLoop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    reason: str
    message: str


def manifest_document(search_obj: dict[str, Any]) -> dict[str, Any]:
    """The search as a user wrote it (no server-side metadata, no status)."""
    meta = search_obj["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "ArchitectureSearch",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": search_obj.get("spec") or {},
    }


def budget_of(manifest: SearchManifest) -> Budget:
    trials = manifest.trials
    # with packing (WarmPool) each worker holds several Trials: keep them all supplied
    return Budget(max_trials=trials.max, parallelism=trials.in_flight,
                  max_failed=trials.max_failed, goal=trials.goal)


def decision_message(reason: str, loop: SearchLoop, manifest: SearchManifest) -> str:
    parts = [f"{len(loop.records)} trials finished ({loop.failed} failed)"]
    if loop.known_proposals:
        parts.append(f"{loop.known_proposals} known proposals answered from results")
    if loop.best is not None:
        best = f"best reward {loop.best.reward:.4f} by trial {trial_name(manifest.name, loop.best.index)}"
        if reason == GOAL_REACHED:
            best = f"goal {manifest.trials.goal} reached: {best}"
        parts.append(best)
    return "; ".join(parts)


class ControllerRunner:
    def __init__(self, config: ControllerConfig, api_client: client.ApiClient) -> None:
        self.config = config
        self.custom = client.CustomObjectsApi(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.trials_api = TrialsApi(self.custom, config.namespace, config.search)
        self.metrics = ControllerMetrics(config.search, config.namespace)
        self.lease: LeaderLease | None = None
        self.executor: KubernetesExecutor | None = None
        self.search_obj: dict[str, Any] | None = None  # as last read: whose spec failed

    # --- the run ----------------------------------------------------------------------
    def run(self) -> Decision:
        """Run the search to its decision. Raises SearchSuspended/SearchDeleted (exit
        cleanly), LeaseLost/FencedOut (stop at once) and Terminated (SIGTERM)."""
        cfg = self.config
        search_obj = self.search_obj = self.trials_api.read_search()
        check_spec(manifest_document(search_obj))  # a bad spec fails before anything is held
        self.metrics.serve(cfg.metrics_port)
        events = EventRecorder(self.core, search_obj, cfg.identity)

        self.lease = LeaderLease(self.coordination, cfg.namespace, lease_name(cfg.search),
                                 cfg.identity, cfg.lease_seconds,
                                 owner_reference=search_owner_reference(search_obj))
        self.lease.acquire(on_wait=lambda holder: log.info("waiting for lease held by %s", holder))
        self.lease.start_renewing()
        fence = Fence(cfg.data_dir / CHECKPOINT_DIR, cfg.identity)
        epoch = fence.take_over()
        guard = WriteGuard(self.lease, fence)
        self.trials_api.check = guard.check
        folder = FencedResultsFolder(cfg.data_dir, guard)
        status = StatusReporter(self.trials_api, guard.check)
        log.info("controller %s took over search %s/%s at epoch %d", cfg.identity,
                 cfg.namespace, cfg.search, epoch)
        events.emit("ControllerStarted", f"controller {cfg.identity} took over at fencing epoch {epoch}")

        while True:
            search_obj = self.search_obj = self.trials_api.read_search()
            manifest = check_spec(manifest_document(search_obj))
            folder.write_manifest(manifest.document)
            space = manifest.space.build()
            strategy = manifest.strategy.build(space)
            self.executor = KubernetesExecutor(self.custom, self.trials_api, search_obj, space,
                                               guard.check, events, self.metrics)
            loop = KubernetesSearchLoop(space, strategy, self.executor, folder, budget_of(manifest),
                                        self.trials_api, status, epoch,
                                        on_trial=self._on_trial_hook(events, manifest),
                                        wait_seconds=cfg.wait_seconds, metrics=self.metrics,
                                        early_stopping=self._early_stopping(manifest, folder, guard))
            self.executor.start()
            try:
                summary = loop.run()
                if summary.reason in (GOAL_REACHED, TOO_MANY_FAILURES):
                    loop.record_late_trials()
            except BudgetChanged:
                log.info("spec.trials changed: continuing with the new budget")
                continue
            finally:
                self.executor.stop()
            decision = Decision(summary.reason, decision_message(summary.reason, loop, manifest))
            self._report(status, decision, loop, epoch)
            events.emit("SearchDecided", f"{decision.reason}: {decision.message}",
                        "Warning" if summary.reason == TOO_MANY_FAILURES else "Normal")
            return decision

    @property
    def generation(self) -> int | None:
        """The metadata.generation of the search as last read."""
        meta = (self.search_obj or {}).get("metadata") or {}
        return int(meta["generation"]) if meta.get("generation") is not None else None

    def report_permanent(self, err: PermanentError) -> None:
        """A Warning Event on the search (best effort: the exit code and termination
        message are what the operator acts on)."""
        if self.search_obj is None:
            return
        try:
            EventRecorder(self.core, self.search_obj, self.config.identity).emit(
                err.reason, err.message, "Warning")
        except Exception as event_error:  # noqa: BLE001
            log.warning("could not record the %s event: %s", err.reason, event_error)

    def release(self) -> None:
        if self.executor is not None:
            self.executor.stop()
        if self.lease is not None:
            self.lease.release()

    # --- helpers ------------------------------------------------------------------------
    def _on_trial_hook(self, events: EventRecorder, manifest: SearchManifest):
        metrics = self.metrics

        def on_trial(record: TrialRecord, loop: SearchLoop) -> None:
            metrics.finished("succeeded" if record.succeeded else "failed", record.reward)
            if loop.best is record:
                events.emit("NewBest", f"trial {trial_name(manifest.name, record.index)} reached "
                                       f"reward {record.reward:.4f}")
            # Told once the Trial says it stopped: a trial asked to stop may finish its
            # last epochs first, and then it did not stop early.
            if record.succeeded and record.stopped_early:
                events.emit("TrialStoppedEarly",
                            f"trial {trial_name(manifest.name, record.index)}: {record.message}")

        return on_trial

    def _early_stopping(self, manifest: SearchManifest, folder: FencedResultsFolder,
                        guard: WriteGuard) -> Callable[[KubernetesExecutor], Executor] | None:
        """spec.earlyStopping: the trial pods' progress is read on the volume, the stops
        written there (fenced like every write); the Event comes with the stopped Trial."""
        if manifest.early_stopping is None:
            return None
        return lambda executor: with_early_stopping(
            executor, manifest, folder, poll_seconds=min(1.0, self.config.wait_seconds),
            before_write=guard.check)

    def _report(self, status: StatusReporter, decision: Decision, loop: KubernetesSearchLoop,
                epoch: int) -> None:
        """Write the decision (the status patch retries while the API is away)."""
        status.decision(decision.reason, decision.message, loop.policy_version, loop.next_index,
                        epoch)
        log.info("decision %s: %s", decision.reason, decision.message)

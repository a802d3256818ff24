"""The search loop's Executor on Kubernetes: a trial is a Trial object.

`submit` writes the Trial (or adopts the one a previous controller wrote for that
index); the operator runs it and fills its status; `wait` follows the Trials through an
informer and hands each finished one back exactly once. The search object is followed
too: suspending it, deleting it or changing its budget ends `wait` with an exception the
controller's main acts on.
"""

from __future__ import annotations

import dataclasses

import logging
import queue
import time
from typing import Any, Callable

from kubernetes import client
from kubernetes.client.rest import ApiException

from nas_trainer.architecture import Architecture
from nas_trainer.controller.events import EventRecorder
from nas_trainer.controller.informer import CustomObjectInformer, Event
from nas_trainer.controller.metrics import ControllerMetrics
from nas_trainer.controller.trials_api import (
    GROUP,
    SEARCHES,
    TRIALS,
    VERSION,
    TrialsApi,
    TrialView,
    build_trial,
    view_trial,
)
from nas_trainer.search import TrialOutcome, TrialRequest
from nas_trainer.spaces.base import SearchSpace

log = logging.getLogger(__name__)


class SearchSuspended(Exception):
    """spec.suspend is true: create nothing more and exit cleanly."""


class SearchDeleted(Exception):
    """The search is gone (or going): nothing left to do."""


class BudgetChanged(Exception):
    """spec.trials changed: rebuild the loop with the new budget."""


def outcome_of(view: TrialView) -> TrialOutcome:
    """The loop's outcome for a finished Trial. Succeeded needs a reward (the operator
    fails a Trial without one; a hand-made Trial might still lack it)."""
    succeeded = view.phase == "Succeeded" and view.reward is not None
    reason = view.reason if not succeeded else ""
    if view.phase == "Succeeded" and view.reward is None:
        reason = "InvalidResult"
    return TrialOutcome(
        index=view.index,
        succeeded=succeeded,
        reward=view.reward if succeeded else None,
        metrics=view.metrics,
        reason=reason or ("" if succeeded else "Failed"),
        message=view.message,
        seconds=view.seconds,
        parameters=view.parameters,
        stopped_early=succeeded and view.stopped_early,
        epochs=view.epochs,
    )


def architecture_of(space: SearchSpace, view: TrialView) -> Architecture:
    """The architecture a Trial records, with its sampling meta, checked by the space."""
    arch = space.parse(view.architecture)
    meta: dict[str, Any] = {"policy_version": view.policy_version}
    if view.log_prob is not None:
        meta["log_prob"] = view.log_prob
    return arch.with_meta(**meta)


class KubernetesExecutor:
    def __init__(
        self,
        custom_api: client.CustomObjectsApi,
        trials_api: TrialsApi,
        search_obj: dict[str, Any],
        space: SearchSpace,
        check_writable: Callable[[], None],
        events: EventRecorder | None = None,
        metrics: ControllerMetrics | None = None,
        watch_timeout_s: int = 60,
    ) -> None:
        self.trials_api = trials_api
        self.search_obj = search_obj
        self.space = space
        self.check_writable = check_writable
        self.events = events
        self.metrics = metrics
        self._trials_spec = (search_obj.get("spec") or {}).get("trials")
        self.queue: "queue.Queue[Event]" = queue.Queue()
        namespace, name = trials_api.namespace, trials_api.search
        self.informers = [
            CustomObjectInformer(custom_api, GROUP, VERSION, namespace, TRIALS, self.queue,
                                 "trials", label_selector=trials_api.selector,
                                 watch_timeout_s=watch_timeout_s),
            CustomObjectInformer(custom_api, GROUP, VERSION, namespace, SEARCHES, self.queue,
                                 "search", field_selector=f"metadata.name={name}",
                                 watch_timeout_s=watch_timeout_s),
        ]
        self.trials: dict[int, TrialView] = {}
        # Submitted (or adopted) and not yet reported: what an outcome may come from.
        self.unreported: set[int] = set()
        # Indices whose Trial changed since the last look: only these can have finished
        # (a search of 20,000 trials, 1,000 in flight, must not scan them all per event).
        self.changed: set[int] = set()
        self.deleted: set[int] = set()
        # Index -> the architecture of an adopted Trial that differs from the loop's: its
        # outcome carries it (TrialOutcome.architecture).
        self.adopted: dict[int, Architecture] = {}
        self.created = 0

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        for informer in self.informers:
            informer.start()

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()

    # --- Executor ---------------------------------------------------------------------
    def submit(self, request: TrialRequest) -> None:
        self._drain()
        self._raise_if_stopping()
        self.check_writable()
        arch = request.architecture
        body = build_trial(
            self.search_obj,
            request.index,
            arch.to_json(),
            arch.meta.get("log_prob"),
            int(arch.meta.get("policy_version") or 0),
        )
        obj, created = self.trials_api.create_or_adopt(body)
        view = view_trial(obj)
        self.unreported.add(request.index)
        self._remember(view)
        if created:
            self.created += 1
            if self.metrics:
                self.metrics.created()
            if self.events:
                self.events.emit("TrialCreated", f"trial {view.name}: {_summary(arch)}")
        elif view.hash != arch.hash:
            # The index was written with another architecture (by a controller this one
            # replaced): the Trial is what runs, so it is what gets recorded and told.
            log.warning("trial %s holds %s, not %s: adopting the Trial's", view.name, view.hash, arch.hash)
            self.adopted[request.index] = architecture_of(self.space, view)
        else:
            log.info("adopted existing trial %s", view.name)

    def expect(self, view: TrialView) -> None:
        """Report this existing Trial when it finishes, without submitting it."""
        self.unreported.add(view.index)
        self.changed.add(view.index)
        self.trials.setdefault(view.index, view)

    def wait(self, timeout: float | None) -> list[TrialOutcome]:
        deadline = time.monotonic() + (timeout if timeout is not None else 3600.0)
        while True:
            self._drain()
            self._raise_if_stopping()
            outcomes = self._collect()
            if outcomes:
                return outcomes
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            try:
                self._apply(self.queue.get(timeout=min(remaining, 1.0)))
            except queue.Empty:
                pass

    def cancel(self) -> None:
        """Nothing to stop: the controller may not delete Trials; running ones finish and
        the operator counts them (contract 7's phase rule)."""

    # --- internals ----------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            try:
                self._apply(self.queue.get_nowait())
            except queue.Empty:
                return

    def _apply(self, event: Event) -> None:
        if event.obj is None:
            return
        if event.source == "search":
            if event.type == "DELETED":
                raise SearchDeleted(f"search {self.trials_api.search} was deleted")
            self.search_obj = event.obj
            return
        view = view_trial(event.obj)
        if event.type == "DELETED":
            self.deleted.add(view.index)
            self.changed.add(view.index)
        else:
            self.deleted.discard(view.index)
            self._remember(view)

    def _remember(self, view: TrialView) -> None:
        self.trials[view.index] = view
        self.changed.add(view.index)

    def _raise_if_stopping(self) -> None:
        meta = self.search_obj.get("metadata") or {}
        spec = self.search_obj.get("spec") or {}
        if meta.get("deletionTimestamp"):
            raise SearchDeleted(f"search {meta.get('name')} is being deleted")
        if spec.get("suspend"):
            raise SearchSuspended(f"search {meta.get('name')} is suspended")
        if spec.get("trials") != self._trials_spec:
            raise BudgetChanged(f"spec.trials of {meta.get('name')} changed")

    def _collect(self) -> list[TrialOutcome]:
        outcomes = []
        candidates = self.changed & self.unreported
        if candidates & self.deleted:
            # A Trial deleted with its search ends the controller, not the trial: asked
            # before anything is marked reported, so a failed look loses no outcome.
            self._check_search_exists()
        self.changed = set()
        for index in sorted(candidates):
            view = self.trials.get(index)
            if index in self.deleted:
                outcomes.append(TrialOutcome(index=index, succeeded=False, reason="TrialDeleted",
                                             message="the Trial was deleted before it finished"))
            elif view is not None and view.finished:
                outcomes.append(dataclasses.replace(outcome_of(view),
                                                    architecture=self.adopted.pop(index, None)))
            else:
                continue
            self.unreported.discard(index)
        return outcomes

    def _check_search_exists(self) -> None:
        try:
            obj = self.trials_api.read_search()
        except ApiException as err:
            if err.status == 404:
                raise SearchDeleted(f"search {self.trials_api.search} was deleted") from err
            raise
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            raise SearchDeleted(f"search {self.trials_api.search} is being deleted")


def _summary(arch: Architecture) -> str:
    text = ", ".join(f"{k}={v}" for k, v in arch.canonical.items())
    return text if len(text) <= 200 else text[:197] + "..."

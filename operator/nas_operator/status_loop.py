"""The status loop: recomputes searches marked dirty, at most once per interval each.

Why not a kopf timer per search: kopf puts a finalizer on every object that has a timer
or daemon (https://kopf.readthedocs.io/en/stable/daemons/#termination), so a search
could not be deleted while the operator is down or uninstalled. One loop for all
searches needs no finalizer, and it bounds the status write rate however many Trial
events arrive: handlers only mark a search dirty.

Every ``RESYNC_SECONDS`` every known search is marked, which also repairs what a missed
event left behind (an unfinished Trial whose Job finished or never appeared).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from kubernetes.client.rest import ApiException

from . import events, metrics
from .cleanup import CLEANUP
from .config import OperatorSettings
from .k8s import api
from .names import API_VERSION, MODE_WARM_POOL, SEARCH_KIND
from .records import JobRecord, PodRecord, TrialRecord
from .search_reconcile import reconcile_search, trials_to_repair
from .trial_sync import sync_trial

log = logging.getLogger(__name__)
RESYNC_SECONDS = 60.0

Key = tuple[str, str]


class StatusLoop:
    def __init__(self) -> None:
        self._dirty: set[Key] = set()
        self._due: dict[Key, float] = {}  # monotonic time of a pass asked for later
        self._lock = threading.Lock()
        self.ready = False  # set by the first handler call: kopf's indexes are populated then
        self.last_pass = time.monotonic()
        self._failures: dict[Key, int] = {}  # passes failed in a row, per search

    def mark(self, namespace: str, search: str | None) -> None:
        """Ask for a pass over ``namespace/search`` (thread-safe; from any handler)."""
        if search:
            with self._lock:
                self._dirty.add((namespace, search))
        self.ready = True

    def mark_in(self, namespace: str, search: str, seconds: float) -> None:
        """Ask for a pass in ``seconds`` (the earliest of several asks wins): a deadline no
        event will announce, e.g. a warm worker's trial timeout."""
        when = time.monotonic() + max(0.0, seconds)
        with self._lock:
            key = (namespace, search)
            self._due[key] = min(when, self._due.get(key, when))

    def forget(self, namespace: str, search: str) -> None:
        with self._lock:
            self._dirty.discard((namespace, search))
            self._due.pop((namespace, search), None)

    def _take(self) -> set[Key]:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, when in self._due.items() if when <= now]:
                del self._due[key]
                self._dirty.add(key)
            batch, self._dirty = self._dirty, set()
        return batch

    async def run(self, indices: Mapping[str, Any], settings: OperatorSettings) -> None:
        loop = asyncio.get_running_loop()
        last_resync = time.monotonic()
        while True:
            await asyncio.sleep(settings.status_interval_seconds)
            self.last_pass = time.monotonic()
            if self.ready and self.last_pass - last_resync >= RESYNC_SECONDS:
                last_resync = self.last_pass
                for key in list(indices["searches"].keys()):
                    self.mark(*key)
            batch = sorted(self._take())
            if not batch:
                continue
            jobs = indices["trial_jobs"]
            work = []
            for namespace, name in batch:
                records: list[TrialRecord] = list(
                    indices["trials_by_search"].get((namespace, name), [])
                )
                pods: list[PodRecord] = list(indices["controller_pods"].get((namespace, name), []))
                finished: dict[str, bool | None] = {}
                # WarmPool Trials have no Job: the warm pool's own pass repairs them
                warm = MODE_WARM_POOL in indices["searches"].get((namespace, name), [])
                for record in ([] if warm else records):
                    job: list[JobRecord] = list(jobs.get((namespace, record.name), []))
                    finished[record.name] = job[0].finished if job else None
                work.append(
                    loop.run_in_executor(
                        None,
                        self._pass,
                        namespace,
                        name,
                        records,
                        pods[0] if pods else None,
                        finished,
                        settings,
                    )
                )
            outcomes = await asyncio.gather(*work, return_exceptions=True)
            for key, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    self._failed(key, outcome)
                else:
                    self._failures.pop(key, None)
                    if outcome is not None:  # a controller pod's back-off ends then
                        self.mark_in(*key, outcome)

    def _failed(self, key: Key, error: BaseException) -> None:
        """One search's pass failed: the others go on; this one is tried again with backoff
        (1 s doubling to a minute), and a user is told on the search, once per error."""
        namespace, name = key
        metrics.RECONCILE_ERRORS.labels("search_status").inc()
        log.error("status pass of %s/%s failed: %r", namespace, name, error)
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        self.mark_in(namespace, name, min(60.0, 2.0 ** (count - 1)))
        if count >= 3:  # a blip passes; an error that repeats is worth an Event
            search = {
                "apiVersion": API_VERSION,
                "kind": SEARCH_KIND,
                "metadata": {"namespace": namespace, "name": name},
            }
            events.warning_once(search, "ReconcileError", f"the operator failed: {brief(error)}")

    @staticmethod
    def _pass(
        namespace: str,
        name: str,
        records: list[TrialRecord],
        pod: PodRecord | None,
        finished: dict[str, bool | None],
        settings: OperatorSettings,
    ) -> float | None:
        """One search's pass; the seconds after which it wants another, or None."""
        metrics.RECONCILES.labels("search_status").inc()
        started = time.perf_counter()
        client = api()
        recheck = reconcile_search(client, namespace, name, records, pod, settings)
        for trial in trials_to_repair(records, finished) if finished else []:
            sync_trial(client, namespace, trial, settings)
        if finished:  # Job mode: finished Trials' Jobs, pods and Events go (cleanup.py)
            CLEANUP.schedule(client, namespace, name, records, finished, settings)
        metrics.RECONCILE_SECONDS.labels("search_status").observe(time.perf_counter() - started)
        return recheck


def brief(error: BaseException) -> str:
    """An error in one line that is the same each time it repeats (no dates, no headers)."""
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}"
    return f"{type(error).__name__}: {str(error)[:300]}"


LOOP = StatusLoop()

"""Cleanup as a search goes: a finished Trial's Job, its pods and their Events go once the
Trial's status holds the result, so a long search does not leave a Job, a pod and half a
dozen Events per trial in etcd.

Policy (per search, like a CronJob's history limits):

- the Jobs of the newest ``successful_trial_jobs_history_limit`` succeeded Trials and the
  newest ``failed_trial_jobs_history_limit`` failed ones (by trial index) are kept, with
  their pods, for ``kubectl logs`` and debugging; the Jobs of the other finished Trials are
  deleted with propagationPolicy Background, so the garbage collector takes their pods;
  a limit of None keeps them all (the Jobs' TTL still applies);
- once a Trial's Job is gone, the Events about that Job, its pods and the Trial's own
  Normal Events go too; Warning Events on Trials (why a trial failed) stay until the API
  server's event TTL.

The Trials themselves are never touched: their status keeps reward, metrics, reason and
message. The status loop's pass (Job mode only) hands each search's cleanup, planned from
the kopf indexes, to one thread of its own: deleting hundreds of Events takes a while on a
busy API server, and the search's status must not wait for it. Nothing to clean costs no
API call.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kubernetes.client.rest import ApiException

from .config import OperatorSettings
from .k8s import KubeApi
from .names import TRIAL_KIND
from .records import TrialRecord
from .trial_status import FINISHED

log = logging.getLogger(__name__)

DELETES_PER_PASS = 200
"""Jobs deleted in one pass of one search at most: a pass stays short, and a search that
finished thousands of trials while cleanup was off is cleaned over a few passes."""
EVENT_DELETES_PER_SWEEP = 2000
"""Events deleted in one sweep at most (about five per trial: 1,000 trials at once finish
a few hundred trials between two sweeps)."""
DELETE_THREADS = 4
"""Deletes in flight at once: each waits on the API server, and one at a time (~10/s on a
loaded machine) fell behind a search finishing 3 trials/s (a Job and ~5 Events each)."""
EVENT_SWEEP_SECONDS = 30.0
"""How often a search's stale Events are looked for at most (one list per kind)."""
EVENT_KINDS = ("Job", "Pod", TRIAL_KIND)
# a Job's pods are named <job>-<5 characters> by the Job controller
POD_OF_JOB = re.compile(r"^(?P<job>.+)-[a-z0-9]{5}$")


@dataclass(frozen=True)
class RetentionPolicy:
    succeeded: int | None
    failed: int | None

    @classmethod
    def of(cls, settings: OperatorSettings) -> RetentionPolicy:
        return cls(
            succeeded=settings.successful_trial_jobs_history_limit,
            failed=settings.failed_trial_jobs_history_limit,
        )


def jobs_to_delete(
    records: Iterable[TrialRecord],
    jobs: Mapping[str, bool | None],
    policy: RetentionPolicy,
    limit: int = DELETES_PER_PASS,
) -> list[str]:
    """Trial names whose Job to delete, oldest first: finished Trials that still have a Job,
    beyond the newest ``policy.succeeded`` succeeded and ``policy.failed`` failed ones.

    ``jobs`` maps a trial name to whether its Job finished (None: no Job). An unfinished
    Trial's Job is never deleted, finished or not: its result is not recorded yet.
    """
    kept = {"Succeeded": policy.succeeded, "Failed": policy.failed}
    newest_first = sorted(
        (r for r in records if r.phase in FINISHED), key=lambda r: r.index, reverse=True
    )
    seen = {"Succeeded": 0, "Failed": 0}
    doomed: list[TrialRecord] = []
    for record in newest_first:
        seen[record.phase] += 1
        keep = kept[record.phase]
        if keep is None or seen[record.phase] <= keep:
            continue
        if jobs.get(record.name) is not None:
            doomed.append(record)
    return [r.name for r in reversed(doomed)][:limit]


def trial_of_event(event: dict) -> str | None:
    """The trial a Job, trial pod or Trial Event is about (a Job has its Trial's name);
    None for any other Event, and for a Warning on a Trial (kept: why it failed)."""
    involved = event.get("involvedObject") or {}
    kind, name = involved.get("kind"), involved.get("name") or ""
    if kind == "Job":
        return name
    if kind == "Pod":
        match = POD_OF_JOB.match(name)
        return match.group("job") if match else None
    if kind == TRIAL_KIND and event.get("type") == "Normal":
        return name
    return None


def cleaned_trials(records: Iterable[TrialRecord], jobs: Mapping[str, bool | None]) -> set[str]:
    """Finished Trials whose Job is gone: what was said about them in Events is stale."""
    return {r.name for r in records if r.phase in FINISHED and jobs.get(r.name) is None}


class TrialCleanup:
    """Deletes what the policy says, search by search; remembers when each search's Events
    were last swept (in memory: after a restart the first pass sweeps once)."""

    def __init__(self) -> None:
        self._swept: dict[tuple[str, str], float] = {}
        self._pending: set[tuple[str, str]] = set()  # Jobs went (or Events were left) since
        self._busy: set[tuple[str, str]] = set()  # searches being cleaned now
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cleanup")
        self._deleters = ThreadPoolExecutor(DELETE_THREADS, thread_name_prefix="cleanup-delete")

    def schedule(
        self,
        api: KubeApi,
        namespace: str,
        search: str,
        records: list[TrialRecord],
        jobs: Mapping[str, bool | None],
        settings: OperatorSettings,
    ) -> bool:
        """Run a pass for this search on the cleanup thread, unless one is running or
        queued (the next status pass plans again from fresher indexes). True if queued."""
        key = (namespace, search)
        with self._lock:
            if key in self._busy:
                return False
            self._busy.add(key)

        def clean() -> None:
            try:
                self.run(api, namespace, search, records, jobs, settings)
            except Exception:  # noqa: BLE001  (the next status pass plans again)
                log.exception("cleanup of %s/%s failed", namespace, search)
            finally:
                with self._lock:
                    self._busy.discard(key)

        self._worker.submit(clean)
        return True

    def run(
        self,
        api: KubeApi,
        namespace: str,
        search: str,
        records: list[TrialRecord],
        jobs: Mapping[str, bool | None],
        settings: OperatorSettings,
    ) -> None:
        """One pass for one search (Job mode): delete Jobs beyond the history limits, then,
        at most every EVENT_SWEEP_SECONDS and only after Jobs went, their stale Events."""
        doomed = jobs_to_delete(records, jobs, RetentionPolicy.of(settings))
        deleted = sum(
            self._deleters.map(lambda name: api.delete("batch/v1", "Job", namespace, name), doomed)
        )
        key = (namespace, search)
        now = time.monotonic()
        with self._lock:
            due = key not in self._swept or (
                key in self._pending and now - self._swept[key] >= EVENT_SWEEP_SECONDS
            )
            if due:
                self._swept[key] = now
                self._pending.discard(key)
            if deleted:  # their Events go in a later sweep, once the indexes show them gone
                self._pending.add(key)
        if deleted:
            log.info("deleted %d finished trial Jobs of %s/%s", deleted, namespace, search)
        if due and self.sweep_events(api, namespace, search, cleaned_trials(records, jobs)):
            with self._lock:
                self._pending.add(key)  # look again: more may have come, or been left

    def sweep_events(self, api: KubeApi, namespace: str, search: str, cleaned: set[str]) -> int:
        """Delete the Events about the Jobs, pods and (Normal) Trials of ``cleaned``."""
        if not cleaned:
            return 0
        stale = []
        for kind in EVENT_KINDS:
            for event in api.list("v1", "Event", namespace, "", f"involvedObject.kind={kind}"):
                if trial_of_event(event) in cleaned:
                    stale.append(event["metadata"]["name"])

        def delete(name: str) -> bool:
            try:
                return api.delete("v1", "Event", namespace, name)
            except ApiException as err:  # an Event is not worth failing the pass
                log.warning("could not delete event %s/%s: %s", namespace, name, err)
                return False

        gone = sum(self._deleters.map(delete, stale[:EVENT_DELETES_PER_SWEEP]))
        if gone:
            log.info("deleted %d stale Events of %s/%s", gone, namespace, search)
        return gone

    def forget(self, namespace: str, search: str) -> None:
        with self._lock:
            self._swept.pop((namespace, search), None)
            self._pending.discard((namespace, search))


CLEANUP = TrialCleanup()

"""Run a WarmPool search's Trials on its worker pods (the API side of warm_pool.py).

One pass: settle what each worker says about its assignment (an answer, a dead pod, a
timeout) into its Trial's status, requeue Trials whose worker vanished, keep
``spec.trials.parallelism`` workers of the pod the waiting Trials need, and assign
Pending Trials to idle workers. Everything it reads and writes is in the cluster: a
restarted operator resumes from there. Each assignment is written to the pod with its
resourceVersion as precondition and only then to the Trial (also conditional), so two
operators, or one restarted at any instant, never run a Trial twice: a half-made
assignment is adopted, a lost race is retracted. With spec.trials.packing a worker is
given up to maxPerWorker Trials as one pack, written the same way (a Trial lost to a race
is taken out of the pack again).

Called by the status loop's pass and by worker pod and Trial events; passes over one
search are serialized within the operator.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from datetime import timedelta
from typing import Any

from kubernetes.client.rest import ApiException
from nas_contracts.warm_pool import build_assignment, build_pack, run_key

from . import events
from .builders.snapshot import TrainerSnapshot
from .builders.trial_job import output_dir_of, trainer_config
from .builders.worker_pod import build_worker_pod, pod_fields_hash
from .children import ensure_snapshot, trainer_snapshot_for
from .config import OperatorSettings
from .k8s import KubeApi
from .names import (
    API_VERSION,
    ASSIGNMENT_ANNOTATION,
    COMPONENT_WORKER,
    LABEL_COMPONENT,
    LABEL_SEARCH,
    TRIAL_KIND,
    worker_name,
)
from .records import TrialRecord
from .search_record import SearchRecord, trial_generation
from .search_status import (
    FINAL,
    count_trials,
    decision_of,
    format_time,
    parse_time,
    utcnow,
)
from .summary import summarize
from .trial_status import FINISHED
from .trial_sync import write_trial_status
from .warm_pool import (
    Pending,
    adoptable,
    answer_of,
    answered_status,
    assignments_of,
    choose_assignments,
    crash_message,
    crashed_status,
    disrupted,
    holds,
    idle_workers_to_recycle,
    is_idle,
    pack_fill_wait,
    pod_ended,
    requeued_status,
    running_status,
    trial_key,
    worker_index,
)

log = logging.getLogger(__name__)
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)


class Snapshots:
    """Trainer snapshots by generation, read once per pass."""

    def __init__(self, api: KubeApi, search: dict[str, Any]) -> None:
        self.api, self.search = api, search
        self._runs: dict[int, TrainerSnapshot] = {}

    def run(self, generation: int) -> TrainerSnapshot:
        if generation not in self._runs:
            self._runs[generation] = trainer_snapshot_for(self.api, self.search, generation)[0]
        return self._runs[generation]

    def pod_hash(self, generation: int) -> str:
        return pod_fields_hash(self.run(generation))

    def current(self) -> TrainerSnapshot:
        return ensure_snapshot(self.api, self.search)


def _pool_over(search: dict[str, Any], records: list[TrialRecord]) -> str:
    """Why the search needs no workers now ('' when it does)."""
    if (search.get("status") or {}).get("phase") in FINAL:
        return "the search has ended"
    if SearchRecord.of(search).suspend:
        return "the search is suspended"
    if decision_of(search) and count_trials(records).active == 0:
        return "the search has decided and no trial is left to run"
    return ""


def _age(created: str, now: str) -> float:
    """Seconds since ``created`` (a creationTimestamp); inf when unknown."""
    if not created:
        return float("inf")
    return (parse_time(now) - parse_time(created)).total_seconds()


def _ours(pod: dict[str, Any], search: dict[str, Any]) -> bool:
    uid = search["metadata"]["uid"]
    return any(o.get("uid") == uid for o in pod["metadata"].get("ownerReferences") or [])


def _get_trial(api: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    return api.get(API_VERSION, TRIAL_KIND, namespace, name)


def _write(api: KubeApi, trial: dict[str, Any], new: dict[str, Any]) -> bool:
    """The Trial's new status; False when it changed meanwhile (the next pass retries)."""
    try:
        write_trial_status(api, trial, trial.get("status") or {}, new)
        return True
    except ApiException as err:
        if err.status != 409:
            raise
        return False


def _set_assignment(
    api: KubeApi, pod: dict[str, Any], value: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Write (or clear) the pod's assignment if the pod is still as read; None on 409/404."""
    meta = pod["metadata"]
    body = {
        "metadata": {
            "resourceVersion": meta["resourceVersion"],
            "annotations": {
                ASSIGNMENT_ANNOTATION: json.dumps(value, sort_keys=True) if value else None
            },
        }
    }
    try:
        return api.patch("v1", "Pod", meta["namespace"], meta["name"], body)
    except ApiException as err:
        if err.status in (404, 409):
            return None
        raise


def _clear_assignment(api: KubeApi, pod: dict[str, Any]) -> dict[str, Any] | None:
    """Make the worker idle (its assignment is settled); re-read once if the pod's status
    moved its resourceVersion meanwhile."""
    key = [run_key(a) for a in assignments_of(pod)]
    for _ in range(2):
        patched = _set_assignment(api, pod, None)
        if patched is not None:
            return patched
        meta = pod["metadata"]
        pod = api.get("v1", "Pod", meta["namespace"], meta["name"])
        if pod is None or not assignments_of(pod):
            return pod  # gone, or cleared by another writer
        if [run_key(a) for a in assignments_of(pod)] != key:
            return None  # assigned anew by another operator: not idle
    return None


def _delete(api: KubeApi, pod: dict[str, Any]) -> None:
    meta = pod["metadata"]
    if not meta.get("deletionTimestamp"):
        api.delete("v1", "Pod", meta["namespace"], meta["name"], uid=meta["uid"])


def _settle(
    api: KubeApi, pod: dict[str, Any], snapshots: Snapshots, now: str, deadlines: list[float]
) -> dict[str, Any] | None:
    """Act on what the worker ``pod`` says about each run it holds; returns the pod as it
    is afterwards, or None when it is gone or going (deleted to be replaced). It is made
    idle (or, having ended, deleted) once every run it held is settled. A trial still
    running adds the seconds left before its timeout to ``deadlines``."""
    assignments = assignments_of(pod)
    if not assignments:
        if pod_ended(pod):
            _delete(api, pod)
            return None
        return pod
    settled = 0
    for assignment in assignments:
        outcome = _settle_run(api, pod, assignment, snapshots, now, deadlines,
                              pack=len(assignments))
        if outcome is _GONE:
            return None
        settled += outcome is _SETTLED
    if settled < len(assignments):
        return pod
    if pod_ended(pod):
        _delete(api, pod)
        return None
    return _clear_assignment(api, pod)


_SETTLED, _OPEN, _GONE = "settled", "open", "gone"


def _settle_run(
    api: KubeApi,
    pod: dict[str, Any],
    assignment: dict[str, Any],
    snapshots: Snapshots,
    now: str,
    deadlines: list[float],
    pack: int = 1,
) -> str:
    """One run the pod holds: _SETTLED (its Trial's status says how it ended, or it is an
    orphan), _OPEN (still running, or a status write to retry next pass), or _GONE (the pod
    was deleted: a timed-out Trial; its pack mates are requeued as lost, no retry used).
    A Trial in a pack of ``pack`` has ``pack`` x timeoutSeconds from its start: its worker
    may train the pack's Trials one after another (a chunk that does not fit, or children
    that cannot be trained together), so its own clock starts before its turn."""
    meta = pod["metadata"]
    trial = _get_trial(api, meta["namespace"], str(assignment.get("trial")))
    if trial is not None and trial["metadata"]["uid"] == assignment.get("uid"):
        if adoptable(pod, trial):
            status = trial.get("status") or {}
            attempt = int(assignment["attempt"])
            _write(api, trial, running_status(status, meta["name"], attempt, now))
            # as it is now, whoever won (another operator may have adopted it too)
            trial = _get_trial(api, meta["namespace"], trial["metadata"]["name"])
    phase = ((trial or {}).get("status") or {}).get("phase")
    if (
        trial is None
        or not holds(pod, trial)
        or phase != "Running"
        or run_key(assignment) != trial_key(trial, trial["status"].get("attempts"))
    ):
        return _SETTLED  # an orphan: the Trial moved on (finished, reassigned, lost race)
    old = trial.get("status") or {}
    run = snapshots.run(trial_generation(trial))
    answer = answer_of(pod, assignment)
    if answer is not None:
        return _SETTLED if _write(api, trial, answered_status(old, answer, run.retries, now)) \
            else _OPEN
    if pod_ended(pod):
        if disrupted(pod):
            new = requeued_status(old, "", f"worker pod {meta['name']} was lost; rerunning")
        else:
            new = crashed_status(old, crash_message(pod), run.retries, now)
        return _SETTLED if _write(api, trial, new) else _OPEN
    started = parse_time(old.get("startTime") or now)
    allowed = run.timeout_seconds * pack
    left = started + timedelta(seconds=allowed) - parse_time(now)
    if left.total_seconds() >= 0:
        deadlines.append(left.total_seconds())
        return _OPEN
    why = f" (timeoutSeconds x a pack of {pack})" if pack > 1 else ""
    timed_out = {
        **old,
        "phase": "Failed",
        "reason": "Timeout",
        "message": f"no result {allowed}s{why} after its first start; "
        f"deleted worker pod {meta['name']}",
        "completionTime": now,
    }
    if _write(api, trial, timed_out):
        _delete(api, pod)  # it is stuck in that trial
        return _GONE
    return _OPEN


def _requeue_lost(
    api: KubeApi, namespace: str, records: list[TrialRecord], held: set[str]
) -> None:
    """Running Trials no worker holds (their pod vanished): back to Pending, no retry used."""
    for record in records:
        if record.phase != "Running" or record.name in held:
            continue
        trial = _get_trial(api, namespace, record.name)
        status = (trial or {}).get("status") or {}
        if trial is None or status.get("phase") != "Running" or status.get("jobName"):
            continue
        pod = api.get("v1", "Pod", namespace, status.get("podName") or "")
        if holds(pod, trial):
            continue  # assigned after this pass listed the pods: the next pass settles it
        # its pod is gone, or is a new pod of the same name that never had this run
        _write(api, trial, requeued_status(status, "", f"worker pod {status.get('podName')} "
                                           "was lost; rerunning"))


def _release(
    api: KubeApi, search: dict[str, Any], pods: list[dict[str, Any]], reason: str
) -> None:
    """Delete every worker; the Trials they ran go back to Pending without using a retry."""
    for pod in pods:
        for assignment in assignments_of(pod):
            if answer_of(pod, assignment) is not None:
                continue
            trial = _get_trial(api, pod["metadata"]["namespace"], str(assignment.get("trial")))
            if trial is not None and holds(pod, trial):
                status = trial.get("status") or {}
                if status.get("phase") not in FINISHED:
                    _write(api, trial, requeued_status(status, "Suspended", reason))
        if not pod["metadata"].get("deletionTimestamp"):
            _delete(api, pod)
            events.normal(
                search, "WorkerStopped", f"deleted worker pod {pod['metadata']['name']}: {reason}"
            )


def _assign(
    api: KubeApi,
    search: dict[str, Any],
    waiting: list[Pending],
    pod: dict[str, Any],
    snapshots: Snapshots,
    now: str,
) -> set[str]:
    """Give ``waiting`` (oldest first, one pod hash) to the idle worker ``pod`` as one
    assignment, or a pack when several: the pod first (conditional), then each Trial
    Running (conditional). A Trial whose write loses a race is taken out of the pack again
    (conditional); should that fail too, the next pass finds it an orphan (the Trial moved
    on) or adopts it (still Pending, attempts one short): never run twice. Returns the
    names of the Trials assigned."""
    namespace = search["metadata"]["namespace"]
    chosen = []
    for entry in waiting:
        trial = _get_trial(api, namespace, entry.name)
        status = (trial or {}).get("status") or {}
        if trial is None or status.get("phase", "Pending") != "Pending":
            continue  # the index lags: it is running or finished already
        run = snapshots.run(entry.generation)
        attempt = int(status.get("attempts") or 0) + 1
        assignment = build_assignment(trial, attempt, trainer_config(run.trainer),
                                      output_dir_of(trial, run), now)
        chosen.append((trial, attempt, assignment))
    if not chosen:
        return set()
    patched = _set_assignment(api, pod, _assignment_value([a for _, _, a in chosen]))
    if patched is None:
        return set()  # the pod changed (another operator assigned it): next pass
    won = []
    for trial, attempt, assignment in chosen:
        new = running_status(trial.get("status") or {}, pod["metadata"]["name"], attempt, now)
        new["summary"] = summarize(trial["spec"].get("architecture") or {})
        if _write(api, trial, new):
            won.append((trial, assignment))
    if len(won) < len(chosen):  # lost some Trials to another writer: retract them
        _set_assignment(api, patched, _assignment_value([a for _, a in won]) if won else None)
    where = f"worker pod {pod['metadata']['name']}"
    for trial, _ in won:
        events.normal(trial, "Assigned", f"running in a pack of {len(won)} on {where}"
                      if len(won) > 1 else f"running on {where}")
    return {t["metadata"]["name"] for t, _ in won}


def _assignment_value(assignments: list[dict[str, Any]]) -> dict[str, Any]:
    """One assignment alone (the form every worker reads), several as a pack."""
    return assignments[0] if len(assignments) == 1 else build_pack(assignments)


def _maintain_pool(
    api: KubeApi,
    search: dict[str, Any],
    pods: list[dict[str, Any]],
    busy: set[str],
    waiting: list[Pending],
    snapshots: Snapshots,
    settings: OperatorSettings,
) -> None:
    """Delete surplus and unusable idle workers; create the missing ones."""
    name = search["metadata"]["name"]
    parallelism = SearchRecord.of(search).trials.parallelism
    idle = [p for p in pods if is_idle(p) and p["metadata"]["name"] not in busy]
    surplus = [p for p in idle if (worker_index(p, name) or 0) >= parallelism]
    for pod in surplus + idle_workers_to_recycle(waiting, [p for p in idle if p not in surplus]):
        _delete(api, pod)
    taken = {p["metadata"]["name"] for p in pods}
    missing = [i for i in range(parallelism) if worker_name(name, i) not in taken]
    if not missing:
        return
    # built for the oldest waiting Trial's snapshot (else the current spec's)
    run = snapshots.run(waiting[0].generation) if waiting else snapshots.current()
    for index in missing:
        pod = build_worker_pod(search, run, settings, index)
        _, created = api.create(pod)
        if created:
            events.normal(
                search, "WorkerCreated", f"created worker pod {pod['metadata']['name']}"
            )


def sync_warm_pool(
    api: KubeApi, search: dict[str, Any], records: list[TrialRecord], settings: OperatorSettings
) -> float | None:
    """One pass over the warm pool of ``search`` (mode WarmPool); ``records`` are its Trials
    as the operator's index has them (may lag: every decision re-reads what it changes).

    Returns the seconds after which another pass is needed that no event will ask for (the
    first running trial's timeout), or None: the caller schedules it."""
    meta = search["metadata"]
    with _locks[(meta["namespace"], meta["name"])]:
        now = format_time(utcnow())
        selector = f"{LABEL_SEARCH}={meta['name']},{LABEL_COMPONENT}={COMPONENT_WORKER}"
        pods = [p for p in api.list("v1", "Pod", meta["namespace"], selector) if _ours(p, search)]
        reason = _pool_over(search, records)
        if reason:
            _release(api, search, pods, reason)
            return None
        snapshots = Snapshots(api, search)
        deadlines: list[float] = []
        alive = [
            p for pod in pods if (p := _settle(api, pod, snapshots, now, deadlines)) is not None
        ]
        held = {str(a.get("trial")) for p in alive for a in assignments_of(p)}
        _requeue_lost(api, meta["namespace"], records, held)
        pending = [
            Pending(r.name, r.index, snapshots.pod_hash(r.generation), r.generation,
                    _age(r.created, now))
            for r in sorted(records, key=lambda r: r.index)
            if r.phase == "Pending" and r.name not in held
        ]
        idle = [p for p in alive if is_idle(p)]
        per_worker = SearchRecord.of(search).trials.max_per_worker
        fill = pack_fill_wait(pending, len(idle), per_worker)
        if fill > 0:
            deadlines.append(fill)  # more Trials may join the packs: assign then
        packs: dict[str, tuple[dict[str, Any], list[Pending]]] = {}
        for entry, pod in choose_assignments(pending, [] if fill > 0 else idle, per_worker):
            packs.setdefault(pod["metadata"]["name"], (pod, []))[1].append(entry)
        assigned, busy = set(), set()
        for name, (pod, entries) in packs.items():
            busy.add(name)  # assigned, or changed meanwhile: not idle
            assigned |= _assign(api, search, entries, pod, snapshots, now)
        waiting = [t for t in pending if t.name not in assigned]
        _maintain_pool(api, search, alive, busy, waiting, snapshots, settings)
        # no event marks a timeout (nor a pack's fill wait ending): another pass just
        # after the first one falls due
        return min(deadlines) + 1.0 if deadlines else None

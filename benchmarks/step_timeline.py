"""When each trial passed each step, as seen by watches of one namespace; and what the
operator process used (CPU, memory), read from /proc. Used by operator_scale.py --instant.

Every time is the benchmark's monotonic clock when its watch delivered the event, so
one watch's delay is common to both ends of a step (the objects' own timestamps have
one-second resolution). Steps of trial ``t``:

- Trial created -> Job created (the operator) -> first pod created (the Job controller);
- pod finished -> Job finished (the Job controller) -> Trial Succeeded/Failed with its
  reward in status (the operator);
- outcome -> next Trial created (the controller pod): with ``parallelism`` P, the k-th
  Trial created after the first P fills the slot of the k-th outcome.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.cluster.watching import list_watch

FINAL = ("Succeeded", "Failed")
TRIAL_SELECTOR = "archsearch.io/component=trial"


@dataclass
class Timeline:
    """First-seen times (monotonic seconds) per trial name."""

    trial_created: dict[str, float] = field(default_factory=dict)
    job_created: dict[str, float] = field(default_factory=dict)
    pod_created: dict[str, float] = field(default_factory=dict)
    pod_finished: dict[str, float] = field(default_factory=dict)
    job_finished: dict[str, float] = field(default_factory=dict)
    trial_finished: dict[str, float] = field(default_factory=dict)
    max_in_flight: int = 0  # Trials created and not finished, at most
    max_live_pods: int = 0  # trial pods neither finished nor deleted, at most
    _live_pods: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what the watches call ----------------------------------------------------------
    def on_trial(self, type_: str, obj: dict[str, Any]) -> None:
        now, name = time.monotonic(), obj["metadata"]["name"]
        phase = (obj.get("status") or {}).get("phase")
        with self._lock:
            self.trial_created.setdefault(name, now)
            if phase in FINAL:
                self.trial_finished.setdefault(name, now)
            in_flight = len(self.trial_created) - len(self.trial_finished)
            self.max_in_flight = max(self.max_in_flight, in_flight)

    def on_job(self, type_: str, obj: dict[str, Any]) -> None:
        now, trial = time.monotonic(), _trial_label(obj)
        conditions = (obj.get("status") or {}).get("conditions") or []
        with self._lock:
            self.job_created.setdefault(trial, now)
            if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in conditions):
                self.job_finished.setdefault(trial, now)

    def on_pod(self, type_: str, obj: dict[str, Any]) -> None:
        now, trial = time.monotonic(), _trial_label(obj)
        uid = obj["metadata"]["uid"]
        ended = (obj.get("status") or {}).get("phase") in FINAL or any(
            (s.get("state") or {}).get("terminated")
            for s in (obj.get("status") or {}).get("containerStatuses") or [])
        with self._lock:
            self.pod_created.setdefault(trial, now)
            if ended:
                self.pod_finished.setdefault(trial, now)
            if ended or type_ == "DELETED":
                self._live_pods.discard(uid)
            else:
                self._live_pods.add(uid)
            self.max_live_pods = max(self.max_live_pods, len(self._live_pods))

    # -- the steps ----------------------------------------------------------------------
    def steps(self, parallelism: int) -> dict[str, list[float]]:
        """Seconds per trial for each step (only trials seen at both ends)."""
        with self._lock:
            def between(start: dict[str, float], end: dict[str, float]) -> list[float]:
                return [end[t] - start[t] for t in start if t in end]

            outcomes = sorted(self.trial_finished.values())
            created = sorted(self.trial_created.values())[parallelism:]
            return {
                "Trial created → pod created": between(self.trial_created, self.pod_created),
                "  Trial → Job (operator)": between(self.trial_created, self.job_created),
                "  Job → pod (Job controller)": between(self.job_created, self.pod_created),
                "pod finished → reward in Trial status": between(self.pod_finished,
                                                                 self.trial_finished),
                "  pod → Job finished (Job controller)": between(self.pod_finished,
                                                                 self.job_finished),
                "  Job finished → Trial status (operator)": between(self.job_finished,
                                                                    self.trial_finished),
                "reward → next Trial created (controller)": [
                    c - o for c, o in zip(created, outcomes)],
                "Trial created → reward (whole trial)": between(self.trial_created,
                                                                self.trial_finished),
            }


def _trial_label(obj: dict[str, Any]) -> str:
    return (obj["metadata"].get("labels") or {}).get("archsearch.io/trial", "")


def watch_namespace(kube, namespace: str, timeline: Timeline,
                    stop: threading.Event) -> list[threading.Thread]:
    """Three watches (Trials, trial Jobs, trial pods) feeding ``timeline`` until ``stop``."""
    watches = [
        (f"/apis/archsearch.io/v1alpha1/namespaces/{namespace}/trials", timeline.on_trial, {}),
        (f"/apis/batch/v1/namespaces/{namespace}/jobs", timeline.on_job,
         {"labelSelector": TRIAL_SELECTOR}),
        (f"/api/v1/namespaces/{namespace}/pods", timeline.on_pod,
         {"labelSelector": TRIAL_SELECTOR}),
    ]
    threads = []
    for path, handler, selectors in watches:
        def on_list(items: list[dict[str, Any]], handler=handler) -> None:
            for item in items:
                handler("ADDED", item)

        thread = threading.Thread(target=list_watch, daemon=True, name=f"watch {path}",
                                  args=(kube, path, handler, on_list, stop), kwargs=selectors)
        thread.start()
        threads.append(thread)
    return threads


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


# -- /proc ---------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (its own threads, not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB: resident now, and the most it ever was."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


class ProcessSampler:
    """Samples processes' CPU and resident memory every ``interval`` seconds in a thread:
    CPU seconds used between start() and stop(), and the largest RSS seen."""

    def __init__(self, pids: dict[str, int], interval: float = 1.0) -> None:
        self.pids = pids
        self.interval = interval
        self.cpu_start: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak_rss_kib: dict[str, int] = {name: 0 for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proc sampler")

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                rss, _ = memory_kib(pid)
                self.cpu[name] = cpu_seconds(pid) - self.cpu_start.get(name, 0.0)
            except OSError:
                continue  # ended
            self.peak_rss_kib[name] = max(self.peak_rss_kib[name], rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> ProcessSampler:
        for name, pid in self.pids.items():
            try:
                self.cpu_start[name] = cpu_seconds(pid)
            except OSError:
                self.cpu_start[name] = 0.0
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

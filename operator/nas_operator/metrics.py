"""Prometheus metrics of the operator, served on ``/metrics`` (port from the settings).

Names are what the Grafana dashboards query (charts/nas-operator/dashboards/generate.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram, start_http_server

TRIAL_PHASES = ("Pending", "Running", "Succeeded", "Failed")
SEARCH_PHASES = ("Pending", "Running", "Suspended", "Succeeded", "Failed")

TRIALS = Gauge("nas_trials", "Trials of a search by phase.", ["namespace", "search", "phase"])
SEARCH_PHASE = Gauge(
    "nas_search_phase",
    "1 for the search's current phase, else 0.",
    ["namespace", "search", "phase"],
)
BEST_REWARD = Gauge(
    "nas_search_best_reward", "Best reward of the search so far.", ["namespace", "search"]
)
TRIAL_DURATION = Histogram(
    "nas_trial_duration_seconds",
    "Wall-clock time of finished trials, Job start to finish.",
    ["namespace", "search", "phase"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200),
)
TRIALS_FINISHED = Counter(
    "nas_trials_finished_total",
    "Trials the operator saw finish, by phase and reason.",
    ["namespace", "search", "phase", "reason"],
)
CONTROLLER_RESTARTS = Counter(
    "nas_controller_pod_restarts_total",
    "Controller pods replaced after failing or vanishing.",
    ["namespace", "search"],
)
RECONCILES = Counter("nas_operator_reconciles_total", "Handler runs.", ["handler"])
RECONCILE_ERRORS = Counter(
    "nas_operator_reconcile_errors_total", "Handler runs that raised.", ["handler"]
)
RECONCILE_SECONDS = Histogram(
    "nas_operator_reconcile_duration_seconds",
    "Handler run time.",
    ["handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

F = TypeVar("F", bound=Callable[..., Any])


def instrumented(handler: str) -> Callable[[F], F]:
    """Count runs, errors and time of a handler (errors are re-raised for kopf to retry)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            RECONCILES.labels(handler).inc()
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            except Exception:
                RECONCILE_ERRORS.labels(handler).inc()
                raise
            finally:
                RECONCILE_SECONDS.labels(handler).observe(time.perf_counter() - started)

        return inner  # type: ignore[return-value]

    return wrap


def record_search(
    namespace: str, search: str, phase: str, counts: dict[str, int], best: float | None
) -> None:
    for trial_phase in TRIAL_PHASES:
        TRIALS.labels(namespace, search, trial_phase).set(counts.get(trial_phase.lower(), 0))
    for search_phase in SEARCH_PHASES:
        SEARCH_PHASE.labels(namespace, search, search_phase).set(1 if phase == search_phase else 0)
    if best is not None:
        BEST_REWARD.labels(namespace, search).set(best)


def record_trial_finished(
    namespace: str, search: str, phase: str, reason: str, seconds: float | None
) -> None:
    TRIALS_FINISHED.labels(namespace, search, phase, reason or "").inc()
    if seconds is not None and seconds >= 0:
        TRIAL_DURATION.labels(namespace, search, phase).observe(seconds)


def forget_search(namespace: str, search: str) -> None:
    """Drop a deleted search's gauges (counters and histograms keep their history)."""
    for trial_phase in TRIAL_PHASES:
        _remove(TRIALS, namespace, search, trial_phase)
    for search_phase in SEARCH_PHASES:
        _remove(SEARCH_PHASE, namespace, search, search_phase)
    _remove(BEST_REWARD, namespace, search)


def _remove(metric: Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass


def serve(port: int) -> None:
    if port:
        start_http_server(port)

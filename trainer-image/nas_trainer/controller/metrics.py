"""Prometheus metrics of the controller (served on port 8000 of the controller pod).

Labelled by search so one dashboard reads every search of a namespace. Counters restart
at zero with a new controller process, as Prometheus expects; the gauges carry the state.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

REWARD_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)


class ControllerMetrics:
    def __init__(self, search: str, namespace: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ("namespace", "search")
        self._labels = {"namespace": namespace, "search": search}
        r = self.registry
        self.trials_created = Counter(
            "nas_controller_trials_created_total", "Trials created by this controller", labels, registry=r
        )
        self.trials_finished = Counter(
            "nas_controller_trials_finished_total",
            "Trial results told to the strategy, by outcome",
            (*labels, "outcome"),
            registry=r,
        )
        self.duplicates = Counter(
            "nas_controller_duplicate_proposals_total",
            "Proposals answered from earlier results without a Trial",
            labels,
            registry=r,
        )
        self.reward = Histogram(
            "nas_controller_trial_reward", "Rewards of succeeded trials", labels,
            buckets=REWARD_BUCKETS, registry=r,
        )
        self.best_reward = Gauge("nas_controller_best_reward", "Best reward so far", labels, registry=r)
        self.in_flight = Gauge("nas_controller_trials_in_flight", "Trials created and not finished", labels, registry=r)
        self.policy_version = Gauge("nas_controller_policy_version", "Policy updates so far", labels, registry=r)
        self.policy_entropy = Gauge("nas_controller_policy_entropy", "Mean entropy of the policy's last samples", labels, registry=r)
        self.policy_baseline = Gauge("nas_controller_policy_baseline", "Reward baseline (EMA) of the policy", labels, registry=r)
        self.epoch = Gauge("nas_controller_fencing_epoch", "Fencing epoch of this controller", labels, registry=r)

    def serve(self, port: int) -> None:
        if port <= 0:
            return
        try:
            start_http_server(port, registry=self.registry)
        except OSError as err:  # a second local controller on the same port: run without
            log.warning("metrics server not started on port %d: %s", port, err)

    def created(self, n: int = 1) -> None:
        self.trials_created.labels(**self._labels).inc(n)

    def finished(self, outcome: str, reward: float | None) -> None:
        self.trials_finished.labels(**self._labels, outcome=outcome).inc()
        if reward is not None:
            self.reward.labels(**self._labels).observe(reward)

    def duplicate(self) -> None:
        self.duplicates.labels(**self._labels).inc()

    def set_state(
        self,
        best_reward: float | None,
        in_flight: int,
        policy_version: int,
        epoch: int,
        policy_stats: dict[str, Any] | None = None,
    ) -> None:
        if best_reward is not None:
            self.best_reward.labels(**self._labels).set(best_reward)
        self.in_flight.labels(**self._labels).set(in_flight)
        self.policy_version.labels(**self._labels).set(policy_version)
        self.epoch.labels(**self._labels).set(epoch)
        stats = policy_stats or {}
        for gauge, key in ((self.policy_entropy, "entropy"), (self.policy_baseline, "baseline")):
            value = stats.get(key)
            # NaN before the first update: leave the series absent rather than drawn as NaN
            if value is not None and math.isfinite(float(value)):
                gauge.labels(**self._labels).set(float(value))

"""The controller's Prometheus metrics, as a scrape shows them."""
from __future__ import annotations

import math

from prometheus_client import generate_latest

from nas_trainer.controller.metrics import ControllerMetrics


def scrape(metrics: ControllerMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_state_and_counters_are_labelled_by_search():
    metrics = ControllerMetrics("cora", "team")
    metrics.created(2)
    metrics.finished("succeeded", 0.8)
    metrics.finished("failed", None)
    metrics.set_state(best_reward=0.8, in_flight=3, policy_version=7, epoch=2,
                      policy_stats={"entropy": 1.5, "baseline": 0.7, "policy_version": 7.0})
    text = scrape(metrics)
    labels = 'namespace="team",search="cora"'
    for line in (f"nas_controller_trials_created_total{{{labels}}} 2.0",
                 'nas_controller_trials_finished_total{namespace="team",outcome="succeeded",'
                 'search="cora"} 1.0',
                 'nas_controller_trials_finished_total{namespace="team",outcome="failed",'
                 'search="cora"} 1.0',
                 f"nas_controller_best_reward{{{labels}}} 0.8",
                 f"nas_controller_trials_in_flight{{{labels}}} 3.0",
                 f"nas_controller_policy_version{{{labels}}} 7.0",
                 f"nas_controller_policy_entropy{{{labels}}} 1.5",
                 f"nas_controller_policy_baseline{{{labels}}} 0.7",
                 f"nas_controller_fencing_epoch{{{labels}}} 2.0",
                 f'nas_controller_trial_reward_bucket{{le="0.8",{labels}}} 1.0'):
        assert line in text, line


def test_no_reward_yet_leaves_best_and_policy_stats_unset():
    metrics = ControllerMetrics("cora", "team")
    metrics.set_state(best_reward=None, in_flight=0, policy_version=0, epoch=1,
                      policy_stats={"entropy": math.nan, "baseline": math.nan})
    text = scrape(metrics)
    assert "nas_controller_best_reward{" not in text
    assert "nas_controller_policy_entropy{" not in text
    assert "nas_controller_policy_version{" in text

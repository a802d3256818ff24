"""The final training in the search's status: when it runs, what it reports, and the
phase rule around it (a search Succeeds only after it, even when it fails)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from nas_operator.final_status import final_from_job, skip_reason, weights_condition
from nas_operator.records import TrialRecord
from nas_operator.search_status import (
    count_trials,
    derive_phase,
    derive_search_status,
    in_final_stage,
)

NOW = datetime(2025, 1, 1, 12, 0, 0)
DECIDED = {"controller": {"decision": "MaxTrialsReached", "message": "3 of 3"}}
BEST = {"name": "s-00002", "index": 2, "reward": 0.9}
RESULT = json.dumps(
    {"schema": "nas.result/v1", "reward": 0.93, "metrics": {"val_accuracy": 0.976}}
)


def rec(index, phase, reward=None):
    return TrialRecord(f"s-{index:05d}", index, phase, reward, f"h{index}", f"arch {index}")


def search(status=None, **spec):
    return {
        "metadata": {"name": "s", "generation": 1},
        "spec": {"searchSpace": {"name": "macro-cnn"}, "trials": {"max": 3}, **spec},
        "status": status or {},
    }


def job(condition=None, reason="", suspend=False):
    conditions = [{"type": condition, "status": "True", "reason": reason}] if condition else []
    return {
        "metadata": {"name": "s-final"},
        "spec": {"suspend": suspend},
        "status": {"conditions": conditions},
    }


def pod(phase, exit_code=None, message=""):
    statuses = []
    if exit_code is not None:
        terminated = {"exitCode": exit_code, "message": message}
        statuses = [{"name": "trainer", "state": {"terminated": terminated}}]
    return {
        "metadata": {"name": "s-final-x", "creationTimestamp": "2025-01-01T11:00:00Z"},
        "status": {"phase": phase, "containerStatuses": statuses},
    }


# --- when ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, records, expected",
    [
        (DECIDED, [rec(0, "Succeeded", 0.5)], True),
        (DECIDED, [rec(0, "Succeeded", 0.5), rec(1, "Running")], False),  # trials first
        ({"controller": {"decision": "TooManyFailures"}}, [rec(0, "Failed")], False),
        ({}, [rec(0, "Succeeded", 0.5)], False),  # still searching
        ({**DECIDED, "phase": "Succeeded"}, [rec(0, "Succeeded", 0.5)], False),  # over
    ],
)
def test_the_final_stage_follows_a_successful_decision_once_no_trial_is_active(
    status, records, expected
):
    assert in_final_stage(search(status), count_trials(records)) is expected


@pytest.mark.parametrize(
    "spec, best, reason",
    [
        ({}, BEST, ""),
        ({"finalTraining": {"enabled": False}}, BEST, "spec.finalTraining.enabled is false"),
        ({}, None, "no trial succeeded"),
        ({"searchSpace": {"name": "nas-bench-graph"}}, BEST, "answered from its table"),
        ({"searchSpace": {"name": "nas-bench-graph"}, "trainer": {"command": ["t"]}}, BEST, ""),
    ],
)
def test_final_training_is_skipped_when_disabled_pointless_or_impossible(spec, best, reason):
    found = skip_reason(search(**spec), best)
    assert (reason in found and bool(found)) if reason else found == ""


# --- what the final Job says --------------------------------------------------------------


def test_completed_final_job_gives_reward_metrics_and_the_weights_path():
    final = final_from_job(
        {"jobName": "s-final"}, "s-00002", job("Complete"), [pod("Succeeded", 0, RESULT)]
    )
    assert final["phase"] == "Succeeded" and final["weights"] == "best/model.pt"
    assert final["reward"] == 0.93 and final["metrics"] == {"val_accuracy": 0.976}
    assert final["jobName"] == "s-final" and final["trial"] == "s-00002"


def test_running_suspended_failed_and_lost_final_jobs():
    running = final_from_job({}, "s-00002", job(), [pod("Running")])
    assert running["phase"] == "Running" and "weights" not in running
    suspended = final_from_job({}, "s-00002", job(suspend=True), [])
    assert suspended == {
        "phase": "Pending",
        "trial": "s-00002",
        "jobName": "s-final",
        "message": "the search is suspended",
    }
    error = json.dumps({"schema": "nas.result/v1", "error": "bad op", "permanent": True})
    failed = final_from_job(
        {}, "s-00002", job("Failed", "PodFailurePolicy"), [pod("Failed", 3, error)]
    )
    assert failed["phase"] == "Failed" and failed["message"] == "PermanentError: bad op"
    assert "weights" not in failed
    lost = final_from_job({"jobName": "s-final", "phase": "Running"}, "s-00002", None, [])
    assert lost["phase"] == "Failed" and lost["message"].startswith("JobLost: Job s-final")


# --- the phase rule and the status ----------------------------------------------------------


@pytest.mark.parametrize(
    "final, phase",
    [
        ({"phase": "Pending", "message": "waiting"}, "Running"),
        ({"phase": "Running", "message": "training"}, "Running"),
        ({"phase": "Succeeded", "weights": "best/model.pt"}, "Succeeded"),
        ({"phase": "Failed", "message": "RetriesExhausted"}, "Succeeded"),  # not Failed
        ({"phase": "Skipped", "message": "disabled"}, "Succeeded"),
    ],
)
def test_the_search_succeeds_only_once_the_final_training_is_over(final, phase):
    counts = count_trials([rec(0, "Succeeded", 0.5)])
    assert derive_phase(search(DECIDED), counts, None, 10, final)[0] == phase


def test_too_many_failures_fails_without_final_training():
    counts = count_trials([rec(0, "Failed")])
    s = search({"controller": {"decision": "TooManyFailures"}})
    assert derive_phase(s, counts, None, 10, None)[0] == "Failed"


def conditions(status):
    return {c["type"]: c for c in status["conditions"]}


def test_weights_ready_condition_and_final_status_are_written_and_kept():
    records = [rec(0, "Succeeded", 0.5)]
    running = derive_search_status(
        search(DECIDED), records, None, NOW, 10, {"phase": "Running", "message": "training"}
    )
    assert running["phase"] == "Running" and running["final"]["phase"] == "Running"
    ready = conditions(running)["WeightsReady"]
    assert ready["status"] == "False" and ready["reason"] == "FinalTrainingRunning"

    done = {"phase": "Succeeded", "weights": "best/model.pt", "reward": 0.93}
    succeeded = derive_search_status(search({**DECIDED, **running}), records, None, NOW, 10, done)
    assert succeeded["phase"] == "Succeeded" and succeeded["final"] == done
    ready = conditions(succeeded)["WeightsReady"]
    assert (ready["status"], ready["message"]) == ("True", "best/model.pt")
    # later passes (the search is over) keep what was written
    later = derive_search_status(search({**DECIDED, **succeeded}), records, None, NOW, 10)
    assert later["final"] == done and later == succeeded


def test_a_failed_final_training_leaves_a_succeeded_search_without_ready_weights():
    failed = {"phase": "Failed", "message": "RetriesExhausted: out of memory"}
    records = [rec(0, "Succeeded", 0.5)]
    status = derive_search_status(search(DECIDED), records, None, NOW, 10, failed)
    assert status["phase"] == "Succeeded"
    assert conditions(status)["Complete"]["status"] == "True"
    ready = conditions(status)["WeightsReady"]
    assert ready["status"] == "False" and ready["message"] == "RetriesExhausted: out of memory"


def test_weights_of_a_trial_that_mounted_the_volume_are_ready_without_training():
    assert weights_condition(
        {"phase": "Skipped", "weights": "trials/00002/model.pt"}, searching=False
    ) == (True, "TrialWeights", "trials/00002/model.pt")
    assert weights_condition({"phase": "Skipped", "message": "disabled"}, False)[0] is False
    assert weights_condition(None, searching=True) == (False, "Searching", "")

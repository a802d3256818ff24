"""How the operator reads Jobs, pods and the controller's decision into status."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from nas_operator.records import PodRecord, TrialRecord, job_record, pod_record, trial_record
from nas_operator.results import parse_result, short_message
from nas_operator.search_reconcile import trials_to_repair
from nas_operator.search_status import (
    PodAction,
    backoff_left,
    best_trial,
    controller_pod_action,
    count_trials,
    derive_phase,
    derive_search_status,
    restarts_in_a_row,
)
from nas_operator.summary import summarize
from nas_operator.trial_status import derive_trial_status, status_patch

NOW = datetime(2025, 1, 1, 12, 0, 0)


def trial(status=None) -> dict:
    return {
        "metadata": {"name": "s-00001", "namespace": "ns"},
        "spec": {
            "searchName": "s",
            "index": 1,
            "architecture": {"canonical": {"lr": "0.1", "depth": 3}, "hash": "h"},
        },
        "status": status or {},
    }


def job(*conditions, suspend=False, active=0) -> dict:
    return {
        "metadata": {"name": "s-00001"},
        "spec": {"suspend": suspend},
        "status": {
            "startTime": "2025-01-01T11:00:00Z",
            "active": active,
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": r,
                    "message": m,
                    "lastTransitionTime": "2025-01-01T11:05:00Z",
                }
                for t, r, m in conditions
            ],
        },
    }


def pod(name, phase, exit_code=None, message="", created="2025-01-01T11:00:00Z") -> dict:
    statuses = []
    if exit_code is not None:
        statuses = [
            {
                "name": "trainer",
                "state": {"terminated": {"exitCode": exit_code, "message": message}},
            }
        ]
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {"phase": phase, "containerStatuses": statuses},
    }


RESULT = json.dumps(
    {
        "schema": "nas.result/v1",
        "reward": 0.9,
        "metrics": {"val_accuracy": 0.96, "note": "x"},
        "seconds": 12.5,
        "parameters": 4321,
    }
)


# --- results --------------------------------------------------------------------------


def test_result_json_is_read_from_the_termination_message():
    result = parse_result(RESULT)
    assert result.reward == 0.9 and result.metrics == {"val_accuracy": 0.96}
    assert result.seconds == 12.5 and result.parameters == 4321


def test_result_after_log_lines_is_found():
    assert parse_result("epoch 1\nepoch 2\n" + RESULT).reward == 0.9


@pytest.mark.parametrize("message", ["", "Traceback: boom", "[1, 2]", '{"reward": NaN}'])
def test_no_result_in_garbage(message):
    result = parse_result(message)
    assert result is None or result.reward is None


def test_long_messages_keep_their_tail():
    text = short_message("x" * 5000 + "the end")
    assert len(text) == 1024 and text.endswith("the end")


# --- trial status ---------------------------------------------------------------------


def test_running_pod_makes_the_trial_running():
    status = derive_trial_status(trial(), job(active=1), [pod("s-00001-a", "Running")])
    assert (
        status["phase"] == "Running"
        and status["podName"] == "s-00001-a"
        and status["attempts"] == 1
    )
    assert status["summary"] == "lr=0.1 depth=3"


def test_completed_job_gives_reward_metrics_and_times():
    status = derive_trial_status(
        trial(), job(("Complete", "", "")), [pod("s-00001-a", "Succeeded", 0, RESULT)]
    )
    assert status["phase"] == "Succeeded" and status["reason"] == "Completed"
    assert status["reward"] == 0.9 and status["metrics"] == {"val_accuracy": 0.96}
    assert status["seconds"] == 12.5 and status["parameters"] == 4321
    assert (
        status["startTime"] == "2025-01-01T11:00:00Z"
        and status["completionTime"] == "2025-01-01T11:05:00Z"
    )


def test_completed_job_without_result_is_an_invalid_result():
    status = derive_trial_status(
        trial(), job(("Complete", "", "")), [pod("p", "Succeeded", 0, "done!")]
    )
    assert status["phase"] == "Failed" and status["reason"] == "InvalidResult"
    assert "done!" in status["message"]


def test_a_completed_job_whose_pod_is_gone_lost_its_result_not_a_trainer_error():
    status = derive_trial_status(trial(), job(("Complete", "", "")), [])
    assert (status["phase"], status["reason"]) == ("Failed", "ResultLost")
    assert "pod was deleted before the operator read the result" in status["message"]


def test_exit_code_3_is_a_permanent_error_with_the_trainers_message():
    error = json.dumps(
        {"schema": "nas.result/v1", "error": "stride 3 shrinks the image to 0", "permanent": True}
    )
    status = derive_trial_status(
        trial(),
        job(("Failed", "PodFailurePolicy", "Container trainer exited with 3")),
        [pod("p", "Failed", 3, error)],
    )
    assert status["phase"] == "Failed" and status["reason"] == "PermanentError"
    assert status["message"] == "stride 3 shrinks the image to 0"


@pytest.mark.parametrize(
    "job_reason, reason",
    [("BackoffLimitExceeded", "RetriesExhausted"), ("DeadlineExceeded", "Timeout")],
)
def test_job_failures_are_named(job_reason, reason):
    status = derive_trial_status(
        trial(), job(("Failed", job_reason, "m")), [pod("p", "Failed", 1, "oom")]
    )
    assert status["reason"] == reason and status["message"] == "oom"


def test_attempts_count_pods_that_started_and_the_newest_is_shown():
    pods = [
        pod("a", "Failed", 1, "boom", created="2025-01-01T11:00:00Z"),
        pod("b", "Succeeded", 0, RESULT, created="2025-01-01T11:01:00Z"),
        pod("c", "Pending", created="2025-01-01T11:02:00Z"),
    ]
    status = derive_trial_status(trial(), job(("Complete", "", "")), pods)
    assert status["attempts"] == 2 and status["podName"] == "c" and status["reward"] == 0.9


def test_suspended_job_leaves_the_trial_pending():
    status = derive_trial_status(trial(), job(suspend=True), [])
    assert status["phase"] == "Pending" and status["reason"] == "Suspended"


def test_finished_trial_never_changes():
    done = {"phase": "Succeeded", "reward": 0.5}
    assert derive_trial_status(trial(done), None, []) == done


def test_deleted_job_of_an_unfinished_trial_is_lost_not_rerun():
    status = derive_trial_status(trial({"phase": "Running", "jobName": "s-00001"}), None, [])
    assert status["phase"] == "Failed" and status["reason"] == "JobLost"


def test_status_patch_has_only_differences():
    assert status_patch({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5}) == {"b": 5, "c": None}


def test_summary_prefers_arch_str_and_truncates():
    assert summarize({"canonical": {"arch_str": "|nor_conv_3x3~0|"}}) == "|nor_conv_3x3~0|"
    long = summarize({"canonical": {"ops": ["gcn"] * 50}})
    assert len(long) == 100 and long.endswith("…")
    assert summarize({"hash": "abc"}) == "abc"


# --- search status --------------------------------------------------------------------


def rec(index, phase, reward=None):
    return TrialRecord(f"s-{index:05d}", index, phase, reward, f"h{index}", f"arch {index}")


def running_pod(phase="Running", finished_at=None):
    return PodRecord("s-controller", "uid", phase, False, finished_at, "exit code 1: boom")


def search(status=None, **spec):
    return {
        "metadata": {"name": "s", "generation": 2},
        "spec": {"trials": {"max": 10}, **spec},
        "status": status or {},
    }


def test_counts_and_best():
    records = [
        rec(0, "Succeeded", 0.5),
        rec(1, "Succeeded", 0.7),
        rec(2, "Failed"),
        rec(3, "Running"),
        rec(4, "Pending"),
        rec(5, "Succeeded", 0.7),
    ]
    counts = count_trials(records)
    assert (counts.pending, counts.running, counts.succeeded, counts.failed) == (1, 1, 3, 1)
    assert counts.finished == 4 and counts.total == 6
    assert best_trial(records) == {
        "name": "s-00001",
        "index": 1,
        "reward": 0.7,
        "hash": "h1",
        "summary": "arch 1",
    }
    assert best_trial([rec(0, "Failed")]) is None


@pytest.mark.parametrize(
    "status, spec, records, pod, phase",
    [
        ({}, {}, [], None, "Pending"),
        ({}, {}, [], running_pod(), "Running"),
        ({}, {"suspend": True}, [rec(0, "Running")], running_pod(), "Suspended"),
        (
            {"controller": {"decision": "GoalReached"}},
            {},
            [rec(0, "Running")],
            running_pod(),
            "Running",
        ),
        (
            {"controller": {"decision": "GoalReached"}},
            {},
            [rec(0, "Succeeded", 1.0)],
            None,
            "Succeeded",
        ),
        ({"controller": {"decision": "TooManyFailures"}}, {}, [rec(0, "Failed")], None, "Failed"),
        ({"controllerRestarts": 11}, {}, [], None, "Failed"),
        # eleven in a row without progress in between: crash-looping
        (
            {"controllerRestarts": 11, "controllerRestartsInARow": 11, "controllerProgress": 7,
             "controller": {"trialsCreated": 7}},
            {}, [], None, "Failed",
        ),
        # eleven over a long search, each controller getting further: not crash-looping
        (
            {"controllerRestarts": 11, "controllerRestartsInARow": 11, "controllerProgress": 7,
             "controller": {"trialsCreated": 8}},
            {}, [], None, "Pending",
        ),
        ({"phase": "Succeeded"}, {"suspend": True}, [], None, "Succeeded"),
    ],
)
def test_phase_rule(status, spec, records, pod, phase):
    assert (
        derive_phase(search(status, **spec), count_trials(records), pod, restart_limit=10)[0]
        == phase
    )


def test_status_carries_counts_progress_best_and_conditions():
    s = search({"controller": {"decision": "MaxTrialsReached", "message": "10 of 10"}})
    status = derive_search_status(s, [rec(0, "Succeeded", 0.4)], None, NOW, 10)
    assert status["phase"] == "Succeeded" and status["progress"] == "1/10"
    assert status["best"]["reward"] == 0.4
    assert status["completionTime"] == status["startTime"] == "2025-01-01T12:00:00Z"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (
        conditions["Complete"]["status"] == "True"
        and conditions["Complete"]["reason"] == "MaxTrialsReached"
    )
    assert conditions["Complete"]["message"] == "10 of 10"
    assert conditions["ControllerReady"]["status"] == "False"
    assert conditions["Failed"]["status"] == "False"


def test_condition_transition_time_changes_only_with_its_status():
    first = derive_search_status(search(), [], running_pod(), NOW, 10)
    later = derive_search_status(search(first), [], running_pod(), datetime(2025, 1, 2), 10)
    ready = next(c for c in later["conditions"] if c["type"] == "ControllerReady")
    assert ready["lastTransitionTime"] == "2025-01-01T12:00:00Z"
    assert later == {**first}  # nothing changed: no status write


def test_the_back_off_left_is_what_the_status_loop_waits_for():
    """No event comes when a back-off ends: the operator asks for a pass then, instead of
    waiting for the next resync (a minute)."""
    ended = running_pod("Failed", "2025-01-01T11:59:58Z")  # 2 s ago
    assert backoff_left(search({"controllerRestarts": 2}), ended, NOW, 5) == 18.0  # 5 * 2**2 - 2
    assert backoff_left(search({}), running_pod("Failed", "2025-01-01T11:00:00Z"), NOW, 5) == 0
    assert backoff_left(search({}), None, NOW, 5) == 0


def test_restarts_in_a_row_start_again_once_a_controller_makes_progress():
    stuck = {"controllerRestarts": 4, "controllerRestartsInARow": 2, "controllerProgress": 12,
             "controller": {"trialsCreated": 9, "policyVersion": 3}}
    assert restarts_in_a_row(stuck) == 2
    assert restarts_in_a_row({**stuck, "controller": {"trialsCreated": 10, "policyVersion": 3}}) == 0
    assert restarts_in_a_row({"controllerRestarts": 4}) == 4  # written before the field existed


def test_a_controller_that_made_progress_is_replaced_without_a_long_back_off():
    """Nine kills over a search: a controller that got further than the last one is
    replaced after the base back-off (5 s), not 5 s * 2**9."""
    ended = running_pod("Failed", "2025-01-01T11:59:50Z")  # 10 s ago
    killed = {"controllerRestarts": 9, "controllerRestartsInARow": 9, "controllerProgress": 20}
    progressed = search({**killed, "controller": {"trialsCreated": 21}})
    assert controller_pod_action(progressed, "Pending", ended, NOW, backoff_seconds=5) is PodAction.DELETE
    crash_looping = search({**killed, "controller": {"trialsCreated": 20}})
    assert controller_pod_action(crash_looping, "Pending", ended, NOW, backoff_seconds=5) is PodAction.NONE


@pytest.mark.parametrize(
    "phase, status, pod, action",
    [
        ("Pending", {}, None, PodAction.CREATE),
        ("Running", {}, running_pod(), PodAction.NONE),
        ("Suspended", {}, running_pod(), PodAction.DELETE),
        ("Suspended", {}, None, PodAction.NONE),
        ("Running", {"controller": {"decision": "GoalReached"}}, None, PodAction.NONE),
        ("Succeeded", {}, None, PodAction.NONE),
        ("Pending", {}, running_pod("Failed", "2025-01-01T11:00:00Z"), PodAction.DELETE),
        (
            "Pending",
            {},
            running_pod("Failed", "2025-01-01T11:59:59Z"),
            PodAction.NONE,
        ),  # backing off
        (
            "Pending",
            {"controllerRestarts": 3},
            running_pod("Failed", "2025-01-01T11:59:30Z"),
            PodAction.NONE,
        ),
    ],
)
def test_controller_pod_actions(phase, status, pod, action):
    assert controller_pod_action(search(status), phase, pod, NOW, backoff_seconds=5) is action


def test_repair_picks_unfinished_trials_whose_job_is_missing_or_done():
    records = [rec(0, "Pending"), rec(1, "Running"), rec(2, "Running"), rec(3, "Succeeded", 1.0)]
    jobs = {"s-00000": None, "s-00001": False, "s-00002": True, "s-00003": True}
    assert trials_to_repair(records, jobs) == ["s-00000", "s-00002"]


# --- index records --------------------------------------------------------------------


def test_index_records():
    body = {
        "metadata": {"name": "s-00003"},
        "spec": {"index": 3, "architecture": {"hash": "hh"}},
        "status": {"phase": "Succeeded", "reward": 1, "summary": "x"},
    }
    assert trial_record(body) == TrialRecord("s-00003", 3, "Succeeded", 1.0, "hh", "x")
    assert trial_record({"metadata": {"name": "n"}, "spec": {"index": 0}}).phase == "Pending"
    assert (
        job_record(
            {
                "metadata": {"name": "j"},
                "status": {"conditions": [{"type": "Complete", "status": "True"}]},
            }
        ).finished
        is True
    )
    record = pod_record(
        {
            "metadata": {"name": "c", "uid": "u", "deletionTimestamp": "t"},
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        "name": "controller",
                        "state": {
                            "terminated": {
                                "exitCode": 2,
                                "finishedAt": "2025-01-01T00:00:00Z",
                                "message": "lease lost",
                            }
                        },
                    }
                ],
            },
        }
    )
    assert record.deleting and record.finished_at == "2025-01-01T00:00:00Z"
    assert record.message == "exit code 2: lease lost"


def test_a_pod_deleted_after_it_failed_still_counts_as_an_attempt():
    """`kubectl delete pod` of a running trial pod: the pod fails (SIGTERM) and is gone,
    the Job counts it and runs another, which succeeds: the Trial ran twice."""
    rerun = derive_trial_status(trial(), job(active=1), [pod("b", "Running")])
    done = job(("Complete", "", ""))
    done["status"].update(failed=1, succeeded=1)
    status = derive_trial_status({**trial(), "status": rerun}, done,
                                 [pod("b", "Succeeded", 0, RESULT)])
    assert status["phase"] == "Succeeded" and status["attempts"] == 2


def test_attempts_never_go_back_when_an_evicted_pod_is_deleted():
    running = derive_trial_status(trial(), job(), [pod("a", "Running")])
    assert running["attempts"] == 1
    evicted_then_replaced = {**trial(), "status": running}
    status = derive_trial_status(evicted_then_replaced, job(), [pod("b", "Pending")])
    assert status["attempts"] == 1

"""Cleanup as a search goes (operator/nas_operator/cleanup.py): which finished trials'
Jobs are deleted, which Events go with them, and the settings that choose how many stay;
and which Job and pod events resync a Trial at all (event_filters.py)."""

from __future__ import annotations

import threading

import pytest
from nas_operator import cleanup
from nas_operator.cleanup import (
    RetentionPolicy,
    TrialCleanup,
    cleaned_trials,
    jobs_to_delete,
    trial_of_event,
)
from nas_operator.config import OperatorSettings, SettingsError, load_settings
from nas_operator.event_filters import job_event_matters, pod_event_matters
from nas_operator.records import TrialRecord


def record(index: int, phase: str) -> TrialRecord:
    reward = 0.5 if phase == "Succeeded" else None
    return TrialRecord(name=f"s-{index:05d}", index=index, phase=phase, reward=reward,
                       hash=f"h{index}", summary="")


def event(kind: str, name: str, type_: str = "Normal", event_name: str = "") -> dict:
    return {"metadata": {"name": event_name or f"{name}.{kind.lower()}"}, "type": type_,
            "involvedObject": {"kind": kind, "name": name}}


PHASES = ["Succeeded", "Failed", "Succeeded", "Running", "Succeeded", "Failed", "Succeeded",
          "Failed", "Pending", "Succeeded"]
RECORDS = [record(i, phase) for i, phase in enumerate(PHASES)]
EVERY_JOB = {r.name: r.phase in ("Succeeded", "Failed") for r in RECORDS}


def test_only_finished_trials_beyond_the_newest_kept_lose_their_job_oldest_first():
    # succeeded: 9, 6, 4, 2, 0 (newest first); failed: 7, 5, 1
    doomed = jobs_to_delete(RECORDS, EVERY_JOB, RetentionPolicy(succeeded=2, failed=1))
    assert doomed == ["s-00000", "s-00001", "s-00002", "s-00004", "s-00005"]


def test_running_and_pending_trials_keep_their_job_even_with_no_history():
    doomed = jobs_to_delete(RECORDS, EVERY_JOB, RetentionPolicy(succeeded=0, failed=0))
    assert set(doomed) == {r.name for r in RECORDS if r.phase in ("Succeeded", "Failed")}
    assert "s-00003" not in doomed and "s-00008" not in doomed


def test_a_limit_of_none_keeps_every_job_of_that_outcome():
    doomed = jobs_to_delete(RECORDS, EVERY_JOB, RetentionPolicy(succeeded=None, failed=0))
    assert doomed == ["s-00001", "s-00005", "s-00007"]


def test_trials_whose_job_is_gone_already_are_not_deleted_again_and_still_count_as_history():
    jobs = {**EVERY_JOB, "s-00009": None, "s-00000": None}
    # s-00009 (newest succeeded) has no Job any more but is still one of the newest 2
    doomed = jobs_to_delete(RECORDS, jobs, RetentionPolicy(succeeded=2, failed=3))
    assert doomed == ["s-00002", "s-00004"]


def test_a_pass_deletes_a_bounded_number_of_jobs():
    many = [record(i, "Succeeded") for i in range(1000)]
    jobs = {r.name: True for r in many}
    doomed = jobs_to_delete(many, jobs, RetentionPolicy(succeeded=3, failed=10), limit=200)
    assert doomed == [f"s-{i:05d}" for i in range(200)]


@pytest.mark.parametrize(
    "evt, trial",
    [
        (event("Job", "s-00042"), "s-00042"),
        (event("Pod", "s-00042-x7k2p"), "s-00042"),
        (event("Trial", "s-00042"), "s-00042"),
        (event("Trial", "s-00042", type_="Warning"), None),  # why it failed: kept
        (event("Pod", "s-controller"), None),
        (event("ArchitectureSearch", "s"), None),
    ],
)
def test_the_trial_an_event_is_about(evt, trial):
    assert trial_of_event(evt) == trial


def test_cleaned_trials_are_finished_ones_without_a_job():
    jobs = {**EVERY_JOB, "s-00000": None, "s-00003": None, "s-00005": None}
    # s-00003 is Running without a Job: not cleaned (the repair makes or reports its Job)
    assert cleaned_trials(RECORDS, jobs) == {"s-00000", "s-00005"}


class FakeApi:
    """Records deletes; lists the Events it was given, filtered like the API server."""

    def __init__(self, events: list[dict]) -> None:
        self.events = events
        self.deleted: list[tuple[str, str]] = []
        self.lists = 0

    def delete(self, api_version, kind, namespace, name, uid=None) -> bool:
        self.deleted.append((kind, name))
        return True

    def list(self, api_version, kind, namespace, label_selector, field_selector=""):
        assert kind == "Event" and field_selector.startswith("involvedObject.kind=")
        self.lists += 1
        wanted = field_selector.split("=", 1)[1]
        return [e for e in self.events if e["involvedObject"]["kind"] == wanted]


def test_a_pass_deletes_old_jobs_then_the_events_of_trials_whose_job_is_gone():
    events = [
        event("Job", "s-00000"), event("Pod", "s-00000-abcde"), event("Trial", "s-00000"),
        event("Trial", "s-00001", type_="Warning"),  # a failure's reason: kept
        event("Job", "s-00009"),  # kept history: its Job exists
        event("Pod", "s-controller-zzzzz"),
    ]
    api = FakeApi(events)
    jobs = {**EVERY_JOB, "s-00000": None}  # s-00000's Job went in an earlier pass
    settings = OperatorSettings(successful_trial_jobs_history_limit=3,
                                failed_trial_jobs_history_limit=3)
    TrialCleanup().run(api, "ns", "s", RECORDS, jobs, settings)
    assert api.deleted[0] == ("Job", "s-00002")  # the 4th newest succeeded
    assert {name for kind, name in api.deleted if kind == "Event"} == {
        "s-00000.job", "s-00000-abcde.pod", "s-00000.trial"}


def test_events_are_listed_again_only_after_jobs_went_and_not_more_often_than_the_interval(
    monkeypatch,
):
    clock = [1000.0]
    monkeypatch.setattr(cleanup.time, "monotonic", lambda: clock[0])
    api = FakeApi([])
    keep_all = OperatorSettings(successful_trial_jobs_history_limit=None,
                                failed_trial_jobs_history_limit=None)
    drop_all = OperatorSettings(successful_trial_jobs_history_limit=0,
                                failed_trial_jobs_history_limit=0)
    run = TrialCleanup()
    jobs = {**EVERY_JOB, "s-00000": None}
    run.run(api, "ns", "s", RECORDS, jobs, keep_all)
    assert api.lists == 3  # the first pass after a start looks once (one list per kind)
    clock[0] += 10
    run.run(api, "ns", "s", RECORDS, jobs, drop_all)
    assert api.lists == 3  # Jobs went, but the last look was 10 s ago
    clock[0] += cleanup.EVENT_SWEEP_SECONDS
    run.run(api, "ns", "s", RECORDS, jobs, keep_all)
    assert api.lists == 6  # due now, though this pass deleted nothing
    clock[0] += 100
    run.run(api, "ns", "s", RECORDS, jobs, keep_all)
    assert api.lists == 6  # that look found nothing stale, and no Job went since


def test_history_limits_come_from_the_environment():
    assert load_settings({}).successful_trial_jobs_history_limit == 3
    assert load_settings({}).failed_trial_jobs_history_limit == 10
    settings = load_settings({"NAS_OPERATOR_SUCCESSFUL_TRIAL_JOBS_HISTORY_LIMIT": "0",
                              "NAS_OPERATOR_FAILED_TRIAL_JOBS_HISTORY_LIMIT": "none"})
    assert settings.successful_trial_jobs_history_limit == 0
    assert settings.failed_trial_jobs_history_limit is None
    with pytest.raises(SettingsError, match="FAILED_TRIAL_JOBS_HISTORY_LIMIT must be >= 0"):
        load_settings({"NAS_OPERATOR_FAILED_TRIAL_JOBS_HISTORY_LIMIT": "-1"})


# -- which Job and pod events resync their Trial (event_filters.py) --------------------------

COMPLETE = {"conditions": [{"type": "Complete", "status": "True"}]}
DELETING = {"deletionTimestamp": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    "type_, spec, status, meta, matters",
    [
        (None, {}, {}, {}, True),  # kopf's initial listing: always
        ("ADDED", {}, {}, {}, False),  # a new Job: the Trial's sync that made it knows it
        ("MODIFIED", {}, {"active": 1}, {}, False),  # bookkeeping
        ("MODIFIED", {}, COMPLETE, {}, True),  # the end: the reward is read now
        ("MODIFIED", {}, {"conditions": [{"type": "Failed", "status": "True"}]}, {}, True),
        ("MODIFIED", {}, COMPLETE, DELETING, False),  # the cleanup deleting it
        ("DELETED", {}, COMPLETE, {}, False),
        ("DELETED", {}, {"active": 1}, {}, True),  # lost before the end: JobLost
        ("MODIFIED", {"suspend": True}, {}, {}, True),  # the search was suspended
    ],
)
def test_job_events_that_can_change_the_trial(type_, spec, status, meta, matters):
    assert job_event_matters(type_, spec, status, meta) is matters


@pytest.mark.parametrize(
    "type_, status, meta, matters",
    [
        (None, {"phase": "Succeeded"}, {}, True),
        ("ADDED", {"phase": "Pending"}, {}, True),  # its name goes in the Trial's status
        ("MODIFIED", {"phase": "Pending"}, {}, False),  # scheduled, volumes, conditions
        ("MODIFIED", {"phase": "Running"}, {}, True),
        ("MODIFIED", {"phase": "Succeeded"}, {}, True),
        ("MODIFIED", {"phase": "Failed"}, {}, True),  # an attempt failed: counted
        ("MODIFIED", {"phase": "Succeeded"}, DELETING, False),  # deleted with its Job
        ("DELETED", {"phase": "Succeeded"}, {}, False),
        ("DELETED", {"phase": "Running"}, {}, True),  # evicted: a new attempt comes
    ],
)
def test_pod_events_that_can_change_the_trial(type_, status, meta, matters):
    assert pod_event_matters(type_, status, meta) is matters


def test_a_search_is_cleaned_on_the_cleanup_thread_one_pass_at_a_time():
    release, started, passes = threading.Event(), threading.Event(), []
    cleanup_ = TrialCleanup()

    def slow_run(api, namespace, search, records, jobs, settings):
        passes.append(search)
        started.set()
        release.wait(5)

    cleanup_.run = slow_run
    settings = OperatorSettings()
    assert cleanup_.schedule(None, "ns", "s", RECORDS, EVERY_JOB, settings) is True
    assert started.wait(5)
    # the status loop's next passes do not wait for it, nor queue a second one meanwhile
    assert cleanup_.schedule(None, "ns", "s", RECORDS, EVERY_JOB, settings) is False
    assert cleanup_.schedule(None, "ns", "other", RECORDS, EVERY_JOB, settings) is True
    release.set()
    cleanup_._worker.shutdown(wait=True)
    assert passes == ["s", "other"]


def test_the_events_of_jobs_deleted_in_a_sweeping_pass_are_looked_for_in_a_later_sweep(
    monkeypatch,
):
    clock = [1000.0]
    monkeypatch.setattr(cleanup.time, "monotonic", lambda: clock[0])
    api = FakeApi([])
    drop_all = OperatorSettings(successful_trial_jobs_history_limit=0,
                                failed_trial_jobs_history_limit=0)
    run = TrialCleanup()
    # the first pass deletes Jobs; its sweep has no Job-less trial to look for yet
    run.run(api, "ns", "s", RECORDS, EVERY_JOB, drop_all)
    assert api.lists == 0 and ("Job", "s-00000") in api.deleted
    clock[0] += cleanup.EVENT_SWEEP_SECONDS
    gone = {name: None for name in EVERY_JOB}  # the indexes now show the Jobs gone
    run.run(api, "ns", "s", RECORDS, gone, drop_all)
    assert api.lists == 3

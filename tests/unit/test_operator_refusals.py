"""Which API errors the operator treats as refusals (reported, never retried) and what a
user reads of them: the search's phase and condition, the Trial's phase and reason."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from kubernetes.client.rest import ApiException
from nas_operator import trial_sync
from nas_operator.builders.snapshot import TrainerSnapshot
from nas_operator.config import OperatorSettings
from nas_operator.k8s import KubeApi
from nas_operator.records import PodRecord, pod_record
from nas_operator.refusals import Refused, is_permanent, nesting_depth, server_message
from nas_operator.search_status import (
    Counts,
    PodAction,
    Refusal,
    controller_pod_action,
    controller_refusal,
    derive_phase,
    derive_search_status,
    is_blocked,
)

NOW = datetime(2025, 1, 1, 12, 0, 0)
LIMIT = "persistentvolumeclaims \"s-data\" is forbidden: maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"


def api_error(status: int, message: str = "", reason: str = "Reason") -> ApiException:
    body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return ApiException(status=status, reason=reason, body=body)


@pytest.mark.parametrize("status", [400, 403, 413, 422])
def test_the_server_saying_no_is_permanent(status):
    assert is_permanent(api_error(status))


@pytest.mark.parametrize("status", [0, 404, 409, 429, 500, 502, 503, 504])
def test_the_server_away_or_busy_is_not(status):
    assert not is_permanent(api_error(status))


def test_not_an_api_error_is_not_a_refusal():
    assert not is_permanent(TimeoutError("read timed out"))
    assert not is_permanent(ConnectionError("refused"))


def test_server_message_is_the_status_message_else_the_reason():
    assert server_message(api_error(403, LIMIT)) == LIMIT
    assert server_message(ApiException(status=413, reason="Request Entity Too Large")) == (
        "Request Entity Too Large"
    )
    assert server_message(ApiException(status=400, reason="Bad", body="plain words")) == (
        "plain words"
    )


class FakeApi(KubeApi):
    """KubeApi whose every call answers ``answer`` (an exception to raise)."""

    def __init__(self, answer: ApiException) -> None:
        self.answer = answer

    def _call(self, *_: Any, **__: Any) -> dict[str, Any]:
        raise self.answer


def test_a_refused_create_names_the_object_and_keeps_the_servers_words():
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "s-data", "namespace": "ns"}}
    with pytest.raises(Refused) as caught:
        FakeApi(api_error(403, LIMIT, "Forbidden")).create(claim)
    err = caught.value
    assert (err.status, err.kind, err.name, err.action) == (403, "PersistentVolumeClaim", "s-data",
                                                           "create")
    assert err.sentence() == (
        f"the API server refused to create PersistentVolumeClaim s-data (HTTP 403): {LIMIT}"
    )
    assert isinstance(err, ApiException)  # code that tells 409 from the rest keeps working


def test_a_refused_status_patch_says_it_was_the_status():
    with pytest.raises(Refused) as caught:
        FakeApi(api_error(413, "etcdserver: request is too large")).patch(
            "archsearch.io/v1alpha1", "ArchitectureSearch", "ns", "s", {"status": {}},
            subresource="status",
        )
    assert "patch the status of ArchitectureSearch s" in caught.value.sentence()
    assert "request is too large" in caught.value.sentence()


@pytest.mark.parametrize("status", [409, 429, 500, 503])
def test_transient_errors_stay_plain_api_errors(status):
    claim = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}
    api = FakeApi(api_error(status))
    with pytest.raises(ApiException) as caught:
        if status == 409:  # create's 409 means "exists": it reads the object, also failing
            api.replace(claim)
        else:
            api.create(claim)
    assert not isinstance(caught.value, Refused)


def test_nesting_depth_is_measured_without_recursion_and_stops_at_the_limit():
    deep: Any = 1
    for _ in range(5000):
        deep = {"a": [deep]}
    assert nesting_depth(deep, 64) == 65
    assert nesting_depth({"trainer": {"env": [{"name": "A"}]}}, 64) == 4
    assert nesting_depth("scalar", 64) == 0


def test_the_operator_reads_a_watch_event_nested_thousands_deep():
    """kopf decodes a watch line with json.loads; the handlers package raises the
    recursion limit so an object the API server accepts (it allows 10,000 levels) is
    read instead of ending the operator."""
    import nas_operator.handlers  # noqa: F401

    depth = 9000
    line = '{"type":"ADDED","object":{"spec":' + '{"a":' * depth + "1" + "}" * depth + "}}"
    assert json.loads(line)["type"] == "ADDED"


def search(status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "archsearch.io/v1alpha1",
        "kind": "ArchitectureSearch",
        "metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": generation},
        "spec": {"trials": {"max": 4}},
        "status": status or {},
    }


def test_a_refusal_fails_the_search_with_its_reason_and_message():
    refusal = Refusal("CreateRefused", "the API server refused to create PersistentVolumeClaim")
    status = derive_search_status(search({"phase": "Running"}), [], None, NOW, 10,
                                  refusal=refusal)
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"], failed["message"]) == (
        "True", "CreateRefused", refusal.message)
    assert status["completionTime"]


def test_a_refused_search_stays_failed_until_its_spec_changes():
    first = derive_search_status(search({"phase": "Pending"}), [], None, NOW, 10,
                                 refusal=Refusal("CreateRefused", "no"))
    again = search(first)
    assert is_blocked(again)
    assert derive_phase(again, Counts(), None, 10) == ("Failed", "CreateRefused", "no")
    done = search({"phase": "Failed", "conditions": [
        {"type": "Failed", "status": "True", "reason": "TooManyFailures", "message": ""}]})
    assert not is_blocked(done)


def controller_pod(exit_code: int, message: str, phase: str = "Failed") -> PodRecord:
    body = {
        "metadata": {"name": "s-controller", "uid": "p"},
        "status": {"phase": phase, "containerStatuses": [{
            "name": "controller",
            "state": {"terminated": {"exitCode": exit_code, "message": message,
                                     "finishedAt": "2025-01-01T11:59:00Z"}},
        }]},
    }
    return pod_record(body)


def test_a_controller_that_ends_with_exit_3_fails_the_search_at_once():
    said = json.dumps({"reason": "InvalidSpec", "generation": 2,
                       "message": "spec.trainer.dataset is required to train macro-cnn children"})
    pod = controller_pod(3, said)
    assert (pod.exit_code, pod.detail) == (3, said)
    phase, reason, message = derive_phase(search(generation=2), Counts(), pod, 10)
    assert (phase, reason) == ("Failed", "InvalidSpec")
    assert "spec.trainer.dataset" in message


def test_exit_3_about_an_older_spec_gets_a_new_controller_instead():
    said = json.dumps({"reason": "InvalidSpec", "generation": 1, "message": "bad"})
    pod = controller_pod(3, said)
    assert controller_refusal(search(generation=2), pod) is None
    assert derive_phase(search(generation=2), Counts(), pod, 10)[0] == "Pending"


def test_other_exit_codes_are_restarted_as_before():
    pod = controller_pod(1, "Traceback ...")
    assert controller_refusal(search(), pod) is None


def test_a_plain_text_exit_3_is_an_invalid_spec():
    pod = controller_pod(3, "spec.trials.max must be >= 1")
    refusal = controller_refusal(search(), pod)
    assert refusal == Refusal("InvalidSpec", "spec.trials.max must be >= 1")


def test_a_running_controller_of_a_refused_search_is_stopped():
    running = PodRecord("s-controller", "p", "Running", False, None, "")
    blocked = search({"phase": "Failed"})
    assert controller_pod_action(blocked, "Failed", running, NOW, 1.0, "CreateRefused") is (
        PodAction.DELETE)
    # a search that failed for good (its decision) lets its controller exit by itself
    assert controller_pod_action(blocked, "Failed", running, NOW, 1.0, "TooManyFailures") is (
        PodAction.NONE)


# --- a refused trial Job ---------------------------------------------------------------
class TrialCluster:
    """The few calls sync_trial makes, on dicts; creating a Job is refused."""

    def __init__(self, refusal: ApiException) -> None:
        self.refusal = refusal
        self.trial = {
            "apiVersion": "archsearch.io/v1alpha1", "kind": "Trial",
            "metadata": {"name": "s-00000", "namespace": "ns", "uid": "t", "resourceVersion": "1"},
            "spec": {"searchName": "s", "index": 0, "searchGeneration": 1,
                     "architecture": {"canonical": {"width": 8}, "hash": "h"}},
        }
        self.patches: list[dict[str, Any]] = []

    def get(self, api_version, kind, namespace, name):
        if kind == "Trial":
            return self.trial
        if kind == "ArchitectureSearch":
            return search()
        return None

    def list(self, *_: Any) -> list:
        return []

    def create(self, obj):
        raise Refused("create", obj["kind"], obj["metadata"]["name"], self.refusal)

    def patch(self, api_version, kind, namespace, name, body, subresource=None):
        self.patches.append(body)
        self.trial = {**self.trial, "status": {**(self.trial.get("status") or {}),
                                               **body["status"]}}
        return self.trial


def test_a_refused_trial_job_fails_the_trial_with_the_servers_words(monkeypatch):
    told: list[tuple[str, str, str]] = []
    monkeypatch.setattr(trial_sync.events, "post",
                        lambda obj, kind, reason, message: told.append(
                            (obj["kind"], reason, message)))
    monkeypatch.setattr(trial_sync, "trainer_snapshot_for",
                        lambda *_: (TrainerSnapshot.of({"trainer": {"image": "t:1"}}), ""))
    monkeypatch.setattr(trial_sync, "build_trial_job",
                        lambda trial, *_, **__: {"kind": "Job", "metadata": {
                            "name": trial["metadata"]["name"]}})
    words = "spec.template.spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
    cluster = TrialCluster(api_error(422, words, "Invalid"))
    status = trial_sync.sync_trial(cluster, "ns", "s-00000", OperatorSettings())
    assert status is not None
    assert (status["phase"], status["reason"]) == ("Failed", "JobRefused")
    assert words in status["message"] and "Job s-00000" in status["message"]
    kinds = {(kind, reason) for kind, reason, _ in told}
    assert ("Trial", "JobRefused") in kinds and ("ArchitectureSearch", "JobRefused") in kinds
    assert all(words in message for _, _, message in told)
    # finished: a later event of the Trial tries nothing again
    assert trial_sync.sync_trial(cluster, "ns", "s-00000", OperatorSettings()) == status
    assert len(cluster.patches) == 1


# --- a refused controller pod ----------------------------------------------------------
class SearchCluster:
    """The calls of one status pass, on dicts; creating the controller pod is refused."""

    def __init__(self, refusal: ApiException) -> None:
        self.refusal = refusal
        self.search = search({"phase": "Pending", "observedGeneration": 1})
        self.search["metadata"]["resourceVersion"] = "5"
        self.search["spec"]["trainer"] = {"image": "nas-trainer:test"}
        self.patches: list[dict[str, Any]] = []

    def get(self, api_version, kind, namespace, name):
        return self.search if kind == "ArchitectureSearch" else None

    def create(self, obj):
        raise Refused("create", obj["kind"], obj["metadata"]["name"], self.refusal)

    def patch(self, api_version, kind, namespace, name, body, subresource=None):
        self.patches.append(body)
        return self.search


def test_a_refused_controller_pod_fails_the_search_once(monkeypatch):
    from nas_operator import search_reconcile

    told: list[tuple[str, str]] = []
    monkeypatch.setattr(search_reconcile.events, "post",
                        lambda obj, kind, reason, message: told.append((reason, message)))
    words = 'pods "s-controller" is forbidden: violates PodSecurity "restricted:latest"'
    cluster = SearchCluster(api_error(403, words, "Forbidden"))
    search_reconcile.reconcile_search(cluster, "ns", "s", [], None, OperatorSettings())
    status = cluster.patches[-1]["status"]
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "CreateRefused"
    assert "Pod s-controller" in failed["message"] and words in failed["message"]
    assert ("CreateRefused", failed["message"]) in told
    assert any(reason == "SearchFailed" for reason, _ in told)


def test_a_refused_status_write_is_told_once_and_does_not_raise(monkeypatch):
    from nas_operator import search_reconcile

    told: list[str] = []
    monkeypatch.setattr(search_reconcile.events, "post",
                        lambda obj, kind, reason, message: told.append(reason))
    cluster = SearchCluster(api_error(403, "no"))

    def refuse_patch(*_: Any, **__: Any):
        raise Refused("patch", "the status of ArchitectureSearch", "s",
                      api_error(413, "request is too large"))

    cluster.patch = refuse_patch
    cluster.create = lambda obj: ({**obj, "metadata": {**obj["metadata"]}}, True)
    for _ in range(3):
        search_reconcile.reconcile_search(cluster, "ns", "s", [], None, OperatorSettings())
    assert told.count("StatusRefused") == 1


def test_kopfs_last_handled_annotation_holds_a_digest_not_the_spec():
    """A spec near the API server's size limit made kopf's own annotation (the whole
    spec, by default) exceed the 256 KiB all annotations may hold: every write refused."""
    from nas_operator.handlers.startup import DigestDiffBaseStorage

    storage = DigestDiffBaseStorage(prefix="archsearch.io", key="last-handled-configuration")
    body = {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
            "metadata": {"name": "s", "namespace": "ns"},
            "spec": {"trainer": {"env": [{"name": f"V{i}", "value": "x" * 200}
                                         for i in range(2000)]}}}
    import kopf

    essence = storage.build(body=kopf.Body(body))
    assert len(json.dumps(essence)) < 200
    changed = {**body, "spec": {"trainer": {"env": []}}}
    assert storage.build(body=kopf.Body(changed)) != essence  # a spec change: an update
    assert storage.build(body=kopf.Body(dict(body))) == essence

"""Contract 8, packs: several Trials given to one warm worker at once, each answered on
its own as it finishes; single assignments read as packs of one (what the operator
writes today)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from nas_contracts import warm_pool
from nas_trainer import worker


def assignment(index: int, attempt: int = 1) -> dict:
    trial = {"metadata": {"name": f"cora-{index:05d}", "uid": f"u{index}"},
             "spec": {"architecture": {"space": "nas-bench-graph", "tokens": [index]}}}
    return warm_pool.build_assignment(trial, attempt, {"epochs": 1}, None, "now")


def pack_annotations(*indices: int) -> dict[str, str]:
    pack = warm_pool.build_pack([assignment(i) for i in indices])
    return {warm_pool.ASSIGNMENT_ANNOTATION: json.dumps(pack)}


def test_a_single_assignment_reads_as_a_pack_of_one():
    single = assignment(4)
    annotations = {warm_pool.ASSIGNMENT_ANNOTATION: json.dumps(single)}
    assert warm_pool.assignments_in(annotations) == [single]
    assert warm_pool.pending_assignments(annotations) == [single]
    annotations[warm_pool.RESULT_ANNOTATION] = warm_pool.answer(single, '{"reward": 1}')
    assert warm_pool.pending_assignments(annotations) == []
    assert warm_pool.answers_in(annotations)[warm_pool.run_key(single)]["result"] == {"reward": 1}
    assert warm_pool.assignments_in({}) == [] and warm_pool.answers_in({}) == {}


def test_a_pack_is_answered_trial_by_trial():
    annotations = pack_annotations(1, 2, 3)
    assert [a["trial"] for a in warm_pool.pending_assignments(annotations)] == [
        "cora-00001", "cora-00002", "cora-00003"]
    first, second, _ = warm_pool.assignments_in(annotations)
    annotations[warm_pool.RESULT_ANNOTATION] = warm_pool.answer_pack(
        [(second, '{"reward": 2}'), (first, '{"error": "bad", "permanent": true}')])
    assert [a["trial"] for a in warm_pool.pending_assignments(annotations)] == ["cora-00003"]
    answers = warm_pool.answers_in(annotations)
    assert answers[warm_pool.run_key(first)]["result"]["permanent"] is True
    assert answers[warm_pool.run_key(second)]["result"] == {"reward": 2}


def test_answers_to_an_earlier_pack_do_not_count():
    annotations = pack_annotations(1, 2)
    old = assignment(1, attempt=0)
    annotations[warm_pool.RESULT_ANNOTATION] = warm_pool.answer_pack([(old, '{"reward": 1}')])
    assert len(warm_pool.pending_assignments(annotations)) == 2


def test_a_pack_holds_at_most_max_pack_distinct_runs():
    with pytest.raises(ValueError, match="1 to 8"):
        warm_pool.build_pack([assignment(i) for i in range(warm_pool.MAX_PACK + 1)])
    with pytest.raises(ValueError, match="once"):
        warm_pool.build_pack([assignment(1), assignment(1)])
    with pytest.raises(ValueError):
        warm_pool.build_pack([])


def test_a_full_pack_of_long_answers_fits_the_annotation_limit():
    annotations = pack_annotations(*range(warm_pool.MAX_PACK))
    for held in warm_pool.assignments_in(annotations):
        patch = worker.pack_result_patch(annotations, held, {
            "schema": "nas.result/v1", "error": "x" * 9000, "permanent": False})
        annotations.update(patch["metadata"]["annotations"])
    assert warm_pool.pending_assignments(annotations) == []
    total = sum(len(k) + len(v.encode()) for k, v in annotations.items())
    assert total < 256 * 1024  # the API server's limit for all of a pod's annotations


def test_the_worker_trains_every_trial_of_a_pack_even_when_one_fails(monkeypatch):
    annotations = pack_annotations(1, 2, 3)
    pod = {"annotations": dict(annotations)}

    def fake_train(held, _cache):
        if held["trial"] == "cora-00002":
            return SimpleNamespace(code=1, error=None,
                                   doc={"error": "child diverged", "permanent": True})
        return SimpleNamespace(code=0, error=None, doc={"reward": held["attempt"]})

    class Core:
        def patch_namespaced_pod(self, _name, _namespace, patch):
            pod["annotations"].update(patch["metadata"]["annotations"])
            return SimpleNamespace(metadata=SimpleNamespace(annotations=dict(pod["annotations"])))

    monkeypatch.setattr(worker, "train", fake_train)
    current = dict(annotations)
    for held in warm_pool.pending_assignments(annotations):
        code, patched = worker.answer_one(Core(), "w-0", "ns", current, held, {},
                                          lambda call, *_a, **_k: call())
        assert code is None
        current = dict(patched.metadata.annotations)
    answers = warm_pool.answers_in(pod["annotations"])
    assert sorted(a["trial"] for a in answers.values()) == [
        "cora-00001", "cora-00002", "cora-00003"]
    by_trial = {a["trial"]: a["result"] for a in answers.values()}
    assert by_trial["cora-00002"]["error"] == "child diverged"
    assert by_trial["cora-00003"]["reward"] == 1


# --- the operator's side: each run of a pack settles its own Trial ----------------------

class FakeApi:
    """Trials and one worker pod in memory; status patches merge, resourceVersion ignored."""

    def __init__(self, trials: list[dict], pod: dict) -> None:
        self.trials = {t["metadata"]["name"]: t for t in trials}
        self.pod, self.deleted = pod, False

    def get(self, _api_version, kind, _namespace, name):
        if kind == "Pod":
            return None if self.deleted else self.pod
        return self.trials.get(name)

    def patch(self, _api_version, kind, _namespace, name, body, subresource=None):
        if kind == "Pod":
            for key, value in body["metadata"]["annotations"].items():
                if value is None:
                    self.pod["metadata"]["annotations"].pop(key, None)
                else:
                    self.pod["metadata"]["annotations"][key] = value
            return self.pod
        status = self.trials[name].setdefault("status", {})
        status.update({k: v for k, v in body["status"].items() if v is not None})
        return self.trials[name]

    def delete(self, *_args, **_kwargs):
        self.deleted = True


def running_trial(index: int) -> dict:
    return {"metadata": {"name": f"cora-{index:05d}", "uid": f"u{index}", "namespace": "ns",
                         "resourceVersion": "1", "labels": {}},
            "spec": {"architecture": {"tokens": [index]}},
            "status": {"phase": "Running", "podName": "cora-worker-0", "attempts": 1,
                       "startTime": "2026-01-01T00:00:00Z"}}


def pack_pod(answered: list[tuple[int, str]]) -> dict:
    annotations = pack_annotations(1, 2, 3)
    by_index = {int(a["trial"][-5:]): a for a in warm_pool.assignments_in(annotations)}
    if answered:
        annotations[warm_pool.RESULT_ANNOTATION] = warm_pool.answer_pack(
            [(by_index[i], result) for i, result in answered])
    return {"metadata": {"name": "cora-worker-0", "namespace": "ns", "uid": "p",
                         "resourceVersion": "5", "annotations": annotations},
            "status": {"phase": "Running"}}


class Snapshots:
    def run(self, _generation):
        return SimpleNamespace(retries=1, timeout_seconds=10**9)


@pytest.fixture
def settle(monkeypatch):
    from nas_operator import trial_sync, warm_pool_sync

    monkeypatch.setattr(trial_sync, "_announce_finish", lambda *_: None)
    return lambda api: warm_pool_sync._settle(api, api.pod, Snapshots(),
                                              "2026-01-01T00:01:00Z", [])


def test_the_operator_settles_each_answered_trial_of_a_pack_on_its_own(settle):
    api = FakeApi([running_trial(i) for i in (1, 2, 3)], pack_pod([
        (1, '{"schema": "nas.result/v1", "reward": 0.9, "metrics": {"val_accuracy": 0.9}}'),
        (2, '{"schema": "nas.result/v1", "error": "child diverged", "permanent": true}')]))
    assert settle(api) is api.pod  # the third still runs: the worker stays busy
    phases = {n: t["status"]["phase"] for n, t in api.trials.items()}
    assert phases == {"cora-00001": "Succeeded", "cora-00002": "Failed",
                      "cora-00003": "Running"}
    assert api.trials["cora-00002"]["status"]["reason"] == "PermanentError"
    assert warm_pool.assignments_in(api.pod["metadata"]["annotations"])


def test_a_worker_deleted_mid_pack_requeues_its_unanswered_trials_without_a_retry(settle):
    api = FakeApi([running_trial(i) for i in (1, 2, 3)], pack_pod([
        (1, '{"schema": "nas.result/v1", "reward": 0.9, "metrics": {"val_accuracy": 0.9}}')]))
    api.pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:59Z"
    assert settle(api) is None
    statuses = {n: t["status"] for n, t in api.trials.items()}
    assert statuses["cora-00001"]["phase"] == "Succeeded"
    for name in ("cora-00002", "cora-00003"):
        assert statuses[name]["phase"] == "Pending"
        assert not statuses[name].get("failedAttempts")


def test_a_fully_answered_pack_leaves_the_worker_idle(settle):
    ok = '{"schema": "nas.result/v1", "reward": 0.5, "metrics": {"val_accuracy": 0.5}}'
    api = FakeApi([running_trial(i) for i in (1, 2, 3)], pack_pod([(1, ok), (2, ok), (3, ok)]))
    settle(api)
    assert all(t["status"]["phase"] == "Succeeded" for t in api.trials.values())
    assert warm_pool.assignments_in(api.pod["metadata"]["annotations"]) == []

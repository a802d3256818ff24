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

"""Contract 8, packs: several Trials given to one warm worker at once, each answered on
its own as it finishes; single assignments read as packs of one (what the operator
writes today)."""

from __future__ import annotations

import copy
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


def test_a_pack_of_three_has_three_timeouts_before_its_trials_time_out(monkeypatch):
    """Its worker may train them one after another: the third's clock runs from the
    start, so one timeout each would fail it while it waits its turn."""
    from nas_operator import trial_sync, warm_pool_sync

    monkeypatch.setattr(trial_sync, "_announce_finish", lambda *_: None)

    class Timeout20:
        def run(self, _generation):
            return SimpleNamespace(retries=1, timeout_seconds=20)

    api = FakeApi([running_trial(i) for i in (1, 2, 3)], pack_pod([]))
    deadlines: list[float] = []
    # 50 s after the start: past one timeout (20 s), within the pack's three (60 s)
    assert warm_pool_sync._settle(api, api.pod, Timeout20(), "2026-01-01T00:00:50Z",
                                  deadlines) is api.pod
    assert {t["status"]["phase"] for t in api.trials.values()} == {"Running"}
    assert deadlines == [10.0, 10.0, 10.0]  # the next pass: when the pack's time is up
    assert warm_pool_sync._settle(api, api.pod, Timeout20(), "2026-01-01T00:01:01Z",
                                  []) is None
    first = api.trials["cora-00001"]["status"]
    assert (first["phase"], first["reason"]) == ("Failed", "Timeout")
    assert "no result 60s (timeoutSeconds x a pack of 3)" in first["message"]
    assert api.deleted  # the stuck worker is replaced


def test_a_fully_answered_pack_leaves_the_worker_idle(settle):
    ok = '{"schema": "nas.result/v1", "reward": 0.5, "metrics": {"val_accuracy": 0.5}}'
    api = FakeApi([running_trial(i) for i in (1, 2, 3)], pack_pod([(1, ok), (2, ok), (3, ok)]))
    settle(api)
    assert all(t["status"]["phase"] == "Succeeded" for t in api.trials.values())
    assert warm_pool.assignments_in(api.pod["metadata"]["annotations"]) == []


# --- the operator writes packs (spec.trials.packing.maxPerWorker) -----------------------

def idle_pod(name: str, pod_hash: str = "h1") -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "resourceVersion": "1", "labels": {"archsearch.io/pod-hash": pod_hash},
                         "annotations": {}},
            "status": {"phase": "Running"}}


def packs_of(pairs) -> dict[str, list[str]]:
    packs: dict[str, list[str]] = {}
    for trial, pod in pairs:
        packs.setdefault(pod["metadata"]["name"], []).append(trial.name)
    return packs


def test_one_idle_worker_takes_the_oldest_max_per_worker_trials():
    from nas_operator.warm_pool import Pending, choose_assignments

    pending = [Pending(f"t{i}", i, "h1") for i in (7, 3, 5, 1, 9)]
    assert packs_of(choose_assignments(pending, [idle_pod("w-0")], per_worker=3)) == {
        "w-0": ["t1", "t3", "t5"]}
    # without packing: one each, as before
    assert packs_of(choose_assignments(pending, [idle_pod("w-0")])) == {"w-0": ["t1"]}


def test_fewer_trials_than_the_packs_could_hold_are_spread_over_the_workers():
    from nas_operator.warm_pool import Pending, choose_assignments

    pending = [Pending(f"t{i}", i, "h1") for i in range(1, 6)]
    workers = [idle_pod("w-1"), idle_pod("w-0"), idle_pod("w-2")]
    packs = packs_of(choose_assignments(pending, workers, per_worker=4))
    assert packs == {"w-0": ["t1", "t4"], "w-1": ["t2", "t5"], "w-2": ["t3"]}
    # a Trial only goes to a worker of its pod hash, however empty another is
    pending = [Pending("a", 1, "h1"), Pending("b", 2, "h2"), Pending("c", 3, "h1")]
    packs = packs_of(choose_assignments(pending, [idle_pod("w-0"), idle_pod("w-9", "h2")],
                                        per_worker=2))
    assert packs == {"w-0": ["a", "c"], "w-9": ["b"]}


def test_a_partial_pack_waits_for_the_end_of_a_burst_of_new_trials():
    from nas_operator.warm_pool import PACK_FILL_SECONDS, Pending, pack_fill_wait

    young = [Pending("t1", 1, "h1", age=5.0), Pending("t2", 2, "h1", age=0.5)]
    assert pack_fill_wait(young, idle=1, per_worker=3) == pytest.approx(PACK_FILL_SECONDS - 0.5)
    assert pack_fill_wait(young, idle=1, per_worker=2) == 0  # full: go
    assert pack_fill_wait(young, idle=1, per_worker=1) == 0  # no packing: go
    old = [Pending("t1", 1, "h1", age=5.0)]
    assert pack_fill_wait(old, idle=1, per_worker=3) == 0  # the burst is over: go


class ConditionalApi:
    """Trials and worker pods whose writes are conditional on resourceVersion (409 when
    it moved), as the API server's; ``on_pod_patch`` runs after each pod write."""

    def __init__(self, trials: list[dict], pods: list[dict]) -> None:
        self.trials = {t["metadata"]["name"]: t for t in trials}
        self.pods = {p["metadata"]["name"]: p for p in pods}
        self.on_pod_patch = lambda: None

    def get(self, _api_version, kind, _namespace, name):
        found = (self.pods if kind == "Pod" else self.trials).get(name)
        return copy.deepcopy(found)

    def patch(self, _api_version, kind, _namespace, name, body, subresource=None):
        from kubernetes.client.rest import ApiException

        target = (self.pods if kind == "Pod" else self.trials)[name]
        if body["metadata"].get("resourceVersion") not in (None, target["metadata"][
                "resourceVersion"]):
            raise ApiException(status=409, reason="Conflict")
        if kind == "Pod":
            for key, value in body["metadata"]["annotations"].items():
                if value is None:
                    target["metadata"]["annotations"].pop(key, None)
                else:
                    target["metadata"]["annotations"][key] = value
        else:
            status = target.setdefault("status", {})
            status.update({k: v for k, v in body["status"].items() if v is not None})
        bump(target)
        written = copy.deepcopy(target)  # as the writer gets it back
        if kind == "Pod":
            self.on_pod_patch()
        return written


def bump(obj: dict) -> None:
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)


def pending_trial(index: int) -> dict:
    return {"apiVersion": "archsearch.io/v1alpha1", "kind": "Trial",
            "metadata": {"name": f"digits-{index:05d}", "uid": f"u{index}", "namespace": "ns",
                         "resourceVersion": "1", "labels": {}},
            "spec": {"index": index, "architecture": {"space": "macro-cnn", "hash": f"h{index}"}},
            "status": {"phase": "Pending"}}


@pytest.fixture
def assign(monkeypatch):
    """warm_pool_sync._assign with the trainer snapshot stubbed; returns (call, events)."""
    from nas_operator import warm_pool_sync

    told: list[tuple[str, str, str]] = []
    monkeypatch.setattr(warm_pool_sync.events, "normal", lambda obj, reason, message: told.append(
        (obj["metadata"]["name"], reason, message)))
    monkeypatch.setattr(warm_pool_sync, "trainer_config", lambda _trainer: {"epochs": 1})
    monkeypatch.setattr(warm_pool_sync, "output_dir_of", lambda _trial, _run: None)
    snapshots = SimpleNamespace(run=lambda _generation: SimpleNamespace(trainer={}))
    search = {"metadata": {"name": "digits", "namespace": "ns"}}

    def call(api, names, pod_name="digits-worker-0"):
        from nas_operator.warm_pool import Pending

        waiting = [Pending(n, int(n[-5:]), "h1") for n in names]
        return warm_pool_sync._assign(api, search, waiting, api.get("v1", "Pod", "ns", pod_name),
                                      snapshots, "2026-01-01T00:00:00Z")

    return call, told


def test_the_operator_writes_a_pack_to_the_worker_then_sets_each_trial_running(assign):
    call, told = assign
    api = ConditionalApi([pending_trial(i) for i in (1, 2, 3)], [idle_pod("digits-worker-0")])
    assert call(api, ["digits-00001", "digits-00002", "digits-00003"]) == {
        "digits-00001", "digits-00002", "digits-00003"}
    pod = api.pods["digits-worker-0"]
    doc = json.loads(pod["metadata"]["annotations"][warm_pool.ASSIGNMENT_ANNOTATION])
    assert [a["trial"] for a in doc["pack"]] == ["digits-00001", "digits-00002", "digits-00003"]
    assert all(a["attempt"] == 1 for a in doc["pack"])
    for trial in api.trials.values():
        assert trial["status"]["phase"] == "Running"
        assert (trial["status"]["podName"], trial["status"]["attempts"]) == ("digits-worker-0", 1)
    assert told == [(f"digits-0000{i}", "Assigned",
                     "running in a pack of 3 on worker pod digits-worker-0") for i in (1, 2, 3)]
    # a pack of one is written in the single form every worker reads
    api = ConditionalApi([pending_trial(4)], [idle_pod("digits-worker-0")])
    call(api, ["digits-00004"])
    single = json.loads(api.pods["digits-worker-0"]["metadata"]["annotations"][
        warm_pool.ASSIGNMENT_ANNOTATION])
    assert single["trial"] == "digits-00004" and "pack" not in single
    assert told[-1] == ("digits-00004", "Assigned", "running on worker pod digits-worker-0")


def test_a_trial_lost_to_another_writer_is_taken_out_of_the_pack(assign):
    call, told = assign
    api = ConditionalApi([pending_trial(i) for i in (1, 2, 3)], [idle_pod("digits-worker-0")])

    def rival_takes_trial_2():  # another operator: trial 2 runs on another worker now
        trial = api.trials["digits-00002"]
        trial["status"].update(phase="Running", podName="digits-worker-1", attempts=1)
        bump(trial)
        api.on_pod_patch = lambda: None

    api.on_pod_patch = rival_takes_trial_2
    assert call(api, ["digits-00001", "digits-00002", "digits-00003"]) == {
        "digits-00001", "digits-00003"}
    held = warm_pool.assignments_in(api.pods["digits-worker-0"]["metadata"]["annotations"])
    assert [a["trial"] for a in held] == ["digits-00001", "digits-00003"]
    assert api.trials["digits-00002"]["status"]["podName"] == "digits-worker-1"
    assert [t for t, *_ in told] == ["digits-00001", "digits-00003"]
    assert all("pack of 2" in message for *_, message in told)


def test_a_pack_whose_retraction_also_lost_leaves_the_lost_trial_an_orphan(settle, assign):
    """Should the pack not be rewritten (the pod moved again), the Trial that went to
    another worker is still never run twice here: its answer from this worker is ignored."""
    from nas_operator import warm_pool_sync

    call, _ = assign
    api = ConditionalApi([pending_trial(i) for i in (1, 2)], [idle_pod("digits-worker-0")])

    def rival_takes_trial_2_and_the_pod_moves():
        trial = api.trials["digits-00002"]
        trial["status"].update(phase="Running", podName="digits-worker-1", attempts=1)
        bump(trial)
        bump(api.pods["digits-worker-0"])  # e.g. its status changed: the rewrite gets 409
        api.on_pod_patch = lambda: None

    api.on_pod_patch = rival_takes_trial_2_and_the_pod_moves
    assert call(api, ["digits-00001", "digits-00002"]) == {"digits-00001"}
    pod = api.pods["digits-worker-0"]
    held = warm_pool.assignments_in(pod["metadata"]["annotations"])
    assert len(held) == 2  # not rewritten
    ok = '{"schema": "nas.result/v1", "reward": 0.7, "metrics": {"val_accuracy": 0.7}}'
    pod["metadata"]["annotations"][warm_pool.RESULT_ANNOTATION] = warm_pool.answer_pack(
        [(a, ok) for a in held])
    warm_pool_sync._settle(api, api.get("v1", "Pod", "ns", "digits-worker-0"), Snapshots(),
                           "2026-01-01T00:01:00Z", [])
    assert api.trials["digits-00001"]["status"]["phase"] == "Succeeded"
    rival = api.trials["digits-00002"]["status"]
    assert (rival["phase"], rival["podName"]) == ("Running", "digits-worker-1")
    assert "reward" not in rival
    assert warm_pool.assignments_in(api.pods["digits-worker-0"]["metadata"]["annotations"]) == []


# --- the worker trains a pack together -------------------------------------------------

DIGITS = {"dataset": "digits", "epochs": 1, "batchSize": 128, "cpuThreads": 1}


def macro(filters: list[int]) -> dict:
    layers = [{"filter_height": 3, "filter_width": 3, "filters": f, "stride": 1,
               "inputs": [i - 1] if i else []} for i, f in enumerate(filters)]
    return {"schema": "nas.architecture/v1", "space": "macro-cnn",
            "options": {"layers": len(layers)}, "canonical": {"layers": layers},
            "hash": f"m{'-'.join(map(str, filters))}"}


def digits_pack(tmp_path, configs: list[dict], architectures: list[dict]) -> dict[str, str]:
    held = []
    for index, (config, architecture) in enumerate(zip(configs, architectures), start=1):
        trial = {"metadata": {"name": f"digits-{index:05d}", "uid": f"u{index}"},
                 "spec": {"architecture": architecture}}
        held.append(warm_pool.build_assignment(trial, 1, config, str(tmp_path / str(index)),
                                               "now"))
    return {warm_pool.ASSIGNMENT_ANNOTATION: json.dumps(warm_pool.build_pack(held))}


class PodCore:
    """The worker's own pod: patches merge into its annotations, counted."""

    def __init__(self, annotations: dict[str, str]) -> None:
        self.annotations, self.patches = dict(annotations), 0

    def patch_namespaced_pod(self, _name, _namespace, patch):
        self.patches += 1
        self.annotations.update(patch["metadata"]["annotations"])
        return SimpleNamespace(metadata=SimpleNamespace(annotations=dict(self.annotations)))


def run_pack(core: PodCore) -> int | None:
    """What the worker's watch loop does with the pack it was given."""
    from nas_trainer import worker_packs

    annotations, code = dict(core.annotations), None
    for group in worker_packs.plan(warm_pool.pending_assignments(annotations)):
        if len(group) > 1:
            code, annotations = worker.answer_together(core, "w-0", "ns", annotations, group,
                                                       {}, lambda call, *_a, **_k: call())
        else:
            code, patched = worker.answer_one(core, "w-0", "ns", annotations, group[0], {},
                                              lambda call, *_a, **_k: call())
            annotations = dict(patched.metadata.annotations)
    return code


def test_a_pack_of_three_digits_children_trains_together_and_answers_each(tmp_path, monkeypatch):
    from nas_trainer.training import packing

    packed_calls = []
    real = packing.train_packed
    monkeypatch.setattr(packing, "train_packed", lambda architectures, config, **kwargs: (
        packed_calls.append(len(architectures)) or real(architectures, config, **kwargs)))
    core = PodCore(digits_pack(tmp_path, [DIGITS] * 3, [macro([4]), macro([4, 4]), macro([8])]))
    assert run_pack(core) is None
    assert packed_calls == [3]  # one packed training for the three, on this CPU
    assert core.patches == 1  # answered together
    answers = warm_pool.answers_in(core.annotations)
    assert sorted(a["trial"] for a in answers.values()) == [
        "digits-00001", "digits-00002", "digits-00003"]
    assert warm_pool.pending_assignments(core.annotations) == []
    single = worker.train(json.loads(digits_pack(tmp_path / "single", [DIGITS], [macro([4])])[
        warm_pool.ASSIGNMENT_ANNOTATION])["pack"][0], {}).doc
    for answer in answers.values():
        result = answer["result"]
        assert 0 < result["reward"] <= 1 and result["parameters"] > 0
        assert set(result) <= set(single) | {"timings"}, set(result) ^ set(single)
        assert {"schema", "reward", "metrics", "epochs", "parameters"} <= set(result)
    for index in (1, 2, 3):  # the trial folder a single run writes
        folder = tmp_path / str(index)
        assert {p.name for p in folder.iterdir()} >= {"result.json", "epochs.jsonl", "model.pt"}
        assert json.loads((folder / "result.json").read_text())["reward"] == \
            answers[(f"digits-{index:05d}", f"u{index}", 1)]["result"]["reward"]


def test_children_that_cannot_train_together_are_trained_one_after_another(tmp_path,
                                                                          monkeypatch):
    from nas_trainer import worker_packs

    other = {**DIGITS, "epochs": 2}
    rnn = {"schema": "nas.architecture/v1", "space": "rnn-cell", "hash": "r"}
    core = PodCore(digits_pack(tmp_path, [DIGITS, other, DIGITS, DIGITS],
                               [macro([4]), macro([4]), rnn, macro([8])]))
    groups = worker_packs.plan(warm_pool.pending_assignments(core.annotations))
    assert [[a["trial"][-1] for a in g] for g in groups] == [["1", "4"], ["2"], ["3"]]

    def broken_packing(*_args, **_kwargs):
        raise RuntimeError("no stream for you")

    trained = []

    def fake_train(held, _cache):
        trained.append(held["trial"])
        return SimpleNamespace(code=0, error=None, doc={"reward": 0.5})

    monkeypatch.setattr(worker_packs, "train_together", broken_packing)
    monkeypatch.setattr(worker, "train", fake_train)
    assert run_pack(core) is None
    # the failed pack of two, then the two that were alone: each answered on its own
    assert trained == ["digits-00001", "digits-00004", "digits-00002", "digits-00003"]
    assert len(warm_pool.answers_in(core.annotations)) == 4 and core.patches == 4


def test_the_controller_keeps_every_workers_pack_supplied():
    from nas_trainer.controller.runner import budget_of
    from nas_trainer.manifest import parse_search

    def manifest(trials: dict) -> dict:
        return {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
                "metadata": {"name": "digits"},
                "spec": {"searchSpace": {"name": "macro-cnn"}, "trials": trials,
                         "trainer": {"dataset": "digits"}}}

    packed = parse_search(manifest({"max": 20, "parallelism": 2, "mode": "WarmPool",
                                    "packing": {"maxPerWorker": 3}}))
    assert packed.trials.max_per_worker == 3 and budget_of(packed).parallelism == 6
    plain = parse_search(manifest({"max": 20, "parallelism": 2, "mode": "WarmPool"}))
    assert budget_of(plain).parallelism == 2


def test_a_pack_larger_than_fits_trains_in_chunks_of_the_chosen_size(tmp_path, monkeypatch):
    from nas_trainer import worker_packs

    chunks, alone = [], []

    def together(chunk, _cache, _log):
        chunks.append([a["trial"] for a in chunk])
        return [SimpleNamespace(code=0, error=None, doc={"reward": 0.25}) for _ in chunk]

    def fake_train(held, _cache):
        alone.append(held["trial"])
        return SimpleNamespace(code=0, error=None, doc={"reward": 0.5})

    monkeypatch.setattr(worker_packs, "pack_size", lambda group, _cache: 2)  # as on a GPU
    monkeypatch.setattr(worker_packs, "train_together", together)
    monkeypatch.setattr(worker, "train", fake_train)
    core = PodCore(digits_pack(tmp_path, [DIGITS] * 5, [macro([4 + i]) for i in range(5)]))
    assert run_pack(core) is None
    assert chunks == [["digits-00001", "digits-00002"], ["digits-00003", "digits-00004"]]
    assert alone == ["digits-00005"]  # a chunk of one runs as a single Trial
    rewards = {a["trial"]: a["result"]["reward"]
               for a in warm_pool.answers_in(core.annotations).values()}
    assert rewards == {"digits-00001": 0.25, "digits-00002": 0.25, "digits-00003": 0.25,
                       "digits-00004": 0.25, "digits-00005": 0.5}


def test_nas_validate_says_how_many_trials_each_warm_worker_holds():
    from pathlib import Path

    from nas_trainer.cli import app
    from typer.testing import CliRunner

    example = Path(__file__).resolve().parents[2] / "examples/warm-pool-packing-digits.yaml"
    result = CliRunner().invoke(app, ["validate", str(example)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert "2 at a time (on a cluster: 2 warm workers holding up to 4 each)" in said

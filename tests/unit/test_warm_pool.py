"""spec.trials.mode WarmPool, the pure parts: the manifest field, the worker pod and its
RBAC, the pod hash, which Trial goes to which worker, and how an assignment's end turns
into the Trial's status (as a Job's termination message would)."""

from __future__ import annotations

import copy
import json

import pytest
from nas_operator.builders.rbac import build_worker_rbac
from nas_operator.builders.snapshot import trial_run_spec
from nas_operator.builders.trial_job import build_trial_job
from nas_operator.builders.worker_pod import build_worker_pod, pod_fields_hash
from nas_operator.config import OperatorSettings
from nas_operator.warm_pool import (
    Pending,
    adoptable,
    answered_status,
    choose_assignments,
    crash_message,
    disrupted,
    holds,
    idle_workers_to_recycle,
    is_idle,
)
from nas_trainer import worker
from nas_trainer.manifest import ManifestError, parse_search

SETTINGS = OperatorSettings()
NOW = "2026-01-01T00:00:00Z"


def search(trials: dict | None = None, trainer: dict | None = None) -> dict:
    return {
        "apiVersion": "archsearch.io/v1alpha1",
        "kind": "ArchitectureSearch",
        "metadata": {"name": "cora", "namespace": "team", "uid": "uid-1", "generation": 2},
        "spec": {
            "searchSpace": {"name": "macro-cnn"},
            "trials": {"max": 10, "parallelism": 3, "mode": "WarmPool", **(trials or {})},
            "trainer": {
                "image": "trainer:1",
                "epochs": 5,
                "dataset": "digits",
                "resources": {"limits": {"nvidia.com/gpu": 1}},
                "nodeSelector": {"gpu": "h100"},
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
                "env": [{"name": "EXTRA", "value": "1"}],
                **(trainer or {}),
            },
        },
    }


def trial(index: int = 4, status: dict | None = None) -> dict:
    return {
        "apiVersion": "archsearch.io/v1alpha1",
        "kind": "Trial",
        "metadata": {"name": f"cora-{index:05d}", "namespace": "team", "uid": f"u{index}"},
        "spec": {
            "searchName": "cora",
            "index": index,
            "searchGeneration": 2,
            "architecture": {"space": "macro-cnn", "tokens": [1], "canonical": {}, "hash": "h"},
        },
        "status": status or {},
    }


def pod(name: str = "cora-worker-0", phase: str = "Running", annotations: dict | None = None,
        pod_hash: str = "h1", **meta) -> dict:
    return {
        "metadata": {"name": name, "namespace": "team", "uid": "p",
                     "labels": {"archsearch.io/pod-hash": pod_hash},
                     "annotations": {k: json.dumps(v) for k, v in (annotations or {}).items()},
                     **meta},
        "status": {"phase": phase},
    }


def assignment(trial_index: int = 4, attempt: int = 1) -> dict:
    return {"trial": f"cora-{trial_index:05d}", "uid": f"u{trial_index}", "attempt": attempt}


# --- the manifest field ---------------------------------------------------------------

def manifest(trials: dict, trainer: dict | None = None) -> dict:
    return {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
            "metadata": {"name": "demo"},
            "spec": {"searchSpace": {"name": "nas-bench-201"}, "trials": trials,
                     "trainer": trainer or {}}}


def test_the_mode_defaults_to_job_and_takes_warm_pool():
    assert parse_search(manifest({"max": 5})).trials.mode == "Job"
    assert parse_search(manifest({"max": 5, "mode": "WarmPool"})).trials.mode == "WarmPool"
    with pytest.raises(ManifestError, match="spec.trials.mode must be one of Job, WarmPool"):
        parse_search(manifest({"max": 5, "mode": "Pool"}))


def test_a_warm_pool_refuses_a_custom_trainer_command():
    with pytest.raises(ManifestError, match=r"WarmPool runs the built-in trainer \(`nas-worker`\)"):
        parse_search(manifest({"mode": "WarmPool"}, {"command": ["my-trainer"]}))
    assert parse_search(manifest({"mode": "Job"}, {"command": ["my-trainer"]}))


# --- the worker pod -------------------------------------------------------------------

def test_a_worker_pod_is_a_trial_pod_running_nas_worker_under_its_own_account():
    s = search()
    run = trial_run_spec(s, ["ReadWriteOnce"])
    worker_pod = build_worker_pod(s, run, SETTINGS, 1)
    job_pod = build_trial_job(trial(), run, SETTINGS)["spec"]["template"]["spec"]
    pod_spec, container = worker_pod["spec"], worker_pod["spec"]["containers"][0]
    job_container = job_pod["containers"][0]
    assert worker_pod["metadata"]["name"] == "cora-worker-1"
    assert worker_pod["metadata"]["labels"] == {
        "archsearch.io/search": "cora",
        "archsearch.io/component": "worker",
        "app.kubernetes.io/managed-by": "nas-operator",
        "archsearch.io/generation": "2",
        "archsearch.io/pod-hash": pod_fields_hash(run),
    }
    assert [(o["kind"], o["uid"]) for o in worker_pod["metadata"]["ownerReferences"]] == [
        ("ArchitectureSearch", "uid-1")]
    for key in ("nodeSelector", "tolerations", "restartPolicy"):
        assert pod_spec[key] == job_pod[key]
    for key in ("image", "resources", "securityContext", "name"):
        assert container[key] == job_container[key]
    assert container["command"] == ["nas-worker"]
    assert pod_spec["serviceAccountName"] == "cora-worker"
    assert pod_spec["automountServiceAccountToken"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["NAS_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["NAS_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["EXTRA"]["value"] == "1"
    assert "NAS_ARCHITECTURE" not in env  # each assignment carries its own
    # ReadWriteOnce: no search volume, as for trial Jobs; only the writable /tmp
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_a_worker_mounts_the_search_volume_when_trial_pods_would():
    s = search(trainer={"mountSearchVolume": True})
    run = trial_run_spec(s, ["ReadWriteOnce"])
    container = build_worker_pod(s, run, SETTINGS, 0)["spec"]["containers"][0]
    assert {"name": "search-data", "mountPath": "/data"} in container["volumeMounts"]


def test_the_pod_hash_changes_with_the_pod_not_with_the_training():
    base = trial_run_spec(search(), ["ReadWriteOnce"])
    same = trial_run_spec(search(trainer={"epochs": 50, "learningRate": 0.5}), ["ReadWriteOnce"])
    image = trial_run_spec(search(trainer={"image": "trainer:2"}), ["ReadWriteOnce"])
    mounted = trial_run_spec(search(), ["ReadWriteMany"])
    assert pod_fields_hash(base) == pod_fields_hash(same)
    assert len({pod_fields_hash(base), pod_fields_hash(image), pod_fields_hash(mounted)}) == 3


def test_worker_rbac_names_only_the_workers_of_its_search():
    account, role, binding = build_worker_rbac(search(trials={"parallelism": 2}))
    assert account["metadata"]["name"] == role["metadata"]["name"] == "cora-worker"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                              "resourceNames": ["cora-worker-0", "cora-worker-1"],
                              "verbs": ["get", "list", "watch", "patch"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "cora-worker",
                                    "namespace": "team"}]


# --- assignment -----------------------------------------------------------------------

def test_the_oldest_pending_trials_go_to_idle_workers_of_their_pod_hash():
    pending = [Pending("t9", 9, "h1"), Pending("t2", 2, "h2"), Pending("t5", 5, "h1"),
               Pending("t1", 1, "h1")]
    idle = [pod("w-b", pod_hash="h1"), pod("w-a", pod_hash="h1"), pod("w-c", pod_hash="h3")]
    pairs = [(t.name, p["metadata"]["name"]) for t, p in choose_assignments(pending, idle)]
    assert pairs == [("t1", "w-a"), ("t5", "w-b")]
    # t2 needs a pod of hash h2: the unusable idle worker is rebuilt for it
    waiting = [pending[1], pending[0]]
    assert [p["metadata"]["name"] for p in idle_workers_to_recycle(waiting, [idle[2]])] == ["w-c"]
    assert idle_workers_to_recycle([], [idle[2]]) == []


def test_only_a_running_worker_without_an_assignment_is_idle():
    assert is_idle(pod())
    assert not is_idle(pod(phase="Pending"))
    assert not is_idle(pod(annotations={"archsearch.io/assignment": assignment()}))
    assert not is_idle(pod(deletionTimestamp=NOW))


def test_a_trial_runs_on_the_pod_and_attempt_its_status_names():
    running = trial(status={"phase": "Running", "podName": "cora-worker-0", "attempts": 1})
    holding = pod(annotations={"archsearch.io/assignment": assignment(attempt=1)})
    assert holds(holding, running)
    assert not holds(pod("cora-worker-1", annotations={
        "archsearch.io/assignment": assignment(attempt=1)}), running)
    assert not holds(pod(annotations={"archsearch.io/assignment": assignment(attempt=2)}),
                     running)
    # written to the pod, the operator died before the Trial: the next one adopts it
    pending = trial(status={"phase": "Pending", "attempts": 1})
    assert adoptable(pod(annotations={"archsearch.io/assignment": assignment(attempt=2)}),
                     pending)
    assert not adoptable(holding, pending)  # an older attempt's leftover


def test_a_deleted_or_evicted_worker_is_a_disruption_a_failed_one_a_crash():
    assert disrupted(None)
    assert disrupted(pod(phase="Failed", deletionTimestamp=NOW))
    evicted = pod(phase="Failed")
    evicted["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True"}]
    assert disrupted(evicted)
    crashed = pod(phase="Failed")
    crashed["status"]["containerStatuses"] = [{"name": "trainer", "state": {"terminated": {
        "exitCode": 137, "reason": "OOMKilled"}}}]
    assert not disrupted(crashed)
    assert crash_message(crashed) == "worker pod cora-worker-0 exited 137: OOMKilled"


# --- results --------------------------------------------------------------------------

def answer(result: dict, attempt: int = 1) -> dict:
    return {**assignment(attempt=attempt), "result": result}


RUNNING = {"phase": "Running", "podName": "cora-worker-0", "attempts": 1, "startTime": NOW}


def test_an_answer_finishes_the_trial_as_a_termination_message_would():
    result = {"schema": "nas.result/v1", "reward": 0.5, "metrics": {"val_accuracy": 0.8},
              "seconds": 1.5, "parameters": 12}
    status = answered_status(RUNNING, answer(result), retries=2, now=NOW)
    assert status == {**RUNNING, "phase": "Succeeded", "reason": "Completed", "reward": 0.5,
                      "metrics": {"val_accuracy": 0.8}, "seconds": 1.5, "parameters": 12,
                      "message": "", "completionTime": NOW}
    invalid = answered_status(RUNNING, answer({"schema": "nas.result/v1"}), 2, NOW)
    assert (invalid["phase"], invalid["reason"]) == ("Failed", "InvalidResult")
    permanent = answered_status(RUNNING, answer({"error": "no such op", "permanent": True}),
                                2, NOW)
    assert (permanent["phase"], permanent["reason"], permanent["message"]) == (
        "Failed", "PermanentError", "no such op")


def test_a_retryable_error_uses_the_retries_then_fails_the_trial():
    error = {"error": "data not reachable", "permanent": False}
    first = answered_status(RUNNING, answer(error), retries=1, now=NOW)
    assert first["phase"] == "Pending" and first["failedAttempts"] == 1
    assert "data not reachable" in first["message"]
    second = answered_status({**first, "phase": "Running", "attempts": 2}, answer(error, 2),
                             retries=1, now=NOW)
    assert (second["phase"], second["reason"], second["failedAttempts"]) == (
        "Failed", "RetriesExhausted", 2)


# --- the worker's side ----------------------------------------------------------------

def test_the_worker_answers_each_assignment_once():
    annotations = {"archsearch.io/assignment": json.dumps({**assignment(), "architecture": {}})}
    assert worker.pending_assignment(annotations)["trial"] == "cora-00004"
    patch = worker.result_patch(worker.pending_assignment(annotations),
                                {"schema": "nas.result/v1", "error": "x" * 9000,
                                 "permanent": False})
    answered = {**annotations, **patch["metadata"]["annotations"]}
    assert worker.pending_assignment(answered) is None
    text = patch["metadata"]["annotations"]["archsearch.io/result"]
    assert len(text.encode()) < 4096 and json.loads(text)["result"]["permanent"] is False
    assert worker.pending_assignment({}) is None
    # the next attempt of the same trial is new work
    again = copy.deepcopy(answered)
    again["archsearch.io/assignment"] = json.dumps({**assignment(attempt=2), "architecture": {}})
    assert worker.pending_assignment(again)["attempt"] == 2


def test_the_worker_looks_up_a_nas_bench_graph_trial_in_process(tmp_path):
    import random

    from nas_trainer.spaces import get_space

    arch = get_space("nas-bench-graph", {"dataset": "cora"}).random(random.Random(3)).to_json()
    evaluation = worker.train({**assignment(), "architecture": arch, "config": {},
                               "outputDir": str(tmp_path / "t")}, {})
    assert evaluation.code == 0 and 0 < evaluation.doc["reward"] <= 1
    assert json.loads((tmp_path / "t" / "result.json").read_text())["reward"] == \
        evaluation.doc["reward"]
    bad = worker.train({**assignment(), "architecture": {"space": "nope"}, "config": {}}, {})
    assert bad.code == 3 and bad.doc["permanent"] is True


def test_a_pass_asked_for_later_comes_when_it_falls_due():
    from nas_operator.status_loop import StatusLoop

    loop = StatusLoop()
    loop.mark_in("team", "later", 3600)
    loop.mark_in("team", "now", 0)
    assert loop._take() == {("team", "now")}
    loop.mark_in("team", "later", 0)  # the earliest ask wins
    assert loop._take() == {("team", "later")}
    assert loop._take() == set()

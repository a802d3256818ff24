"""Whole searches on the real control plane: the operator, the controller pod
(`nas-controller`) and the trial pods (`nas-train`), all real, run by the node agent."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from test_operator_fixtures import events_of, kube, kubectl
from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    apply, assert_volume_agrees_with_trials, crds, search, search_object, search_operator,
    volume_of, wait_final,
)
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster


def test_nas_bench_graph_search_of_50_trials_completes_and_agrees_with_its_volume(
        cluster, search_operator, namespace):
    started = time.monotonic()
    apply(cluster, search("cora", namespace, {"name": "nas-bench-graph", "options": {"dataset": "cora"}},
                          {"name": "reinforce", "seed": 0, "rewardNormalization": "std"},
                          {"max": 50, "parallelism": 4, "timeoutSeconds": 120}))
    created = 'nas_controller_trials_created_total{namespace="%s",search="cora"}' % namespace
    wait_for(lambda: created in (_scrape(search_operator.controller_metrics_port) or ""),
             "the controller's metrics to count created trials", timeout=120)

    final = wait_final(cluster, namespace, "cora", timeout=600)
    seconds = time.monotonic() - started
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    assert status["controller"]["decision"] == "MaxTrialsReached"
    assert status["controller"]["trialsCreated"] == 50
    assert status["trials"]["succeeded"] == 50 and status["trials"]["total"] == 50

    report, trials = assert_volume_agrees_with_trials(cluster, namespace, "cora", 50)
    versions = [t["spec"]["policyVersion"] for t in trials]
    assert versions == sorted(versions), "the policy version went back"
    assert report.checkpoint["strategy"]["policy_version"] >= versions[-1] > 0
    assert status["controller"]["policyVersion"] == report.checkpoint["strategy"]["policy_version"]
    assert {t["spec"]["searchGeneration"] for t in trials} == {final["metadata"]["generation"]}

    events = events_of(cluster, namespace, "cora")
    assert any(e.startswith("TrialCreated: trial cora-00049") for e in events)
    # one Event per trial would fill etcd on long searches: the 50 are one counted series
    created_events = [e for e in kube(cluster).get(f"/api/v1/namespaces/{namespace}/events")["items"]
                      if e["reason"] == "TrialCreated"]
    assert [e.get("count") for e in created_events] == [50], created_events
    assert any(e.startswith("NewBest:") for e in events)
    assert any(e.startswith("SearchDecided: MaxTrialsReached") for e in events)
    # what a user reads with kubectl: one row for the search, a results table of trials
    searches = kubectl(cluster, "get", "archsearch", "-n", namespace).stdout
    table = kubectl(cluster, "get", "trials", "-n", namespace).stdout
    (cluster.run_dir / "kubectl-get-cora.txt").write_text(searches + "\n" + table)
    row = searches.splitlines()[1].split()
    assert row[:2] == ["cora", "Succeeded"], searches
    assert str(status["best"]["reward"])[:5] in searches, searches
    rows = table.splitlines()[1:]
    assert len(rows) == 50 and all(" Succeeded " in r for r in rows), table
    print(f"\n50-trial nas-bench-graph search on the test cluster: {seconds:.1f}s")
    print(searches + table.splitlines()[0] + "\n" + "\n".join(rows[:5]))


def test_goal_stops_the_search_and_the_trials_still_running_are_recorded(
        cluster, search_operator, namespace):
    apply(cluster, search("goal", namespace, {"name": "nas-bench-graph", "options": {"dataset": "cora"}},
                          {"name": "random", "seed": 4},
                          {"max": 40, "parallelism": 3, "goal": 0.79, "timeoutSeconds": 120}))
    final = wait_final(cluster, namespace, "goal", timeout=600)
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    assert status["controller"]["decision"] == "GoalReached"
    assert "goal 0.79 reached" in status["controller"]["message"]
    report, trials = assert_volume_agrees_with_trials(cluster, namespace, "goal", None)
    assert len(trials) < 40 and status["controller"]["trialsCreated"] == len(trials)
    assert report.best["reward"] >= 0.79
    assert all(t["status"]["phase"] in ("Succeeded", "Failed") for t in trials)


def test_digits_search_with_real_training_records_its_best_accuracy_and_keeps_its_weights(
        cluster, search_operator, namespace):
    """Trial pods of the default ReadWriteOnce volume keep no weights: the final training
    retrains the best architecture onto the volume, where a user loads it."""
    started = time.monotonic()
    manifest = search("digits", namespace, {"name": "macro-cnn", "options": {"layers": 2}},
                      {"name": "reinforce", "seed": 1},
                      {"max": 3, "parallelism": 2, "timeoutSeconds": 300},
                      {"dataset": "digits", "epochs": 2, "batchSize": 64})
    manifest["spec"]["finalTraining"] = {"epochs": 1}
    apply(cluster, manifest)
    final = wait_final(cluster, namespace, "digits", timeout=600)
    seconds = time.monotonic() - started
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    assert status["controller"]["decision"] == "MaxTrialsReached"
    report, trials = assert_volume_agrees_with_trials(cluster, namespace, "digits", 3)
    best = report.best
    assert best is not None and 0.1 < best["metrics"]["val_accuracy"] <= 1.0, best
    assert status["best"]["reward"] == pytest.approx(best["reward"])
    assert all(t["status"]["parameters"] > 0 for t in trials)
    kept = status["final"]
    assert kept["phase"] == "Succeeded" and kept["weights"] == "best/model.pt", kept
    assert kept["trial"] == status["best"]["name"] and kept["jobName"] == "digits-final"
    ready = next(c for c in status["conditions"] if c["type"] == "WeightsReady")
    assert ready["status"] == "True" and ready["message"] == "best/model.pt"
    volume = volume_of(cluster, namespace, "digits")
    assert not (volume / "trials").exists()  # the trial pods could not keep their weights
    result = json.loads((volume / "best" / "result.json").read_text())
    assert result["reward"] == pytest.approx(kept["reward"]) and result["epochs"] == 1
    assert len((volume / "best" / "epochs.jsonl").read_text().splitlines()) == 1
    import torch  # here, not at collection: seconds
    from nas_trainer.export import load_final_model, read_checkpoint

    checkpoint = read_checkpoint(volume / kept["weights"])
    best_trial = next(t for t in trials if t["metadata"]["name"] == kept["trial"])
    assert checkpoint["architecture"]["hash"] == best_trial["spec"]["architecture"]["hash"]
    model = load_final_model(volume)
    images = torch.randn(4, *checkpoint["build"]["input_shape"])
    assert model(images).shape == (4, 10)  # the ten digits
    pods = kube(cluster).get(f"/api/v1/namespaces/{namespace}/pods?labelSelector="
                             "archsearch.io/component=final-training")["items"]
    assert len(pods) == 1, "the final training ran twice"
    events = events_of(cluster, namespace, "digits")
    assert any(e.startswith("FinalTrainingStarted: training digits-") for e in events), events
    wait_for(lambda: any(e.startswith("FinalTrainingSucceeded:")  # posted after the status
                         for e in events_of(cluster, namespace, "digits")),
             "a FinalTrainingSucceeded event", timeout=30)
    print(f"\n3-trial digits macro-cnn search (2 epochs each) and its final training (1 epoch) "
          f"on the test cluster: {seconds:.1f}s, best val_accuracy "
          f"{best['metrics']['val_accuracy']:.3f}")


def _scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None

"""A multi-node trial on the real control plane: `trainer.nodes: 2` makes each trial an
Indexed Job of two pods and a headless Service; the pods find index 0 at <job>-0.<job>
(the test node agent's /etc/hosts stands in for cluster DNS), train one child together
(DDP over gloo on the CPU) and the Trial reads the one result index 0 wrote."""
from __future__ import annotations

import json

import pytest

from test_operator_fixtures import kubectl
from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    apply, crds, get, search, search_operator, trials_of, wait_final,
)

from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster


def _job_pods(cluster, namespace: str, job_name: str) -> list[dict]:
    return get(cluster, f"/api/v1/namespaces/{namespace}/pods"
               f"?labelSelector=batch.kubernetes.io/job-name={job_name}")["items"]


def _index(pod: dict) -> str:
    return pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]


def test_a_two_node_trial_is_an_indexed_job_and_reports_once(cluster, search_operator,
                                                              namespace):
    manifest = search("nodes", namespace, {"name": "macro-cnn", "options": {"layers": 2}},
                      {"name": "random", "seed": 2},
                      {"max": 1, "parallelism": 1, "timeoutSeconds": 300},
                      {"dataset": "digits", "epochs": 1, "batchSize": 64, "nodes": 2,
                       "processes": 1, "device": "cpu"})
    apply(cluster, manifest)
    final = wait_final(cluster, namespace, "nodes", timeout=300)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    (trial,) = trials_of(cluster, namespace, "nodes")
    assert trial["status"]["phase"] == "Succeeded", trial["status"]
    job_name = trial["status"]["jobName"]
    job = get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/{job_name}")
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    assert job["status"]["succeeded"] == 2
    service = get(cluster, f"/api/v1/namespaces/{namespace}/services/{job_name}")
    assert service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["ownerReferences"][0]["uid"] == trial["metadata"]["uid"]
    messages = {}
    for pod in _job_pods(cluster, namespace, job_name):
        (state,) = pod["status"]["containerStatuses"]
        messages[_index(pod)] = state["state"]["terminated"].get("message") or ""
    assert sorted(messages) == ["0", "1"]
    result = json.loads(messages["0"])
    assert result["execution"].endswith("DDP over 2 processes (gloo)"), result
    assert result["reward"] == pytest.approx(trial["status"]["reward"])
    assert messages["1"] == "", "only global rank 0 writes a result"


def test_a_peer_lost_mid_training_reruns_the_attempt_instead_of_hanging(
        cluster, search_operator, namespace):
    """Index 1's pod deleted while both train (index 0's log shows epochs): index 0's
    collective fails, the Job makes both pods again and the trial still ends with one
    result, long before its timeout (a hang would wait for timeoutSeconds)."""
    epochs = 150  # ~30 s of training here: room to delete a peer between epochs
    manifest = search("peerlost", namespace, {"name": "macro-cnn", "options": {"layers": 2}},
                      {"name": "random", "seed": 2},
                      {"max": 1, "parallelism": 1, "timeoutSeconds": 900, "retries": 2},
                      {"dataset": "digits", "epochs": epochs, "batchSize": 64, "nodes": 2,
                       "processes": 1, "device": "cpu"})
    apply(cluster, manifest)

    def training_together():
        trials = trials_of(cluster, namespace, "peerlost")
        job_name = trials and (trials[0].get("status") or {}).get("jobName")
        if not job_name:
            return None
        pods = {_index(p): p for p in _job_pods(cluster, namespace, job_name)
                if (p.get("status") or {}).get("phase") == "Running"}
        if set(pods) != {"0", "1"}:
            return None
        log = cluster.pod_log(namespace, pods["0"]["metadata"]["name"])
        return (job_name, pods["1"]) if f"epoch 3/{epochs}" in log else None

    job_name, peer = wait_for(training_together, "both pods of the trial training",
                              timeout=240)
    kubectl(cluster, "delete", "pod", peer["metadata"]["name"], "-n", namespace, "--wait=false")

    final = wait_final(cluster, namespace, "peerlost", timeout=420)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    (trial,) = trials_of(cluster, namespace, "peerlost")
    assert trial["status"]["phase"] == "Succeeded", trial["status"]
    assert trial["status"]["epochs"] == epochs
    job = get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/{job_name}")
    assert job["status"].get("failed", 0) >= 1, job["status"]  # the lost attempt shows
    assert job["status"]["succeeded"] == 2
    finished = [p for p in _job_pods(cluster, namespace, job_name)
                if (p.get("status") or {}).get("phase") == "Succeeded"]
    results = [(p["status"]["containerStatuses"][0]["state"]["terminated"].get("message") or "")
               for p in finished]
    reported = [json.loads(m) for m in results if m]
    assert len(reported) == 1 and reported[0]["reward"] == pytest.approx(trial["status"]["reward"])

"""A multi-node trial on the real control plane: `trainer.nodes: 2` makes each trial an
Indexed Job of two pods and a headless Service; the pods find index 0 at <job>-0.<job>
(the test node agent's /etc/hosts stands in for cluster DNS), train one child together
(DDP over gloo on the CPU) and the Trial reads the one result index 0 wrote."""
from __future__ import annotations

import json

import pytest

from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    apply, crds, get, search, search_operator, trials_of, wait_final,
)

pytestmark = pytest.mark.cluster


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
    pods = get(cluster, f"/api/v1/namespaces/{namespace}/pods")["items"]
    messages = {}
    for pod in pods:
        if pod["metadata"].get("labels", {}).get("batch.kubernetes.io/job-name") != job_name:
            continue
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        (state,) = pod["status"]["containerStatuses"]
        messages[index] = state["state"]["terminated"].get("message") or ""
    assert sorted(messages) == ["0", "1"]
    result = json.loads(messages["0"])
    assert result["execution"].endswith("DDP over 2 processes (gloo)"), result
    assert result["reward"] == pytest.approx(trial["status"]["reward"])
    assert messages["1"] == "", "only global rank 0 writes a result"

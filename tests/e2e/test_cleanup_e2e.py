"""Cleanup as a search goes (operator/nas_operator/cleanup.py), on the real control plane:
a 40-trial search leaves only the Jobs (and pods) of its newest trials, the Events of the
others go with them, and every Trial keeps its result in its status."""
from __future__ import annotations

import pytest

from test_operator_fixtures import kube, kubectl, trial_path
from test_search_e2e_helpers import (  # noqa: F401  (crds is a fixture)
    apply, crds, search, start_search_operator, wait_final,
)
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster

TRIALS, KEEP_SUCCEEDED, KEEP_FAILED = 40, 3, 2
FAILING = {7, 17, 27, 37}  # trial indices whose trainer fails for good (exit 3)
# A trainer that answers at once: a reward from the trial index, or a permanent error.
# `$$` is kubelet's escape for `$`.
TRAINER = ("case $$NAS_TRIAL_INDEX in 7|17|27|37) "
           "echo '{\"schema\": \"nas.result/v1\", \"error\": \"no such layer\", "
           "\"permanent\": true}' > /dev/termination-log; exit 3;; esac; "
           "printf '{\"schema\": \"nas.result/v1\", \"reward\": 0.%03d}' "
           "$$(( NAS_TRIAL_INDEX * 7919 % 1000 )) > /dev/termination-log")
SPACE = {"name": "custom",
         "decisions": [{"name": f"d{i}", "choices": list(range(10))} for i in range(4)]}


@pytest.fixture
def cleaning_operator(cluster, crds, namespace):
    controller_operator = start_search_operator(cluster, [namespace], env={
        "NAS_OPERATOR_SUCCESSFUL_TRIAL_JOBS_HISTORY_LIMIT": str(KEEP_SUCCEEDED),
        "NAS_OPERATOR_FAILED_TRIAL_JOBS_HISTORY_LIMIT": str(KEEP_FAILED),
    })
    yield controller_operator
    controller_operator.process.stop()


def names(items: list[dict]) -> set[str]:
    return {item["metadata"]["name"] for item in items}


def test_a_search_keeps_only_its_newest_trial_jobs_and_every_trials_result(
        cluster, cleaning_operator, namespace):
    apply(cluster, search("tidy", namespace, SPACE, {"name": "random", "seed": 0},
                          {"max": TRIALS, "parallelism": 4, "maxFailed": 10,
                           "timeoutSeconds": 300},
                          trainer={"command": ["sh", "-c", TRAINER]}))
    final = wait_final(cluster, namespace, "tidy", timeout=600)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    assert final["status"]["trials"]["failed"] == len(FAILING)

    k = kube(cluster)
    succeeded = [i for i in range(TRIALS) if i not in FAILING]
    kept = {f"tidy-{i:05d}" for i in succeeded[-KEEP_SUCCEEDED:] + sorted(FAILING)[-KEEP_FAILED:]}
    selector = "labelSelector=archsearch.io/component=trial"
    jobs_path = f"/apis/batch/v1/namespaces/{namespace}/jobs?{selector}"
    pods_path = f"/api/v1/namespaces/{namespace}/pods?{selector}"
    # the last trials' Jobs go on the status loop's next passes; their pods after them
    wait_for(lambda: names(k.get(jobs_path)["items"]) == kept,
             f"only the Jobs of trials {sorted(kept)} to be left", timeout=60)
    wait_for(lambda: all(p["metadata"]["labels"]["archsearch.io/trial"] in kept
                         for p in k.get(pods_path)["items"]),
             "only the kept Jobs' pods to be left", timeout=60)
    pods = k.get(pods_path)["items"]
    assert len(pods) <= KEEP_SUCCEEDED + KEEP_FAILED, names(pods)

    # every Trial still shows its outcome: a reward, or why it failed
    trials = sorted(k.get(trial_path(namespace))["items"], key=lambda t: t["spec"]["index"])
    assert len(trials) == TRIALS
    for trial in trials:
        status = trial["status"]
        if trial["spec"]["index"] in FAILING:
            assert status["phase"] == "Failed" and status["reason"] == "PermanentError", status
            assert "no such layer" in status["message"]
        else:
            assert status["phase"] == "Succeeded", status
            assert status["reward"] == (trial["spec"]["index"] * 7919 % 1000) / 1000
    table = kubectl(cluster, "get", "trials", "-n", namespace).stdout.splitlines()
    assert len(table) == TRIALS + 1, table
    assert table[2].startswith("tidy-00001 ") and " Succeeded " in table[2] and "0.919" in table[2]

    # the Events about the deleted Jobs and pods, and the Normal ones of their Trials, go
    # (the sweep runs at most every 30 s); why the failed trials failed stays
    def about_deleted() -> list[str]:
        events = k.get(f"/api/v1/namespaces/{namespace}/events")["items"]
        return [f"{e['involvedObject']['kind']} {e['involvedObject']['name']}: {e['reason']}"
                for e in events
                if e["involvedObject"]["kind"] in ("Job", "Pod", "Trial")
                and e["involvedObject"]["name"].startswith("tidy-0")  # a trial's
                and e["type"] == "Normal"
                and not any(e["involvedObject"]["name"].startswith(n) for n in kept)]

    wait_for(lambda: not about_deleted(), "the Events of the cleaned trials to be deleted",
             timeout=120)
    events = k.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    warnings = {e["involvedObject"]["name"] for e in events
                if e["involvedObject"]["kind"] == "Trial" and e["type"] == "Warning"}
    assert warnings == {f"tidy-{i:05d}" for i in FAILING}, warnings

"""spec.earlyStopping on the real control plane: the operator, the controller pod and the
trial pods (`nas-train`, real training), run by the node agent. Read as a user reads it:
the Trial's status and reason, `kubectl get trials`, the search's Events."""
from __future__ import annotations

import pytest

from test_operator_fixtures import kube, kubectl
from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    apply, assert_volume_agrees_with_trials, crds, search, search_operator, wait_final,
)

pytestmark = pytest.mark.cluster

EPOCHS = 15  # long enough that the controller (reading progress every second) judges mid-training


def test_the_median_rule_stops_trailing_trials_and_says_so_on_the_trial_and_the_search(
        cluster, search_operator, namespace):
    manifest = search("stopping", namespace,
                      {"name": "macro-cnn", "options": {"layers": 2, "strides": True, "skips": False}},
                      {"name": "random", "seed": 3},
                      {"max": 6, "parallelism": 2, "timeoutSeconds": 300},
                      {"dataset": "digits", "epochs": EPOCHS, "batchSize": 64})
    manifest["spec"]["earlyStopping"] = {"policy": "median", "gracePeriod": 1, "minTrials": 2}
    # The trial pods report their epochs on the search volume: ReadWriteMany lets every
    # node mount it (the node agent, like a cluster, attaches ReadWriteOnce to one node).
    manifest["spec"]["storage"] = {"accessModes": ["ReadWriteMany"]}
    apply(cluster, manifest)
    status = wait_final(cluster, namespace, "stopping", timeout=900)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["trials"]["succeeded"] == 6, status["trials"]

    report, trials = assert_volume_agrees_with_trials(cluster, namespace, "stopping", 6)
    stopped = [t for t in trials if t["status"].get("reason") == "StoppedEarly"]
    assert stopped, [t["status"] for t in trials]
    for trial in stopped:
        st = trial["status"]
        assert st["phase"] == "Succeeded" and st["stoppedEarly"] is True
        assert 1 <= st["epochs"] < EPOCHS and st["reward"] is not None
        assert "below the median" in st["message"], st
    finished = [t for t in trials if t not in stopped]
    assert all(t["status"]["epochs"] == EPOCHS and "stoppedEarly" not in t["status"]
               for t in finished)
    # The volume's record, which the strategy learned from, marks the same trials partial.
    partial = {r["index"] for r in report.records if r["stopped_early"]}
    assert partial == {t["spec"]["index"] for t in stopped}

    wide = kubectl(cluster, "get", "trials", "-n", namespace, "-o", "wide").stdout
    header, *rows = wide.splitlines()
    assert "EPOCHS" in header.split() and "REASON" in header.split(), wide
    for trial in stopped:
        row = next(r for r in rows if r.startswith(trial["metadata"]["name"] + " "))
        assert "StoppedEarly" in row.split() and str(trial["status"]["epochs"]) in row.split()

    # The search's Events count the stops as one series (kubectl describe: "x3 over 40s"),
    # its message the latest; each Trial's own status carries its words (asserted above).
    series = [e for e in kube(cluster).get(f"/api/v1/namespaces/{namespace}/events")["items"]
              if e["involvedObject"].get("name") == "stopping"
              and e["reason"] == "TrialStoppedEarly"]
    assert sum(e.get("count") or 1 for e in series) == len(stopped), series
    names = {t["metadata"]["name"] for t in stopped}
    for event in series:
        head, _, rest = event["message"].partition(": ")
        assert head.removeprefix("trial ") in names, event
        assert rest.startswith("stopped by the median rule"), event
    print("\n" + wide)

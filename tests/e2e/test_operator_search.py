"""The operator with the real controller (`nas-controller`) and the real trainer
(`nas-train`): how long a search takes to get going, and an operator killed in the
middle of a search, which must pick it up where it was and create nothing twice."""

from __future__ import annotations

import signal
import time

import pytest
from test_operator_fixtures import get, kube, trial_path
from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    CORA,
    apply,
    crds,
    search,
    search_operator,
    start_search_operator,
    trials_of,
    wait_final,
)

from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster

REINFORCE = {"name": "reinforce", "seed": 0, "rewardNormalization": "std"}


def first_item(cluster, path: str):
    items = kube(cluster).get(path)["items"]
    return items[0] if items else None


def test_time_from_apply_to_first_trial_pod(cluster, search_operator, namespace, request):
    """Measured, printed, not asserted (speed is a benchmark's business)."""
    ns = f"/api/v1/namespaces/{namespace}"
    marks: dict[str, float] = {}
    started = time.monotonic()
    apply(
        cluster,
        search(
            "quick", namespace, CORA, REINFORCE, {"max": 4, "parallelism": 2, "timeoutSeconds": 120}
        ),
    )

    def mark(name: str, probe, timeout: float = 120):
        wait_for(probe, name, timeout=timeout, interval=0.05)
        marks[name] = time.monotonic() - started

    mark("controller pod created", lambda: get(cluster, f"{ns}/pods/quick-controller"))
    mark(
        "controller pod running",
        lambda: (
            (get(cluster, f"{ns}/pods/quick-controller") or {}).get("status", {}).get("phase")
            == "Running"
        ),
    )
    mark(
        "first Trial created",
        lambda: first_item(
            cluster, trial_path(namespace) + "?labelSelector=archsearch.io/search=quick"
        ),
    )
    mark(
        "first trial Job created",
        lambda: first_item(
            cluster,
            f"/apis/batch/v1/namespaces/{namespace}/jobs?labelSelector=archsearch.io/search=quick",
        ),
    )
    mark(
        "first trial pod created",
        lambda: first_item(cluster, f"{ns}/pods?labelSelector=archsearch.io/component=trial"),
    )
    mark(
        "first trial pod running or done",
        lambda: any(
            p.get("status", {}).get("phase") in ("Running", "Succeeded", "Failed")
            for p in kube(cluster).get(f"{ns}/pods?labelSelector=archsearch.io/component=trial")[
                "items"
            ]
        ),
    )
    mark(
        "first Trial finished",
        lambda: any(
            (t.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            for t in trials_of(cluster, namespace, "quick")
        ),
    )
    final = wait_final(cluster, namespace, "quick", timeout=300)
    marks["search Succeeded (4 trials)"] = time.monotonic() - started
    assert final["status"]["phase"] == "Succeeded", final["status"]

    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["", "apply → ... on the test cluster (seconds since kubectl apply):"]
    lines += [f"  {name:<32} {seconds:6.2f}" for name, seconds in marks.items()]
    for line in lines:
        if reporter is not None:
            reporter.write_line(line)


@pytest.fixture
def operator_keeping_jobs(cluster, crds, namespace):
    """The search operator with every finished Job kept (no history limits), so each
    Trial's one Job and one pod can be counted at the end."""
    keep = {"NAS_OPERATOR_SUCCESSFUL_TRIAL_JOBS_HISTORY_LIMIT": "none",
            "NAS_OPERATOR_FAILED_TRIAL_JOBS_HISTORY_LIMIT": "none"}
    controller_operator = start_search_operator(cluster, [namespace], env=keep)
    yield controller_operator
    controller_operator.process.stop()


def test_operator_killed_mid_search_resumes_and_creates_nothing_twice(
    cluster, operator_keeping_jobs, namespace
):
    total = 16
    apply(
        cluster,
        search(
            "steady",
            namespace,
            CORA,
            REINFORCE,
            {"max": total, "parallelism": 3, "timeoutSeconds": 120},
        ),
    )
    wait_for(
        lambda: (
            sum(
                (t.get("status") or {}).get("phase") == "Succeeded"
                for t in trials_of(cluster, namespace, "steady")
            )
            >= 4
        ),
        "4 trials to succeed",
        timeout=300,
        interval=0.5,
    )
    operator = operator_keeping_jobs.process
    operator.stop(signal.SIGKILL)  # no cleanup, no goodbye
    time.sleep(5)  # the controller keeps proposing; nobody runs or records its Trials
    created_while_down = len(trials_of(cluster, namespace, "steady"))
    operator.start()

    final = wait_final(cluster, namespace, "steady", timeout=400)
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    trials = trials_of(cluster, namespace, "steady")
    assert len(trials) == total and status["trials"]["total"] == total
    assert sorted(t["spec"]["index"] for t in trials) == list(range(total))
    jobs = kube(cluster).get(
        f"/apis/batch/v1/namespaces/{namespace}/jobs?labelSelector=archsearch.io/search=steady"
    )
    assert sorted(j["metadata"]["name"] for j in jobs["items"]) == sorted(
        t["metadata"]["name"] for t in trials
    )
    pods = kube(cluster).get(
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=archsearch.io/search=steady,"
        "archsearch.io/component=trial"
    )["items"]
    assert len(pods) == total, "a trial ran twice"
    assert all(t["status"]["phase"] == "Succeeded" and t["status"]["attempts"] == 1 for t in trials)
    assert status["trials"]["succeeded"] == total
    assert status["best"]["reward"] == max(t["status"]["reward"] for t in trials)
    assert created_while_down >= 4
    assert get(cluster, trial_path(namespace, trials[0]["metadata"]["name"]))["status"]["jobName"]

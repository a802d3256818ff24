"""The operator on the real control plane: a search gets its volume, RBAC and controller
pod; hand-made Trials become Jobs whose pods (run by the test node agent) report a
result that lands in the Trial's status; suspension, deletion, restarts."""

from __future__ import annotations

import json
import time

import pytest
from test_operator_fixtures import (  # noqa: F401  (fixtures)
    IDLE_CONTROLLER,
    OperatorProcess,
    apply,
    crds,
    events_of,
    get,
    kube,
    kubectl,
    operator,
    result_command,
    search_manifest,
    search_path,
    trial_manifest,
    trial_path,
    wait_trial,
)

from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster


def create_search(cluster, namespace, name, **kwargs):
    search = search_manifest(name, **kwargs)
    search["metadata"]["namespace"] = namespace
    apply(cluster, search)
    return wait_for(
        lambda: (
            (s := get(cluster, search_path(namespace, name)))
            and (s.get("status") or {}).get("observedGeneration")
            and s
        ),
        f"the operator to observe search {name}",
        timeout=60,
    )


def create_trial(cluster, namespace, search, index, **kwargs):
    trial = trial_manifest(search, index, **kwargs)
    trial["metadata"]["namespace"] = namespace
    apply(cluster, trial)
    return trial["metadata"]["name"]


def search_status(cluster, namespace, name):
    return (get(cluster, search_path(namespace, name)) or {}).get("status") or {}


def test_search_gets_volume_rbac_admission_and_controller_pod(cluster, operator, namespace):
    create_search(cluster, namespace, "basic")
    k = kube(cluster)
    pvc = wait_for(
        lambda: get(cluster, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/basic-data"),
        "the search's volume",
    )
    assert not pvc["metadata"].get("ownerReferences"), "Retain: the volume must outlive the search"
    role = k.get(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/basic-controller"
    )
    assert {"create", "get", "list", "watch"} == set(
        next(r for r in role["rules"] if r["resources"] == ["trials"])["verbs"]
    )
    k.get(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/basic-controller"
    )
    k.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/basic-controller")
    k.get(
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/archsearch.io-controller-trials"
    )
    snapshot = k.get(f"/api/v1/namespaces/{namespace}/configmaps/basic-trainer-1")
    assert json.loads(snapshot["data"]["trainer.json"])["trainer"]["image"] == "nas-trainer:test"
    pod = wait_for(
        lambda: get(cluster, f"/api/v1/namespaces/{namespace}/pods/basic-controller"),
        "the controller pod",
    )
    container = pod["spec"]["containers"][0]
    assert (
        container["command"] == IDLE_CONTROLLER
    )  # the operator's setting (default nas-controller)
    assert container["image"] == "nas-trainer:test"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["NAS_SEARCH_NAME"]["value"] == "basic"
    assert env["NAS_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["NAS_DATA_DIR"]["value"] == "/data"
    status = search_status(cluster, namespace, "basic")
    assert status["phase"] in ("Pending", "Running")
    assert status["controllerPod"] == "basic-controller"


def test_trial_runs_as_a_job_and_reports_its_reward(cluster, operator, namespace):
    search = create_search(cluster, namespace, "rewarded", command=result_command(reward=0.75))
    name = create_trial(cluster, namespace, search, 0)
    trial = wait_trial(cluster, namespace, name)
    status = trial["status"]
    assert status["phase"] == "Succeeded", status
    assert status["reward"] == 0.75
    assert status["metrics"] == {"val_accuracy": 0.75}
    assert status["attempts"] == 1
    assert status["jobName"] == name and status["podName"].startswith(name)
    assert (
        status["parameters"] == 1234
        and status["summary"] == "width=16"
        or status["summary"] == "width=8"
    )
    job = kube(cluster).get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "Trial"
    assert job["spec"]["backoffLimit"] == 1 and job["spec"]["activeDeadlineSeconds"] == 120
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob" and rules[0]["onExitCodes"]["values"] == [3]
    wait_for(
        lambda: search_status(cluster, namespace, "rewarded").get("best", {}).get("reward") == 0.75,
        "the search's best trial",
    )
    counts = search_status(cluster, namespace, "rewarded")["trials"]
    assert counts["succeeded"] == 1 and counts["total"] == 1
    table = kubectl(cluster, "get", "trials", "-n", namespace).stdout
    assert "Succeeded" in table and "0.75" in table


def test_permanent_error_fails_the_trial_without_retry(cluster, operator, namespace):
    search = create_search(
        cluster,
        namespace,
        "broken",
        command=result_command(exit_code=3, error="layer 2 has no input"),
    )
    name = create_trial(cluster, namespace, search, 0)
    status = wait_trial(cluster, namespace, name)["status"]
    assert status["phase"] == "Failed"
    assert status["reason"] == "PermanentError"
    assert status["message"] == "layer 2 has no input"
    assert status["attempts"] == 1
    wait_for(
        lambda: any("layer 2 has no input" in e for e in events_of(cluster, namespace, name)),
        "a PermanentError event on the trial",
    )


def test_retryable_failure_then_success_counts_two_attempts(cluster, operator, namespace, host_dir):
    flag = host_dir / "first-attempt-done"
    search = create_search(
        cluster, namespace, "flaky", command=result_command(reward=0.5, fail_first=str(flag))
    )
    name = create_trial(cluster, namespace, search, 0)
    status = wait_trial(cluster, namespace, name, timeout=120)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["attempts"] == 2
    assert flag.exists()


def test_controller_service_account_creates_only_its_own_trials(cluster, operator, namespace):
    mine = create_search(cluster, namespace, "mine")
    theirs = create_search(cluster, namespace, "theirs")
    as_mine = f"system:serviceaccount:{namespace}:mine-controller"
    # its own Trial passes RBAC and the policy
    own = trial_manifest(mine, 0)
    own["metadata"]["namespace"] = namespace
    apply(cluster, own, user=as_mine)
    # a Trial of the other search is refused by the admission policy
    other = trial_manifest(theirs, 0)
    other["metadata"]["namespace"] = namespace
    refused = apply(cluster, other, user=as_mine, check=False)
    assert refused.returncode != 0
    assert "may create only Trials labelled archsearch.io/search=mine" in refused.stderr
    # relabelled to look like its own but owned by the other search: still refused
    disguised = trial_manifest(theirs, 1)
    disguised["metadata"].update(namespace=namespace, name="mine-00001")
    disguised["metadata"]["labels"]["archsearch.io/search"] = "mine"
    disguised["spec"]["searchName"] = "mine"
    refused = apply(cluster, disguised, user=as_mine, check=False)
    assert "a Trial must have an owner reference to ArchitectureSearch mine" in refused.stderr
    # the controller may write status.controller of its search, and nothing else
    status_url = ["--subresource=status", "--type=merge", "-n", namespace, "--as", as_mine]
    kubectl(
        cluster,
        "patch",
        "archsearch",
        "mine",
        *status_url,
        "-p",
        json.dumps({"status": {"controller": {"policyVersion": 3}}}),
    )
    denied = kubectl(
        cluster,
        "patch",
        "archsearch",
        "mine",
        *status_url,
        "-p",
        json.dumps({"status": {"phase": "Succeeded"}}),
        check=False,
    )
    assert "may change only status.controller" in denied.stderr
    denied = kubectl(
        cluster,
        "patch",
        "archsearch",
        "theirs",
        *status_url,
        "-p",
        json.dumps({"status": {"controller": {"decision": "GoalReached"}}}),
        check=False,
    )
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()


def test_controller_decision_ends_the_search(cluster, operator, namespace):
    search = create_search(cluster, namespace, "decided")
    name = create_trial(cluster, namespace, search, 0)
    wait_trial(cluster, namespace, name)
    kubectl(
        cluster,
        "patch",
        "archsearch",
        "decided",
        "--subresource=status",
        "--type=merge",
        "-n",
        namespace,
        "--as",
        f"system:serviceaccount:{namespace}:decided-controller",
        "-p",
        json.dumps(
            {"status": {"controller": {"decision": "MaxTrialsReached", "message": "1 of 1"}}}
        ),
    )
    # the real controller exits after its decision, freeing the volume for the final training
    kubectl(cluster, "delete", "pod", "decided-controller", "-n", namespace, "--wait=false")
    status = wait_for(
        lambda: (
            (s := search_status(cluster, namespace, "decided")).get("phase") == "Succeeded" and s
        ),
        "the search to succeed",
    )
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert complete["status"] == "True" and complete["reason"] == "MaxTrialsReached"
    assert status["completionTime"] and status["progress"] == "1/4"
    assert status["final"]["phase"] == "Succeeded" and status["final"]["reward"] == 0.5
    wait_for(
        lambda: any(
            e.startswith("SearchSucceeded: 1 of 1")
            for e in events_of(cluster, namespace, "decided")
        ),
        "a SearchSucceeded event",
    )


def set_suspend(cluster, namespace: str, name: str, suspend: bool) -> None:
    patch = json.dumps({"spec": {"suspend": suspend}})
    kubectl(cluster, "patch", "archsearch", name, "-n", namespace, "--type=merge", "-p", patch)


def test_suspend_stops_the_controller_and_pauses_jobs(cluster, operator, namespace):
    slow = ["python", "-c", "import time; time.sleep(600)"]
    search = create_search(cluster, namespace, "pausable", command=slow)
    name = create_trial(cluster, namespace, search, 0)
    wait_trial(cluster, namespace, name, phases=("Running",))
    set_suspend(cluster, namespace, "pausable", True)
    wait_for(
        lambda: search_status(cluster, namespace, "pausable").get("phase") == "Suspended",
        "Suspended",
    )
    wait_for(
        lambda: get(cluster, f"/api/v1/namespaces/{namespace}/pods/pausable-controller") is None,
        "the controller pod to go",
    )
    # the search's phase and its Jobs are written by different handlers: both, eventually
    wait_for(
        lambda: kube(cluster).get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")[
            "spec"
        ].get("suspend")
        is True,
        "the running trial's Job to be suspended",
    )
    trial = wait_trial(cluster, namespace, name, phases=("Pending",))
    assert trial["status"]["reason"] == "Suspended"
    # a Trial proposed while suspended gets a suspended Job
    later = create_trial(cluster, namespace, search, 1)
    wait_for(
        lambda: (
            (j := get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/{later}"))
            and j["spec"]["suspend"] is True
        ),
        "a suspended Job for the new trial",
    )
    set_suspend(cluster, namespace, "pausable", False)
    wait_for(
        lambda: get(cluster, f"/api/v1/namespaces/{namespace}/pods/pausable-controller"),
        "a new controller pod",
    )
    wait_trial(cluster, namespace, name, phases=("Running",))
    status = search_status(cluster, namespace, "pausable")
    assert status.get("controllerRestarts", 0) == 0, "a resume is not a restart"


def test_vanished_controller_pod_is_replaced(cluster, operator, namespace):
    create_search(cluster, namespace, "phoenix")
    first = wait_for(
        lambda: get(cluster, f"/api/v1/namespaces/{namespace}/pods/phoenix-controller"),
        "controller",
    )
    kubectl(cluster, "delete", "pod", "phoenix-controller", "-n", namespace, "--wait=false")
    wait_for(
        lambda: (
            (p := get(cluster, f"/api/v1/namespaces/{namespace}/pods/phoenix-controller"))
            and p["metadata"]["uid"] != first["metadata"]["uid"]
        ),
        "a replacement controller pod",
        timeout=60,
    )
    wait_for(
        lambda: search_status(cluster, namespace, "phoenix").get("controllerRestarts") == 1,
        "restart count",
    )


def test_deleting_a_search_removes_its_children_and_keeps_the_volume(cluster, operator, namespace):
    search = create_search(cluster, namespace, "doomed")
    name = create_trial(cluster, namespace, search, 0)
    wait_trial(cluster, namespace, name)
    wait_for(
        lambda: get(cluster, f"/api/v1/namespaces/{namespace}/pods/doomed-controller"),
        "controller pod",
    )
    kubectl(
        cluster, "delete", "archsearch", "doomed", "-n", namespace, "--wait=true", "--timeout=60s"
    )
    gone = [
        trial_path(namespace, name),
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
        f"/api/v1/namespaces/{namespace}/pods/doomed-controller",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/doomed-controller",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/doomed-controller",
        f"/api/v1/namespaces/{namespace}/configmaps/doomed-trainer-1",
    ]
    wait_for(
        lambda: all(get(cluster, path) is None for path in gone),
        "the garbage collector",
        timeout=60,
    )
    assert (
        get(cluster, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/doomed-data")
        is not None
    )


def test_retention_delete_removes_the_volume(cluster, operator, namespace):
    search = search_manifest("ephemeral")
    search["metadata"]["namespace"] = namespace
    search["spec"]["storage"] = {"retentionPolicy": "Delete"}
    apply(cluster, search)
    pvc = wait_for(
        lambda: get(
            cluster, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/ephemeral-data"
        ),
        "the volume",
    )
    assert pvc["metadata"]["ownerReferences"][0]["name"] == "ephemeral"
    kubectl(cluster, "delete", "archsearch", "ephemeral", "-n", namespace)
    wait_for(
        lambda: (
            (
                p := get(
                    cluster, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/ephemeral-data"
                )
            )
            is None
            or p["metadata"].get("deletionTimestamp")
        ),
        "the volume to be deleted",
        timeout=60,
    )


def test_operator_restart_creates_nothing_twice(cluster, crds, namespace):
    first = OperatorProcess(cluster, [namespace]).start()
    try:
        search = create_search(cluster, namespace, "durable")
        done = create_trial(cluster, namespace, search, 0)
        wait_trial(cluster, namespace, done)
        pod = wait_for(
            lambda: get(cluster, f"/api/v1/namespaces/{namespace}/pods/durable-controller"), "pod"
        )
    finally:
        first.stop()
    pending = create_trial(cluster, namespace, search, 1)  # proposed while no operator runs
    second = OperatorProcess(cluster, [namespace]).start()
    third = OperatorProcess(cluster, [namespace], tag="-twin").start()  # and two at once
    try:
        wait_trial(cluster, namespace, pending)
        time.sleep(3)  # let both operators' status loops and resync run over everything
        jobs = kube(cluster).get(f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
        assert sorted(j["metadata"]["name"] for j in jobs) == [done, pending]
        pods = kube(cluster).get(
            f"/api/v1/namespaces/{namespace}/pods", labelSelector="archsearch.io/component=trial"
        )["items"]
        assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
        again = get(cluster, f"/api/v1/namespaces/{namespace}/pods/durable-controller")
        assert again["metadata"]["uid"] == pod["metadata"]["uid"]
        assert get(cluster, trial_path(namespace, done))["status"]["attempts"] == 1
        assert search_status(cluster, namespace, "durable")["trials"]["succeeded"] == 2
    finally:
        second.stop()
        third.stop()


def test_metrics_are_served(cluster, operator, namespace):
    search = create_search(cluster, namespace, "measured", command=result_command(reward=0.25))
    wait_trial(cluster, namespace, create_trial(cluster, namespace, search, 0))
    wait_for(
        lambda: (
            f'nas_search_best_reward{{namespace="{namespace}",search="measured"}} 0.25'
            in operator.metrics()
        ),
        "the best-reward gauge",
    )
    text = operator.metrics()
    assert f'nas_trials{{namespace="{namespace}",phase="Succeeded",search="measured"}} 1.0' in text
    assert "nas_trial_duration_seconds_bucket" in text
    assert "nas_operator_reconciles_total" in text


def test_trial_runs_with_the_trainer_of_its_generation(cluster, operator, namespace):
    """Editing spec.trainer changes the Trials proposed afterwards, never earlier ones."""
    search = create_search(cluster, namespace, "evolving", command=result_command(reward=0.1))
    first = create_trial(cluster, namespace, search, 0, generation=1)
    assert wait_trial(cluster, namespace, first)["status"]["reward"] == 0.1
    patch = {"spec": {"trainer": {"command": result_command(reward=0.9)}}}
    kubectl(
        cluster,
        "patch",
        "archsearch",
        "evolving",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps(patch),
    )
    generation = get(cluster, search_path(namespace, "evolving"))["metadata"]["generation"]
    assert generation == 2
    late_old = create_trial(cluster, namespace, search, 1, generation=1)  # proposed before the edit
    new = create_trial(cluster, namespace, search, 2, generation=2)
    assert wait_trial(cluster, namespace, late_old)["status"]["reward"] == 0.1
    assert wait_trial(cluster, namespace, new)["status"]["reward"] == 0.9
    snapshot = kube(cluster).get(f"/api/v1/namespaces/{namespace}/configmaps/evolving-trainer-2")
    assert snapshot["immutable"] is True


def test_evicted_trial_pod_is_replaced_without_using_the_retries(cluster, operator, namespace):
    """podFailurePolicy: a pod with the DisruptionTarget condition (eviction, preemption,
    node loss) is replaced even with retries: 0."""
    slow_then_done = result_command(reward=0.4)
    slow_then_done[-1] = "import time; time.sleep(4)\n" + slow_then_done[-1]
    search = create_search(cluster, namespace, "evictable", command=slow_then_done, retries=0)
    name = create_trial(cluster, namespace, search, 0)
    running = wait_trial(cluster, namespace, name, phases=("Running",))
    pod = running["status"]["podName"]
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": namespace},
    }
    kube(cluster).request("POST", f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction", eviction)
    status = wait_trial(cluster, namespace, name, timeout=120)["status"]
    assert status["phase"] == "Succeeded", status
    # An eviction deletes the pod: once the Job has accounted for it (Failed with
    # DisruptionTarget: ignored, not counted) it is gone, so the Job's counts, not the
    # pods left, tell that no retry was used.
    job = kube(cluster).get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{status['jobName']}")
    assert status["podName"] != pod and not job["status"].get("failed"), job["status"]


def test_controller_that_keeps_failing_fails_the_search(cluster, crds, namespace):
    crashing = ["python", "-c", "import sys; print('cannot read the checkpoint'); sys.exit(1)"]
    op = OperatorProcess(
        cluster,
        [namespace],
        env={
            "NAS_OPERATOR_CONTROLLER_COMMAND": json.dumps(crashing),
            "NAS_OPERATOR_CONTROLLER_RESTART_LIMIT": "2",
            "NAS_OPERATOR_CONTROLLER_RESTART_BACKOFF_SECONDS": "0.2",
        },
    ).start()
    try:
        create_search(cluster, namespace, "doomed-controller")
        status = wait_for(
            lambda: (
                (s := search_status(cluster, namespace, "doomed-controller")).get("phase")
                == "Failed"
                and s
            ),
            "the search to fail",
            timeout=120,
        )
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert failed["reason"] == "ControllerFailed" and "limit 2" in failed["message"]
        assert status["controllerRestarts"] == 3
        events = events_of(cluster, namespace, "doomed-controller")
        assert any("cannot read the checkpoint" in e for e in events), events
    finally:
        op.stop()

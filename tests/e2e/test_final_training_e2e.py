"""The best architecture's weights at the end of a search (status.final): pointed at when
the trial pods kept them, retrained once by the final Job otherwise, even across an
operator restart. The retraining of a real child network is checked by
test_search_e2e.py's digits search; here the trainer is a stand-in that writes a
placeholder model.pt where NAS_OUTPUT_DIR says."""

from __future__ import annotations

import json
import signal

import pytest
from test_operator import create_search, create_trial, search_status, set_suspend
from test_operator_fixtures import (  # noqa: F401  (operator is a fixture)
    events_of,
    get,
    kube,
    kubectl,
    operator,
    wait_trial,
)
from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    apply,
    crds,
    search,
    search_operator,
    trials_of,
    volume_of,
    wait_final,
)

from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster
FINAL = "archsearch.io/component=final-training"


def placeholder_trainer(final_seconds: float = 0.0, once: str = "") -> list[str]:
    """Reward 0.5 + 0.1 * token; writes the architecture's hash as NAS_OUTPUT_DIR/model.pt;
    the final training (NAS_OUTPUT_DIR=/data/best) takes ``final_seconds`` (only its first
    pod, with ``once``: a file it creates)."""
    script = (
        "import json, os, time\n"
        "out = os.environ.get('NAS_OUTPUT_DIR', '')\n"
        f"once = {once!r}\n"
        "if out.endswith('/best') and not (once and os.path.exists(once)):\n"
        "    once and open(once, 'w').close()\n"
        f"    time.sleep({final_seconds})\n"
        "arch = json.loads(os.environ['NAS_ARCHITECTURE'])\n"
        "reward = 0.5 + 0.1 * arch['tokens'][0]\n"
        "if out:\n"
        "    os.makedirs(out, exist_ok=True)\n"
        "    open(os.path.join(out, 'model.pt'), 'w').write(arch['hash'])\n"
        "result = {'schema': 'nas.result/v1', 'reward': reward,"
        " 'metrics': {'val_accuracy': reward}}\n"
        "open('/dev/termination-log', 'w').write(json.dumps(result))\n"
    )
    return ["python", "-c", script]


def jobs_and_pods(cluster, namespace: str, selector: str) -> tuple[list, list]:
    jobs = kube(cluster).get(f"/apis/batch/v1/namespaces/{namespace}/jobs?labelSelector={selector}")
    pods = kube(cluster).get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
    return jobs["items"], pods["items"]


def test_trial_pods_that_mount_the_volume_keep_the_weights_and_no_final_job_runs(
    cluster, search_operator, namespace
):
    manifest = search(
        "mounted",
        namespace,
        {"name": "custom", "decisions": [{"name": "width", "choices": [8, 16, 32]}]},
        {"name": "random", "seed": 0},
        {"max": 2, "parallelism": 2, "timeoutSeconds": 120},
        {"command": placeholder_trainer(), "mountSearchVolume": True},
    )
    # ReadWriteMany: the node agent, like a cluster, attaches ReadWriteOnce to one node only
    manifest["spec"]["storage"] = {"accessModes": ["ReadWriteMany"]}
    apply(cluster, manifest)
    status = wait_final(cluster, namespace, "mounted", timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    best = status["best"]
    assert status["final"] == {
        "phase": "Skipped",
        "trial": best["name"],
        "weights": f"trials/{best['index']:05d}/model.pt",
        "message": f"the pod of {best['name']} wrote its weights to the volume",
    }
    ready = next(c for c in status["conditions"] if c["type"] == "WeightsReady")
    assert (ready["status"], ready["message"]) == ("True", status["final"]["weights"])
    written = (volume_of(cluster, namespace, "mounted") / status["final"]["weights"]).read_text()
    assert written == best["hash"]  # the best trial's own file
    assert get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/mounted-final") is None
    assert jobs_and_pods(cluster, namespace, FINAL) == ([], [])
    assert len(trials_of(cluster, namespace, "mounted")) == 2


def start_final_training(cluster, namespace: str, name: str, trainer: list[str]) -> str:
    """A search (idle controller) with one hand-made Trial, decided as its controller
    would, whose controller pod then exits: the final training starts. Its Trial's name."""
    search_obj = create_search(cluster, namespace, name, command=trainer)
    wait_for(
        lambda: search_status(cluster, namespace, name).get("controllerPod"),
        "the controller pod",
        timeout=60,
    )
    trial = create_trial(cluster, namespace, search_obj, 1)
    assert wait_trial(cluster, namespace, trial)["status"]["phase"] == "Succeeded"
    kubectl(
        cluster, "patch", "archsearch", name, "--subresource=status", "--type=merge",
        "-n", namespace, "--as", f"system:serviceaccount:{namespace}:{name}-controller",
        "-p", json.dumps({"status": {"controller": {"decision": "GoalReached"}}}),
    )
    waiting = wait_for(
        lambda: (search_status(cluster, namespace, name).get("final") or {}).get("message"),
        "status.final while the controller pod runs",
        timeout=30,
    )
    assert "waiting for the controller pod" in waiting  # it holds the ReadWriteOnce volume
    assert jobs_and_pods(cluster, namespace, FINAL)[0] == []
    kubectl(cluster, "delete", "pod", f"{name}-controller", "-n", namespace, "--wait=false")
    wait_for(
        lambda: search_status(cluster, namespace, name).get("final", {}).get("phase")
        == "Running",
        "the final training to run",
        timeout=60,
        interval=0.2,
    )
    running = search_status(cluster, namespace, name)
    assert running["phase"] == "Running", running  # not Succeeded before the weights are kept
    return trial


def wait_succeeded(cluster, namespace: str, name: str) -> dict:
    return wait_for(
        lambda: (s := search_status(cluster, namespace, name)).get("phase") == "Succeeded" and s,
        "the search to succeed",
        timeout=90,
    )


def test_operator_killed_during_the_final_training_runs_it_once(cluster, operator, namespace):
    trial = start_final_training(cluster, namespace, "kept", placeholder_trainer(5))
    operator.stop(signal.SIGKILL)
    operator.start()

    status = wait_succeeded(cluster, namespace, "kept")
    assert status["final"]["phase"] == "Succeeded" and status["final"]["reward"] == 0.6
    assert status["final"]["weights"] == "best/model.pt" and status["final"]["trial"] == trial
    volume = volume_of(cluster, namespace, "kept")
    assert (volume / "best" / "model.pt").read_text() == "h0001"  # the trial's architecture
    jobs, pods = jobs_and_pods(cluster, namespace, FINAL)
    assert [j["metadata"]["name"] for j in jobs] == ["kept-final"] and len(pods) == 1
    assert jobs[0]["metadata"]["ownerReferences"][0]["kind"] == "ArchitectureSearch"
    events = events_of(cluster, namespace, "kept")
    assert sum(e.startswith("FinalTrainingStarted:") for e in events) == 1, events
    wait_for(
        lambda: any(
            e.startswith("FinalTrainingSucceeded:") for e in events_of(cluster, namespace, "kept")
        ),
        "a FinalTrainingSucceeded event",
        timeout=30,
    )


def test_suspend_pauses_the_final_training_and_resume_finishes_it(
    cluster, operator, namespace, host_dir
):
    once = str(host_dir / "final-started")
    start_final_training(cluster, namespace, "paused", placeholder_trainer(60, once))
    set_suspend(cluster, namespace, "paused", True)
    suspended = wait_for(
        lambda: (s := search_status(cluster, namespace, "paused")).get("final", {}).get("message")
        == "the search is suspended" and s,
        "the final training to be suspended",
        timeout=30,
    )
    assert suspended["phase"] == "Suspended" and suspended["final"]["phase"] == "Pending"
    job = get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/paused-final")
    assert job["spec"]["suspend"] is True
    set_suspend(cluster, namespace, "paused", False)
    status = wait_succeeded(cluster, namespace, "paused")  # a new pod, without the wait
    assert status["final"]["phase"] == "Succeeded" and status["final"]["reward"] == 0.6

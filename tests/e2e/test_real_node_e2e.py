"""The project's own images on a real node: a kubelet and containerd (tests/cluster/real_node.py)
run every pod of a search in containers of the images that tests/cluster/build-images.sh
built from the repository's Dockerfiles. The chart is installed as the README says (its
operator image and default trainer image set), in a namespace that enforces Pod Security
`restricted`, and a NAS-Bench-Graph search from examples/ runs to Succeeded while its
controller's container is killed once mid-search. Then a small real-training search (the
digits example) with a final training, whose weights the README's recipe copies off the
search volume.

The search runs once per module (CPU is scarce); each test asserts one thing a user would
see of it. The control plane is this module's own: its two test-agent nodes are cordoned,
so every pod lands on the real node.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_operator_fixtures import apply, apply_crds, get, kube, kubectl, search_path

from tests.cluster.controlplane import ControlPlane
from tests.cluster.paths import REPO_ROOT, binary, helm
from tests.cluster.real_node import NODE_NAME, RealNode, images_env
from tests.cluster.waiting import wait_for

# The first test's setup may build the images and import them into containerd (minutes)
# when `make test` has not built them first.
pytestmark = [pytest.mark.real_node, pytest.mark.cluster, pytest.mark.slow,
              pytest.mark.timeout(2400)]

NAMESPACE = "nas-real"
SEARCH = "cora-cluster"  # examples/cluster-nas-bench-graph.yaml's name, kept
MAX_TRIALS = 20
KILL_AFTER_SUCCEEDED = 2
SEARCH_TIMEOUT = 900


def built_images() -> Path:
    """The images' folder; builds them when `make test` has not (cached by input hash)."""
    result = subprocess.run([str(REPO_ROOT / "tests/cluster/build-images.sh")],
                            capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, f"build-images.sh failed:\n{result.stderr[-3000:]}"
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def real():
    images_dir = built_images()
    plane = ControlPlane.start()
    node = None
    try:
        cluster = plane.cluster
        assert cluster is not None
        for agent_node in cluster.node_names:
            kubectl(cluster, "cordon", agent_node)
        node = RealNode(cluster, images_dir)
        node.start()
        apply_crds(cluster)
        yield cluster, node
    finally:
        if node is not None:
            node.stop()
        plane.stop()


def helm_run(cluster, *args: str) -> str:
    result = subprocess.run([str(helm()), "--kubeconfig", str(cluster.kubeconfig), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def pods(cluster, selector: str) -> list[dict[str, Any]]:
    return kube(cluster).get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}")["items"]


def container_id(pod: dict[str, Any]) -> str | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    running = [s for s in statuses if "running" in (s.get("state") or {})]
    return running[0]["containerID"] if running else None


def trials_of(cluster) -> list[dict[str, Any]]:
    return kube(cluster).get(
        f"/apis/archsearch.io/v1alpha1/namespaces/{NAMESPACE}/trials"
        f"?labelSelector=archsearch.io/search={SEARCH}")["items"]


def succeeded_trials(cluster) -> int:
    return sum((t.get("status") or {}).get("phase") == "Succeeded" for t in trials_of(cluster))


@pytest.fixture(scope="module")
def search_run(real) -> dict[str, Any]:
    """Installs the chart, applies the example search, kills its controller's container
    once `KILL_AFTER_SUCCEEDED` Trials have succeeded, waits for the end. Returns what was
    seen."""
    cluster, node = real
    images = images_env(node.images_dir)
    operator_repository, operator_tag = images["OPERATOR_IMAGE"].rsplit(":", 1)
    kubectl(cluster, "create", "namespace", NAMESPACE)
    kubectl(cluster, "label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted")
    wait_for(lambda: get(cluster, f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"),
             "the namespace's default ServiceAccount", timeout=60)
    # The README's install, with the built images' names (podman stands in for docker).
    helm_run(cluster, "install", "nas", str(REPO_ROOT / "charts/nas-operator"),
             "--namespace", NAMESPACE,
             "--set", f"image.repository={operator_repository}",
             "--set", f"image.tag={operator_tag}",
             "--set", f"operator.defaultTrainerImage={images['TRAINER_IMAGE']}",
             "--set", f"watchNamespaces={{{NAMESPACE}}}")
    wait_for(lambda: any(container_id(p) for p in pods(cluster, "app.kubernetes.io/instance=nas")),
             "the operator pod to run", timeout=180)

    search = yaml.safe_load((REPO_ROOT / "examples/cluster-nas-bench-graph.yaml").read_text())
    search["metadata"]["namespace"] = NAMESPACE
    search["spec"]["trials"].update(max=MAX_TRIALS, maxFailed=2, parallelism=2)
    apply(cluster, search)

    controller = f"archsearch.io/search={SEARCH},archsearch.io/component=controller"
    wait_for(lambda: succeeded_trials(cluster) >= KILL_AFTER_SUCCEEDED,
             f"{KILL_AFTER_SUCCEEDED} Trials to succeed", timeout=SEARCH_TIMEOUT, interval=1)
    running = [(p, cid) for p in pods(cluster, controller) if (cid := container_id(p))]
    assert running, f"no running controller pod to kill: {pods(cluster, controller)}"
    killed_pod, killed_container = running[0]
    trials_at_kill = len(trials_of(cluster))
    node.kill_container(killed_container)

    def finished():
        s = get(cluster, search_path(NAMESPACE, SEARCH))
        return s if (s.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

    final = wait_for(finished, "the search to end", timeout=SEARCH_TIMEOUT, interval=2)
    return {"cluster": cluster, "node": node, "images": images, "final": final,
            "killed_pod": killed_pod["metadata"]["name"], "trials_at_kill": trials_at_kill}


def test_the_operator_runs_from_its_built_image_under_pod_security_restricted(real, search_run):
    cluster = search_run["cluster"]
    operator_pods = pods(cluster, "app.kubernetes.io/instance=nas")
    assert [p["spec"]["containers"][0]["image"] for p in operator_pods] == [
        search_run["images"]["OPERATOR_IMAGE"]]
    assert operator_pods[0]["spec"]["nodeName"] == NODE_NAME
    # Enforcement is live in the namespace: a pod without the restricted settings is refused.
    refused = kubectl(cluster, "run", "plain", "-n", NAMESPACE, "--dry-run=server",
                      f"--image={search_run['images']['TRAINER_IMAGE']}", "--restart=Never",
                      "--command", "--", "true", check=False)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr, refused


def test_the_nas_bench_graph_search_succeeds_in_containers_of_the_trainer_image(search_run):
    cluster, final = search_run["cluster"], search_run["final"]
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    trials = trials_of(cluster)
    assert sorted(t["spec"]["index"] for t in trials) == list(range(MAX_TRIALS))
    assert [t["status"]["phase"] for t in trials] == ["Succeeded"] * MAX_TRIALS, [
        (t["metadata"]["name"], t["status"].get("message")) for t in trials]
    assert 0.0 < status["best"]["reward"] <= 1.0
    for pod in kube(cluster).get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]:
        if pod["metadata"]["labels"].get("app.kubernetes.io/instance") == "nas":
            continue
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert pod["spec"]["containers"][0]["image"] == search_run["images"]["TRAINER_IMAGE"]


def test_kubectl_logs_of_a_trial_pod_are_readable(search_run):
    cluster = search_run["cluster"]
    kept = [p for p in pods(cluster, f"archsearch.io/search={SEARCH},archsearch.io/component=trial")
            if p["status"].get("phase") == "Succeeded"]
    assert kept, "no succeeded trial pod kept (successfulTrialJobsHistoryLimit)"
    logs = kubectl(cluster, "logs", "-n", NAMESPACE, kept[0]["metadata"]["name"]).stdout
    assert "reward" in logs, logs


def test_a_controller_killed_mid_search_is_replaced_and_the_search_resumes(search_run):
    cluster, status = search_run["cluster"], search_run["final"]["status"]
    assert search_run["trials_at_kill"] < MAX_TRIALS, "the kill came after the last Trial"
    assert status.get("controllerRestarts", 0) >= 1 and status["controller"]["epoch"] >= 2, status
    hashes = [t["spec"]["architecture"]["hash"] for t in trials_of(cluster)]
    assert len(set(hashes)) == len(hashes) == MAX_TRIALS, "an architecture was tried twice"


# -- real training, and the weights copied off the volume with the README's recipe -------

DIGITS = "digits-macro-cnn"  # examples/digits-macro-cnn.yaml's name, kept


def readme_fetch_commands(search: str, image: str) -> list[list[str]]:
    """The README's commands that copy a search's final weights off its volume, with the
    search's name and an image this machine has in place of busybox (no registry here)."""
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    block = next(b for b in blocks if "kubectl run fetch" in b)
    block = block.replace("<name>", search).replace("busybox", image)
    commands = re.split(r"\s*&&\s*|\n(?=kubectl )", block.strip())
    return [shlex.split(command) for command in commands]


@pytest.fixture(scope="module")
def digits_run(real, search_run) -> dict[str, Any]:
    """A real-training search (the digits example, made small) with a final training whose
    weights land on the search volume. Runs after the NAS-Bench-Graph search (CPU)."""
    cluster, node = real
    search = yaml.safe_load((REPO_ROOT / "examples/digits-macro-cnn.yaml").read_text())
    search["metadata"]["namespace"] = NAMESPACE
    search["spec"]["trials"].update(max=4, maxFailed=2, parallelism=2)
    search["spec"]["trainer"].update(epochs=2, mountSearchVolume=False)
    search["spec"]["finalTraining"] = {"epochs": 2}
    apply(cluster, search)

    def finished():
        s = get(cluster, search_path(NAMESPACE, DIGITS))
        status = s.get("status") or {}
        final_done = (status.get("final") or {}).get("phase") in ("Succeeded", "Failed")
        return s if status.get("phase") == "Failed" or (status.get("phase") == "Succeeded"
                                                         and final_done) else None

    final = wait_for(finished, "the digits search and its final training to end",
                     timeout=SEARCH_TIMEOUT, interval=2)
    return {"cluster": cluster, "final": final, "images": images_env(node.images_dir)}


def test_a_real_training_search_and_its_final_training_succeed_in_containers(digits_run):
    status = digits_run["final"]["status"]
    assert status["phase"] == "Succeeded", status
    assert status["final"]["phase"] == "Succeeded", status["final"]
    assert status["final"]["weights"] == "best/model.pt", status["final"]


def test_the_readme_recipe_copies_the_final_weights_off_the_volume(digits_run, tmp_path):
    from nas_trainer.export import load_final_model

    cluster = digits_run["cluster"]
    for argv in readme_fetch_commands(DIGITS, digits_run["images"]["TRAINER_IMAGE"]):
        assert argv[0] == "kubectl", argv
        result = subprocess.run(
            [str(binary("kubectl")), "--kubeconfig", str(cluster.kubeconfig), "-n", NAMESPACE,
             *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (argv, result.stderr)
    model = load_final_model(tmp_path)
    assert sum(p.numel() for p in model.parameters()) > 0

"""ENAS on the real control plane: examples/enas-digits-macro-cnn.yaml (shortened) with the
real operator, controller and trial pods; the controller is SIGKILLed once and a trial's
trainer once while it holds the supernet. The search ends Succeeded, every Trial says its
reward is a shared-weights estimate, the supernet on the volume counts every child it was
trained on exactly once, and the final training retrains the best child alone."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from nas_trainer.oneshot.estimator import HELD_SUPERNET, NEW_SUPERNET, supernet_source

from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    apply, controller_pids, crds, search_object, search_operator, search_pids, sigkill,
    trials_of, volume_of, wait_final,
)
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.cluster

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "enas-digits-macro-cnn.yaml"
NAME = "enas-kills"
TRIALS, STEPS = 10, 10


def trainer_pids(name: str) -> list[int]:
    """Local processes of this search's trainers."""
    return search_pids(name, (b"nas-train", b"nas_trainer.train_cli"))


def count(cluster, namespace: str) -> int:
    return len(trials_of(cluster, namespace, NAME))


def test_enas_search_survives_a_killed_controller_and_supernet_trainer(
        cluster, search_operator, namespace):
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"] = {"name": NAME, "namespace": namespace}
    spec = manifest["spec"]
    spec["trials"].update(max=TRIALS, retries=2, mode="Job")  # a trial pod per child
    spec["trainer"].update(image="nas-trainer:test", epochs=2)
    spec["trainer"]["sharedWeights"]["stepsPerChild"] = STEPS
    spec["finalTraining"] = {"epochs": 2}
    apply(cluster, manifest)

    wait_for(lambda: count(cluster, namespace) >= 3, "3 trials", timeout=300, interval=0.2)
    controllers = controller_pids(namespace, NAME)
    assert controllers, "no controller process to kill"
    for pid in controllers:
        sigkill(pid)
    wait_for(lambda: count(cluster, namespace) >= 6, "6 trials", timeout=300, interval=0.2)
    trainers = wait_for(lambda: trainer_pids(NAME), "a running trainer", timeout=120,
                        interval=0.1)
    time.sleep(1.5)  # into loading, scoring or training the supernet
    alive = [pid for pid in trainers if Path(f"/proc/{pid}").exists()]
    for pid in alive:
        sigkill(pid)

    final = wait_final(cluster, namespace, NAME, timeout=600)
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    assert status.get("controllerRestarts", 0) >= 1, status
    trials = trials_of(cluster, namespace, NAME)
    assert [t["spec"]["index"] for t in trials] == list(range(TRIALS))
    for trial in trials:
        got = trial["status"]
        assert (got["phase"], got["reason"], got["estimate"]) == (
            "Succeeded", "Estimated", "sharedWeights"), got
    if alive:  # the killed trainer's trial ran again
        assert max(t["status"].get("attempts", 1) for t in trials) >= 2

    volume = volume_of(cluster, namespace, NAME)
    checkpoint = torch_load(volume / "supernet" / "supernet.pt")
    # each child's training was saved once, with its steps: never half, never twice over
    assert checkpoint["children"] >= TRIALS
    assert checkpoint["steps"] == checkpoint["children"] * STEPS
    best = json.loads((volume / "best" / "result.json").read_text())
    assert "estimate" not in best and best["epochs"] == 2  # trained alone, from scratch
    assert status["final"]["phase"] == "Succeeded"
    assert 0 < best["metrics"]["val_accuracy"] <= 1


def torch_load(path: Path) -> dict:
    import torch  # here, not at collection: seconds

    return torch.load(path, map_location="cpu", weights_only=True)



WARM_NAME, WARM_TRIALS = "enas-warm", 8


def worker_pids(name: str) -> list[int]:
    """Local processes of this search's warm workers."""
    return search_pids(name, (b"nas-worker",))


def test_enas_on_a_warm_worker_holds_the_supernet_between_children(
        cluster, search_operator, namespace):
    """spec.trials.mode WarmPool with sharedWeights: one worker pod is the long-running
    supernet trainer. It scores and trains child after child on the supernet it holds in
    memory, reading the checkpoint only when it starts; killed once, its replacement reads
    the checkpoint and goes on, and no child's training is lost or counted twice."""
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"] = {"name": WARM_NAME, "namespace": namespace}
    spec = manifest["spec"]
    spec["trials"].update(max=WARM_TRIALS, retries=2, mode="WarmPool")
    spec["trainer"].update(image="nas-trainer:test", epochs=2)
    spec["trainer"]["sharedWeights"]["stepsPerChild"] = STEPS
    spec["finalTraining"] = {"epochs": 2}
    apply(cluster, manifest)

    def count_warm() -> int:
        return len(trials_of(cluster, namespace, WARM_NAME))

    wait_for(lambda: count_warm() >= 4, "4 trials", timeout=300, interval=0.2)
    killed = wait_for(lambda: worker_pids(WARM_NAME), "the warm worker", timeout=60)
    for pid in killed:
        sigkill(pid)

    final = wait_final(cluster, namespace, WARM_NAME, timeout=600)
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    trials = trials_of(cluster, namespace, WARM_NAME)
    assert [t["spec"]["index"] for t in trials] == list(range(WARM_TRIALS))
    for trial in trials:
        got = trial["status"]
        assert (got["phase"], got["reason"], got["estimate"]) == (
            "Succeeded", "Estimated", "sharedWeights"), got

    volume = volume_of(cluster, namespace, WARM_NAME)
    sources = []
    for trial in trials:
        result = json.loads((volume / "trials" / f"{trial['spec']['index']:05d}"
                             / "result.json").read_text())
        sources.append(supernet_source(result["execution"]))
    # each worker process reads (or makes) the supernet once, then holds it: the first
    # worker and its replacement, plus a trial retried on the replacement at most
    reads = [s for s in sources if s != HELD_SUPERNET]
    assert sources[0] == NEW_SUPERNET, sources
    assert 2 <= len(reads) <= 3 and len(sources) - len(reads) >= WARM_TRIALS - 3, sources
    checkpoint = torch_load(volume / "supernet" / "supernet.pt")
    assert checkpoint["children"] >= WARM_TRIALS
    assert checkpoint["steps"] == checkpoint["children"] * STEPS
    best = json.loads((volume / "best" / "result.json").read_text())
    assert "estimate" not in best and best["epochs"] == 2
    assert status["final"]["phase"] == "Succeeded"

"""A data-parallel trial on the real control plane: `trainer.processes: 2` trains each
child with two processes of one pod (torchrun, DDP over gloo on the CPU), and the search
reads as any other: Trials Succeeded with their rewards, one result per trial."""
from __future__ import annotations

import json

import pytest

from test_search_e2e_helpers import (  # noqa: F401  (fixtures)
    apply, assert_volume_agrees_with_trials, crds, search, search_operator, volume_of,
    wait_final,
)

pytestmark = pytest.mark.cluster


def test_two_process_ddp_trials_train_and_report_once(cluster, search_operator, namespace):
    manifest = search("ddp", namespace, {"name": "macro-cnn", "options": {"layers": 2}},
                      {"name": "random", "seed": 2},
                      {"max": 2, "parallelism": 1, "timeoutSeconds": 300},
                      {"dataset": "digits", "epochs": 2, "batchSize": 64, "processes": 2})
    # ReadWriteMany: trial pods write their folders on the search volume, on any node
    manifest["spec"]["storage"] = {"accessModes": ["ReadWriteMany"]}
    apply(cluster, manifest)
    final = wait_final(cluster, namespace, "ddp", timeout=600)
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    report, trials = assert_volume_agrees_with_trials(cluster, namespace, "ddp", 2)
    assert all(t["status"]["phase"] == "Succeeded" for t in trials)
    volume = volume_of(cluster, namespace, "ddp")
    for trial in trials:
        folder = volume / "trials" / f"{trial['spec']['index']:05d}"
        result = json.loads((folder / "result.json").read_text())
        # trained by both processes; written once, by rank 0
        assert result["execution"].endswith("DDP over 2 processes (gloo)"), result
        assert result["reward"] == pytest.approx(trial["status"]["reward"])
        assert len((folder / "epochs.jsonl").read_text().splitlines()) == 2
        assert (folder / "model.pt").is_file()

"""The operator's typed views (issue 13): a search and a trainer snapshot are read once,
with the CRD's defaults, instead of raw dicts re-read and re-cast along one event."""

from __future__ import annotations

import json

from nas_operator.builders.snapshot import TrainerSnapshot, build_trainer_snapshot
from nas_operator.search_record import SearchRecord, trial_generation


def search(spec: dict | None = None, generation: int | None = 3) -> dict:
    meta = {"name": "cora", "namespace": "team", "uid": "u1"}
    if generation is not None:
        meta["generation"] = generation
    return {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
            "metadata": meta, "spec": {"searchSpace": {"name": "macro-cnn"}, **(spec or {})}}


def test_a_bare_search_reads_with_the_crds_defaults():
    record = SearchRecord.of(search(generation=None))
    assert (record.generation, record.suspend, record.warm_pool) == (1, False, False)
    trials = record.trials
    assert (trials.max, trials.parallelism, trials.retries, trials.timeout_seconds) == (
        100, 1, 2, 3600)
    storage = record.storage
    assert (storage.claim_name, storage.size, storage.access_modes, storage.retention_policy) == (
        "", "1Gi", ("ReadWriteOnce",), "Retain")
    assert record.final_training is True and record.final_epochs is None


def test_what_a_search_says_wins_over_the_defaults():
    record = SearchRecord.of(search({
        "suspend": True,
        "trials": {"mode": "WarmPool", "parallelism": 4, "retries": 0, "timeoutSeconds": 60},
        "storage": {"claimName": "mine"},
        "finalTraining": {"enabled": False, "epochs": 30},
    }))
    assert record.suspend and record.warm_pool and record.trials.parallelism == 4
    assert record.trials.retries == 0  # a zero is kept, not taken for "unset"
    assert record.storage.claim_name == "mine" and not record.final_training
    assert record.final_epochs == 30


def test_a_trial_without_a_generation_is_of_the_first():
    assert trial_generation({"spec": {}}) == 1
    assert trial_generation({"spec": {"searchGeneration": 5}}) == 5


def test_a_snapshot_written_before_reads_the_same():
    stored = {"generation": 2, "trainer": {"image": "t:1"}, "retries": 1,
              "timeoutSeconds": 60, "claimName": "cora-data", "mountSearchVolume": True}
    snapshot = TrainerSnapshot.of(stored)
    assert snapshot.to_json() == stored
    assert snapshot.with_epochs(9).trainer == {"image": "t:1", "epochs": 9}
    assert snapshot.trainer == {"image": "t:1"}  # the snapshot itself is unchanged
    cm = build_trainer_snapshot(search({"trainer": {"image": "t:1"}}), ["ReadWriteOnce"])
    assert json.loads(cm["data"]["trainer.json"]) == {
        "generation": 3, "trainer": {"image": "t:1"}, "retries": 2, "timeoutSeconds": 3600,
        "claimName": "cora-data", "mountSearchVolume": False}

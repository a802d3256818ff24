"""The ArchitectureSearch manifest: defaults, and errors that name the field and the fix."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from nas_trainer.manifest import ManifestError, TrialsSpec, load_search, parse_search

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def minimal(**spec):
    doc = {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
           "metadata": {"name": "demo"},
           "spec": {"searchSpace": {"name": "nas-bench-201"}}}
    doc["spec"].update(spec)
    return doc


def error_of(doc) -> str:
    with pytest.raises(ManifestError) as error:
        parse_search(doc)
    return str(error.value)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_parse_and_build(path):
    manifest = load_search(path)
    space = manifest.space.build()
    assert space.name == manifest.space.name
    assert manifest.trials.parallelism <= manifest.trials.max


def test_defaults():
    manifest = parse_search(minimal())
    assert manifest.name == "demo"
    assert manifest.strategy.name == "reinforce" and manifest.strategy.seed == 0
    assert manifest.strategy.hyperparameters == {}
    assert manifest.trials == TrialsSpec(max=100, parallelism=1, max_failed=10, retries=2,
                                         timeout_seconds=3600, goal=None)
    assert manifest.uses_builtin_trainer
    assert manifest.storage.retention_policy == "Retain" and manifest.storage.size == "1Gi"
    assert manifest.suspend is False


def test_full_contract_example():
    doc = minimal(
        searchSpace={"name": "macro-cnn", "options": {"layers": 4, "strides": True}},
        strategy={"name": "reinforce", "seed": 3, "lstmLayers": 2, "hiddenSize": 35,
                  "learningRate": 0.0006, "baselineDecay": 0.95, "entropyWeight": 0.0001,
                  "batchSize": 4},
        trials={"max": 200, "parallelism": 4, "maxFailed": 10, "retries": 2,
                "timeoutSeconds": 3600, "goal": 0.95},
        trainer={"image": "ghcr.io/nas-operator/trainer:0.1.0", "dataset": "digits",
                 "epochs": 10, "batchSize": 128, "learningRate": 0.1,
                 "reward": {"metric": "val_accuracy", "transform": "cube", "lastEpochs": 5},
                 "resources": {"limits": {"nvidia.com/gpu": 1}}, "nodeSelector": {},
                 "tolerations": [], "env": [], "mountSearchVolume": False, "momentum": 0.9},
        storage={"claimName": "", "size": "5Gi", "accessModes": ["ReadWriteMany"]},
        suspend=False)
    manifest = parse_search(doc)
    assert manifest.trials.goal == 0.95 and manifest.trials.parallelism == 4
    assert manifest.strategy.hyperparameters["batchSize"] == 4
    assert manifest.trainer.epochs == 10 and manifest.trainer.reward["lastEpochs"] == 5
    assert manifest.storage.access_modes == ("ReadWriteMany",)
    # The trainer's configuration: spec.trainer without the pod's fields, keys as written.
    config = manifest.trainer.config()
    assert config["dataset"] == "digits" and config["momentum"] == 0.9
    assert "image" not in config and "resources" not in config and "env" not in config
    assert manifest.space.build().options == {"layers": 4, "strides": True, "skips": True}
    assert manifest.strategy.build(manifest.space.build()).policy_version == 0


@pytest.mark.parametrize("change, message", [
    (lambda d: d["spec"].update(trials={"max": 4, "parallelism": 8}),
     "spec.trials.parallelism must be <= spec.trials.max (got 8 > 4)"),
    (lambda d: d["spec"].update(trials={"max": 0}), "spec.trials.max must be >= 1 (got 0)"),
    (lambda d: d["spec"].update(trials={"max": "ten"}),
     "spec.trials.max must be an integer (got 'ten')"),
    (lambda d: d["spec"].update(trials={"maxTrials": 5}),
     "spec.trials.maxTrials is not a field (valid: max, parallelism, maxFailed, retries, "
     "timeoutSeconds, goal, mode, packing)"),
    (lambda d: d["spec"].update(searchSpace={"name": "darts"}),
     "spec.searchSpace.name must be one of macro-cnn, nasnet, rnn-cell, nas-bench-201, "
     "nas-bench-graph, custom (got 'darts')"),
    (lambda d: d["spec"].update(searchSpace={"name": "macro-cnn", "options": {"layers": 0}}),
     "spec.searchSpace.options.layers must be >= 1 (got 0)"),
    (lambda d: d["spec"].update(searchSpace={"name": "macro-cnn", "options": {"depth": 3}}),
     "spec.searchSpace.options.depth is not an option of macro-cnn (valid: layers, skips, strides)"),
    (lambda d: d["spec"].update(searchSpace={"name": "custom"}),
     "spec.searchSpace.decisions is required for the custom space"),
    (lambda d: d["spec"].update(searchSpace={"name": "custom", "decisions": [{"name": "x"}]}),
     "spec.searchSpace.decisions[0].choices must be a non-empty list (got None)"),
    (lambda d: d["spec"].update(searchSpace={"name": "custom", "decisions": 3}),
     "spec.searchSpace.decisions must be a list of {name, choices} (got int 3)"),
    (lambda d: d["spec"].update(searchSpace={"name": "custom", "decisions": {"lr": [1, 2]}}),
     "spec.searchSpace.decisions must be a list of {name, choices} (got dict {'lr': [1, 2]})"),
    (lambda d: d["spec"].update(searchSpace={"name": "nasnet", "decisions": []}),
     "spec.searchSpace.decisions is only for the custom space"),
    (lambda d: d["spec"].update(strategy={"name": "bohb"}),
     "spec.strategy.name must be one of reinforce, ppo, regularized-evolution, tpe, random "
     "(got 'bohb')"),
    (lambda d: d["spec"].update(strategy={"name": "reinforce", "population": 10}),
     "spec.strategy.population does not apply to reinforce (it is for regularized-evolution)"),
    (lambda d: d["spec"].update(strategy={"name": "regularized-evolution", "population": 4,
                                          "sampleSize": 5}),
     "spec.strategy.sampleSize must be <= population (got 5 > 4)"),
    (lambda d: d["spec"].update(strategy={"name": "ppo", "clipEpsilon": 2}),
     "spec.strategy.clipEpsilon must be in (0, 1) (got 2.0)"),
    (lambda d: d["spec"].update(strategy={"name": "tpe", "learningrate": 0.1}),
     "spec.strategy.learningrate is not a hyperparameter of tpe (valid: startupTrials)"),
    (lambda d: d["spec"].update(strategy={"seed": -1}), "spec.strategy.seed must be >= 0 (got -1)"),
    (lambda d: d["spec"].update(strategy={"name": "reinforce", "rewardNormalization": "mad"}),
     "spec.strategy.rewardNormalization must be one of none, std, rank (got 'mad')"),
    (lambda d: d["spec"].update(strategy={"name": "reinforce", "lstmLayers": 9}),
     "spec.strategy.lstmLayers must be in [1, 8] (got 9)"),
    (lambda d: d["spec"].update(strategy={"name": "regularized-evolution", "sampleSize": 11}),
     "spec.strategy.sampleSize must be <= population (default 10) (got 11 > 10)"),
    (lambda d: d["spec"].update(trials={"retries": 101}), "spec.trials.retries must be <= 100"),
    (lambda d: d["spec"].update(trainer={"epochs": 0}), "spec.trainer.epochs must be >= 1 (got 0)"),
    (lambda d: d["spec"].update(trainer={"batchSize": 0}),
     "spec.trainer.batchSize must be >= 1 (got 0)"),
    (lambda d: d["spec"].update(trainer={"dataset": "imagenet"}),
     "spec.trainer.dataset must be one of digits, synthetic, cifar10, cifar100, mnist, "
     "fashion-mnist, image-folder, ptb (got 'imagenet'), or set spec.trainer.command"),
    (lambda d: d["spec"].update(trainer={"reward": {"transform": "inverse_square"}}),
     "spec.trainer.reward.transform must be one of identity, square, cube, inverse, "
     "inverse-square (got 'inverse_square')"),
    (lambda d: d["spec"].update(trainer={"reward": {"lastEpochs": 0}}),
     "spec.trainer.reward.lastEpochs must be >= 1 (got 0)"),
    (lambda d: d["spec"].update(trainer={"reward": {"c": 0}}),
     "spec.trainer.reward.c must be > 0 (got 0)"),
    (lambda d: d["spec"].update(trainer={"labelSmoothing": 1}),
     "spec.trainer.labelSmoothing must be in [0, 1) (got 1)"),
    (lambda d: d["spec"].update(trainer={"image": ""}),
     "spec.trainer.image must not be empty (leave it out for the operator's trainer image)"),
    (lambda d: d["spec"].update(trainer={"evalBatchSize": 64}),
     "spec.trainer.evalBatchSize is not a field (valid: "),
    (lambda d: d["spec"].update(trainer={"cudaGraph": True}),
     "spec.trainer.cudaGraph must be a string (got True)"),
    (lambda d: d["spec"].update(trainer={"device": "tpu"}),
     "spec.trainer.device must be auto, cpu, mps, cuda or cuda:N (got tpu)"),
    (lambda d: d["spec"].update(trainer={"resources": {"limits": {"cpu": 0.5}}}),
     "spec.trainer.resources.limits.cpu must be a non-negative quantity such as 500m, 2, "
     "512Mi or 4Gi (got 0.5)"),
    (lambda d: d["spec"].update(trainer={"env": [{"value": "1"}]}),
     "spec.trainer.env[0].name is required"),
    (lambda d: d["spec"].update(trainer={"augment": "yes"}),
     "spec.trainer.augment must be true, false or {pad, flip} (got 'yes')"),
    (lambda d: d["spec"].update(trainer={"command": []}), "spec.trainer.command must not be empty"),
    (lambda d: d["spec"].update(trainer={"reward": {"lastEpoch": 5}}),
     "spec.trainer.reward.lastEpoch is not a field (valid: metric, transform, lastEpochs, c)"),
    (lambda d: d["spec"].update(trainer={"dataset": "image-folder"}),
     "spec.trainer.dataPath is required for dataset image-folder"),
    (lambda d: d["spec"].update(storage={"retentionPolicy": "Keep"}),
     "spec.storage.retentionPolicy must be one of Retain, Delete (got 'Keep')"),
    (lambda d: d["spec"].update(storage={"claimName": "mine", "retentionPolicy": "Delete"}),
     "spec.storage.retentionPolicy Delete applies only to a volume the operator makes"),
    (lambda d: d["spec"].update(storage={"accessModes": []}),
     "spec.storage.accessModes must not be empty"),
    (lambda d: d["spec"].update(storage={"size": "big"}),
     "spec.storage.size must be a positive quantity such as 500Mi, 10Gi or 1Ti (got 'big')"),
    (lambda d: d["spec"].update(suspended=True),
     "spec.suspended is not a field (valid: searchSpace, strategy, trials, trainer, storage, "
     "finalTraining, suspend, earlyStopping)"),
    (lambda d: d["spec"].update(finalTraining={"epochs": 0}),
     "spec.finalTraining.epochs must be >= 1 (got 0)"),
    (lambda d: d["spec"].pop("searchSpace"),
     "spec.searchSpace.name must be one of macro-cnn"),
    (lambda d: d["metadata"].update(name="Cora_Search"), "metadata.name must be a DNS label"),
    (lambda d: d["metadata"].update(name="x" * 51), "at most 50 characters"),
    (lambda d: d.update(apiVersion="archsearch.io/v1"),
     "apiVersion must be archsearch.io/v1alpha1 (got 'archsearch.io/v1')"),
    (lambda d: d.update(kind="Search"), "kind must be ArchitectureSearch (got 'Search')"),
])
def test_errors_name_the_field_and_the_fix(change, message):
    doc = copy.deepcopy(minimal())
    change(doc)
    assert message in error_of(doc)


def test_kubernetes_fields_are_accepted():
    doc = minimal()
    doc["metadata"].update(namespace="research", labels={"team": "vision"})
    doc["status"] = {"phase": "Running"}  # as `kubectl get -o yaml` returns it
    manifest = parse_search(doc)
    assert manifest.namespace == "research"


def test_unreadable_files_are_manifest_errors(tmp_path):
    with pytest.raises(ManifestError, match="cannot read it"):
        load_search(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_search(broken)


def test_a_small_population_takes_the_whole_population_as_sample():
    """sampleSize defaults to 3, or the population when smaller (the CRD accepts
    population 2 alone: so must the strategy)."""
    doc = minimal(strategy={"name": "regularized-evolution", "population": 2})
    manifest = parse_search(doc)
    strategy = manifest.strategy.build(manifest.space.build())
    assert strategy.population_size == strategy.sample_size == 2


def test_empty_strings_mean_unset_where_the_operator_reads_them_so():
    manifest = parse_search(minimal(storage={"claimName": "", "storageClassName": "",
                                             "retentionPolicy": "Delete"},
                                    trainer={"priorityClassName": ""}))
    assert manifest.storage.claim_name == "" and manifest.storage.retention_policy == "Delete"

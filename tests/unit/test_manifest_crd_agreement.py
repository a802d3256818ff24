"""The CRD and the manifest parser say the same (contract 1): the same ArchitectureSearch is
validated by the API server at admission (crds/, schema + CEL) and by
nas_trainer.manifest.parse_search in `nas run` and the controller pod. A manifest that
kubectl accepts must not fail in the controller pod, and a setting the code takes must be
one kubectl can apply.

Checked here: the strategy hyperparameters (names, types, bounds, choices, the strategies
they apply to), the space/strategy/dataset/reward-transform registries, the defaults, and
the verdicts of the CRD's structural schema (with jsonschema, as kubectl's strict field
validation applies it; CEL rules are not evaluated here, tests/e2e/test_crds.py runs them
on a real API server) and of parse_search on valid and invalid manifests.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from nas_trainer import manifest as m
from nas_trainer import pod_fields
from nas_trainer.manifest import ManifestError, parse_search
from nas_trainer.spaces import SPACE_NAMES, get_space
from nas_trainer.spaces.base import OptionError
from nas_trainer.strategies.hyperparameters import (
    DEFAULT_POPULATION,
    HYPERPARAMETERS,
    REWARD_NORMALIZATIONS,
    STRATEGY_NAMES,
)

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "archsearch.io_architecturesearches.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC = SCHEMA["properties"]["spec"]["properties"]
STRATEGY = SPEC["strategy"]
SPACE = SPEC["searchSpace"]
TRAINER = SPEC["trainer"]
KINDS = {"integer": int, "number": float, "string": str}


def rules(schema: dict) -> list[str]:
    return [r["rule"] for r in schema.get("x-kubernetes-validations", [])]


def names_in(rule: str, prefix: str) -> set[str]:
    """The fields a CEL rule tests with has(<prefix>.<field>)."""
    return set(re.findall(rf"has\({re.escape(prefix)}\.(\w+)\)", rule))


def name_choices(rule: str) -> set[str]:
    """The names a CEL rule allows: self.name == 'x' or self.name in ['x', 'y']."""
    found = set(re.findall(r"self\.name == '([^']+)'", rule))
    for listed in re.findall(r"self\.name in \[([^\]]*)\]", rule):
        found |= set(re.findall(r"'([^']+)'", listed))
    return found


def bounds(schema: dict) -> tuple:
    return (schema.get("minimum"), schema.get("maximum"),
            bool(schema.get("exclusiveMinimum")), bool(schema.get("exclusiveMaximum")))


# -- 1. strategy hyperparameters ---------------------------------------------------------

def test_every_hyperparameter_is_in_the_crd_and_nothing_else():
    in_crd = set(STRATEGY["properties"]) - {"name", "seed"}
    assert in_crd == set(HYPERPARAMETERS)


@pytest.mark.parametrize("name", sorted(HYPERPARAMETERS))
def test_hyperparameter_type_bounds_and_choices_match(name):
    code, crd = HYPERPARAMETERS[name], STRATEGY["properties"][name]
    assert KINDS[crd["type"]] is code.kind
    assert crd.get("enum", []) == list(code.choices)
    assert bounds(crd) == (code.minimum, code.maximum, code.exclusive_minimum,
                           code.exclusive_maximum)
    # ... and the code's check is the bound it declares, at the edges
    if code.minimum is not None:
        assert code.check(code.minimum) is not code.exclusive_minimum
        assert not code.check(code.minimum - 1)
    if code.maximum is not None:
        assert code.check(code.maximum) is not code.exclusive_maximum
        assert not code.check(code.maximum + 1)


def test_hyperparameters_apply_to_the_same_strategies():
    """The CRD's CEL rules `!(has(self.x) || ...) || self.name in [...]`."""
    allowed: dict[str, set[str]] = {}
    for rule in rules(STRATEGY):
        strategies = name_choices(rule)
        if strategies:
            for field in names_in(rule, "self"):
                allowed.setdefault(field, set(STRATEGY_NAMES))
                allowed[field] &= strategies
    assert allowed == {name: set(h.strategies) for name, h in HYPERPARAMETERS.items()}


def test_sample_size_rule_uses_the_default_population():
    assert any(f"has(self.population) ? self.population : {DEFAULT_POPULATION})" in rule
               for rule in rules(STRATEGY))
    assert REWARD_NORMALIZATIONS == tuple(STRATEGY["properties"]["rewardNormalization"]["enum"])


# -- 2. registries: spaces, strategies, space options ---------------------------------

def test_space_and_strategy_names_are_the_registries():
    assert SPACE["properties"]["name"]["enum"] == list(SPACE_NAMES)
    assert STRATEGY["properties"]["name"]["enum"] == list(STRATEGY_NAMES)
    assert STRATEGY["properties"]["name"]["default"] == m.StrategySpec().name
    assert STRATEGY["properties"]["seed"]["default"] == m.StrategySpec().seed


def space_options(space: str) -> set[str]:
    if space == "nas-bench-graph":
        from nas_trainer.spaces.nas_bench_graph import NasBenchGraphOptions as options
    else:
        options = type(get_space(space, decisions=[{"name": "x", "choices": [1]}]
                                 if space == "custom" else None)).Options
    return {f.name for f in dataclasses.fields(options)}


def test_space_options_are_the_spaces_own():
    crd_options = SPACE["properties"]["options"]
    assert not crd_options.get("x-kubernetes-preserve-unknown-fields")
    owner: dict[str, set[str]] = {}
    for rule in rules(SPACE):
        for option in names_in(rule, "self.options"):
            owner.setdefault(option, set()).update(name_choices(rule))
    code = {space: space_options(space) for space in SPACE_NAMES}
    assert set(crd_options["properties"]) == set().union(*code.values())
    assert owner == {option: {space for space, options in code.items() if option in options}
                     for option in crd_options["properties"]}


@pytest.mark.parametrize("space, option", [
    (space, option) for space in SPACE_NAMES if space not in ("custom", "nas-bench-graph")
    for option in sorted(space_options(space))])
def test_space_option_bounds_match(space, option):
    crd = SPACE["properties"]["options"]["properties"][option]
    if crd["type"] == "boolean":
        get_space(space, {option: True})
        with pytest.raises(OptionError):
            get_space(space, {option: 1})
        return
    assert crd["type"] == "integer"
    get_space(space, {option: crd["minimum"]})
    with pytest.raises(OptionError):
        get_space(space, {option: crd["minimum"] - 1})
    # a maximum on both sides: a typo (layers: 1000) is refused, not built
    get_space(space, {option: crd["maximum"]})
    with pytest.raises(OptionError, match=f"must be <= {crd['maximum']}"):
        get_space(space, {option: crd["maximum"] + 1})


def test_nas_bench_graph_datasets():
    from nas_trainer.spaces.nas_bench_graph import DATASETS
    assert SPACE["properties"]["options"]["properties"]["dataset"]["enum"] == list(DATASETS)


# -- 3. the trainer: datasets, reward transforms, keys, enums -----------------------------

def test_datasets_are_the_trainers():
    from nas_trainer.trainer_options import DATASETS
    [rule] = [r for r in rules(TRAINER) if "self.dataset in [" in r]
    assert re.findall(r"'([^']+)'", rule.split("self.dataset in")[1]) == list(DATASETS)
    [message] = [v["message"] for v in TRAINER["x-kubernetes-validations"] if v["rule"] == rule]
    assert ", ".join(DATASETS[:-1]) in " ".join(message.split())


def test_reward_transforms_are_the_trainers():
    from nas_trainer.trainer_options import REWARD_TRANSFORMS
    from nas_trainer.training.config import RewardConfig
    from nas_trainer.training.reward import transform
    reward = TRAINER["properties"]["reward"]["properties"]
    assert reward["transform"]["enum"] == list(REWARD_TRANSFORMS)
    assert set(reward) == {f.name if f.name != "last_epochs" else "lastEpochs"
                           for f in dataclasses.fields(RewardConfig)}
    for name in REWARD_TRANSFORMS:
        assert transform(2.0, name, 80.0) > 0
    # the language-model default is one the manifest can name
    assert RewardConfig.default_for(language=True).transform in REWARD_TRANSFORMS
    # the spelling before kebab-case is still read by the trainer
    assert RewardConfig.parse({"transform": "inverse_square"}, False).transform == \
        "inverse-square"


def test_trainer_keys_are_the_pods_and_the_trainers():
    from nas_contracts.cluster import TRAINER_POD_FIELDS
    from nas_trainer.training.config import TrainerConfig

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(word.title() for word in rest)

    training = {camel(f.name) for f in dataclasses.fields(TrainerConfig)}
    # securityContext is in the schema only to be refused with the reason (the operator's)
    assert set(TRAINER["properties"]) - {"securityContext"} == TRAINER_POD_FIELDS | training


def test_enums_and_patterns_are_the_parsers():
    props = TRAINER["properties"]
    assert props["cudaGraph"]["enum"] == list(m.CUDA_GRAPH_MODES)
    assert props["imagePullPolicy"]["enum"] == list(m.IMAGE_PULL_POLICIES)
    assert cel_pattern(props["device"]) == m.DEVICE.pattern
    assert cel_pattern(props["image"]) == pod_fields.IMAGE.pattern
    storage = SPEC["storage"]["properties"]
    assert cel_pattern(storage["claimName"]) == pod_fields.DNS_SUBDOMAIN.pattern
    assert storage["accessModes"]["items"]["enum"] == list(m.ACCESS_MODES)
    assert storage["retentionPolicy"]["enum"] == list(m.RETENTION_POLICIES)
    decision = SPACE["properties"]["decisions"]
    assert decision["maxItems"] == m.MAX_DECISIONS
    assert decision["items"]["properties"]["choices"]["maxItems"] == m.MAX_CHOICES
    assert cel_pattern(decision["items"]["properties"]["name"]) == m.DECISION_NAME.pattern
    assert f"size() <= {m.MAX_NAME_LENGTH}" in rules(SCHEMA)[0]
    mode = SPEC["trials"]["properties"]["mode"]
    assert mode["enum"] == list(m.TRIAL_MODES) and mode["default"] == m.TrialsSpec().mode
    warm_pool_rule = next(r for r in SCHEMA["x-kubernetes-validations"]
                          if "WarmPool" in r["rule"])
    assert " ".join(warm_pool_rule["message"].split()) == m.WARM_POOL_COMMAND_MESSAGE


def test_defaults_are_the_parsers():
    trials = SPEC["trials"]
    defaults = m.TrialsSpec()
    expected = {"max": defaults.max, "parallelism": defaults.parallelism,
                "maxFailed": defaults.max_failed, "retries": defaults.retries,
                "timeoutSeconds": defaults.timeout_seconds}
    assert trials["default"] == expected
    # maxFailed's default is the object's only: a manifest giving max alone (below 10) must
    # not get maxFailed 10 > max and be refused for it
    assert "default" not in trials["properties"]["maxFailed"]
    assert {k: trials["properties"][k]["default"] for k in expected if k != "maxFailed"} == \
        {k: v for k, v in expected.items() if k != "maxFailed"}
    storage, defaults = SPEC["storage"], m.StorageSpec()
    expected = {"size": defaults.size, "accessModes": list(defaults.access_modes),
                "retentionPolicy": defaults.retention_policy}
    assert storage["default"] == expected
    assert {k: storage["properties"][k]["default"] for k in expected} == expected
    assert SPEC["suspend"]["default"] is False
    mount = TRAINER["properties"]["mountSearchVolume"]["default"]
    assert mount is m.TrainerSpec().mount_search_volume
    final, defaults = SPEC["finalTraining"], m.FinalTrainingSpec()
    assert final["default"] == {"enabled": defaults.enabled}
    assert final["properties"]["enabled"]["default"] is defaults.enabled
    assert set(final["properties"]) == {f.name for f in dataclasses.fields(defaults)}


# -- 4. the same verdict from the CRD's structural schema and from parse_search ----------

def cel_pattern(node: dict) -> str | None:
    """The regular expression of a node's `self.matches('...')` rule (as Python spells it)."""
    for rule in rules(node):
        found = re.fullmatch(r"(?:self == '' \|\| )?self\.matches\('(.*)'\)", rule)
        if found:
            return found.group(1).replace("\\\\", "\\")
    return None


def json_schema(node: dict) -> dict:
    """A structural OpenAPI v3.0 schema as JSON Schema (draft 7), as the API server applies
    it with strict field validation (kubectl's default): unknown fields are errors. CEL
    rules (x-kubernetes-validations) are left out."""
    out: dict[str, Any] = {}
    for key in ("type", "enum", "required", "pattern", "minLength", "maxLength", "minItems",
                "maxItems"):
        if key in node:
            out[key] = node[key]
    for bound in ("minimum", "maximum"):
        if bound in node:
            exclusive = node.get(f"exclusive{bound.title()}")
            out[f"exclusive{bound.title()}" if exclusive else bound] = node[bound]
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif "anyOf" in node:
        out["anyOf"] = [json_schema(n) for n in node["anyOf"]]
    for key in ("maxProperties", "not"):
        if key in node:
            out[key] = node[key]
    if "allOf" in node:
        out["allOf"] = [json_schema(n) for n in node["allOf"]]
    pattern = cel_pattern(node)   # a `self.matches` rule is a pattern (other CEL: e2e)
    if pattern is not None:
        out["pattern"] = f"^$|{pattern}" if rules(node)[0].startswith("self == ''") else pattern
    if "properties" in node:
        out["properties"] = {k: json_schema(v) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = json_schema(node["additionalProperties"])
    elif node.get("type") == "object" and "properties" in node and not node.get(
            "x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if isinstance(node.get("items"), dict):
        out["items"] = json_schema(node["items"])
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    return out


VALIDATOR = jsonschema.Draft7Validator(json_schema(SCHEMA))


def without_nulls(value: Any) -> Any:
    """The API server drops null fields (none is nullable) before validating."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def crd_accepts(doc: dict) -> bool:
    return VALIDATOR.is_valid(without_nulls(doc))


def parser_accepts(doc: dict) -> bool:
    try:
        parse_search(copy.deepcopy(doc))
    except ManifestError:
        return False
    return True


def search(**spec: Any) -> dict:
    doc = {"apiVersion": m.API_VERSION, "kind": m.KIND, "metadata": {"name": "demo"},
           "spec": {"searchSpace": {"name": "nas-bench-201"}}}
    doc["spec"].update(spec)
    return doc


def trainer(**fields: Any) -> dict:
    return search(trainer=fields)


def strategy(name: str, **fields: Any) -> dict:
    return search(strategy={"name": name, **fields})


CASES: list[tuple[str, bool, Callable[[], dict]]] = [
    # valid
    ("minimal", True, lambda: search()),
    ("nulls-are-absent", True, lambda: search(trials={"max": 5, "goal": None}, trainer=None)),
    ("reinforce-all", True, lambda: strategy(
        "reinforce", lstmLayers=8, hiddenSize=4096, learningRate=0.1, baselineDecay=0,
        entropyWeight=0, batchSize=1024, rewardNormalization="rank", failureReward=-1)),
    ("ppo-clip", True, lambda: strategy("ppo", clipEpsilon=0.999, ppoEpochs=100)),
    ("evolution-population-1", True, lambda: strategy("regularized-evolution", population=1)),
    ("evolution-sample=population", True,
     lambda: strategy("regularized-evolution", population=4, sampleSize=4)),
    ("tpe-startup-0", True, lambda: strategy("tpe", startupTrials=0)),
    ("trials-max", True, lambda: search(trials={"max": 1_000_000, "parallelism": 10_000,
                                                 "retries": 100, "maxFailed": 0})),
    ("space-options", True, lambda: search(searchSpace={
        "name": "nasnet", "options": {"blocks": 1, "cells": 20, "filters": 2}})),
    ("macro-cnn-many-layers", True, lambda: search(searchSpace={
        "name": "macro-cnn", "options": {"layers": 100}})),
    ("nas-bench-graph-dataset", True, lambda: search(searchSpace={
        "name": "nas-bench-graph", "options": {"dataset": "proteins"}})),
    ("trainer-all", True, lambda: trainer(
        image="nas:1", dataset="cifar10", dataPath="/d", epochs=1, batchSize=1,
        learningRate=0.1, reward={"metric": "val_perplexity", "transform": "inverse-square",
                                  "lastEpochs": 1, "c": 80},
        deterministic=True, datasetOptions={}, download=False, validation=0.1, splitSeed=3,
        momentum=0, nesterov=False, weightDecay=0, labelSmoothing=0.1, gradClip=0,
        warmupFraction=0, augment={"pad": 4, "flip": True}, dropPath=0.2, auxWeight=0.4,
        model={"channels": 16}, bptt=35, seed=1, device="cuda:1", cudaGraph="off",
        imagePullPolicy="IfNotPresent", runtimeClassName="nvidia", serviceAccountName="sa",
        imagePullSecrets=[{"name": "registry"}],
        resources={"limits": {"nvidia.com/gpu": 1, "memory": "16Gi"},
                   "requests": {"cpu": "500m"}},
        nodeSelector={"gpu": "true"}, tolerations=[{"key": "gpu", "operator": "Exists"}],
        affinity={}, priorityClassName="", env=[{"name": "A", "value": "1"}],
        volumes=[{"name": "v", "emptyDir": {}}], volumeMounts=[{"name": "v", "mountPath": "/v"}],
        mountSearchVolume=True)),
    ("custom-trainer-any-dataset", True,
     lambda: trainer(command=["python", "train.py"], dataset="imagenet")),
    ("storage-claim-empty", True, lambda: search(storage={
        "claimName": "", "size": 5 * 2**30, "storageClassName": "",
        "accessModes": ["ReadWriteMany", "ReadOnlyMany"], "retentionPolicy": "Delete"})),
    # invalid: the structural schema says so (CEL-only rules are tested on a real server)
    ("unknown-strategy", False, lambda: strategy("bohb")),
    ("rewardNormalization", False, lambda: strategy("reinforce", rewardNormalization="mad")),
    ("lstmLayers>8", False, lambda: strategy("reinforce", lstmLayers=9)),
    ("hiddenSize=0", False, lambda: strategy("ppo", hiddenSize=0)),
    ("learningRate=0", False, lambda: strategy("reinforce", learningRate=0)),
    ("baselineDecay=1", False, lambda: strategy("reinforce", baselineDecay=1)),
    ("entropyWeight<0", False, lambda: strategy("reinforce", entropyWeight=-0.1)),
    ("clipEpsilon=1", False, lambda: strategy("ppo", clipEpsilon=1)),
    ("population=0", False, lambda: strategy("regularized-evolution", population=0)),
    ("sampleSize>max", False,
     lambda: strategy("regularized-evolution", population=100000, sampleSize=100001)),
    ("startupTrials<0", False, lambda: strategy("tpe", startupTrials=-1)),
    ("failureReward-string", False, lambda: strategy("reinforce", failureReward="low")),
    ("unknown-hyperparameter", False, lambda: strategy("reinforce", momentum=0.9)),
    ("temperature+tanhConstant", True, lambda: strategy("ppo", temperature=5, tanhConstant=1.5)),
    ("temperature=0", False, lambda: strategy("reinforce", temperature=0)),
    ("tanhConstant<0", False, lambda: strategy("ppo", tanhConstant=-1)),
    ("seed<0", False, lambda: strategy("random", seed=-1)),
    ("trials-max=0", False, lambda: search(trials={"max": 0})),
    ("trials-max>cap", False, lambda: search(trials={"max": 1_000_001, "parallelism": 1})),
    ("parallelism>cap", False, lambda: search(trials={"max": 100_000, "parallelism": 10_001})),
    ("retries>100", False, lambda: search(trials={"retries": 101})),
    ("timeoutSeconds=0", False, lambda: search(trials={"timeoutSeconds": 0})),
    ("packing-1..8", True, lambda: search(trials={"mode": "WarmPool",
                                                  "packing": {"maxPerWorker": 8}})),
    ("packing-one", True, lambda: search(trials={"mode": "WarmPool",
                                                 "packing": {"maxPerWorker": 1}})),
    ("packing=0", False, lambda: search(trials={"mode": "WarmPool",
                                                "packing": {"maxPerWorker": 0}})),
    ("packing>8", False, lambda: search(trials={"mode": "WarmPool",
                                                "packing": {"maxPerWorker": 9}})),
    ("packing-empty", False, lambda: search(trials={"mode": "WarmPool", "packing": {}})),
    ("packing-unknown-key", False, lambda: search(trials={
        "mode": "WarmPool", "packing": {"maxPerWorker": 2, "perGpu": 2}})),
    ("unknown-space", False, lambda: search(searchSpace={"name": "darts"})),
    ("unknown-option", False, lambda: search(searchSpace={
        "name": "macro-cnn", "options": {"depth": 3}})),
    ("filters=1", False, lambda: search(searchSpace={"name": "nasnet",
                                                     "options": {"filters": 1}})),
    ("graph-dataset", False, lambda: search(searchSpace={
        "name": "nas-bench-graph", "options": {"dataset": "imdb"}})),
    ("decision-name", False, lambda: search(searchSpace={
        "name": "custom", "decisions": [{"name": "a b", "choices": [1]}]})),
    ("decision-choices-empty", False, lambda: search(searchSpace={
        "name": "custom", "decisions": [{"name": "a", "choices": []}]})),
    ("decisions-too-many", False, lambda: search(searchSpace={
        "name": "custom", "decisions": [{"name": f"d{i}", "choices": [1]}
                                        for i in range(m.MAX_DECISIONS + 1)]})),
    ("epochs=0", False, lambda: trainer(epochs=0)),
    ("batchSize=0", False, lambda: trainer(batchSize=0)),
    ("learningRate=0", False, lambda: trainer(learningRate=0)),
    ("epochs-string", False, lambda: trainer(epochs="ten")),
    ("image-empty", False, lambda: trainer(image="")),
    ("command-empty", False, lambda: trainer(command=[])),
    ("dataPath-empty", False, lambda: trainer(dataPath="")),
    ("transform-snake", False, lambda: trainer(reward={"transform": "inverse_square"})),
    ("transform-unknown", False, lambda: trainer(reward={"transform": "log"})),
    ("lastEpochs=0", False, lambda: trainer(reward={"lastEpochs": 0})),
    ("c=0", False, lambda: trainer(reward={"c": 0})),
    ("metric-empty", False, lambda: trainer(reward={"metric": ""})),
    ("reward-unknown-key", False, lambda: trainer(reward={"lastEpoch": 3})),
    ("labelSmoothing=1", False, lambda: trainer(labelSmoothing=1)),
    ("warmupFraction=1", False, lambda: trainer(warmupFraction=1.0)),
    ("dropPath=1", False, lambda: trainer(dropPath=1)),
    ("momentum<0", False, lambda: trainer(momentum=-0.9)),
    ("weightDecay<0", False, lambda: trainer(weightDecay=-1e-4)),
    ("gradClip<0", False, lambda: trainer(gradClip=-1)),
    ("auxWeight<0", False, lambda: trainer(auxWeight=-1)),
    ("validation=0", False, lambda: trainer(validation=0)),
    ("bptt=0", False, lambda: trainer(bptt=0)),
    ("download-string", False, lambda: trainer(download="yes")),
    ("device", False, lambda: trainer(device="tpu")),
    ("cudaGraph-bool", False, lambda: trainer(cudaGraph=True)),
    ("imagePullPolicy", False, lambda: trainer(imagePullPolicy="Sometimes")),
    ("evalBatchSize", False, lambda: trainer(evalBatchSize=1024)),
    ("trainer-typo", False, lambda: trainer(epoch=10)),
    ("resources-float", False, lambda: trainer(resources={"limits": {"cpu": 0.5}})),
    # quantities are CEL rules (quantity()): tests/catalogue/ on a real API server
    ("resources-claims", False, lambda: trainer(resources={"claims": [{"name": "gpu"}]})),
    ("nodeSelector-bool", False, lambda: trainer(nodeSelector={"gpu": True})),
    ("env-no-name", False, lambda: trainer(env=[{"value": "1"}])),
    ("volumeMount-no-path", False, lambda: trainer(volumeMounts=[{"name": "v"}])),
    ("tolerations-not-list", False, lambda: trainer(tolerations={"key": "gpu"})),
    ("volume-hostPath", False, lambda: trainer(volumes=[{"name": "v", "hostPath": {"path": "/"}}])),
    ("env-fileKeyRef", False,
     lambda: trainer(env=[{"name": "A", "valueFrom": {"fileKeyRef": {}}}])),
    ("mount-propagation", False, lambda: trainer(
        volumes=[{"name": "v", "emptyDir": {}}],
        volumeMounts=[{"name": "v", "mountPath": "/v", "mountPropagation": "Bidirectional"}])),
    ("toleration-operator", False, lambda: trainer(tolerations=[{"key": "a", "operator": "In"}])),
    ("image-upper", False, lambda: trainer(image="Nas/Trainer:1")),
    ("choice-list", False, lambda: search(searchSpace={
        "name": "custom", "decisions": [{"name": "a", "choices": [1, [2]]}]},
        trainer={"command": ["x"]})),
    ("augment-object", True, lambda: trainer(augment={"pad": 2})),
    ("augment-key", False, lambda: trainer(augment={"rotate": 2})),
    ("accessModes-empty", False, lambda: search(storage={"accessModes": []})),
    ("accessModes-unknown", False, lambda: search(storage={"accessModes": ["ReadWriteAll"]})),
    ("accessModes-twice", False,
     lambda: search(storage={"accessModes": ["ReadWriteOnce", "ReadWriteOnce"]})),
    ("retentionPolicy", False, lambda: search(storage={"retentionPolicy": "Keep"})),
    ("storage-typo", False, lambda: search(storage={"claim": "x"})),
    ("final-training", True, lambda: search(finalTraining={"enabled": False, "epochs": 30})),
    ("final-training-empty", True, lambda: search(finalTraining={})),
    ("final-training-epochs=0", False, lambda: search(finalTraining={"epochs": 0})),
    ("final-training-enabled-string", False, lambda: search(finalTraining={"enabled": "no"})),
    ("final-training-typo", False, lambda: search(finalTraining={"epoch": 3})),
    ("suspend-string", False, lambda: search(suspend="yes")),
    ("spec-typo", False, lambda: search(suspended=True)),
    ("no-space", False, lambda: {**search(), "spec": {"strategy": {"name": "random"}}}),
    ("top-level-typo", False, lambda: {**search(), "specs": {}}),
]


@pytest.mark.parametrize("valid, make", [(v, f) for _, v, f in CASES],
                         ids=[name for name, _, _ in CASES])
def test_crd_and_parser_give_the_same_verdict(valid, make):
    doc = make()
    assert (crd_accepts(doc), parser_accepts(doc)) == (valid, valid), \
        list(VALIDATOR.iter_errors(without_nulls(doc)))[:1]


def numeric_probes():
    """Every number of spec.trials, spec.trainer, spec.trainer.reward and spec.finalTraining
    at and past the CRD's bounds (or far out where it has none): a bound added on one side
    only fails."""
    sections = (("trials", SPEC["trials"]), ("trainer", TRAINER),
                ("reward", TRAINER["properties"]["reward"]),
                ("finalTraining", SPEC["finalTraining"]))
    for section, schema in sections:
        for key, prop in schema["properties"].items():
            if prop.get("type") not in ("integer", "number") or key == "goal":
                continue   # the goal's range is a CEL rule on the reward: tests/catalogue/
            step = 1 if prop["type"] == "integer" else 0.5
            low, high = prop.get("minimum"), prop.get("maximum")
            values = [(low, not prop.get("exclusiveMinimum")), (low - step, False)] \
                if low is not None else [(-10**6, True)]
            values += [(high, not prop.get("exclusiveMaximum")), (high + step, False)] \
                if high is not None else [(10**6, True)]
            for value, valid in values:
                yield pytest.param(section, key, value, valid, id=f"{section}.{key}={value}")


@pytest.mark.parametrize("section, key, value, valid", list(numeric_probes()))
def test_numeric_bounds_give_the_same_verdict(section, key, value, valid):
    if section == "trials":
        doc = search(trials={"max": 1_000_000, key: value})
    elif section == "trainer":
        doc = trainer(**{key: value})
    elif section == "finalTraining":
        doc = search(finalTraining={key: value})
    else:
        doc = trainer(reward={key: value})
    assert (crd_accepts(doc), parser_accepts(doc)) == (valid, valid)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_examples_are_valid_for_the_crd(path):
    doc = yaml.safe_load(path.read_text())
    assert list(VALIDATOR.iter_errors(without_nulls(doc))) == []

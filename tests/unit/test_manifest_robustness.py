"""Whatever a manifest holds, `nas validate` answers with one line naming a field (exit 2),
never a traceback: every field of a full manifest replaced by a value of the wrong type,
NaN and infinity, and nesting 2,000 levels deep (which once took the operator down)."""
from __future__ import annotations

import copy
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from nas_trainer.cli import app
from nas_trainer.manifest import ManifestError, parse_search

runner = CliRunner()

FULL = {
    "apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
    "metadata": {"name": "full"},
    "spec": {
        "searchSpace": {"name": "nas-bench-201"},
        "strategy": {"name": "reinforce", "seed": 1, "batchSize": 2},
        "trials": {"max": 10, "parallelism": 2, "maxFailed": 3, "goal": 0.9},
        "trainer": {
            "image": "ghcr.io/nas/trainer:1", "dataset": "cifar10", "epochs": 2,
            "reward": {"metric": "val_accuracy", "transform": "cube"},
            "augment": {"pad": 4, "flip": True}, "model": {"channels": 16},
            "resources": {"limits": {"cpu": "2", "nvidia.com/gpu": 1},
                          "requests": {"cpu": "500m"}},
            "nodeSelector": {"gpu": "a100"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
            "env": [{"name": "OMP_NUM_THREADS", "value": "2"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumes": [{"name": "cache", "emptyDir": {}}],
            "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
            "imagePullSecrets": [{"name": "registry"}],
        },
        "storage": {"size": "2Gi", "accessModes": ["ReadWriteOnce"]},
        "finalTraining": {"enabled": True},
    },
}
WRONG = [None, 1, -1, 1.5, float("nan"), float("inf"), "x", "", True, [], [1, [2]], {},
         {"a": {"b": 1}}]


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from paths(child, prefix + (i,))


def replaced(path: tuple, value: Any) -> Any:
    doc = copy.deepcopy(FULL)
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def test_the_full_manifest_is_valid():
    parse_search(copy.deepcopy(FULL))


@pytest.mark.parametrize("path", list(paths(FULL)), ids=lambda p: ".".join(map(str, p)) or "doc")
def test_any_wrong_value_is_a_manifest_error(path):
    for value in WRONG:
        try:
            parse_search(replaced(path, value))
        except ManifestError:
            pass   # anything else (TypeError, KeyError, ...) fails the test with its traceback


@pytest.mark.parametrize("text, field", [
    ("goal: .nan", "spec.trials.goal must be a finite number"),
    ("goal: .inf", "spec.trials.goal must be a finite number"),
    ("goal: 2.0", "spec.trials.goal must be in [0, 1]"),
])
def test_nas_validate_names_a_bad_goal(tmp_path, text, field):
    path = tmp_path / "search.yaml"
    path.write_text("apiVersion: archsearch.io/v1alpha1\nkind: ArchitectureSearch\n"
                    "metadata: {name: g}\nspec:\n  searchSpace: {name: nas-bench-201}\n"
                    f"  trainer: {{dataset: cifar10}}\n  trials:\n    {text}\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert field in result.output


@pytest.mark.parametrize("where", ["model: {layers: %s}", "datasetOptions: %s",
                                   "affinity: {nodeAffinity: %s}"])
def test_nas_validate_names_where_a_manifest_nests_too_deep(tmp_path, where):
    deep = "[" * 2000 + "1" + "]" * 2000
    path = tmp_path / "search.yaml"
    path.write_text("apiVersion: archsearch.io/v1alpha1\nkind: ArchitectureSearch\n"
                    "metadata: {name: deep}\nspec:\n  searchSpace: {name: nas-bench-201}\n"
                    f"  trainer: {{dataset: cifar10, {where % deep}}}\n")
    result = runner.invoke(app, ["validate", str(path)])
    output = result.output.strip()
    assert result.exit_code == 2 and len(output.splitlines()) == 1, output[-500:]
    assert "spec.trainer." in output and "nests deeper than" in output
    assert "Traceback" not in output

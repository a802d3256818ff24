"""Manifests that parse field by field but that the built-in trainer can never train: refused
before any trial runs, by `nas validate`/`nas run` (and, for the space/trainer fit, by the
parser and the CRD's CEL), with a message naming the field. Found by running manifests a
newcomer writes: each of these used to fail every trial the same way until maxFailed."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from nas_trainer import manifest as m
from nas_trainer import preflight
from nas_trainer.cli import app
from nas_trainer.manifest import ManifestError, parse_search

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "archsearch.io_architecturesearches.yaml").read_text())
SPEC = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
runner = CliRunner()


def search(space: dict[str, Any], trainer: dict[str, Any] | None = None) -> dict:
    doc = {"apiVersion": m.API_VERSION, "kind": m.KIND, "metadata": {"name": "fit"},
           "spec": {"searchSpace": space, "strategy": {"name": "random"}, "trials": {"max": 2}}}
    if trainer is not None:
        doc["spec"]["trainer"] = trainer
    return doc


CUSTOM = {"name": "custom", "decisions": [{"name": "width", "choices": [8, 16]}]}

# (space, trainer, the parser's error or None)
FIT_CASES = [
    (CUSTOM, None, "spec.trainer.command is required for the custom space"),
    (CUSTOM, {"dataset": "digits"}, "spec.trainer.command is required for the custom space"),
    (CUSTOM, {"command": ["python", "train.py"]}, None),
    ({"name": "rnn-cell"}, {"dataset": "digits"},
     "spec.trainer.dataset must be a text corpus (ptb) for space rnn-cell (got 'digits')"),
    ({"name": "macro-cnn"}, {"dataset": "ptb"},
     "spec.trainer.dataset 'ptb' is a text corpus, for rnn-cell; space macro-cnn needs an "
     "image dataset"),
    ({"name": "nasnet"}, {"dataset": "ptb"}, "space nasnet needs an image dataset"),
    ({"name": "rnn-cell"}, {"dataset": "ptb"}, None),
    ({"name": "nas-bench-201"}, {"dataset": "cifar10"}, None),
    ({"name": "rnn-cell"}, {"dataset": "my-corpus", "command": ["train"]}, None),  # own trainer
    ({"name": "nas-bench-graph"}, {"dataset": "ptb"}, None),  # answered from its table
]


@pytest.mark.parametrize("space, trainer, error", FIT_CASES)
def test_the_parser_refuses_a_trainer_that_cannot_train_the_space(space, trainer, error):
    doc = search(space, trainer)
    if error is None:
        parse_search(doc)
        return
    with pytest.raises(ManifestError) as raised:
        parse_search(doc)
    assert error in str(raised.value)


def evaluate_cel(rule: str, spec: dict[str, Any]) -> bool:
    """The spec-level rules use has(), field access, ||, &&, !, == and `in [...]` only:
    evaluated here as Python, with CEL's semantics for these (has() of a missing field is
    false; access to one would be an error, and the rules guard every access)."""
    def has(path: str) -> bool:
        value: Any = spec
        for key in path.split("."):
            if not isinstance(value, dict) or key not in value:
                return False
            value = value[key]
        return True

    def get(path: str) -> Any:
        value: Any = spec
        for key in path.split("."):
            value = value[key]  # KeyError: the rule reads a field it did not guard
        return value

    python = re.sub(r"has\(self\.([\w.]+)\)", lambda g: f"has({g.group(1)!r})",
                    " ".join(rule.split()))
    python = re.sub(r"self\.([\w.]+)", lambda g: f"get({g.group(1)!r})", python)
    python = python.replace("||", " or ").replace("&&", " and ")
    python = re.sub(r"!(?!=)", " not ", python)
    return bool(eval(python, {"has": has, "get": get}))  # noqa: S307 - our own CRD's rules


# The space/trainer fit rules (the other spec-level rules, on the built-in trainer's
# dataset, metric, model and dataset options and the goal, use CEL this emulator does not
# have; tests/e2e/test_catalogue_e2e.py runs them on a real API server).
SPEC_RULES = [v for v in SPEC.get("x-kubernetes-validations", [])
              if "trainer" in v["rule"] and "searchSpace" in v["rule"] and
              ("is required for the custom space" in v.get("message", "") or
               "does not fit" in v.get("message", ""))]


def test_the_crd_has_the_space_and_trainer_rules_with_the_parsers_spaces():
    assert len(SPEC_RULES) == 2
    listed = set(re.findall(r"'([^']+)'", SPEC_RULES[1]["rule"]))
    assert listed == set(m.TRAINED_SPACES) | set(m.TEXT_DATASETS)


@pytest.mark.parametrize("space, trainer, error", FIT_CASES)
def test_the_crds_cel_gives_the_parsers_verdict(space, trainer, error):
    spec = search(space, trainer)["spec"]
    verdicts = [evaluate_cel(v["rule"], spec) for v in SPEC_RULES]
    assert all(verdicts) == (error is None), [v["message"] for v, ok in
                                              zip(SPEC_RULES, verdicts) if not ok]


def test_the_trainers_tables_load_without_torch():
    """The manifest's parser, `nas validate`'s checks and the trainer's configuration read
    the trainer's own tables (no copies to keep equal), and none of them imports torch."""
    import subprocess
    import sys

    code = ("import sys, nas_trainer.manifest, nas_trainer.preflight, "
            "nas_trainer.training.config; assert 'torch' not in sys.modules, 'torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
    from nas_trainer import trainer_options
    from nas_trainer.models import BUILD_OPTIONS, IMAGE_SPACES
    from nas_trainer.training.run import IMAGE_METRICS

    assert m.TRAINED_SPACES is trainer_options.TRAINED_SPACES  # the same objects: no copies
    assert BUILD_OPTIONS is trainer_options.BUILD_OPTIONS
    assert IMAGE_SPACES is trainer_options.IMAGE_SPACES
    assert IMAGE_METRICS is trainer_options.IMAGE_METRICS


# (space, trainer, what `nas validate` says)
PREFLIGHT_CASES = [
    ({"name": "nas-bench-201"}, None,
     "spec.trainer.dataset is required to train nas-bench-201 children with the built-in "
     "trainer: one of digits, synthetic, cifar10, cifar100, mnist, fashion-mnist, image-folder;"),
    ({"name": "rnn-cell"}, {"epochs": 1},
     "spec.trainer.dataset is required to train rnn-cell children with the built-in trainer: "
     "one of ptb;"),
    ({"name": "macro-cnn"}, {"dataset": "digits", "datasetOptions": {"images": 10}},
     "spec.trainer.datasetOptions.images is not an option of dataset digits (valid: none)"),
    ({"name": "macro-cnn"}, {"dataset": "synthetic", "datasetOptions": {"size": 8}},
     "spec.trainer.datasetOptions.size is not a field (valid: images, imageSize,"),
    ({"name": "macro-cnn"}, {"dataset": "digits", "model": {"dropout": 0.5}},
     "spec.trainer.model.dropout is not an option of the macro-cnn builder (valid: none)"),
    ({"name": "macro-cnn"}, {"dataset": "digits", "reward": {"metric": "accuracy"}},
     "spec.trainer.reward.metric must be one of train_loss, train_accuracy, val_loss, "
     "val_accuracy for space macro-cnn (got 'accuracy')"),
    ({"name": "rnn-cell"}, {"dataset": "ptb", "reward": {"metric": "val_accuracy"}},
     "spec.trainer.reward.metric must be one of train_loss, val_loss, val_perplexity"),
]


@pytest.mark.parametrize("space, trainer, message", PREFLIGHT_CASES)
def test_validate_and_run_refuse_what_every_trial_would_fail_on(tmp_path, space, trainer,
                                                                message):
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(search(space, trainer)))
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "out")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert message in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()  # nothing started, no folder taken


@pytest.mark.parametrize("space, trainer", [
    ({"name": "nas-bench-graph"}, None),
    (CUSTOM, {"command": ["python", "train.py"], "model": {"hidden_size": 64}}),
    ({"name": "macro-cnn"}, {"dataset": "synthetic", "datasetOptions": {"images": 64}}),
    ({"name": "nasnet"}, {"dataset": "digits", "model": {"auxiliary": True}}),
    ({"name": "rnn-cell"}, {"dataset": "ptb", "reward": {"metric": "val_loss"}}),
])
def test_what_the_trainer_can_train_passes(space, trainer):
    assert preflight.trainer_problem(parse_search(search(space, trainer))) is None


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_nas_validate_accepts_every_example(path):
    """The parser, the checks above and the CRD (test_manifest_crd_agreement) all pass
    every example; a new example is covered by being there."""
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


@pytest.mark.parametrize("space, message", [
    ({"name": "macro-cnn", "options": {"layers": 10000}},
     "spec.searchSpace.options.layers must be <= 100 (got 10000)"),
    ({"name": "nasnet", "options": {"blocks": 500}},
     "spec.searchSpace.options.blocks must be <= 20 (got 500)"),
    ({"name": "rnn-cell", "options": {"base": 4096}},
     "spec.searchSpace.options.base must be <= 64 (got 4096)"),
])
def test_a_typo_sized_space_is_refused_at_once(tmp_path, space, message):
    """layers: 10000 used to hang `nas validate` (50 million skip decisions)."""
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(search(space, {"dataset": "digits"})))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and message in " ".join(result.output.split())

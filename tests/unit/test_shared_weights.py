"""Weight sharing (ENAS) for the macro-cnn space: a child is exactly a slice of the
supernet, trials continue the supernet from the search folder, and a search resumed from
its folder scores and trains as an uninterrupted one."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from nas_trainer.data import load_dataset
from nas_trainer.models import build_model
from nas_trainer.oneshot import estimator
from nas_trainer.oneshot.estimator import (CHECKPOINT, HELD_SUPERNET, NEW_SUPERNET, estimate,
                                           supernet_folder, supernet_source)
from nas_trainer.oneshot.held import HELD
from nas_trainer.oneshot.macro_supernet import MAX_FILTERS, MAX_KERNEL, MacroSupernet
from nas_trainer.oneshot.settings import SharedWeights
from nas_trainer.spaces import get_space
from nas_trainer.training.config import ConfigError, TrainerConfig

SPACE = get_space("macro-cnn", {"layers": 4, "strides": True, "skips": True})
CONFIG = TrainerConfig.from_dict({"dataset": "digits", "batchSize": 32, "seed": 3,
                                  "learningRate": 0.05, "reward": {"metric": "val_accuracy"},
                                  "sharedWeights": {"stepsPerChild": 3, "scoreBatches": 2}})


def children(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [SPACE.random(rng).to_json() for _ in range(count)]


def copy_slices(supernet: MacroSupernet, child: torch.nn.Module, canonical: dict) -> None:
    """Loads a stand-alone child with its slices of the supernet's weights."""
    layers = canonical["layers"]
    with torch.no_grad():
        for i, (spec, block) in enumerate(zip(layers, child.layers)):
            conv, bn = block[0], block[1]
            if spec["inputs"]:
                shared, blocks = supernet.layers[i], [(j, layers[j]["filters"])
                                                      for j in spec["inputs"]]
            else:
                shared = supernet.layers[0] if i == 0 else supernet.image_layers[i - 1]
                blocks = [(0, supernet.in_channels)]
            channels = torch.cat([torch.arange(b * shared.block, b * shared.block + w)
                                  for b, w in blocks])
            kh, kw = spec["filter_height"], spec["filter_width"]
            top, left = (MAX_KERNEL - kh) // 2, (MAX_KERNEL - kw) // 2
            conv.weight.copy_(shared.weight[:spec["filters"]].index_select(1, channels)
                              [:, :, top:top + kh, left:left + kw])
            bn.weight.copy_(shared.bn_weight[:spec["filters"]])
            bn.bias.copy_(shared.bn_bias[:spec["filters"]])
        read = {j for spec in layers for j in spec["inputs"]}
        columns = torch.cat([torch.arange(i * MAX_FILTERS, i * MAX_FILTERS + layers[i]["filters"])
                             for i in range(len(layers)) if i not in read])
        child.classifier.weight.copy_(supernet.classifier.weight.index_select(1, columns))
        child.classifier.bias.copy_(supernet.classifier.bias)


@pytest.mark.parametrize("architecture", children(6), ids=lambda a: a["hash"])
def test_a_child_on_the_supernet_is_the_stand_alone_child_with_sliced_weights(architecture):
    torch.manual_seed(0)
    supernet = MacroSupernet(4, in_channels=1, num_classes=10)
    child = build_model(architecture, 10, (1, 8, 8))
    copy_slices(supernet, child, architecture["canonical"])
    child.train()  # batch statistics, as the supernet's normalisation always uses
    x = torch.randn(5, 1, 8, 8)
    assert torch.allclose(supernet(x, architecture["canonical"]), child(x), atol=1e-5)


def test_training_one_child_moves_the_children_that_share_its_weights():
    first, second = children(2, seed=5)
    supernet = MacroSupernet(4, 1, 10)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    before = supernet(x, second["canonical"]).detach()
    torch.nn.functional.cross_entropy(supernet(x, first["canonical"]), y).backward()
    with torch.no_grad():
        for p in supernet.parameters():
            if p.grad is not None:
                p -= 0.5 * p.grad
    assert not torch.allclose(supernet(x, second["canonical"]), before)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", None, validation=None, split_seed=0, download=False,
                        options={})


def run(folder: Path, architectures: list[dict], start: int, data) -> list[float]:
    rewards = []
    for offset, architecture in enumerate(architectures):
        out = folder / "trials" / f"{start + offset:05d}"
        result = estimate(architecture, CONFIG, CONFIG.shared_weights, data,
                          torch.device("cpu"), out, lambda _: None, 0.0)
        rewards.append(result.reward)
        doc = json.loads((out / "result.json").read_text())
        assert doc["estimate"] == "sharedWeights" and doc["reward"] == result.reward
    return rewards


def test_a_search_resumed_from_its_folder_scores_as_an_uninterrupted_one(tmp_path, digits):
    """Every trial continues from the checkpoint its predecessor left: a search whose
    process (or pod) is replaced between trials gets the same rewards and weights."""
    archs = children(4, seed=9)
    straight = run(tmp_path / "a", archs, 0, digits)
    resumed = run(tmp_path / "b", archs[:2], 0, digits)
    HELD.forget()  # as another process would: nothing of the supernet in memory
    resumed += run(tmp_path / "b", archs[2:], 2, digits)
    assert resumed == straight
    saved = [torch.load(tmp_path / name / "supernet" / CHECKPOINT, weights_only=True)
             for name in ("a", "b")]
    assert saved[0]["steps"] == saved[1]["steps"] == 4 * 3
    assert saved[0]["children"] == 4
    for key, value in saved[0]["weights"].items():
        assert torch.equal(value, saved[1]["weights"][key]), key
    assert supernet_folder(tmp_path / "a" / "trials" / "00003") == (tmp_path / "a" / "supernet").resolve()


def saved(folder: Path) -> dict:
    return torch.load(folder / "supernet" / CHECKPOINT, weights_only=True)


def count_loads(monkeypatch) -> list[int]:
    """Counts the estimator's checkpoint reads."""
    calls, real = [], torch.load
    monkeypatch.setattr(estimator.torch, "load", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_one_process_keeps_its_supernet_between_children_as_if_it_reread_it(
        tmp_path, digits, monkeypatch):
    """A warm worker (or `nas run`) scores child after child on the supernet it holds: no
    checkpoint read after the first, and the same rewards and weights as a process that
    reads the checkpoint before every child."""
    archs = children(4, seed=5)
    HELD.forget()
    loads = count_loads(monkeypatch)
    held = run(tmp_path / "held", archs, 0, digits)
    assert loads == []  # a new folder: nothing to read, then the held supernet each time
    executions = [json.loads((tmp_path / "held" / "trials" / f"{i:05d}" / "result.json")
                             .read_text())["execution"] for i in range(4)]
    assert [supernet_source(e) for e in executions] == [NEW_SUPERNET, *[HELD_SUPERNET] * 3]
    reread = []
    for index, architecture in enumerate(archs):
        HELD.forget()
        reread += run(tmp_path / "reread", [architecture], index, digits)
    assert len(loads) == 3
    assert held == reread
    a, b = saved(tmp_path / "held"), saved(tmp_path / "reread")
    assert a["steps"] == b["steps"] == 4 * 3
    for key, value in a["weights"].items():
        assert torch.equal(value, b["weights"][key]), key


def test_a_checkpoint_another_process_wrote_is_read_instead_of_the_held_one(
        tmp_path, digits):
    archs = children(3, seed=6)
    HELD.forget()
    run(tmp_path, archs[:2], 0, digits)
    state = saved(tmp_path)
    state["steps"], state["children"] = 100, 50  # another trainer went on meanwhile
    for value in state["weights"].values():
        if value.is_floating_point():
            value.zero_()
    buffer = __import__("io").BytesIO()
    torch.save(state, buffer)
    estimator.atomic_write(tmp_path / "supernet" / CHECKPOINT, buffer.getvalue())
    run(tmp_path, archs[2:], 2, digits)
    after = saved(tmp_path)
    assert (after["steps"], after["children"]) == (103, 51)


def test_a_child_that_fails_midway_leaves_nothing_held(tmp_path, digits, monkeypatch):
    """Weights changed in memory but never saved are not used by the next child."""
    archs = children(3, seed=7)
    HELD.forget()
    run(tmp_path, archs[:1], 0, digits)
    real_train = estimator.train

    def fail_midway(supernet, *args):
        real_train(supernet, *args)  # the held weights and counters move on...
        raise RuntimeError("killed midway")  # ...but are never saved

    monkeypatch.setattr(estimator, "train", fail_midway)
    with pytest.raises(RuntimeError):
        run(tmp_path, archs[1:2], 1, digits)
    monkeypatch.setattr(estimator, "train", real_train)
    run(tmp_path, archs[2:], 2, digits)
    after = saved(tmp_path)
    assert (after["steps"], after["children"]) == (2 * 3, 2)


def test_shared_weights_refuse_other_spaces_and_a_trial_without_a_folder(digits):
    other = get_space("nas-bench-201").random(random.Random(0)).to_json()
    with pytest.raises(ConfigError, match="sharedWeights supports the macro-cnn and nasnet spaces"):
        estimate(other, CONFIG, CONFIG.shared_weights, digits, torch.device("cpu"), "/tmp/x",
                 lambda _: None, 0.0)
    with pytest.raises(ConfigError, match="needs its folder on the search volume"):
        estimate(children(1)[0], CONFIG, CONFIG.shared_weights, digits, torch.device("cpu"),
                 None, lambda _: None, 0.0)


@pytest.mark.parametrize("doc, words", [
    ({"stepsPerChild": 0}, "stepsPerChild must be >= 1"),
    ({"retrainTop": 50}, "retrainTop must be between 1 and 20"),
    ({"steps": 3}, "has no field 'steps'"),
])
def test_bad_settings_are_configuration_errors(doc, words):
    with pytest.raises(ValueError, match=words):
        SharedWeights.from_dict(doc)


def test_the_trial_status_says_the_reward_is_a_shared_weights_estimate():
    from nas_operator.trial_status import derive_trial_status

    message = json.dumps({"schema": "nas.result/v1", "reward": 0.8,
                          "metrics": {"val_accuracy": 0.93}, "epochs": 0, "seconds": 1.5,
                          "estimate": "sharedWeights"})
    trial = {"metadata": {"name": "s-00004", "namespace": "ns"},
             "spec": {"searchName": "s", "index": 4,
                      "architecture": {"canonical": {}, "hash": "h"}},
             "status": {}}
    job = {"metadata": {"name": "s-00004"}, "spec": {},
           "status": {"startTime": "2025-01-01T11:00:00Z", "conditions": [
               {"type": "Complete", "status": "True",
                "lastTransitionTime": "2025-01-01T11:01:00Z"}]}}
    pod = {"metadata": {"name": "s-00004-a", "creationTimestamp": "2025-01-01T11:00:00Z"},
           "status": {"phase": "Succeeded", "containerStatuses": [
               {"name": "trainer",
                "state": {"terminated": {"exitCode": 0, "message": message}}}]}}
    status = derive_trial_status(trial, job, [pod])
    assert (status["phase"], status["reason"], status["estimate"]) == (
        "Succeeded", "Estimated", "sharedWeights")
    assert status["reward"] == 0.8 and "shared weights" in status["message"]


def test_nas_run_scores_children_on_the_supernet_then_retrains_the_best_alone(tmp_path):
    """The ENAS example, shortened: every trial is an estimate, the best is retrained from
    scratch into retrained/, and running the command again trains nothing twice."""
    import yaml
    from typer.testing import CliRunner

    from nas_trainer.cli import app

    root = Path(__file__).resolve().parents[2]
    doc = yaml.safe_load((root / "examples" / "enas-digits-macro-cnn.yaml").read_text())
    doc["spec"]["trials"]["max"] = 4
    doc["spec"]["trainer"]["epochs"] = 1
    doc["spec"]["trainer"]["sharedWeights"] = {"stepsPerChild": 3, "retrainTop": 2}
    manifest = tmp_path / "enas.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(manifest), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Retrained from scratch" in result.output
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["status"] == "Succeeded" for r in records)
    assert torch.load(out / "supernet" / CHECKPOINT, weights_only=True)["children"] == 4
    retrained = json.loads((out / "retrained.json").read_text())
    best_two = sorted(records, key=lambda r: -r["reward"])[:2]
    assert [r["index"] for r in retrained] == [r["index"] for r in best_two]
    for row in retrained:
        alone = json.loads((out / "retrained" / f"{row['index']:05d}" / "result.json").read_text())
        assert "estimate" not in alone and alone["epochs"] == 1
        assert row["reward"] == alone["reward"] and row["estimate"] != row["reward"]
    stamp = (out / "retrained" / f"{retrained[0]['index']:05d}" / "result.json").stat().st_mtime
    again = CliRunner().invoke(app, ["run", str(manifest), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert (out / "retrained" / f"{retrained[0]['index']:05d}" / "result.json").stat().st_mtime \
        == stamp

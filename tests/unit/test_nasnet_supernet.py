"""Weight sharing (ENAS micro search) for the nasnet space: a child on the supernet is the
stand-alone models/nasnet.py child given its weights, training one child moves only the
weights it uses, and a supernet checkpoint is refused by a search of another space."""
from __future__ import annotations

import random

import pytest
import torch

from nas_trainer.data import load_dataset
from nas_trainer.models import build_model
from nas_trainer.oneshot.estimator import CHECKPOINT, estimate, supernet_folder
from nas_trainer.oneshot.nasnet_supernet import NasnetSupernet, SharedPreprocess
from nas_trainer.spaces import get_space
from nas_trainer.training.config import ConfigError, TrainerConfig

OPTIONS = {"blocks": 3, "cells": 1, "filters": 4}
SPACE = get_space("nasnet", OPTIONS)
CONFIG = TrainerConfig.from_dict({"dataset": "digits", "batchSize": 32, "seed": 3,
                                  "learningRate": 0.05, "reward": {"metric": "val_accuracy"},
                                  "sharedWeights": {"stepsPerChild": 2, "scoreBatches": 1}})


def children(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [SPACE.random(rng).to_json() for _ in range(count)]


def unused(cell: list[dict]) -> list[int]:
    read = {i - 2 for block in cell for i in block["inputs"] if i >= 2}
    return [j for j in range(len(cell)) if j not in read]


def copy_pre(shared: SharedPreprocess, module: torch.nn.Module, blocks: list[int]) -> None:
    columns = shared.columns(blocks, torch.device("cpu"))
    convs = [module.conv_a, module.conv_b] if shared.reduce else [module[1]]
    for conv, weight in zip(convs, shared.convs):
        conv.weight.copy_(weight.index_select(1, columns))
    bn = module.bn if shared.reduce else module[2]
    bn.weight.copy_(shared.bn_weight)
    bn.bias.copy_(shared.bn_bias)


def copy_params(source: torch.nn.Module, target: torch.nn.Module) -> None:
    for theirs, ours in zip(source.parameters(), target.parameters(), strict=True):
        ours.copy_(theirs)


def copy_child(supernet: NasnetSupernet, child: torch.nn.Module, canonical: dict) -> None:
    """Loads a stand-alone child with the supernet's weights for its choices."""
    with torch.no_grad():
        child.stem[0].weight.copy_(supernet.stem_conv.weight)
        child.stem[1].weight.copy_(supernet.stem_bn_weight)
        child.stem[1].bias.copy_(supernet.stem_bn_bias)
        b0 = b1 = [0]
        for shared, cell, is_reduction in zip(supernet.cells, child.cells, supernet.kinds):
            blocks = canonical["reduction" if is_reduction else "normal"]
            copy_pre(shared.pre0, cell.pre0, b0)
            copy_pre(shared.pre1, cell.pre1, b1)
            for j, block in enumerate(blocks):
                for slot, (source, name) in enumerate(zip(block["inputs"], block["ops"])):
                    copy_params(shared.op(j, slot, name, source), cell.ops[j][slot])
                if block["combine"] == "concat":
                    copy_params(shared.projections[j], cell.projections[j])
            b0, b1 = b1, unused(blocks)
        columns = torch.cat([torch.arange(j * supernet.width, (j + 1) * supernet.width)
                             for j in b1])
        child.classifier.weight.copy_(supernet.classifier.weight.index_select(1, columns))
        child.classifier.bias.copy_(supernet.classifier.bias)


@pytest.mark.parametrize("architecture", children(5), ids=lambda a: a["hash"])
def test_a_child_on_the_supernet_is_the_stand_alone_child_with_its_weights(architecture):
    torch.manual_seed(0)
    supernet = NasnetSupernet(OPTIONS, in_channels=1, num_classes=10)
    child = build_model(architecture, 10, (1, 8, 8))
    copy_child(supernet, child, architecture["canonical"])
    child.train()  # batch statistics, as the supernet's normalisation always uses
    x = torch.randn(6, 1, 8, 8)
    assert torch.allclose(supernet(x, architecture["canonical"]), child(x), atol=1e-5)


def test_training_a_child_changes_only_the_weights_it_uses_and_scoring_is_repeatable():
    first, second = children(2, seed=7)
    supernet = NasnetSupernet(OPTIONS, 1, 10)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    before = {name: p.detach().clone() for name, p in supernet.named_parameters()}
    torch.nn.functional.cross_entropy(supernet(x, first["canonical"]), y).backward()
    used = {name for name, p in supernet.named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0}
    with torch.no_grad():
        for p in supernet.parameters():
            if p.grad is not None:
                p -= 0.5 * p.grad
    moved = {name for name, p in supernet.named_parameters()
             if not torch.equal(p, before[name])}
    assert moved == used and 0 < len(used) < len(before) / 4
    # the ops the child did not pick are untouched: one per (cell, block, slot) is used
    for cell in ("cells.0", "cells.2"):
        picked = {".".join(name.split(".")[3:6])  # block.slot.operation
                  for name in moved if name.startswith(f"{cell}.ops.")}
        assert len(picked) <= 2 * OPTIONS["blocks"], picked
    assert torch.equal(supernet(x, second["canonical"]), supernet(x, second["canonical"]))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", None, validation=None, split_seed=0, download=False,
                        options={})


def test_a_nasnet_search_continues_its_supernet_and_refuses_another_space(tmp_path, digits):
    archs = children(2, seed=1)
    for index, architecture in enumerate(archs):
        result = estimate(architecture, CONFIG, CONFIG.shared_weights, digits,
                          torch.device("cpu"), tmp_path / "trials" / f"{index:05d}",
                          lambda _: None, 0.0)
        assert result.estimate == "sharedWeights" and 0.0 <= result.reward <= 1.0
    saved = torch.load(supernet_folder(tmp_path / "trials" / "00001") / CHECKPOINT,
                       weights_only=True)
    assert saved["space"] == "nasnet" and saved["shape"] == OPTIONS
    assert saved["steps"] == 4 and saved["children"] == 2
    macro = get_space("macro-cnn", {"layers": 2}).random(random.Random(0)).to_json()
    with pytest.raises(ConfigError,
                       match="holds a nasnet supernet .* spec.searchSpace is macro-cnn"):
        estimate(macro, CONFIG, CONFIG.shared_weights, digits, torch.device("cpu"),
                 tmp_path / "trials" / "00002", lambda _: None, 0.0)
    bigger = get_space("nasnet", {**OPTIONS, "filters": 6}).random(random.Random(0)).to_json()
    with pytest.raises(ConfigError, match="cannot change space"):
        estimate(bigger, CONFIG, CONFIG.shared_weights, digits, torch.device("cpu"),
                 tmp_path / "trials" / "00002", lambda _: None, 0.0)

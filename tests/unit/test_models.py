"""Child-network builders: every architecture a space can emit builds and trains a step."""
from __future__ import annotations

import copy
import random

import pytest
import torch

from nas_trainer.models import (ArchitectureError, build_model, count_flops, count_parameters,
                                set_drop_path_prob)
from nas_trainer.models.rnn_cell import tree_children
from nas_trainer.spaces import get_space

torch.set_num_threads(1)  # tiny models: threads only add contention on a shared CPU
SAMPLES = 30


def forward_backward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    logits = out[0] + out[1] if isinstance(out, tuple) else out
    logits.float().sum().backward()
    return logits


@pytest.mark.parametrize("options", [{"layers": 5}, {"layers": 5, "strides": True},
                                     {"layers": 4, "skips": False}])
def test_macro_cnn_random_architectures_train(options):
    space, rng = get_space("macro-cnn", options), random.Random(0)
    for _ in range(SAMPLES):
        arch = space.random(rng).to_json()
        model = build_model(arch, num_classes=10, input_shape=(1, 8, 8))
        logits = forward_backward(model, torch.randn(2, 1, 8, 8))
        assert logits.shape == (2, 10)
        assert all(p.grad is not None for p in model.parameters())


def test_nasnet_random_architectures_train_with_aux_head_and_drop_path():
    space, rng = get_space("nasnet", {"cells": 1, "filters": 4}), random.Random(0)
    for i in range(SAMPLES):
        arch = space.random(rng).to_json()
        model = build_model(arch, 10, (3, 8, 8), auxiliary=i % 3 == 0, drop_path=True)
        set_drop_path_prob(model, 0.3)
        logits = forward_backward(model, torch.randn(2, 3, 8, 8))
        assert logits.shape == (2, 10)
        model.eval()
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)  # no aux output in eval


def test_nas_bench_201_random_architectures_train():
    space, rng = get_space("nas-bench-201"), random.Random(0)
    for _ in range(SAMPLES):
        arch = space.random(rng).to_json()
        model = build_model(arch, 10, (3, 8, 8), cells_per_stage=1, channels=4)
        assert forward_backward(model, torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_rnn_cell_random_architectures_train():
    space, rng = get_space("rnn-cell"), random.Random(0)
    for _ in range(SAMPLES):
        arch = space.random(rng).to_json()
        model = build_model(arch, 30, hidden_size=8, embedding_size=8)
        logits, (h, c) = model(torch.randint(0, 30, (2, 5)))
        assert logits.shape == (2, 5, 30) and h.shape == c.shape == (2, 8)
        logits.sum().backward()


def test_nas_bench_201_default_network_matches_the_benchmark():
    """5 cells per stage, 16/32/64 channels: the all-3×3 cell has the benchmark's
    parameter count (1.53 M for CIFAR-10 in NAS-Bench-201's tables)."""
    edges = {k: "nor_conv_3x3" for k in ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")}
    arch = {"space": "nas-bench-201", "canonical": {"edges": edges}}
    parameters = count_parameters(build_model(arch, 10, (3, 32, 32)))
    assert parameters / 1e6 == pytest.approx(1.53, abs=0.02)


def test_nas_bench_201_accepts_arch_str_alone():
    arch = {"space": "nas-bench-201", "canonical": {
        "arch_str": "|nor_conv_3x3~0|+|none~0|skip_connect~1|"
                    "+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"}}
    model = build_model(arch, 10, (3, 8, 8), cells_per_stage=1)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_macro_cnn_pads_smaller_inputs_and_feeds_unused_outputs_to_the_classifier():
    layers = [{"filter_height": 3, "filter_width": 3, "filters": 24, "stride": 1, "inputs": []},
              {"filter_height": 1, "filter_width": 5, "filters": 36, "stride": 2, "inputs": [0]},
              {"filter_height": 3, "filter_width": 1, "filters": 48, "stride": 1, "inputs": [0, 1]},
              {"filter_height": 7, "filter_width": 7, "filters": 64, "stride": 3, "inputs": []}]
    model = build_model({"space": "macro-cnn", "canonical": {"layers": layers}}, 10, (3, 8, 8))
    assert model.unused == [2, 3]                      # layer 3 reads the image, nobody reads it
    assert model.classifier.in_features == 48 + 64
    assert model.layers[2][0].in_channels == 24 + 36   # 4×4 output of layer 1 padded to 8×8
    assert forward_backward(model, torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_count_flops_counts_convolution_and_linear_multiply_adds():
    layers = [{"filter_height": 3, "filter_width": 3, "filters": 24, "stride": 1, "inputs": []}]
    model = build_model({"space": "macro-cnn", "canonical": {"layers": layers}}, 10, (1, 8, 8))
    macs = 8 * 8 * 24 * 1 * 3 * 3 + 24 * 10
    assert count_flops(model, torch.randn(1, 1, 8, 8)) == 2 * macs


def test_tied_language_model_weights_are_counted_once():
    arch = get_space("rnn-cell").random(random.Random(0)).to_json()
    tied = build_model(arch, 100, hidden_size=16, embedding_size=16)
    untied = build_model(arch, 100, hidden_size=16, embedding_size=16, tie_weights=False)
    assert tied.decoder.weight is tied.embedding.weight
    assert count_parameters(untied) - count_parameters(tied) == 100 * 16


def test_tree_children_pair_consecutive_nodes_level_by_level():
    assert tree_children(8) == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13)]
    assert tree_children(3) == [(0, 1), (3, 2)]


@pytest.mark.parametrize("architecture, message", [
    ({"space": "macro-cnn", "canonical": {"layers": []}}, "non-empty"),
    ({"space": "macro-cnn", "canonical": {"layers": [{"filter_height": 2, "filter_width": 3,
                                                      "filters": 24, "inputs": []}]}}, "odd"),
    ({"space": "macro-cnn", "canonical": {"layers": [{"filter_height": 3, "filter_width": 3,
                                                      "filters": 24, "inputs": [0]}]}}, "earlier"),
    ({"space": "nasnet", "canonical": {"normal": [], "reduction": []}}, "5 blocks"),
    ({"space": "nas-bench-201", "canonical": {"edges": {"1<-0": "conv"}}}, "edges must be"),
    ({"space": "rnn-cell", "canonical": {"base": 2, "nodes": []}}, "malformed"),
    ({"space": "nas-bench-graph", "canonical": {"link": [0], "ops": ["gcn"]}}, "table"),
    ({"space": "custom", "canonical": {"lr": "0.1"}}, "own trainer"),
    ({"space": "macro-cnn"}, "canonical"),
    ([], "JSON object"),
])
def test_invalid_architectures_raise_architecture_error(architecture, message):
    with pytest.raises(ArchitectureError, match=message):
        build_model(architecture, 10, (3, 8, 8))


def test_nasnet_rejects_an_unknown_operation_and_unknown_build_options():
    arch = get_space("nasnet", {"cells": 1, "filters": 4}).random(random.Random(0)).to_json()
    bad = copy.deepcopy(arch)
    bad["canonical"]["normal"][0]["ops"][0] = "conv_9x9"
    with pytest.raises(ArchitectureError, match="conv_9x9"):
        build_model(bad, 10, (3, 8, 8))
    with pytest.raises(ArchitectureError, match="unknown build options"):
        build_model(arch, 10, (3, 8, 8), hidden_size=3)

"""Child networks built from an architecture JSON (contract 2/6), for every built-in space.

    model = build_model(architecture_json, num_classes=10, input_shape=(3, 32, 32))

Builders read only `space`, `options` and `canonical` of the JSON, never the tokens, so a
model can be rebuilt anywhere from the JSON alone. Build options that are not part of
the architecture (auxiliary head, drop path, widths of the language model, ...) are
keyword arguments, listed in BUILD_OPTIONS.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .common import ArchitectureError, set_drop_path_prob
from .macro_cnn import build_macro_cnn
from .nas_bench_201 import build_nas_bench_201
from .nasnet import build_nasnet
from .rnn_cell import RNNLanguageModel, build_rnn_language_model
from ..trainer_options import BUILD_OPTIONS, IMAGE_SPACES, LANGUAGE_SPACES

__all__ = ["ArchitectureError", "BUILD_OPTIONS", "IMAGE_SPACES", "LANGUAGE_SPACES",
           "RNNLanguageModel", "build_model", "count_flops", "count_parameters",
           "set_drop_path_prob"]

TABULAR_SPACES = ("nas-bench-graph",)


def build_model(architecture: Mapping[str, Any], num_classes: int,
                input_shape: tuple[int, ...] = (3, 32, 32), **options: Any) -> nn.Module:
    """Build the child network of `architecture` (a contract-2 dict).

    num_classes is the vocabulary size for language spaces, where input_shape is unused.
    Raises ArchitectureError (a ValueError) when the architecture cannot be built.
    """
    if not isinstance(architecture, Mapping):
        raise ArchitectureError("architecture must be a JSON object")
    space = architecture.get("space")
    canonical = architecture.get("canonical")
    space_options = architecture.get("options") or {}
    if space in TABULAR_SPACES:
        raise ArchitectureError(f"{space} architectures are looked up in the benchmark "
                                "table, not built")
    if space not in BUILD_OPTIONS:
        raise ArchitectureError(f"no model builder for space {space!r}; built-in spaces are "
                                f"{sorted(BUILD_OPTIONS)} (a custom space needs its own trainer)")
    if not isinstance(canonical, Mapping):
        raise ArchitectureError(f"{space} architecture needs a 'canonical' object")
    unknown = sorted(set(options) - set(BUILD_OPTIONS[space]))
    if unknown:
        raise ArchitectureError(f"unknown build options for {space}: {unknown} "
                                f"(known: {list(BUILD_OPTIONS[space])})")
    if num_classes < 1:
        raise ArchitectureError(f"num_classes must be >= 1 (got {num_classes})")

    if space == "macro-cnn":
        return build_macro_cnn(canonical, num_classes, input_shape)
    if space == "nasnet":
        return build_nasnet(canonical, space_options, num_classes, input_shape, **options)
    if space == "nas-bench-201":
        merged = {**space_options, **options}
        return build_nas_bench_201(canonical, merged, num_classes, input_shape)
    return build_rnn_language_model(canonical, num_classes, **options)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, shared (tied) tensors counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """Floating-point operations (2 × multiply-accumulates of the convolutions and linear
    layers) of one inference forward pass on `example`.

    Counted with forward hooks rather than torch.utils.flop_counter, whose first use
    imports torch._dynamo: seconds a trial would pay for one number.
    """
    macs = 0

    def conv_hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = module.kernel_size
        macs += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        macs += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    if example.is_floating_point():  # e.g. a bf16 batch meant for autocast
        example = example.to(next(model.parameters()).dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return 2 * macs

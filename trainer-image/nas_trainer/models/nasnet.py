"""NASNet (Zoph et al., CVPR 2018, §3) built from a normal and a reduction cell.

Network (CIFAR layout): a 3×3 stem with 3F filters, then N normal cells, a reduction
cell (stride 2, filters doubled), N normal cells, a reduction cell, N normal cells,
global average pool and a linear classifier; an optional auxiliary head after the second
reduction cell. Every cell reads the outputs of the two cells before it, each brought to
the cell's F channels by ReLU-1×1 conv-BN, or by a factorized reduction when the older
one is still at twice the resolution.

A block applies one operation to each of its two chosen hidden states and combines them
by addition or depth concatenation; a concatenation is projected back to F channels by a
ReLU-1×1 conv-BN so every hidden state has F channels and any operation can read any
state. In a reduction cell operations that read the cell's inputs have stride 2. The
blocks no other block reads are concatenated as the cell's output. ScheduledDropPath
drops each non-identity operation's output per sample, with the probability the trainer
raises linearly over training.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from .common import (ArchitectureError, DropPath, FactorizedReduce, ReLUConvBN, require)


class SepConv(nn.Sequential):
    """Depthwise-separable convolution applied twice, as in NASNet."""

    def __init__(self, c: int, kernel: int, stride: int) -> None:
        pad = kernel // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, 1, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )


class FactorizedConv(nn.Sequential):
    """1×k then k×1 convolution (ReLU first, BN last); the stride is split between them."""

    def __init__(self, c: int, k: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, k), (1, stride), (0, k // 2), bias=False),
            nn.Conv2d(c, c, (k, 1), (stride, 1), (k // 2, 0), bias=False),
            nn.BatchNorm2d(c),
        )


# The paper's 13 operations: name -> (channels, stride) -> module.
OPERATIONS: dict[str, Callable[[int, int], nn.Module]] = {
    "identity": lambda c, s: nn.Identity() if s == 1 else FactorizedReduce(c, c),
    "conv_1x3_3x1": lambda c, s: FactorizedConv(c, 3, s),
    "conv_1x7_7x1": lambda c, s: FactorizedConv(c, 7, s),
    "dil_conv_3x3": lambda c, s: ReLUConvBN(c, c, 3, s, dilation=2),
    "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, s, 1, count_include_pad=False),
    "max_pool_3x3": lambda c, s: nn.MaxPool2d(3, s, 1),
    "max_pool_5x5": lambda c, s: nn.MaxPool2d(5, s, 2),
    "max_pool_7x7": lambda c, s: nn.MaxPool2d(7, s, 3),
    "conv_1x1": lambda c, s: ReLUConvBN(c, c, 1, s),
    "conv_3x3": lambda c, s: ReLUConvBN(c, c, 3, s),
    "sep_conv_3x3": lambda c, s: SepConv(c, 3, s),
    "sep_conv_5x5": lambda c, s: SepConv(c, 5, s),
    "sep_conv_7x7": lambda c, s: SepConv(c, 7, s),
}


class Cell(nn.Module):
    def __init__(self, blocks: list[dict[str, Any]], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool, drop_path: bool) -> None:
        super().__init__()
        self.pre0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(
            c_prev_prev, c, 1)
        self.pre1 = ReLUConvBN(c_prev, c, 1)
        self.inputs = [list(block["inputs"]) for block in blocks]
        self.concat = [block["combine"] == "concat" for block in blocks]
        ops, projections = [], []
        for block in blocks:
            pair = []
            for index, name in zip(block["inputs"], block["ops"]):
                stride = 2 if reduction and index < 2 else 1
                op = OPERATIONS[name](c, stride)
                if drop_path and name != "identity":
                    op = nn.Sequential(op, DropPath())
                pair.append(op)
            ops.append(nn.ModuleList(pair))
            projections.append(ReLUConvBN(2 * c, c, 1) if block["combine"] == "concat"
                               else nn.Identity())
        self.ops = nn.ModuleList(ops)
        self.projections = nn.ModuleList(projections)
        read = {i - 2 for inputs in self.inputs for i in inputs if i >= 2}
        self.unused = [j for j in range(len(blocks)) if j not in read]
        self.out_channels = c * len(self.unused)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for inputs, (op_a, op_b), concat, project in zip(
                self.inputs, self.ops, self.concat, self.projections):
            a, b = op_a(states[inputs[0]]), op_b(states[inputs[1]])
            states.append(project(torch.cat([a, b], dim=1)) if concat else a + b)
        return torch.cat([states[2 + j] for j in self.unused], dim=1)


class AuxiliaryHead(nn.Sequential):
    """Auxiliary classifier (NASNet/DARTS), pooled adaptively so any input size works."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(768, num_classes),
        )


class NASNet(nn.Module):
    """Returns logits; in training with an auxiliary head, (logits, auxiliary logits)."""

    def __init__(self, normal: list[dict[str, Any]], reduction: list[dict[str, Any]],
                 in_channels: int, num_classes: int, cells: int, filters: int,
                 auxiliary: bool = False, drop_path: bool = False,
                 stem_multiplier: int = 3) -> None:
        super().__init__()
        c_stem = stem_multiplier * filters
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem))
        c_prev_prev, c_prev, c = c_stem, c_stem, filters
        self.cells = nn.ModuleList()
        self.aux_after: int | None = None
        c_aux, reduction_prev = c_prev, False
        for stage in range(3):
            kinds = ([True] if stage > 0 else []) + [False] * cells
            for is_reduction in kinds:
                if is_reduction:
                    c *= 2
                cell = Cell(reduction if is_reduction else normal, c_prev_prev, c_prev, c,
                            is_reduction, reduction_prev, drop_path)
                self.cells.append(cell)
                c_prev_prev, c_prev, reduction_prev = c_prev, cell.out_channels, is_reduction
                if is_reduction and stage == 2:
                    self.aux_after = len(self.cells) - 1
                    c_aux = c_prev
        self.aux_head = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.aux_after and self.aux_head is not None and self.training:
                aux_logits = self.aux_head(s1)
        logits = self.classifier(s1.mean(dim=(2, 3)))
        return (logits, aux_logits) if aux_logits is not None else logits


def parse_cell(blocks: Any, kind: str, expected: int) -> list[dict[str, Any]]:
    require(isinstance(blocks, list) and len(blocks) == expected,
            f"nasnet '{kind}' cell must list {expected} blocks")
    parsed = []
    for j, block in enumerate(blocks):
        where = f"nasnet {kind} block {j}"
        require(isinstance(block, Mapping), f"{where} must be an object")
        inputs, ops, combine = block.get("inputs"), block.get("ops"), block.get("combine")
        require(isinstance(inputs, list) and len(inputs) == 2
                and all(isinstance(i, int) and 0 <= i < 2 + j for i in inputs),
                f"{where}: inputs must be two indices in [0, {2 + j}) (got {inputs})")
        require(isinstance(ops, list) and len(ops) == 2 and all(o in OPERATIONS for o in ops),
                f"{where}: ops must be two of {sorted(OPERATIONS)} (got {ops})")
        require(combine in ("add", "concat"),
                f"{where}: combine must be 'add' or 'concat' (got {combine!r})")
        parsed.append({"inputs": inputs, "ops": ops, "combine": combine})
    return parsed


def build_nasnet(canonical: Mapping[str, Any], options: Mapping[str, Any], num_classes: int,
                 input_shape: tuple[int, ...], auxiliary: bool = False,
                 drop_path: bool = False) -> NASNet:
    blocks = int(options.get("blocks", 5))
    cells = int(options.get("cells", 2))
    filters = int(options.get("filters", 16))
    if cells < 1 or filters < 2:
        raise ArchitectureError(f"nasnet needs cells >= 1 and filters >= 2 "
                                f"(got cells={cells}, filters={filters})")
    return NASNet(parse_cell(canonical.get("normal"), "normal", blocks),
                  parse_cell(canonical.get("reduction"), "reduction", blocks),
                  in_channels=input_shape[0], num_classes=num_classes, cells=cells,
                  filters=filters, auxiliary=auxiliary, drop_path=drop_path)

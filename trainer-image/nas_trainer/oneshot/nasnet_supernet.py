"""The nasnet space as one network whose weights every child shares (ENAS micro search,
Pham et al. 2018, §2.4).

The layout is models/nasnet.py's: a 3×3 stem with 3F filters, N normal cells, a
reduction cell, N normal cells, a reduction cell, N normal cells, pooling and a linear
classifier. Each block position of each cell holds, for each of its two input slots, one
module per candidate operation (models/nasnet.py's OPERATIONS, built the same way), so
weights are shared per (cell, block, slot, operation). In a reduction cell an operation
reading the cell's inputs has stride 2 and one reading a block stride 1, so those slots
hold both variants. Each block also holds the 1×1 projection a concatenation needs.

A child's cell outputs the concatenation of the blocks no other block reads, so its width
varies from child to child. The layers that read a cell's output (the next cells'
preprocessing and the classifier) therefore hold one F-wide input block per block of that
cell, and a child uses the input blocks of the blocks its cell outputs, in order, as
macro_supernet does with its layers' inputs. With the same weights a child on the
supernet computes what models/nasnet.py builds for it (tests/unit check this).

Batch normalisation keeps no running statistics (each child normalises with its own
batch's, in training and when scored), as children of one supernet would disagree on
them; its affine weights are shared. No auxiliary head and no drop-path while searching.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models.common import ReLUConvBN
from ..models.nasnet import OPERATIONS, parse_cell


def _batch_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, None, None, weight, bias, training=True)


def _no_running_stats(module: nn.Module) -> nn.Module:
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.track_running_stats = False
            bn.running_mean = bn.running_var = bn.num_batches_tracked = None
    return module


class SharedPreprocess(nn.Module):
    """ReLU → 1×1 conv (or factorized reduction) → BN reading a cell's output, whose
    input weights hold one ``block``-wide slice per block that cell could output."""

    def __init__(self, input_blocks: int, block: int, c: int, reduce: bool) -> None:
        super().__init__()
        self.block, self.reduce = block, reduce
        halves = (c // 2, c - c // 2) if reduce else (c,)
        self.convs = nn.ParameterList()
        for out in halves:
            weight = nn.Parameter(torch.empty(out, input_blocks * block, 1, 1))
            nn.init.kaiming_uniform_(weight, a=5 ** 0.5)  # nn.Conv2d's default
            self.convs.append(weight)
        self.bn_weight = nn.Parameter(torch.ones(c))
        self.bn_bias = nn.Parameter(torch.zeros(c))

    def columns(self, blocks: Sequence[int], device: torch.device) -> torch.Tensor:
        return torch.cat([torch.arange(j * self.block, (j + 1) * self.block, device=device)
                          for j in blocks])

    def forward(self, x: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
        columns = self.columns(blocks, x.device)
        x = F.relu(x)
        if self.reduce:
            shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
            out = torch.cat([F.conv2d(x, self.convs[0].index_select(1, columns), stride=2),
                             F.conv2d(shifted, self.convs[1].index_select(1, columns),
                                      stride=2)], dim=1)
        else:
            out = F.conv2d(x, self.convs[0].index_select(1, columns))
        return _batch_norm(out, self.bn_weight, self.bn_bias)


class SharedCell(nn.Module):
    """Every choice of one cell position: ops[block][slot][op] (and, in a reduction cell,
    strided[block][slot][op] for reading the cell's inputs), projections[block]."""

    def __init__(self, blocks: int, prev_prev: tuple[int, int], prev: tuple[int, int], c: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.blocks, self.reduction = blocks, reduction
        self.pre0 = SharedPreprocess(*prev_prev, c, reduction_prev)
        self.pre1 = SharedPreprocess(*prev, c, False)

        def choices(stride: int) -> nn.ModuleList:
            return nn.ModuleList(
                nn.ModuleList(nn.ModuleDict({name: _no_running_stats(build(c, stride))
                                             for name, build in OPERATIONS.items()})
                              for _ in range(2))
                for _ in range(blocks))

        self.ops = choices(1)
        self.strided = choices(2) if reduction else None
        self.projections = nn.ModuleList(_no_running_stats(ReLUConvBN(2 * c, c, 1))
                                         for _ in range(blocks))

    def op(self, block: int, slot: int, name: str, source: int) -> nn.Module:
        if self.reduction and source < 2:
            return self.strided[block][slot][name]
        return self.ops[block][slot][name]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, blocks0: Sequence[int],
                blocks1: Sequence[int], cell: Sequence[Mapping[str, Any]]
                ) -> tuple[torch.Tensor, list[int]]:
        """The cell's output and which of its blocks it concatenates."""
        states = [self.pre0(s0, blocks0), self.pre1(s1, blocks1)]
        for j, block in enumerate(cell):
            a, b = (self.op(j, slot, name, source)(states[source])
                    for slot, (source, name) in enumerate(zip(block["inputs"], block["ops"])))
            states.append(self.projections[j](torch.cat([a, b], dim=1))
                          if block["combine"] == "concat" else a + b)
        read = {i - 2 for block in cell for i in block["inputs"] if i >= 2}
        unused = [j for j in range(len(cell)) if j not in read]
        return torch.cat([states[2 + j] for j in unused], dim=1), unused


class NasnetSupernet(nn.Module):
    """Every child of a nasnet space with the given options, on shared weights."""

    def __init__(self, options: Mapping[str, Any], in_channels: int, num_classes: int,
                 stem_multiplier: int = 3) -> None:
        super().__init__()
        self.blocks = int(options.get("blocks", 5))
        cells = int(options.get("cells", 2))
        filters = int(options.get("filters", 16))
        c_stem = stem_multiplier * filters
        self.stem_conv = nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False)
        self.stem_bn_weight = nn.Parameter(torch.ones(c_stem))
        self.stem_bn_bias = nn.Parameter(torch.zeros(c_stem))
        # (input blocks, block width) of what a cell reads: the stem is one block
        prev_prev = prev = (1, c_stem)
        c, reduction_prev = filters, False
        self.kinds: list[bool] = []
        self.cells = nn.ModuleList()
        for stage in range(3):
            for is_reduction in ([True] if stage > 0 else []) + [False] * cells:
                if is_reduction:
                    c *= 2
                self.cells.append(SharedCell(self.blocks, prev_prev, prev, c, is_reduction,
                                             reduction_prev))
                self.kinds.append(is_reduction)
                prev_prev, prev, reduction_prev = prev, (self.blocks, c), is_reduction
        self.width = c
        self.classifier = nn.Linear(self.blocks * c, num_classes)

    def forward(self, x: torch.Tensor, canonical: Mapping[str, Any]) -> torch.Tensor:
        normal = parse_cell(canonical.get("normal"), "normal", self.blocks)
        reduction = parse_cell(canonical.get("reduction"), "reduction", self.blocks)
        s0 = s1 = _batch_norm(self.stem_conv(x), self.stem_bn_weight, self.stem_bn_bias)
        b0 = b1 = [0]  # which input blocks of the next layer s0 and s1 fill
        for cell, is_reduction in zip(self.cells, self.kinds):
            out, unused = cell(s0, s1, b0, b1, reduction if is_reduction else normal)
            s0, s1, b0, b1 = s1, out, b1, unused
        features = s1.mean(dim=(2, 3))
        columns = torch.cat([torch.arange(j * self.width, (j + 1) * self.width,
                                          device=x.device) for j in b1])
        return F.linear(features, self.classifier.weight.index_select(1, columns),
                        self.classifier.bias)

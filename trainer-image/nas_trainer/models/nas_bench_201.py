"""The NAS-Bench-201 cell network (Dong & Yang, ICLR 2020).

A 3×3 conv stem (C channels) + BN; three stages of N cells with C, 2C, 4C channels,
joined by residual reduction blocks (stride 2); BN + ReLU, global average pool, linear.
Defaults are the benchmark's (C=16, N=5); smaller N trains faster for a search.

A cell has 4 nodes; node j is the sum over i < j of op_{j<-i}(node i), node 3 is the
output. Operations: none (the edge is absent), skip_connect, nor_conv_1x1 and
nor_conv_3x3 (ReLU-Conv-BN), avg_pool_3x3.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch
from torch import nn

from .common import ReLUConvBN, require

EDGES = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
OPERATIONS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def make_op(name: str, c: int) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3)
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False)


class Cell(nn.Module):
    def __init__(self, edges: Mapping[str, str], c: int) -> None:
        super().__init__()
        # "none" edges are left out: a node whose every edge is none is zero.
        self.edges = [(int(k[0]), int(k[-1])) for k in EDGES if edges[k] != "none"]
        self.ops = nn.ModuleList(make_op(edges[k], c) for k in EDGES if edges[k] != "none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        for (to, frm), op in zip(self.edges, self.ops):
            source = nodes[frm]
            if source is None:
                continue
            out = op(source)
            nodes[to] = out if nodes[to] is None else nodes[to] + out
        return nodes[3] if nodes[3] is not None else torch.zeros_like(x)


class ResidualReduction(nn.Module):
    """The benchmark's basic residual block between stages (stride 2, channels ×2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True),
                                      nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NASBench201Network(nn.Module):
    def __init__(self, edges: Mapping[str, str], in_channels: int, num_classes: int,
                 channels: int = 16, cells_per_stage: int = 5) -> None:
        super().__init__()
        c = channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(c)]
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(Cell(edges, c) for _ in range(cells_per_stage))
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def parse_edges(canonical: Mapping[str, Any]) -> dict[str, str]:
    """Edges from `edges`, or else parsed from the benchmark's `arch_str`."""
    edges = canonical.get("edges")
    if edges is None and isinstance(canonical.get("arch_str"), str):
        # "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|": node j's incoming edges, in order.
        edges = {}
        for j, node in enumerate(canonical["arch_str"].split("+"), start=1):
            for token in re.findall(r"([a-z_0-9]+)~(\d)", node):
                edges[f"{j}<-{token[1]}"] = token[0]
    require(isinstance(edges, Mapping), "nas-bench-201 canonical form needs 'edges'")
    require(set(edges) == set(EDGES),
            f"nas-bench-201 edges must be exactly {list(EDGES)} (got {sorted(edges)})")
    for key in EDGES:
        require(edges[key] in OPERATIONS,
                f"nas-bench-201 edge {key}: operation must be one of {list(OPERATIONS)} "
                f"(got {edges[key]!r})")
    return dict(edges)


def build_nas_bench_201(canonical: Mapping[str, Any], options: Mapping[str, Any],
                        num_classes: int, input_shape: tuple[int, ...]) -> NASBench201Network:
    channels = int(options.get("channels", 16))
    cells = int(options.get("cells_per_stage", options.get("cells", 5)))
    require(channels >= 1 and cells >= 1,
            f"nas-bench-201 needs channels >= 1 and cells_per_stage >= 1 "
            f"(got {channels}, {cells})")
    return NASBench201Network(parse_edges(canonical), input_shape[0], num_classes,
                              channels=channels, cells_per_stage=cells)

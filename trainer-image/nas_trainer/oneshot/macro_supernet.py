"""The macro-cnn space as one network whose weights every child shares (ENAS, Pham et al.
2018, §2.3 for the macro search space).

Layer i holds one convolution of the largest shape the space allows: 64 filters, a 7×7
kernel, and one 64-channel input block per earlier layer (or the image's channels when
it reads the image). A child's layer uses the centre filter_height × filter_width of
that kernel, its first `filters` output channels, and the input blocks of the layers it
reads, each cut to that layer's width; its stride is applied to the same weights. The
classifier likewise holds a 64-wide block per layer. So a child's convolution is a slice
of the shared one, and training a child trains those slices for every child that uses
them.

Batch normalisation keeps no running statistics (each child normalises with its own
batch's, in training and when scored), as children of one supernet would disagree on
them; its affine weights are shared per output channel.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models.common import concat_padded
from ..models.macro_cnn import parse_layers
from ..spaces.macro_cnn import FILTER_COUNTS, FILTER_SIZES

MAX_FILTERS = max(FILTER_COUNTS)
MAX_KERNEL = max(FILTER_SIZES)


class SharedLayer(nn.Module):
    """Conv → BN → ReLU whose weights are the largest the layer can have."""

    def __init__(self, input_blocks: int, block: int) -> None:
        super().__init__()
        self.block = block  # channels per input block (64, or the image's channels)
        self.weight = nn.Parameter(torch.empty(MAX_FILTERS, input_blocks * block,
                                               MAX_KERNEL, MAX_KERNEL))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bn_weight = nn.Parameter(torch.ones(MAX_FILTERS))
        self.bn_bias = nn.Parameter(torch.zeros(MAX_FILTERS))

    def forward(self, x: torch.Tensor, spec: Mapping[str, Any],
                input_widths: Sequence[tuple[int, int]]) -> torch.Tensor:
        """``input_widths``: (block, channels) of each part of ``x``, in order."""
        kh, kw = spec["filter_height"], spec["filter_width"]
        top, left = (MAX_KERNEL - kh) // 2, (MAX_KERNEL - kw) // 2
        channels = torch.cat([
            torch.arange(block * self.block, block * self.block + width, device=x.device)
            for block, width in input_widths])
        weight = self.weight[:spec["filters"]].index_select(1, channels)
        weight = weight[:, :, top:top + kh, left:left + kw]
        out = F.conv2d(x, weight, stride=spec["stride"], padding=(kh // 2, kw // 2))
        out = F.batch_norm(out, None, None, self.bn_weight[:spec["filters"]],
                           self.bn_bias[:spec["filters"]], training=True)
        return F.relu(out)


class MacroSupernet(nn.Module):
    """Every child of a macro-cnn space with ``layers`` layers, on shared weights."""

    def __init__(self, layers: int, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.layers = nn.ModuleList(
            [SharedLayer(1, in_channels)] +
            [SharedLayer(i, MAX_FILTERS) for i in range(1, layers)])
        # layer i > 0 reading the image: its own input weights for the image's channels
        self.image_layers = nn.ModuleList(
            [SharedLayer(1, in_channels) for _ in range(1, layers)])
        self.classifier = nn.Linear(layers * MAX_FILTERS, num_classes)

    def forward(self, x: torch.Tensor, canonical: Mapping[str, Any]) -> torch.Tensor:
        specs = parse_layers(canonical)
        if len(specs) != len(self.layers):
            raise ValueError(f"the supernet has {len(self.layers)} layers, the child "
                             f"{len(specs)}")
        outputs: list[torch.Tensor] = []
        for i, spec in enumerate(specs):
            if spec["inputs"]:
                source = concat_padded([outputs[j] for j in spec["inputs"]])
                widths = [(j, specs[j]["filters"]) for j in spec["inputs"]]
                layer = self.layers[i]
            else:
                source, widths = x, [(0, self.in_channels)]
                layer = self.layers[0] if i == 0 else self.image_layers[i - 1]
            outputs.append(layer(source, spec, widths))
        read = {j for spec in specs for j in spec["inputs"]}
        unused = [i for i in range(len(specs)) if i not in read]
        features = concat_padded([outputs[i] for i in unused]).mean(dim=(2, 3))
        columns = torch.cat([
            torch.arange(i * MAX_FILTERS, i * MAX_FILTERS + specs[i]["filters"],
                         device=x.device) for i in unused])
        weight = self.classifier.weight.index_select(1, columns)
        return F.linear(features, weight, self.classifier.bias)

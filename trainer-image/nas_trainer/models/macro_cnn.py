"""The macro CNN of Zoph & Le (2017, §3.1/§3.3), built from its canonical form.

Each layer is a convolution with the chosen filter height × width, number of filters and
stride, then BN and ReLU. A layer's input is the depth-concatenation of the layers its
anchor points chose (smaller maps zero-padded to the largest); layer 0 and any layer
with no chosen input read the image. Every output no layer reads is concatenated
(zero-padded likewise) into the classifier: global average pool, then linear.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .common import ArchitectureError, concat_padded, conv_bn_relu, require


class MacroCNN(nn.Module):
    def __init__(self, layers: list[dict[str, Any]], in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.inputs: list[list[int]] = [list(layer["inputs"]) for layer in layers]
        widths: list[int] = []
        blocks = []
        for spec, inputs in zip(layers, self.inputs):
            c_in = sum(widths[j] for j in inputs) if inputs else in_channels
            kernel = (spec["filter_height"], spec["filter_width"])
            blocks.append(conv_bn_relu(c_in, spec["filters"], kernel, spec["stride"]))
            widths.append(spec["filters"])
        self.layers = nn.ModuleList(blocks)
        read = {j for inputs in self.inputs for j in inputs}
        self.unused = [i for i in range(len(layers)) if i not in read]
        self.classifier = nn.Linear(sum(widths[i] for i in self.unused), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for layer, inputs in zip(self.layers, self.inputs):
            source = concat_padded([outputs[j] for j in inputs]) if inputs else x
            outputs.append(layer(source))
        features = concat_padded([outputs[i] for i in self.unused])
        return self.classifier(features.mean(dim=(2, 3)))


def parse_layers(canonical: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Validate the canonical form and return its layers with defaults filled in."""
    layers = canonical.get("layers")
    require(isinstance(layers, list) and len(layers) > 0,
            "macro-cnn canonical form needs a non-empty 'layers' list")
    parsed = []
    for i, layer in enumerate(layers):
        require(isinstance(layer, Mapping), f"macro-cnn layer {i} must be an object")
        try:
            spec = {
                "filter_height": int(layer["filter_height"]),
                "filter_width": int(layer["filter_width"]),
                "filters": int(layer["filters"]),
                "stride": int(layer.get("stride", 1)),
                "inputs": [int(j) for j in layer.get("inputs", [])],
            }
        except (KeyError, TypeError, ValueError) as err:
            raise ArchitectureError(f"macro-cnn layer {i} is malformed: {err!r}") from err
        for key in ("filter_height", "filter_width"):
            require(spec[key] >= 1 and spec[key] % 2 == 1,
                    f"macro-cnn layer {i}: {key} must be a positive odd number (got {spec[key]})")
        require(spec["filters"] >= 1, f"macro-cnn layer {i}: filters must be >= 1")
        require(spec["stride"] >= 1, f"macro-cnn layer {i}: stride must be >= 1")
        require(all(0 <= j < i for j in spec["inputs"]),
                f"macro-cnn layer {i}: inputs must be earlier layers (got {spec['inputs']})")
        require(len(set(spec["inputs"])) == len(spec["inputs"]),
                f"macro-cnn layer {i}: inputs repeat a layer ({spec['inputs']})")
        parsed.append(spec)
    return parsed


def build_macro_cnn(canonical: Mapping[str, Any], num_classes: int,
                    input_shape: tuple[int, ...]) -> MacroCNN:
    return MacroCNN(parse_layers(canonical), in_channels=input_shape[0], num_classes=num_classes)

"""Zoph & Le's CNN space (§3.1, §3.3): per layer filter height, width, number of filters,
optionally stride, and skip connections chosen at anchor points."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .base import Anchor, Decision, SearchSpace, require_option

FILTER_SIZES = (1, 3, 5, 7)
FILTER_COUNTS = (24, 36, 48, 64)
STRIDES = (1, 2, 3)
MAX_LAYERS = 100


@dataclass(frozen=True)
class MacroCnnOptions:
    layers: int = 6
    strides: bool = False
    skips: bool = True

    def __post_init__(self) -> None:
        require_option(self.layers >= 1, "layers", f"layers must be >= 1 (got {self.layers})")
        # Skip decisions grow as layers²: a typo such as 1000 would make 500,000 decisions
        # (and Trial objects too big to store), not a search. The CRD has the same maximum.
        require_option(self.layers <= MAX_LAYERS, "layers",
                       f"layers must be <= {MAX_LAYERS} (got {self.layers})")


class MacroCnnSpace(SearchSpace):
    name = "macro-cnn"
    Options = MacroCnnOptions

    def _build_decisions(self) -> list[Decision]:
        opts: MacroCnnOptions = self.parsed_options
        decisions = []
        for i in range(opts.layers):
            decisions += [Decision(f"layers[{i}].filter_height", FILTER_SIZES, layer=i),
                          Decision(f"layers[{i}].filter_width", FILTER_SIZES, layer=i),
                          Decision(f"layers[{i}].filters", FILTER_COUNTS, layer=i)]
            if opts.strides:
                decisions.append(Decision(f"layers[{i}].stride", STRIDES, layer=i))
            if opts.skips:
                decisions += [Decision(f"layers[{i}].input_from[{j}]", (False, True), layer=i,
                                       anchor=Anchor(layer=i, earlier=j)) for j in range(i)]
        return decisions

    def canonical(self, tokens: Sequence[int]) -> dict[str, Any]:
        values = self.values(tokens)
        layers = []
        for i in range(self.parsed_options.layers):
            layers.append({
                "filter_height": values[f"layers[{i}].filter_height"],
                "filter_width": values[f"layers[{i}].filter_width"],
                "filters": values[f"layers[{i}].filters"],
                "stride": values.get(f"layers[{i}].stride", 1),
                "inputs": [j for j in range(i) if values.get(f"layers[{i}].input_from[{j}]")],
            })
        return {"layers": layers}

    def _values_from_canonical(self, canonical: Mapping[str, Any]) -> dict[str, Any]:
        opts: MacroCnnOptions = self.parsed_options
        layers = canonical.get("layers")
        if not isinstance(layers, list) or len(layers) != opts.layers:
            raise ValueError(f"layers must be a list of {opts.layers} layers "
                             f"(got {layers!r:.80})")
        values: dict[str, Any] = {}
        for i, layer in enumerate(layers):
            if not isinstance(layer, Mapping):
                raise ValueError(f"layers[{i}] must be an object (got {layer!r})")
            keys = ["filter_height", "filter_width", "filters"] + (
                ["stride"] if opts.strides else [])
            for key in keys:
                if key not in layer:
                    raise ValueError(f"layers[{i}].{key} is missing")
                values[f"layers[{i}].{key}"] = layer[key]
            if not opts.strides and layer.get("stride", 1) != 1:
                raise ValueError(f"layers[{i}].stride must be 1 when the space does not "
                                 f"predict strides (got {layer['stride']!r})")
            inputs = layer.get("inputs", [])
            if not isinstance(inputs, list) or any(
                    isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < i
                    for j in inputs):
                raise ValueError(f"layers[{i}].inputs may only list earlier layers "
                                 f"0..{i - 1} (got {inputs!r})")
            if inputs and not opts.skips:
                raise ValueError(f"layers[{i}].inputs must be empty when the space has no "
                                 f"skip connections (got {inputs!r})")
            if opts.skips:
                for j in range(i):
                    values[f"layers[{i}].input_from[{j}]"] = j in inputs
        return values

"""NASNet's cell space (Zoph et al. 2018, §3): a normal and a reduction cell of B blocks;
each block picks two hidden states, an operation for each, and how to combine them."""
from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Any, Mapping, Sequence

from .base import Decision, SearchSpace, require_option

# The paper's 13 operations, in the names of contract 6.
OPERATIONS = (
    "identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3",
    "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3",
    "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
)
COMBINES = ("add", "concat")
CELLS = ("normal", "reduction")
MAXIMA = {"blocks": 20, "cells": 32, "filters": 1024}


@dataclass(frozen=True)
class NasnetOptions:
    blocks: int = 5
    cells: int = 2       # N: normal cells between reduction cells (used by the trainer)
    filters: int = 16    # F: initial filters (used by the trainer)

    def __post_init__(self) -> None:
        require_option(self.blocks >= 1, "blocks", f"blocks must be >= 1 (got {self.blocks})")
        require_option(self.cells >= 1, "cells", f"cells must be >= 1 (got {self.cells})")
        require_option(self.filters >= 2, "filters", f"filters must be >= 2 (got {self.filters})")
        # Upper bounds as the CRD's, far above the paper's (B=5, N<=7, F<=168): a typo is
        # refused instead of sampled and built.
        for key, maximum in MAXIMA.items():
            value = getattr(self, key)
            require_option(value <= maximum, key, f"{key} must be <= {maximum} (got {value})")


class NasnetSpace(SearchSpace):
    """Token order per block follows the paper: input 1, input 2, op 1, op 2, combine.

    Equivalence: the two (input, operation) pairs of a block are unordered (addition
    commutes; a concatenation only permutes channels), so the canonical form lists them
    sorted and both orders share a hash.
    """

    name = "nasnet"
    Options = NasnetOptions

    def _build_decisions(self) -> list[Decision]:
        decisions = []
        for cell in CELLS:
            for b in range(self.parsed_options.blocks):
                states = tuple(range(2 + b))  # the cell's two inputs, then earlier blocks
                decisions += [Decision(f"{cell}[{b}].inputs[0]", states),
                              Decision(f"{cell}[{b}].inputs[1]", states),
                              Decision(f"{cell}[{b}].ops[0]", OPERATIONS),
                              Decision(f"{cell}[{b}].ops[1]", OPERATIONS),
                              Decision(f"{cell}[{b}].combine", COMBINES)]
        return decisions

    def canonical(self, tokens: Sequence[int]) -> dict[str, Any]:
        values = self.values(tokens)
        result: dict[str, Any] = {}
        for cell in CELLS:
            blocks = []
            for b in range(self.parsed_options.blocks):
                pairs = sorted(((values[f"{cell}[{b}].inputs[{k}]"], values[f"{cell}[{b}].ops[{k}]"])
                                for k in range(2)), key=lambda p: (p[0], OPERATIONS.index(p[1])))
                blocks.append({"inputs": [p[0] for p in pairs], "ops": [p[1] for p in pairs],
                               "combine": values[f"{cell}[{b}].combine"]})
            result[cell] = blocks
        return result

    def _values_from_canonical(self, canonical: Mapping[str, Any]) -> dict[str, Any]:
        blocks = self.parsed_options.blocks
        values: dict[str, Any] = {}
        for cell in CELLS:
            given = canonical.get(cell)
            if not isinstance(given, list) or len(given) != blocks:
                raise ValueError(f"{cell} must be a list of {blocks} blocks (got {given!r:.80})")
            for b, block in enumerate(given):
                if not isinstance(block, Mapping):
                    raise ValueError(f"{cell}[{b}] must be an object (got {block!r})")
                for key in ("inputs", "ops"):
                    pair = block.get(key)
                    if not isinstance(pair, list) or len(pair) != 2:
                        raise ValueError(f"{cell}[{b}].{key} must be a list of two (got {pair!r})")
                    for k in range(2):
                        values[f"{cell}[{b}].{key}[{k}]"] = pair[k]
                values[f"{cell}[{b}].combine"] = block.get("combine")
        return values

    def size(self) -> int:
        per_cell = 1
        for b in range(self.parsed_options.blocks):
            pairs = (2 + b) * len(OPERATIONS)
            per_cell *= comb(pairs + 1, 2) * len(COMBINES)  # unordered pairs with repetition
        return per_cell ** 2

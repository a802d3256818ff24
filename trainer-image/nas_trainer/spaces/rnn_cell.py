"""Zoph & Le's recurrent-cell space (§3.4): a full binary tree with `base` leaves; each node
picks a combination and an activation, plus where the cell memory c is injected and read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .base import Decision, SearchSpace, require_option

COMBINES = ("add", "mul")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
MAX_BASE = 64


@dataclass(frozen=True)
class RnnCellOptions:
    base: int = 8

    def __post_init__(self) -> None:
        require_option(self.base >= 2, "base", f"base must be >= 2 (got {self.base})")
        # As the CRD's maximum (the paper's base is 8): a typo is refused, not built.
        require_option(self.base <= MAX_BASE, "base",
                       f"base must be <= {MAX_BASE} (got {self.base})")


class RnnCellSpace(SearchSpace):
    """Nodes are numbered leaves first, root last (2*base-1 nodes). The memory is injected
    into, and c_t read from, a node below the root (the root's output is h_t)."""

    name = "rnn-cell"
    Options = RnnCellOptions

    @property
    def node_count(self) -> int:
        return 2 * self.parsed_options.base - 1

    def _build_decisions(self) -> list[Decision]:
        below_root = tuple(range(self.node_count - 1))
        decisions = []
        for i in range(self.node_count):
            decisions += [Decision(f"nodes[{i}].combine", COMBINES),
                          Decision(f"nodes[{i}].activation", ACTIVATIONS)]
        decisions += [Decision("cell_inject.combine", COMBINES),
                      Decision("cell_inject.activation", ACTIVATIONS),
                      Decision("cell_inject_node", below_root),
                      Decision("cell_output_node", below_root)]
        return decisions

    def canonical(self, tokens: Sequence[int]) -> dict[str, Any]:
        values = self.values(tokens)
        return {
            "base": self.parsed_options.base,
            "nodes": [{"combine": values[f"nodes[{i}].combine"],
                       "activation": values[f"nodes[{i}].activation"]}
                      for i in range(self.node_count)],
            "cell_inject": {"combine": values["cell_inject.combine"],
                            "activation": values["cell_inject.activation"]},
            "cell_inject_node": values["cell_inject_node"],
            "cell_output_node": values["cell_output_node"],
        }

    def _values_from_canonical(self, canonical: Mapping[str, Any]) -> dict[str, Any]:
        base = canonical.get("base", self.parsed_options.base)
        if base != self.parsed_options.base:
            raise ValueError(f"base must be {self.parsed_options.base} (got {base!r})")
        nodes = canonical.get("nodes")
        if not isinstance(nodes, list) or len(nodes) != self.node_count:
            raise ValueError(f"nodes must be a list of {self.node_count} nodes (got {nodes!r:.80})")
        inject = canonical.get("cell_inject")
        if not isinstance(inject, Mapping):
            raise ValueError(f"cell_inject must be an object (got {inject!r})")
        values: dict[str, Any] = {}
        for where, node in [*((f"nodes[{i}]", n) for i, n in enumerate(nodes)),
                            ("cell_inject", inject)]:
            if not isinstance(node, Mapping):
                raise ValueError(f"{where} must be an object (got {node!r})")
            values[f"{where}.combine"] = node.get("combine")
            values[f"{where}.activation"] = node.get("activation")
        values["cell_inject_node"] = canonical.get("cell_inject_node")
        values["cell_output_node"] = canonical.get("cell_output_node")
        return values

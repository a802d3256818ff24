"""The recurrent tree cell of Zoph & Le (2017, §3.4) inside a word-level language model.

The cell is a full binary tree with `base` leaves, nodes numbered leaves first and root
last (level by level, each node combining two consecutive nodes of the level below).
Leaf i computes act_i(W_i x_t ∘_i U_i h_(t-1)); an inner node combines its two children
with ∘ (add or elementwise multiply) then applies its activation. The output o of
`cell_inject_node` is replaced by act_inj(o ∘_inj c_(t-1)); the output of
`cell_output_node` becomes the cell memory c_t, and the root's output is h_t.

The language model: embedding → dropout → the cell unrolled over the sequence → dropout
→ linear decoder (weights tied to the embedding when their sizes match and tying is on).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from .common import ArchitectureError, require

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}
COMBINES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": torch.add,
    "mul": torch.mul,
}


def tree_children(base: int) -> list[tuple[int, int]]:
    """Children of each inner node (numbered base, base+1, ..., root last): each level
    pairs consecutive nodes of the level below; an odd one out moves up a level."""
    level, children, next_id = list(range(base)), [], base
    while len(level) > 1:
        upper = []
        for k in range(0, len(level) - 1, 2):
            children.append((level[k], level[k + 1]))
            upper.append(next_id)
            next_id += 1
        if len(level) % 2:
            upper.append(level[-1])
        level = upper
    return children


class TreeCell(nn.Module):
    def __init__(self, spec: Mapping[str, Any], input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.base, self.hidden_size = spec["base"], hidden_size
        self.nodes = [(n["combine"], n["activation"]) for n in spec["nodes"]]
        self.children_of = tree_children(self.base)
        self.inject = (spec["cell_inject"]["combine"], spec["cell_inject"]["activation"])
        self.inject_node, self.output_node = spec["cell_inject_node"], spec["cell_output_node"]
        # W_i x_t for every leaf in one product (applied to the whole sequence at once),
        # U_i h_(t-1) for every leaf in another.
        self.input_proj = nn.Linear(input_size, self.base * hidden_size)
        self.hidden_proj = nn.Linear(hidden_size, self.base * hidden_size, bias=False)

    def step(self, wx: torch.Tensor, h: torch.Tensor, c: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step; wx = input_proj(x_t) of shape (batch, base * hidden)."""
        wx = wx.view(-1, self.base, self.hidden_size)
        uh = self.hidden_proj(h).view(-1, self.base, self.hidden_size)
        values: list[torch.Tensor] = []
        for i, (combine, activation) in enumerate(self.nodes):
            if i < self.base:
                a, b = wx[:, i], uh[:, i]
            else:
                a, b = (values[k] for k in self.children_of[i - self.base])
            out = ACTIVATIONS[activation](COMBINES[combine](a, b))
            if i == self.inject_node:
                out = ACTIVATIONS[self.inject[1]](COMBINES[self.inject[0]](out, c))
            values.append(out)
        return values[-1], values[self.output_node]

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x: (batch, time, input_size) → outputs (batch, time, hidden), final (h, c)."""
        h, c = state
        wx = self.input_proj(x)
        outputs = []
        for t in range(x.shape[1]):
            h, c = self.step(wx[:, t], h, c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)


class RNNLanguageModel(nn.Module):
    """forward(tokens (batch, time), state) -> (logits (batch, time, vocab), state)."""

    def __init__(self, spec: Mapping[str, Any], vocab_size: int, embedding_size: int = 200,
                 hidden_size: int = 200, dropout: float = 0.2, tie_weights: bool = True) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.drop = nn.Dropout(dropout)
        self.cell = TreeCell(spec, embedding_size, hidden_size)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights and embedding_size == hidden_size:
            self.decoder.weight = self.embedding.weight

    def initial_state(self, batch: int, device: torch.device | str = "cpu"
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch, self.hidden_size, device=device)
        return zeros, zeros.clone()

    def forward(self, tokens: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if state is None:
            state = self.initial_state(tokens.shape[0], tokens.device)
        out, state = self.cell(self.drop(self.embedding(tokens)), state)
        return self.decoder(self.drop(out)), state


def parse_cell(canonical: Mapping[str, Any]) -> dict[str, Any]:
    try:
        base = int(canonical["base"])
        nodes = list(canonical["nodes"])
        inject = dict(canonical["cell_inject"])
        inject_node = int(canonical["cell_inject_node"])
        output_node = int(canonical["cell_output_node"])
    except (KeyError, TypeError, ValueError) as err:
        raise ArchitectureError(f"rnn-cell canonical form is malformed: {err!r}") from err
    require(base >= 2, f"rnn-cell base must be >= 2 (got {base})")
    require(len(nodes) == 2 * base - 1,
            f"rnn-cell with base {base} needs {2 * base - 1} nodes (got {len(nodes)})")
    for i, node in enumerate([*nodes, inject]):
        where = "cell_inject" if i == len(nodes) else f"node {i}"
        require(isinstance(node, Mapping) and node.get("combine") in COMBINES
                and node.get("activation") in ACTIVATIONS,
                f"rnn-cell {where}: needs combine in {list(COMBINES)} and activation in "
                f"{list(ACTIVATIONS)} (got {node})")
    for name, index in (("cell_inject_node", inject_node), ("cell_output_node", output_node)):
        require(0 <= index < len(nodes), f"rnn-cell {name} must be a node index (got {index})")
    return {"base": base, "nodes": nodes, "cell_inject": inject,
            "cell_inject_node": inject_node, "cell_output_node": output_node}


def build_rnn_language_model(canonical: Mapping[str, Any], vocab_size: int,
                             embedding_size: int = 200, hidden_size: int = 200,
                             dropout: float = 0.2, tie_weights: bool = True) -> RNNLanguageModel:
    return RNNLanguageModel(parse_cell(canonical), vocab_size, embedding_size, hidden_size,
                            dropout, tie_weights)

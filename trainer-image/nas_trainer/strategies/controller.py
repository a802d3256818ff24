"""The RNN controller of Zoph & Le (2017): an LSTM that emits one token per decision.

At each step the LSTM's top hidden state goes through the decision's softmax head; the
chosen token is embedded and fed to the next step. Skip-connection decisions (anchors,
macro-cnn) use the paper's attention instead: after a layer's own decisions the LSTM takes
an anchor step giving h_i, and P(layer j feeds layer i) = sigmoid(vᵀ tanh(W_prev h_j +
W_curr h_i)). The next input is the mean of the chosen layers' anchor states (as in
ENAS), or the start input when the layer chose none (it reads the image).

Two ways through the network, kept numerically equal (tests check it):
- drawing runs step by step, each input depending on the token just drawn; it is done
  in numpy by `sampler.NumpySampler` on views of these weights, because for a network
  this small torch's per-operation overhead would cost several times more per step;
- `score` computes log-probabilities and entropies of given token sequences, with
  autograd, teacher-forced: the inputs of a run of softmax decisions are known from the
  tokens, so each run (the whole sequence when there are no anchors, one layer
  otherwise) is one fused LSTM call and one matrix product for all its heads. That keeps
  a policy update cheap.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..spaces.base import Decision

INIT_RANGE = 0.08  # the paper: weights uniform in [-0.08, 0.08]
MASKED = -1e9      # logit of padding choices (finite, so 0 * logp stays 0)


@dataclass(frozen=True)
class Step:
    """One LSTM step: a softmax decision, or a layer's anchor step followed by that
    layer's skip decisions."""

    kind: str                                # "choice" | "anchor"
    decision: int = -1                       # token position (choice)
    skips: tuple[tuple[int, int], ...] = ()  # (token position, earlier layer) per skip


@dataclass(frozen=True)
class Segment:
    """Steps whose inputs the tokens determine: softmax decisions, then an anchor step
    (absent for a space without anchors, which is one segment)."""

    choices: tuple[int, ...]
    anchor: Step | None


def build_program(decisions: Sequence[Decision]) -> list[Step]:
    """The step sequence: decisions in order, plus an anchor step ending each layer when
    the space has skip-connection (anchor) decisions."""
    if all(d.anchor is None for d in decisions):
        return [Step("choice", decision=i) for i in range(len(decisions))]
    layers: list[tuple[list[int], list[tuple[int, int]]]] = []
    for i, d in enumerate(decisions):
        if d.layer is None:
            raise ValueError(f"decision {d.name}: spaces with anchors must group every "
                             f"decision by layer")
        if d.layer == len(layers):
            layers.append(([], []))
        elif d.layer != len(layers) - 1:
            raise ValueError(f"decision {d.name}: layers must be numbered 0, 1, ... in order")
        plain, skips = layers[-1]
        if d.anchor is None:
            if skips:
                raise ValueError(f"decision {d.name}: a layer's skip decisions must come last")
            plain.append(i)
        else:
            if d.anchor.layer != d.layer or not 0 <= d.anchor.earlier < d.layer:
                raise ValueError(f"decision {d.name}: an anchor must point to an earlier layer")
            skips.append((i, d.anchor.earlier))
    steps: list[Step] = []
    for plain, skips in layers:
        steps += [Step("choice", decision=i) for i in plain]
        steps.append(Step("anchor", skips=tuple(skips)))
    return steps


def build_segments(steps: Sequence[Step]) -> list[Segment]:
    segments, pending = [], []
    for step in steps:
        if step.kind == "choice":
            pending.append(step.decision)
        else:
            segments.append(Segment(tuple(pending), step))
            pending = []
    if pending:
        segments.append(Segment(tuple(pending), None))
    return segments


class ControllerPolicy(nn.Module):
    """`temperature` and `tanh_constant` shape every logit as ENAS does (Pham et al.
    2018): l / temperature, then C·tanh(·) when C > 0. The bound C keeps each choice's
    probability at least e^{-2C} times the likeliest one's, so the policy cannot
    collapse onto one architecture; 1 and 0 (the defaults) leave the logits as they are."""

    def __init__(self, decisions: Sequence[Decision], hidden_size: int = 35,
                 num_layers: int = 2, generator: torch.Generator | None = None,
                 temperature: float = 1.0, tanh_constant: float = 0.0) -> None:
        super().__init__()
        self.temperature, self.tanh_constant = temperature, tanh_constant
        self.num_tokens = len(decisions)
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.steps = build_program(decisions)
        self.segments = build_segments(self.steps)
        self.has_anchors = any(step.kind == "anchor" for step in self.steps)
        self.sizes = [len(d.choices) for d in decisions]
        # Every softmax decision owns a slice of one shared head and embedding table.
        softmax_positions = [i for i, d in enumerate(decisions) if d.anchor is None]
        self.offsets = [0] * len(decisions)
        total = 0
        for i in softmax_positions:
            self.offsets[i] = total
            total += self.sizes[i]
        kmax = max(self.sizes[i] for i in softmax_positions)
        index = torch.zeros(len(decisions), kmax, dtype=torch.long)
        valid = torch.zeros(len(decisions), kmax, dtype=torch.bool)
        for i in softmax_positions:
            index[i, :self.sizes[i]] = torch.arange(self.offsets[i], self.offsets[i] + self.sizes[i])
            valid[i, :self.sizes[i]] = True
        self.choice_index, self.choice_valid = index, valid
        self.offset_tensor = torch.tensor(self.offsets)

        self.start = nn.Parameter(torch.empty(hidden_size))             # input of step 0
        self.embedding = nn.Parameter(torch.empty(total, hidden_size))  # chosen token -> input
        self.head_weight = nn.Parameter(torch.empty(total, hidden_size))
        self.head_bias = nn.Parameter(torch.empty(total))
        # Built on the meta device, so that no draw moves torch's global RNG (a library
        # must not); every parameter is initialised below from `generator`.
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers,
                            device="meta").to_empty(device="cpu")
        if self.has_anchors:
            self.attn_prev = nn.Parameter(torch.empty(hidden_size, hidden_size))
            self.attn_curr = nn.Parameter(torch.empty(hidden_size, hidden_size))
            self.attn_v = nn.Parameter(torch.empty(hidden_size))
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.uniform_(-INIT_RANGE, INIT_RANGE, generator=generator)

    def shape_logits(self, logits: torch.Tensor) -> torch.Tensor:
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.tanh_constant > 0.0:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def score(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (both summed over steps) of each row of `tokens`
        (batch, T) under the current policy, differentiable."""
        batch = tokens.shape[0]
        log_prob = tokens.new_zeros(batch, dtype=torch.float32)
        entropy = tokens.new_zeros(batch, dtype=torch.float32)
        start = self.start.expand(batch, -1)
        x, state = start, None
        anchors: list[torch.Tensor] = []        # h of each finished layer's anchor step
        anchors_prev: list[torch.Tensor] = []   # W_prev h, computed once per layer
        for segment in self.segments:
            positions = torch.tensor(segment.choices, dtype=torch.long)
            # Inputs: x, then the embedding of each token but the last (of all of them
            # when an anchor step follows).
            fed_positions = positions if segment.anchor is not None else positions[:-1]
            fed = self.embedding[self.offset_tensor[fed_positions] + tokens[:, fed_positions]]
            inputs = torch.cat([x.unsqueeze(1), fed], dim=1).transpose(0, 1)  # (S, B, H)
            hidden, state = self.lstm(inputs, state)
            if len(segment.choices):
                step_log_prob, step_entropy = self._softmax_terms(hidden[:len(positions)],
                                                                   positions, tokens)
                log_prob, entropy = log_prob + step_log_prob, entropy + step_entropy
            if segment.anchor is None:
                continue
            h = hidden[-1]
            current = h @ self.attn_curr.T
            chosen = []
            for position, earlier in segment.anchor.skips:
                q = self.shape_logits(torch.tanh(anchors_prev[earlier] + current) @ self.attn_v)
                logp_all = F.log_softmax(torch.stack([torch.zeros_like(q), q], dim=1), dim=-1)
                picks = tokens[:, position]
                log_prob = log_prob + logp_all.gather(1, picks.unsqueeze(1)).squeeze(1)
                entropy = entropy - (logp_all.exp() * logp_all).sum(dim=-1)
                chosen.append(picks)
            x = self._after_anchor(chosen, segment.anchor, anchors, start, h.dtype)
            anchors.append(h)
            anchors_prev.append(h @ self.attn_prev.T)
        return log_prob, entropy

    def _softmax_terms(self, hidden: torch.Tensor, positions: torch.Tensor,
                       tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum over `positions` of log p(token) and of the entropy, all heads at once."""
        steps, batch, _ = hidden.shape
        logits_all = self.shape_logits(F.linear(hidden, self.head_weight, self.head_bias))
        index = self.choice_index[positions].unsqueeze(1).expand(steps, batch, -1)
        valid = self.choice_valid[positions].unsqueeze(1)
        logp_all = F.log_softmax(logits_all.gather(2, index).masked_fill(~valid, MASKED), dim=-1)
        chosen = tokens[:, positions].T.unsqueeze(2)                         # (S, B, 1)
        log_prob = logp_all.gather(2, chosen).squeeze(2).sum(0)
        entropy = -(logp_all.exp() * logp_all).sum(dim=-1).sum(0)
        return log_prob, entropy

    @staticmethod
    def _after_anchor(chosen: list[torch.Tensor], anchor: Step, anchors: list[torch.Tensor],
                      start: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Next input: mean of the chosen layers' anchor states, or the start input."""
        if not chosen:
            return start
        selected = torch.stack(chosen, dim=1).to(dtype)                       # (B, skips)
        sources = torch.stack([anchors[earlier] for _, earlier in anchor.skips])
        count = selected.sum(dim=1, keepdim=True)
        mean = torch.einsum("bs,sbh->bh", selected, sources) / (1.0 + count)
        return torch.where(count > 0, mean, start)

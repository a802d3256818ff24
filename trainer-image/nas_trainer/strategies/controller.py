"""The RNN controller of Zoph & Le (2017): an LSTM that emits one token per decision.

At each step the LSTM's top hidden state goes through the decision's softmax head; the
chosen token is embedded and fed to the next step. Skip-connection decisions (anchors,
macro-cnn) use the paper's attention instead: after a layer's own decisions the LSTM takes
an anchor step giving h_i, and P(layer j feeds layer i) = sigmoid(vᵀ tanh(W_prev h_j +
W_curr h_i)); the next input is then the mean of the chosen anchors' states (as in ENAS).

Two ways through the network, kept numerically identical (tests check it):
- drawing runs step by step, each input depending on the token just drawn; it is done
  in numpy by `sampler.NumpySampler` on views of these weights, because for a network
  this small torch's per-operation overhead would cost ~10x more per step;
- `score` computes log-probabilities and entropies of given token sequences, with
  autograd. Without anchors it is teacher-forced: one fused LSTM call over the whole
  sequence and one matrix product for every head, which keeps a policy update cheap.
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
class _Step:
    """One LSTM step of the program: a softmax decision, or a layer's anchor step
    followed by that layer's skip decisions."""

    kind: str                    # "choice" | "anchor"
    decision: int = -1           # token position (choice)
    skips: tuple[tuple[int, int], ...] = ()  # (token position, earlier layer) per skip


def _program(decisions: Sequence[Decision]) -> tuple[list[_Step], bool]:
    has_anchors = any(d.anchor is not None for d in decisions)
    if not has_anchors:
        return [_Step("choice", decision=i) for i in range(len(decisions))], False
    steps: list[_Step] = []
    layers = []
    for i, d in enumerate(decisions):
        if d.layer is None:
            raise ValueError(f"decision {d.name}: spaces with anchors must group every "
                             f"decision by layer")
        if not layers or layers[-1][0] != d.layer:
            if d.layer != len(layers):
                raise ValueError(f"decision {d.name}: layers must be numbered 0, 1, ... in order")
            layers.append((d.layer, [], []))
        (_, plain, skips) = layers[-1]
        if d.anchor is None:
            if skips:
                raise ValueError(f"decision {d.name}: a layer's skip decisions must come last")
            plain.append(i)
        else:
            if d.anchor.earlier >= len(layers) - 1 or d.anchor.layer != d.layer:
                raise ValueError(f"decision {d.name}: anchor must point to an earlier layer")
            skips.append((i, d.anchor.earlier))
    for _, plain, skips in layers:
        steps += [_Step("choice", decision=i) for i in plain]
        steps.append(_Step("anchor", skips=tuple(skips)))
    return steps, True


class ControllerPolicy(nn.Module):
    def __init__(self, decisions: Sequence[Decision], hidden_size: int = 35,
                 num_layers: int = 2, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.num_tokens = len(decisions)
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.steps, self.has_anchors = _program(decisions)
        sizes = [len(d.choices) for d in decisions]
        softmax_positions = [i for i, d in enumerate(decisions) if d.anchor is None]
        # Every softmax decision owns a slice of one shared head/embedding table.
        offsets = [0] * len(decisions)
        total = 0
        for i in softmax_positions:
            offsets[i] = total
            total += sizes[i]
        kmax = max(sizes[i] for i in softmax_positions)
        index = torch.zeros(len(decisions), kmax, dtype=torch.long)
        valid = torch.zeros(len(decisions), kmax, dtype=torch.bool)
        for i in softmax_positions:
            index[i, :sizes[i]] = torch.arange(offsets[i], offsets[i] + sizes[i])
            valid[i, :sizes[i]] = True
        self.offsets, self.sizes = offsets, sizes
        self.register_buffer("choice_index", index, persistent=False)
        self.register_buffer("choice_valid", valid, persistent=False)
        self.register_buffer("embedding_offset", torch.tensor(offsets), persistent=False)

        self.start = nn.Parameter(torch.empty(hidden_size))           # input of step 0
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

    # --- one step -----------------------------------------------------------------
    def _lstm_step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
                   ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        out, state = self.lstm(x.unsqueeze(0), state)
        return out[0], state

    def _head(self, position: int, h: torch.Tensor) -> torch.Tensor:
        lo, hi = self.offsets[position], self.offsets[position] + self.sizes[position]
        return F.linear(h, self.head_weight[lo:hi], self.head_bias[lo:hi])

    # --- step by step (scoring with anchors) ----------------------------------------
    def _score_stepwise(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Walk the program feeding the given tokens; log-probabilities and entropies
        summed over steps."""
        batch = tokens.shape[0]
        log_prob = torch.zeros(batch)
        entropy = torch.zeros(batch)
        x = self.start.expand(batch, -1)
        state = None
        anchors: list[torch.Tensor] = []        # h_j of each finished layer
        anchors_prev: list[torch.Tensor] = []   # W_prev h_j, computed once per layer

        def decide(logits: torch.Tensor, position: int) -> torch.Tensor:
            nonlocal log_prob, entropy
            logp_all = F.log_softmax(logits, dim=-1)
            picks = tokens[:, position]
            log_prob = log_prob + logp_all.gather(1, picks.unsqueeze(1)).squeeze(1)
            entropy = entropy - (logp_all.exp() * logp_all).sum(dim=-1)
            return picks

        for step in self.steps:
            h, state = self._lstm_step(x, state)
            if step.kind == "choice":
                picks = decide(self._head(step.decision, h), step.decision)
                x = self.embedding[self.offsets[step.decision] + picks]
                continue
            current = h @ self.attn_curr.T
            skips = []
            for position, earlier in step.skips:
                q = torch.tanh(anchors_prev[earlier] + current) @ self.attn_v
                # Two logits (0, q): P(the earlier layer feeds this one) = sigmoid(q).
                skips.append(decide(torch.stack([torch.zeros_like(q), q], dim=1), position))
            if skips:
                selected = torch.stack(skips, dim=1).to(h.dtype)              # (B, skips)
                sources = torch.stack([anchors[earlier] for _, earlier in step.skips])
                summed = torch.einsum("bs,sbh->bh", selected, sources)
                x = summed / (1.0 + selected.sum(dim=1, keepdim=True))
            else:
                x = self.start.expand(batch, -1)
            anchors.append(h)
            anchors_prev.append(h @ self.attn_prev.T)
        return log_prob, entropy

    # --- scoring --------------------------------------------------------------------
    def score(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (summed over steps) of each token sequence."""
        if self.has_anchors:
            return self._score_stepwise(tokens)
        return self._score_teacher_forced(tokens)

    def _score_teacher_forced(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, steps = tokens.shape
        fed = self.embedding[self.embedding_offset[:-1] + tokens[:, :-1]]      # (B, T-1, H)
        inputs = torch.cat([self.start.expand(batch, 1, -1), fed], dim=1).transpose(0, 1)
        hidden, _ = self.lstm(inputs)                                          # (T, B, H)
        logits_all = F.linear(hidden, self.head_weight, self.head_bias)        # (T, B, total)
        index = self.choice_index.unsqueeze(1).expand(steps, batch, -1)
        logits = logits_all.gather(2, index).masked_fill(~self.choice_valid.unsqueeze(1), MASKED)
        logp_all = F.log_softmax(logits, dim=-1)                               # (T, B, kmax)
        log_prob = logp_all.gather(2, tokens.T.unsqueeze(2)).squeeze(2).sum(0)
        entropy = -(logp_all.exp() * logp_all).sum(dim=-1).sum(0)
        return log_prob, entropy

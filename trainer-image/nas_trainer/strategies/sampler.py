"""Draws token sequences from a ControllerPolicy in numpy.

Drawing is inherently step by step (each step's input is the token just drawn) and needs
no gradient; for a 35-unit LSTM each torch operation's dispatch costs more than its
arithmetic, so numpy on views of the policy's weights is several times cheaper per step.
The views share memory with the torch parameters, which the optimizer and
`load_state_dict` update in place, so the sampler always sees the current policy.
Tests check that its log-probabilities equal `ControllerPolicy.score`'s.
"""
from __future__ import annotations

import numpy as np
import torch

from .controller import ControllerPolicy


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class NumpySampler:
    def __init__(self, policy: ControllerPolicy) -> None:
        self.policy = policy

        def view(tensor: torch.Tensor) -> np.ndarray:
            return tensor.detach().numpy()

        size = policy.hidden_size
        # sigmoid(x) = (1 + tanh(x/2)) / 2: one tanh over all four gates (i, f, g, o in
        # torch's order; g is a plain tanh).
        self.gate_scale = np.full(4 * size, 0.5, np.float32)
        self.gate_scale[2 * size:3 * size] = 1.0
        lstm = policy.lstm
        self.w_ih = [view(getattr(lstm, f"weight_ih_l{k}")) for k in range(policy.num_layers)]
        self.w_hh = [view(getattr(lstm, f"weight_hh_l{k}")) for k in range(policy.num_layers)]
        self.b_ih = [view(getattr(lstm, f"bias_ih_l{k}")) for k in range(policy.num_layers)]
        self.b_hh = [view(getattr(lstm, f"bias_hh_l{k}")) for k in range(policy.num_layers)]
        self.start = view(policy.start)
        self.embedding = view(policy.embedding)
        self.head_weight = view(policy.head_weight)
        self.head_bias = view(policy.head_bias)
        if policy.has_anchors:
            self.attn_prev = view(policy.attn_prev)
            self.attn_curr = view(policy.attn_curr)
            self.attn_v = view(policy.attn_v)

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw `batch` sequences: (tokens (batch, T) int64, log-probabilities (batch,))."""
        policy, size = self.policy, self.policy.hidden_size
        biases = [b_ih + b_hh for b_ih, b_hh in zip(self.b_ih, self.b_hh)]
        hidden = [np.zeros((batch, size), np.float32) for _ in range(policy.num_layers)]
        cell = [np.zeros((batch, size), np.float32) for _ in range(policy.num_layers)]
        tokens = np.zeros((batch, policy.num_tokens), np.int64)
        log_prob = np.zeros(batch, np.float64)
        anchors: list[np.ndarray] = []
        anchors_prev: list[np.ndarray] = []
        x = np.broadcast_to(self.start, (batch, size))

        def decide(logits: np.ndarray, position: int) -> np.ndarray:
            if policy.temperature != 1.0:  # as ControllerPolicy.shape_logits
                logits = logits / policy.temperature
            if policy.tanh_constant > 0.0:
                logits = policy.tanh_constant * np.tanh(logits)
            logp = _log_softmax(logits)
            cdf = np.cumsum(np.exp(logp), axis=1)
            u = rng.random(batch)[:, None] * cdf[:, -1:]
            picks = np.minimum((u >= cdf).sum(axis=1), logits.shape[1] - 1)
            tokens[:, position] = picks
            log_prob[:] += logp[np.arange(batch), picks]
            return picks

        for step in policy.steps:
            layer_input = x
            for k in range(policy.num_layers):
                gates = layer_input @ self.w_ih[k].T + hidden[k] @ self.w_hh[k].T + biases[k]
                t = np.tanh(gates * self.gate_scale)
                i, f = 0.5 + 0.5 * t[:, :size], 0.5 + 0.5 * t[:, size:2 * size]
                g, o = t[:, 2 * size:3 * size], 0.5 + 0.5 * t[:, 3 * size:]
                cell[k] = f * cell[k] + i * g
                hidden[k] = o * np.tanh(cell[k])
                layer_input = hidden[k]
            h = layer_input
            if step.kind == "choice":
                lo = policy.offsets[step.decision]
                hi = lo + policy.sizes[step.decision]
                logits = h @ self.head_weight[lo:hi].T + self.head_bias[lo:hi]
                x = self.embedding[lo + decide(logits, step.decision)]
                continue
            current = h @ self.attn_curr.T
            skips = []
            for position, earlier in step.skips:
                q = np.tanh(anchors_prev[earlier] + current) @ self.attn_v
                skips.append(decide(np.stack([np.zeros_like(q), q], axis=1), position))
            start = np.broadcast_to(self.start, (batch, size))
            if skips:
                selected = np.stack(skips, axis=1).astype(np.float32)
                sources = np.stack([anchors[earlier] for _, earlier in step.skips])
                count = selected.sum(axis=1, keepdims=True)
                mean = np.einsum("bs,sbh->bh", selected, sources) / (1.0 + count)
                x = np.where(count > 0, mean, start)  # no chosen input: the image, as layer 0
            else:
                x = start
            anchors.append(h)
            anchors_prev.append(h @ self.attn_prev.T)
        return tokens, log_prob

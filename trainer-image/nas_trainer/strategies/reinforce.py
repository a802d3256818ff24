"""REINFORCE as in Zoph & Le (2017): ∇J = (1/m) Σ_k ∇ log P(a_k) (R_k - b), plus an
entropy bonus, with this project's sample-efficiency options (policy_gradient.py).

`preset="paper"` is the paper's controller and update: 2-layer LSTM, 35 hidden, Adam 6e-4,
batch 1, an EMA baseline, no option on. `preset="tuned"` (the default) is what the
search-efficiency benchmark chose on held-out NAS-Bench-Graph datasets (see
benchmarks/README.md). Any argument given explicitly overrides its preset's value."""
from __future__ import annotations

from typing import Any

import torch

from ..spaces.base import SearchSpace
from .policy_gradient import PolicyGradientStrategy, resolve_preset

PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(lstm_layers=2, hidden_size=35, learning_rate=6e-4, baseline_decay=0.95,
                  entropy_weight=1e-4, batch_size=1, reward_normalization="none",
                  failure_reward=0.0, temperature=1.0, tanh_constant=0.0,
                  risk_seeking_quantile=0.0, priority_queue_size=0, learn_from="batch",
                  candidate_samples=0, entropy_half_life=0.0),
}
PRESETS["tuned"] = {**PRESETS["paper"], **dict(
    learning_rate=3e-2, batch_size=4, reward_normalization="rank", entropy_weight=0.3,
    tanh_constant=1.5, candidate_samples=256, priority_queue_size=10, learn_from="all")}


class ReinforceStrategy(PolicyGradientStrategy):
    name = "reinforce"

    def __init__(self, space: SearchSpace, seed: int = 0, preset: str = "tuned",
                 **options: Any) -> None:
        super().__init__(space, seed, **resolve_preset(PRESETS, preset, options))

    def loss(self, tokens: torch.Tensor, advantages: torch.Tensor,
             weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The REINFORCE loss of a batch (to minimise) and its per-sequence entropies.
        Log-probabilities are those of the current policy, whenever the tokens were drawn;
        `weights` are importance weights (learnFrom "all")."""
        log_prob, entropy = self.policy.score(tokens)
        if weights is not None:
            advantages = advantages * weights
        loss = -(advantages * log_prob).mean() - self.current_entropy_weight * entropy.mean()
        return loss + self.auxiliary_loss(), entropy

    def _update(self, tokens: torch.Tensor, advantages: torch.Tensor,
                sampled_log_probs: list[float | None]) -> float:
        weights = self.importance_weights(tokens, sampled_log_probs)
        loss, entropy = self.loss(tokens, advantages, weights)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(entropy.detach().mean())

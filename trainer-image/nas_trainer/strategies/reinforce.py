"""REINFORCE as in Zoph & Le (2017): ∇J = (1/m) Σ_k ∇ log P(a_k) (R_k - b), plus an
entropy bonus. Defaults are the paper's: 2-layer LSTM, 35 hidden, Adam 6e-4."""
from __future__ import annotations

import torch

from ..spaces.base import SearchSpace
from .policy_gradient import PolicyGradientStrategy


class ReinforceStrategy(PolicyGradientStrategy):
    name = "reinforce"

    def __init__(self, space: SearchSpace, seed: int = 0, lstm_layers: int = 2,
                 hidden_size: int = 35, learning_rate: float = 6e-4,
                 baseline_decay: float = 0.95, entropy_weight: float = 1e-4,
                 batch_size: int = 1, reward_normalization: str = "none",
                 failure_reward: float = 0.0, temperature: float = 1.0,
                 tanh_constant: float = 0.0) -> None:
        super().__init__(space, seed, lstm_layers=lstm_layers, hidden_size=hidden_size,
                         learning_rate=learning_rate, baseline_decay=baseline_decay,
                         entropy_weight=entropy_weight, batch_size=batch_size,
                         reward_normalization=reward_normalization,
                         failure_reward=failure_reward, temperature=temperature,
                         tanh_constant=tanh_constant)

    def loss(self, tokens: torch.Tensor, advantages: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The REINFORCE loss of a batch (to minimise) and its per-sequence entropies.
        Log-probabilities are those of the current policy, whenever the tokens were drawn."""
        log_prob, entropy = self.policy.score(tokens)
        loss = -(advantages * log_prob).mean() - self.entropy_weight * entropy.mean()
        return loss, entropy

    def _update(self, tokens: torch.Tensor, advantages: torch.Tensor,
                sampled_log_probs: list[float | None]) -> float:
        loss, entropy = self.loss(tokens, advantages)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(entropy.detach().mean())

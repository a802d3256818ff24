"""PPO as NASNet trains its controller (Zoph et al. 2018): the clipped surrogate
objective on the ratio to the log-probability at sampling time, several epochs per batch,
an EMA baseline and an entropy penalty. Defaults are NASNet's: one LSTM layer of 100
units, learning rate 3.5e-4, entropy weight 1e-5."""
from __future__ import annotations

import torch

from ..spaces.base import SearchSpace
from .policy_gradient import PolicyGradientStrategy


class PpoStrategy(PolicyGradientStrategy):
    name = "ppo"

    def __init__(self, space: SearchSpace, seed: int = 0, lstm_layers: int = 1,
                 hidden_size: int = 100, learning_rate: float = 3.5e-4,
                 baseline_decay: float = 0.95, entropy_weight: float = 1e-5,
                 batch_size: int = 1, clip_epsilon: float = 0.2, ppo_epochs: int = 4,
                 reward_normalization: str = "none", failure_reward: float = 0.0,
                 temperature: float = 1.0, tanh_constant: float = 0.0) -> None:
        super().__init__(space, seed, lstm_layers=lstm_layers, hidden_size=hidden_size,
                         learning_rate=learning_rate, baseline_decay=baseline_decay,
                         entropy_weight=entropy_weight, batch_size=batch_size,
                         reward_normalization=reward_normalization,
                         failure_reward=failure_reward, temperature=temperature,
                         tanh_constant=tanh_constant)
        self.clip_epsilon = clip_epsilon
        self.ppo_epochs = ppo_epochs

    def loss(self, tokens: torch.Tensor, advantages: torch.Tensor, old_log_prob: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Clipped surrogate loss (to minimise) and per-sequence entropies."""
        log_prob, entropy = self.policy.score(tokens)
        ratio = torch.exp(log_prob - old_log_prob)
        clipped = ratio.clamp(1 - self.clip_epsilon, 1 + self.clip_epsilon)
        surrogate = torch.minimum(ratio * advantages, clipped * advantages)
        return -surrogate.mean() - self.entropy_weight * entropy.mean(), entropy

    def _update(self, tokens: torch.Tensor, advantages: torch.Tensor,
                sampled_log_probs: list[float | None]) -> float:
        if any(lp is None for lp in sampled_log_probs):
            # Told about architectures it did not sample: take the current policy as theirs.
            with torch.no_grad():
                current, _ = self.policy.score(tokens)
            sampled_log_probs = [float(c) if lp is None else lp
                                 for lp, c in zip(sampled_log_probs, current.tolist())]
        old_log_prob = torch.tensor(sampled_log_probs)
        entropy = torch.zeros(0)
        for _ in range(self.ppo_epochs):
            loss, entropy = self.loss(tokens, advantages, old_log_prob)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return float(entropy.detach().mean())

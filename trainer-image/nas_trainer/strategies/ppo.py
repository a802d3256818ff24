"""PPO as NASNet trains its controller (Zoph et al. 2018): the clipped surrogate
objective on the ratio to the log-probability at sampling time, several epochs per batch,
an EMA baseline and an entropy penalty, with this project's sample-efficiency options
(policy_gradient.py).

`preset="paper"` is NASNet's: one LSTM layer of 100 units, learning rate 3.5e-4, entropy
weight 1e-5, batch 1, no option on. `preset="tuned"` (the default) is what the
search-efficiency benchmark chose on held-out NAS-Bench-Graph datasets (see
benchmarks/README.md). Any argument given explicitly overrides its preset's value."""
from __future__ import annotations

from typing import Any

import torch

from ..spaces.base import SearchSpace
from .policy_gradient import PolicyGradientStrategy, resolve_preset

PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(lstm_layers=1, hidden_size=100, learning_rate=3.5e-4, baseline_decay=0.95,
                  entropy_weight=1e-5, batch_size=1, clip_epsilon=0.2, ppo_epochs=4,
                  reward_normalization="none", failure_reward=0.0, temperature=1.0,
                  tanh_constant=0.0, risk_seeking_quantile=0.0, priority_queue_size=0,
                  learn_from="batch", candidate_samples=0, entropy_half_life=0.0),
}
PRESETS["tuned"] = {**PRESETS["paper"], **dict(
    learning_rate=3e-3, batch_size=4, reward_normalization="rank", entropy_weight=0.1,
    tanh_constant=1.5, candidate_samples=256, priority_queue_size=10, learn_from="all")}


class PpoStrategy(PolicyGradientStrategy):
    name = "ppo"

    def __init__(self, space: SearchSpace, seed: int = 0, preset: str = "tuned",
                 **options: Any) -> None:
        arguments = resolve_preset(PRESETS, preset, options)
        self.clip_epsilon = arguments.pop("clip_epsilon")
        self.ppo_epochs = arguments.pop("ppo_epochs")
        super().__init__(space, seed, **arguments)

    def loss(self, tokens: torch.Tensor, advantages: torch.Tensor, old_log_prob: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Clipped surrogate loss (to minimise) and per-sequence entropies."""
        log_prob, entropy = self.policy.score(tokens)
        ratio = torch.exp(log_prob - old_log_prob)
        clipped = ratio.clamp(1 - self.clip_epsilon, 1 + self.clip_epsilon)
        surrogate = torch.minimum(ratio * advantages, clipped * advantages)
        loss = -surrogate.mean() - self.current_entropy_weight * entropy.mean()
        return loss + self.auxiliary_loss(), entropy

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

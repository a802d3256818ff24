"""What REINFORCE and PPO share: the LSTM controller, asks, buffered tells, the EMA
baseline, optional reward normalisation and the (torch + JSON) state."""
from __future__ import annotations

import math
from abc import abstractmethod
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from ..architecture import Architecture
from ..spaces.base import MAX_DRAWS, SearchSpace
from .adam import FlatAdam
from .base import Strategy
from .controller import ControllerPolicy
from .sampler import NumpySampler

REWARD_NORMALIZATIONS = ("none", "std", "rank")


class PolicyGradientStrategy(Strategy):
    """Updates the policy from whichever trials finish, in any order.

    A tell stores (tokens, reward, log-prob at sampling time); every `batch_size` tells
    make one update, the log-probabilities recomputed under the current policy. The
    advantage is R - b with b an exponential moving average of earlier rewards
    (`baseline_decay`); with reward_normalization="std" it is further divided by an EMA
    of the rewards' standard deviation, which matters when rewards differ by little
    (tabular benchmarks) and for the entropy bonus's relative weight. With "rank" the
    advantage is the reward's centred rank among the recent rewards (the last
    `rank_window()` told, this batch included): 2q - 1 in [-1, 1], q its mid-rank quantile,
    so a few very bad children (a heavy lower tail) cannot drown the differences at the top.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, *, lstm_layers: int,
                 hidden_size: int, learning_rate: float, baseline_decay: float,
                 entropy_weight: float, batch_size: int, reward_normalization: str = "none",
                 failure_reward: float = 0.0, temperature: float = 1.0,
                 tanh_constant: float = 0.0) -> None:
        super().__init__(space, seed)
        if reward_normalization not in REWARD_NORMALIZATIONS:
            raise ValueError(f"rewardNormalization must be one of "
                             f"{', '.join(REWARD_NORMALIZATIONS)} (got {reward_normalization!r})")
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.batch_size = batch_size
        self.reward_normalization = reward_normalization
        self.failure_reward = failure_reward
        init_generator = torch.Generator().manual_seed(seed)
        self.policy = ControllerPolicy(space.decisions, hidden_size, lstm_layers, init_generator,
                                       temperature=temperature, tanh_constant=tanh_constant)
        self.optimizer = FlatAdam(self.policy.parameters(), lr=learning_rate)
        self.sampler = NumpySampler(self.policy)
        self.rng = np.random.default_rng(seed)  # draws tokens
        self.baseline: float | None = None
        self.reward_variance = 0.0
        self.recent_rewards: list[float] = []  # for "rank", the last rank_window() rewards
        self.buffer: list[tuple[tuple[int, ...], float, float | None]] = []
        self.policy_version = 0
        self.entropy = math.nan  # mean sequence entropy at the last update

    # --- ask / tell -----------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Architecture]:
        tokens, log_prob = self.sampler.sample(n, self.rng)
        asked = []
        for row, row_log_prob in zip(tokens.tolist(), log_prob.tolist()):
            for _ in range(MAX_DRAWS):
                try:
                    arch = self.space.from_tokens(row)
                    break
                except ValueError:
                    # An invalid corner of the space (e.g. nas-bench-graph's all-skip cell).
                    redraw, redraw_log_prob = self.sampler.sample(1, self.rng)
                    row, row_log_prob = redraw[0].tolist(), float(redraw_log_prob[0])
            else:
                raise RuntimeError(f"the policy proposed no valid {self.space.name} architecture")
            asked.append(arch.with_meta(log_prob=row_log_prob, policy_version=self.policy_version))
        return asked

    def tell(self, arch: Architecture, reward: float) -> None:
        sampled_log_prob = arch.meta.get("log_prob")
        self.buffer.append((tuple(arch.tokens), float(reward),
                            None if sampled_log_prob is None else float(sampled_log_prob)))
        if len(self.buffer) >= self.batch_size:
            batch, self.buffer = self.buffer, []
            advantages = self._advantages([reward for _, reward, _ in batch])
            tokens = torch.tensor([t for t, _, _ in batch], dtype=torch.long)
            sampled = [lp for _, _, lp in batch]
            with single_threaded():
                self.entropy = self._update(tokens, torch.tensor(advantages), sampled)
            self.policy_version += 1

    def tell_failure(self, arch: Architecture, reason: str = "") -> None:
        """A failed child is learned from as `failure_reward` (0: no accuracy at all)."""
        self.tell(arch, self.failure_reward)

    def _advantages(self, rewards: list[float]) -> list[float]:
        """R - b for each reward, b the EMA of rewards before this batch; then fold the
        batch into the baseline (and the variance estimate)."""
        if self.baseline is None:
            self.baseline = sum(rewards) / len(rewards)
        baseline, scale = self.baseline, 1.0
        if self.reward_normalization == "std" and self.reward_variance > 0.0:
            scale = 1.0 / math.sqrt(self.reward_variance)
        advantages = [(reward - baseline) * scale for reward in rewards]
        if self.reward_normalization == "rank":
            reference = self.recent_rewards + list(rewards)
            advantages = [_centred_rank(reward, reference) for reward in rewards]
            self.recent_rewards = reference[-self.rank_window():]
        decay = self.baseline_decay
        for reward in rewards:
            deviation = reward - self.baseline
            self.reward_variance = decay * self.reward_variance + (1 - decay) * deviation ** 2
            self.baseline = decay * self.baseline + (1 - decay) * reward
        return advantages

    def rank_window(self) -> int:
        """Rewards "rank" compares against: twice the baseline's effective memory
        (1 / (1 - baseline_decay)), at least the batch plus one."""
        return max(self.batch_size + 1, round(2 / (1 - self.baseline_decay)))

    @abstractmethod
    def _update(self, tokens: torch.Tensor, advantages: torch.Tensor,
                sampled_log_probs: list[float | None]) -> float:
        """One policy update on a batch; returns the batch's mean entropy."""

    # --- state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "policy": {k: v.detach().clone() for k, v in self.policy.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "baseline": self.baseline,
            "reward_variance": self.reward_variance,
            "recent_rewards": list(self.recent_rewards),
            "buffer": [[list(t), r, lp] for t, r, lp in self.buffer],
            "policy_version": self.policy_version,
            "entropy": None if math.isnan(self.entropy) else self.entropy,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_state(state)
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.baseline = state["baseline"]
        self.reward_variance = float(state["reward_variance"])
        self.recent_rewards = [float(r) for r in state.get("recent_rewards", [])]
        self.buffer = [(tuple(t), float(r), lp) for t, r, lp in state["buffer"]]
        self.policy_version = int(state["policy_version"])
        self.entropy = math.nan if state["entropy"] is None else float(state["entropy"])

    def metrics(self) -> dict[str, float]:
        return {"policy_version": float(self.policy_version), "entropy": self.entropy,
                "baseline": math.nan if self.baseline is None else self.baseline}


def _centred_rank(reward: float, reference: list[float]) -> float:
    """2q - 1, q = the mid-rank quantile of `reward` in `reference` (which holds it)."""
    if len(reference) < 2:
        return 0.0
    below = sum(1 for r in reference if r < reward)
    equal = sum(1 for r in reference if r == reward)
    return 2.0 * (below + 0.5 * (equal - 1)) / (len(reference) - 1) - 1.0


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread for a while. The controller's tensors are tiny: extra
    intra-op threads only add synchronisation, which on a busy machine costs orders of
    magnitude more than the arithmetic (measured: 25 ms vs 840 ms per PPO update)."""
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

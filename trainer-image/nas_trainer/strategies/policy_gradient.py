"""What REINFORCE and PPO share: the LSTM controller, asks, buffered tells, the EMA
baseline, optional reward normalisation, the sample-efficiency options (risk-seeking
updates, a priority queue, replay of every told result, predictor-guided sampling, an
entropy schedule) and the (torch + JSON) state."""
from __future__ import annotations

import math
from abc import abstractmethod
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..architecture import Architecture
from ..spaces.base import MAX_DRAWS, SearchSpace
from .adam import FlatAdam
from .base import Strategy
from .controller import ControllerPolicy
from .sampler import NumpySampler
from .surrogate import LinearThompsonSurrogate

REWARD_NORMALIZATIONS = ("none", "std", "rank")
LEARN_FROM = ("batch", "all")
# learnFrom "all": each update replays at most this many of the latest told results.
REPLAY_WINDOW = 128
# candidateSamples: the predictor is used once this many results were told (before, the
# policy's own draws are proposed).
SURROGATE_STARTUP = 10
GUIDED_POOLS = 4


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

    Sample-efficiency options (all off when 0 / "batch"):
    - `risk_seeking_quantile` ε (Petersen et al. 2021): only results in the top ε of the
      recent rewards are learned from, the baseline being their (1-ε) quantile;
    - `priority_queue_size` K (Abolafia et al. 2018): every update also maximises the
      log-likelihood of the best K architectures told so far;
    - `learn_from="all"`: every update learns from the latest REPLAY_WINDOW told results
      (not only the last batch), advantages ranked among them, weighted by the clipped
      importance ratio min(1, p_now / p_sampled) (REINFORCE) or PPO's clipped ratio;
    - `candidate_samples` M: each ask draws M architectures from the policy and proposes
      the unseen ones a Bayesian linear predictor of the reward scores best (one Thompson
      draw per proposal, see surrogate.py); the policy still learns from what is told;
    - `entropy_half_life` H: the entropy weight halves every H told results.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, *, lstm_layers: int,
                 hidden_size: int, learning_rate: float, baseline_decay: float,
                 entropy_weight: float, batch_size: int, reward_normalization: str = "none",
                 failure_reward: float = 0.0, temperature: float = 1.0,
                 tanh_constant: float = 0.0, risk_seeking_quantile: float = 0.0,
                 priority_queue_size: int = 0, learn_from: str = "batch",
                 candidate_samples: int = 0, entropy_half_life: float = 0.0) -> None:
        super().__init__(space, seed)
        if reward_normalization not in REWARD_NORMALIZATIONS:
            raise ValueError(f"rewardNormalization must be one of "
                             f"{', '.join(REWARD_NORMALIZATIONS)} (got {reward_normalization!r})")
        if learn_from not in LEARN_FROM:
            raise ValueError(f"learnFrom must be one of {', '.join(LEARN_FROM)} "
                             f"(got {learn_from!r})")
        if not 0.0 <= risk_seeking_quantile <= 1.0:
            raise ValueError(f"riskSeekingQuantile must be in [0, 1] (got {risk_seeking_quantile!r})")
        self.risk_seeking_quantile = risk_seeking_quantile
        self.priority_queue_size = priority_queue_size
        self.learn_from = learn_from
        self.candidate_samples = candidate_samples
        self.entropy_half_life = entropy_half_life
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
        # Every told result, in order: (tokens, reward, log-prob at sampling time, hash).
        self.history: list[tuple[tuple[int, ...], float, float | None, str]] = []
        self.policy_version = 0
        self.entropy = math.nan  # mean sequence entropy at the last update

    # --- ask / tell -----------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Architecture]:
        if self.candidate_samples > 1:
            # Hundreds of draws make numpy's matrix products big enough for OpenBLAS to
            # start its threads, which on a busy machine cost ~5x the CPU time (measured).
            with threadpool_limits(limits=1, user_api="blas"):
                return self._ask_guided(n)
        return self._ask_policy(n)

    def _ask_policy(self, n: int) -> list[Architecture]:
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

    def _ask_guided(self, n: int) -> list[Architecture]:
        """The unseen policy draws the predictor scores best, one Thompson draw each
        (before SURROGATE_STARTUP results, the first unseen draw). When every draw of a
        pool is known, another pool is drawn (GUIDED_POOLS in all) before the policy's own
        draw is proposed as it comes."""
        surrogate = None
        if len(self.history) >= SURROGATE_STARTUP:
            surrogate = LinearThompsonSurrogate(
                self.policy.sizes,
                np.array([t for t, _, _, _ in self.history], dtype=np.int64),
                [r for _, r, _, _ in self.history])
        seen_tokens = {t for t, _, _, _ in self.history}
        seen_hashes = {h for _, _, _, h in self.history}
        asked: list[Architecture] = []
        tokens, log_prob = self.sampler.sample(self.candidate_samples, self.rng)
        pools = 1
        while len(asked) < n:
            scores = (np.zeros(len(tokens)) if surrogate is None
                      else surrogate.score(tokens, surrogate.sample_weights(self.rng)))
            arch = self._best_unseen(tokens, log_prob, scores, seen_tokens, seen_hashes)
            if arch is not None:
                asked.append(arch)
            elif pools < GUIDED_POOLS:
                tokens, log_prob = self.sampler.sample(self.candidate_samples, self.rng)
                pools += 1
            else:
                asked += self._ask_policy(1)
        return asked

    def _best_unseen(self, tokens: np.ndarray, log_prob: np.ndarray, scores: np.ndarray,
                     seen_tokens: set[tuple[int, ...]], seen_hashes: set[str]
                     ) -> Architecture | None:
        for index in np.argsort(-scores, kind="stable").tolist():
            row = tuple(tokens[index].tolist())
            if row in seen_tokens:
                continue
            seen_tokens.add(row)
            try:
                arch = self.space.from_tokens(row)
            except ValueError:  # an invalid corner of the space
                continue
            if arch.hash in seen_hashes:
                continue
            seen_hashes.add(arch.hash)
            return arch.with_meta(log_prob=float(log_prob[index]),
                                  policy_version=self.policy_version)
        return None

    def tell(self, arch: Architecture, reward: float) -> None:
        sampled_log_prob = arch.meta.get("log_prob")
        entry = (tuple(arch.tokens), float(reward),
                 None if sampled_log_prob is None else float(sampled_log_prob))
        self.buffer.append(entry)
        self.history.append((*entry, arch.hash))
        if len(self.buffer) >= self.batch_size:
            batch, self.buffer = self.buffer, []
            if self.learn_from == "all":
                # the baseline is not learned against here, but it is what the controller
                # reports of the rewards (nas_controller_policy_baseline)
                self._fold_into_baseline([reward for _, reward, _ in batch])
                batch = [(t, r, lp) for t, r, lp, _ in self.history[-REPLAY_WINDOW:]]
                advantages = self._replay_advantages([reward for _, reward, _ in batch])
            else:
                advantages = self._advantages([reward for _, reward, _ in batch])
            tokens = torch.tensor([t for t, _, _ in batch], dtype=torch.long)
            sampled = [lp for _, _, lp in batch]
            with single_threaded():
                self.entropy = self._update(tokens, torch.tensor(advantages), sampled)
            self.policy_version += 1

    @property
    def current_entropy_weight(self) -> float:
        if self.entropy_half_life <= 0.0:
            return self.entropy_weight
        return self.entropy_weight * 0.5 ** (len(self.history) / self.entropy_half_life)

    def auxiliary_loss(self) -> torch.Tensor | float:
        """The priority queue's term: minus the mean log-likelihood of the best K told."""
        if self.priority_queue_size <= 0 or not self.history:
            return 0.0
        best: dict[tuple[int, ...], float] = {}
        for tokens, reward, _, _ in self.history:
            best[tokens] = max(reward, best.get(tokens, -math.inf))
        # Highest reward first; among equals the first told (dicts keep insertion order).
        queue = sorted(best, key=lambda t: -best[t])[:self.priority_queue_size]
        log_prob, _ = self.policy.score(torch.tensor(queue, dtype=torch.long))
        return -log_prob.mean()

    def importance_weights(self, tokens: torch.Tensor, sampled_log_probs: list[float | None]
                           ) -> torch.Tensor | None:
        """learnFrom "all": min(1, p_now / p_sampled) per row (1 where not sampled here)."""
        if self.learn_from != "all":
            return None
        with torch.no_grad():
            current, _ = self.policy.score(tokens)
        sampled = torch.tensor([c if lp is None else lp
                                for lp, c in zip(sampled_log_probs, current.tolist())])
        return torch.exp(current - sampled).clamp(max=1.0)

    def _risk_seeking(self, advantages: list[float], rewards: list[float],
                      reference: list[float], scale: float) -> list[float]:
        """Keep only results at or above the (1-ε) quantile of `reference` (which holds
        them), as their excess over it: on the centred-rank scale with "rank" (over
        1 - 2ε), else (R - quantile) * scale."""
        epsilon = self.risk_seeking_quantile
        if epsilon <= 0.0:
            return advantages
        if self.reward_normalization == "rank":
            floor = 1.0 - 2.0 * epsilon
            return [max(0.0, a - floor) for a in advantages]
        threshold = float(np.quantile(np.asarray(reference), 1.0 - epsilon))
        return [(r - threshold) * scale if r >= threshold else 0.0 for r in rewards]

    def _replay_advantages(self, rewards: list[float]) -> list[float]:
        """learnFrom "all": advantages within the replayed window, centred ranks ("rank")
        or deviations from its mean (divided by its standard deviation with "std")."""
        if self.reward_normalization == "rank":
            advantages = [_centred_rank(r, rewards) for r in rewards]
            scale = 1.0
        else:
            mean = sum(rewards) / len(rewards)
            std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
            scale = 1.0 / std if self.reward_normalization == "std" and std > 0 else 1.0
            advantages = [(r - mean) * scale for r in rewards]
        return self._risk_seeking(advantages, rewards, rewards, scale)

    def _advantages(self, rewards: list[float]) -> list[float]:
        """R - b for each reward, b the EMA of rewards before this batch; then fold the
        batch into the baseline (and the variance estimate)."""
        if self.baseline is None:
            self.baseline = sum(rewards) / len(rewards)
        baseline, scale = self.baseline, 1.0
        if self.reward_normalization == "std" and self.reward_variance > 0.0:
            scale = 1.0 / math.sqrt(self.reward_variance)
        advantages = [(reward - baseline) * scale for reward in rewards]
        reference = self.recent_rewards + list(rewards)
        if self.reward_normalization == "rank":
            advantages = [_centred_rank(reward, reference) for reward in rewards]
        if self.reward_normalization == "rank" or self.risk_seeking_quantile > 0.0:
            advantages = self._risk_seeking(advantages, rewards, reference, scale)
            self.recent_rewards = reference[-self.rank_window():]
        self._fold_into_baseline(rewards)
        return advantages

    def _fold_into_baseline(self, rewards: list[float]) -> None:
        """The EMA baseline and variance estimate, updated with a batch's rewards."""
        if self.baseline is None:
            self.baseline = sum(rewards) / len(rewards)
        decay = self.baseline_decay
        for reward in rewards:
            deviation = reward - self.baseline
            self.reward_variance = decay * self.reward_variance + (1 - decay) * deviation ** 2
            self.baseline = decay * self.baseline + (1 - decay) * reward

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
            "history": [[list(t), r, lp, h] for t, r, lp, h in self.history],
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
        self.history = [(tuple(t), float(r), lp, str(h))
                        for t, r, lp, h in state.get("history", [])]
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


PRESET_NAMES = ("tuned", "paper")


def resolve_preset(presets: Mapping[str, Mapping[str, Any]], preset: str,
                   options: Mapping[str, Any]) -> dict[str, Any]:
    """The preset's constructor arguments, overridden by those given explicitly."""
    if preset not in presets:
        raise ValueError(f"preset must be one of {', '.join(presets)} (got {preset!r})")
    unknown = sorted(set(options) - set(presets[preset]))
    if unknown:
        raise TypeError(f"unexpected arguments {', '.join(unknown)}")
    return {**presets[preset], **options}

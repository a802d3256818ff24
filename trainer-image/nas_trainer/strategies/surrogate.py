"""A cheap reward predictor for predictor-guided sampling: Bayesian linear regression on
the one-hot encoding of an architecture's tokens, queried by Thompson sampling.

Rewards are replaced by their normal scores (the inverse normal CDF of their mid-rank
quantile), so a few very bad children cannot dominate the fit and its scale is the same on
every benchmark. The model is refit from the told history on every query (a few dozen
features: milliseconds), so it holds no state of its own beyond that history.
"""
from __future__ import annotations

from statistics import NormalDist
from typing import Sequence

import numpy as np

PRIOR_PRECISION = 1.0   # w ~ N(0, I / PRIOR_PRECISION) on the normal-score scale
NOISE_VARIANCE = 0.5    # what a sum of per-decision effects leaves unexplained (of 1)


def one_hot(tokens: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """(n, T) tokens -> (n, 1 + sum(sizes)) features: an intercept, then one-hot per step."""
    offsets = np.concatenate([[1], 1 + np.cumsum(sizes)[:-1]]).astype(np.int64)
    features = np.zeros((tokens.shape[0], 1 + int(sum(sizes))))
    features[:, 0] = 1.0
    rows = np.arange(tokens.shape[0])[:, None]
    features[rows, offsets[None, :] + tokens] = 1.0
    return features


def normal_scores(rewards: Sequence[float]) -> np.ndarray:
    values = np.asarray(rewards, dtype=np.float64)
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    # ties share their mean rank
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    normal = NormalDist()
    return np.array([normal.inv_cdf((r + 0.5) / len(values)) for r in ranks])


class LinearThompsonSurrogate:
    """Posterior N(mean, cov) of the per-choice effects given the told (tokens, reward)."""

    def __init__(self, sizes: Sequence[int], tokens: np.ndarray, rewards: Sequence[float]
                 ) -> None:
        self.sizes = list(sizes)
        features = one_hot(tokens, self.sizes)
        targets = normal_scores(rewards)
        precision = features.T @ features / NOISE_VARIANCE \
            + PRIOR_PRECISION * np.eye(features.shape[1])
        self.cholesky = np.linalg.cholesky(precision)
        self.mean = np.linalg.solve(precision, features.T @ targets / NOISE_VARIANCE)

    def sample_weights(self, rng: np.random.Generator) -> np.ndarray:
        """One draw of the effects: mean + L^-T z, whose covariance is precision^-1."""
        z = rng.standard_normal(len(self.mean))
        return self.mean + np.linalg.solve(self.cholesky.T, z)

    def score(self, tokens: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return one_hot(tokens, self.sizes) @ weights

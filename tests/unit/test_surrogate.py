"""The predictor behind candidateSamples: normal scores of ranks, and a Bayesian linear
fit that recovers additive per-choice effects."""
from __future__ import annotations

import numpy as np
import pytest

from nas_trainer.strategies.surrogate import LinearThompsonSurrogate, normal_scores, one_hot


def test_one_hot_has_an_intercept_and_one_column_per_choice():
    features = one_hot(np.array([[0, 2], [1, 0]]), [2, 3])
    assert features.tolist() == [[1, 1, 0, 0, 0, 1], [1, 0, 1, 1, 0, 0]]


def test_normal_scores_follow_the_ranks_and_share_ties():
    scores = normal_scores([0.9, 0.1, 0.5, 0.5])
    assert scores[1] < scores[2] == scores[3] < scores[0]
    assert scores.sum() == pytest.approx(0.0, abs=1e-12)


def test_posterior_mean_ranks_architectures_by_their_additive_reward():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 4, size=(40, 3))
    rewards = tokens @ np.array([1.0, -0.5, 0.25])
    model = LinearThompsonSurrogate([4, 4, 4], tokens, rewards.tolist())
    grid = np.array([[a, b, c] for a in range(4) for b in range(4) for c in range(4)])
    predicted = model.score(grid, model.mean)
    truth = grid @ np.array([1.0, -0.5, 0.25])
    assert np.corrcoef(predicted, truth)[0, 1] > 0.9
    # Thompson draws differ from the mean, reproducibly per generator state
    a = model.sample_weights(np.random.default_rng(1))
    b = model.sample_weights(np.random.default_rng(1))
    assert np.array_equal(a, b) and not np.allclose(a, model.mean)

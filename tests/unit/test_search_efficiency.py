"""benchmarks/search_efficiency.py on tiny hand-made tables: the top-k-with-ties rule, the
best-so-far / confidence-interval aggregation, and that no strategy's run counts a known
architecture twice."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
TRAINER = Path(__file__).resolve().parents[2] / "trainer-image"
for path in (BENCHMARKS, TRAINER):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import search_efficiency as se  # noqa: E402
from tabular import Table, load_table_json, table_from_document, top_threshold  # noqa: E402

# 3 x 3 x 2 = 18 architectures; reward = a hand-written value per token sequence.
DECISIONS = [{"name": "op", "choices": ["a", "b", "c"]},
             {"name": "width", "choices": [8, 16, 32]},
             {"name": "skip", "choices": [False, True]}]


def tiny_document() -> dict:
    entries = []
    rewards = iter([0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90,
                    0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.90])
    for op in ["a", "b", "c"]:
        for width in [8, 16, 32]:
            for skip in [False, True]:
                reward = next(rewards)
                entries.append({"canonical": {"op": op, "width": width, "skip": skip},
                                "reward": reward, "test": reward - 0.01})
    return {"name": "tiny", "space": "custom", "decisions": DECISIONS, "architectures": entries}


@pytest.fixture()
def tiny() -> Table:
    return table_from_document(tiny_document())


def test_top_threshold_counts_ties() -> None:
    values = [0.9, 0.9, 0.8, 0.8, 0.8, 0.7, 0.5, 0.4, 0.3, 0.2]
    top = top_threshold(values, 0.1)            # k = 1: the best value, both 0.9s count
    assert (top.k, top.threshold, top.count) == (1, 0.9, 2)
    top = top_threshold(values, 0.3)            # k = 3: 0.8, all three 0.8s count
    assert (top.k, top.threshold, top.count) == (3, 0.8, 5)
    top = top_threshold(values, 0.25)           # k = ceil(2.5) = 3
    assert top.k == 3
    assert top_threshold(values, 0.001).k == 1  # at least one
    # float noise of averaged accuracies is a tie
    top = top_threshold([0.8193333333333334, 0.8193333333333332, 0.5], 0.34)
    assert top.k == 2 and top.count == 2 and top.reached(0.8193333333333332)
    # 1 % of NAS-Bench-Graph's 26,206: k = 263, not 264 from 262.06000000000003
    assert top_threshold(list(range(26206)), 0.01).k == 263


def test_tiny_table_top_set(tiny: Table) -> None:
    assert len(tiny) == 18 and tiny.space.size() == 18
    top = top_threshold(tiny.reward, 0.1)       # k = ceil(1.8) = 2: 0.90 twice
    assert (top.k, top.threshold, top.count) == (2, 0.90, 2)


def test_summarise_run_best_so_far_test_and_reach(tiny: Table) -> None:
    keys = sorted(tiny.reward, key=tiny.reward.__getitem__)  # worst first
    order = [keys[5], keys[2], keys[17], keys[16], keys[9]]  # rewards rise, then a tie
    rewards = [tiny.reward[k] for k in order]
    assert rewards[2] == rewards[3] == 0.90
    best, tests, reach = se.summarise_run(order, rewards, tiny, budget=4,
                                          thresholds=[0.85, 0.95])
    # checkpoints for budget 4: just [4]; best 0.90 found at evaluation 3 (first of equals)
    assert best == [0.90]
    assert tests == [pytest.approx(tiny.test[order[2]])]
    assert reach == [3, None]
    # a shorter run (stopped early) keeps its last best at later checkpoints
    best, tests, reach = se.summarise_run(order[:2], rewards[:2], tiny, budget=60,
                                          thresholds=[0.3])
    assert se.checkpoints_for(60) == [25, 50, 60]
    assert best == [max(rewards[:2])] * 3 and reach == [None if max(rewards[:2]) < 0.3 else 1]


def test_mean_ci_and_aggregate() -> None:
    mean, half, se_ = se.mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert se_ == pytest.approx(math.sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3 / 4))
    assert half == pytest.approx(3.182 * se_)            # t(3) = 3.182
    assert se.t975(1e9) == pytest.approx(1.96, abs=1e-3)
    assert se.t975(99) == pytest.approx(1.9842, abs=1e-3)
    assert se.t975(40) == pytest.approx(2.0211, abs=1e-3)
    assert se.censored_median([3, None, 5]) == 5
    assert se.censored_median([3, None, None]) == math.inf
    assert se.censored_median([2, 4, None, 10]) == 7

    def run(seed: int, best: list[float], reach: list[int | None]) -> se.RunResult:
        return se.RunResult("t", "random", seed, 60, 60, None, 0, 0.1, best,
                            [b - 0.01 for b in best], reach)

    runs = [run(0, [0.5, 0.6, 0.7], [30, None]), run(1, [0.6, 0.6, 0.8], [None, None]),
            run(2, [0.7, 0.8, 0.9], [10, 55])]
    agg = se.aggregate(runs, n_thresholds=2)
    assert agg.checkpoints == [25, 50, 60]
    assert [m for m, _ in agg.best] == pytest.approx([0.6, 2 / 3, 0.8])
    assert agg.best[0][1] == pytest.approx(4.303 * 0.1 / math.sqrt(3))
    assert agg.reach_fraction[0] == {60: pytest.approx(2 / 3)}
    assert agg.reach_median == [30, math.inf]
    assert agg.reach_median_reached == [20, 55]
    diff, half = se.welch_diff([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert diff == 0 and half > 0


@pytest.mark.parametrize("strategy", se.STRATEGIES)
def test_runs_never_count_a_known_architecture_twice(tiny: Table, strategy: str) -> None:
    from nas_trainer.strategies import make_strategy

    small_policy = {"batchSize": 2, "hiddenSize": 8, "lstmLayers": 1}  # fast
    settings = {"tpe": {"startupTrials": 3}, "reinforce": small_policy,
                "ppo": small_policy}.get(strategy, {})
    for seed in range(2):
        s = make_strategy(strategy, tiny.space, seed, **settings)
        hashes, rewards, stopped, known = se.search_run(
            s, tiny, budget=30, parallelism=settings.get("batchSize", 1), max_known_in_a_row=10)
        assert len(hashes) == len(set(hashes)) == len(rewards)
        assert rewards == [tiny.reward[h] for h in hashes]
        # 18 architectures: a run asking for 30 must stop, by exhausting the space or by
        # proposing only known ones, and never count more than exist
        assert stopped in ("space-exhausted", "known-in-a-row")
        assert len(hashes) <= 18


def test_known_only_strategy_is_stopped(tiny: Table) -> None:
    class Stubborn:
        def __init__(self) -> None:
            self.arch = tiny.space.from_tokens([0, 0, 0])
            self.told = 0

        def ask(self, n: int = 1):
            return [self.arch] * n

        def tell(self, arch, reward: float) -> None:
            self.told += 1

    stubborn = Stubborn()
    hashes, rewards, stopped, known = se.search_run(stubborn, tiny, budget=10)
    assert (len(hashes), stopped) == (1, "known-in-a-row")
    assert known == se.MAX_KNOWN_IN_A_ROW and stubborn.told == 1 + known


def test_table_json_round_trip_and_end_to_end(tmp_path: Path, tiny: Table, capsys) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_document()))
    loaded = load_table_json(path)
    assert loaded.reward == tiny.reward and loaded.recipe == ("json", str(path.resolve()))
    doc = tiny_document()
    doc["architectures"].append({"canonical": {"op": "a", "width": 8, "skip": False},
                                 "reward": 0.99})
    with pytest.raises(ValueError, match="different reward"):
        table_from_document(doc)
    assert se.main(["--table", str(path), "--seeds", "3", "--budget", "10", "--workers", "1",
                    "--strategies", "random,regularized-evolution,reinforce-paper", "--out",
                    str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "search_efficiency.json").read_text())
    strategies = result["tables"]["tiny"]["strategies"]
    assert set(strategies) == {"random", "regularized-evolution", "reinforce-paper"}
    assert strategies["random"]["runs"] == 3
    curve = strategies["random"]["mean_best_so_far_per_evaluation"]
    assert len(curve) == 10 and curve == sorted(curve)
    assert result["settings"]["reinforce-paper"] == {"preset": "paper"}
    out = capsys.readouterr().out
    assert "tiny" in out
    assert "reinforce-paper needs no more evaluations than regularized-evolution" in out
    assert (tmp_path / "out" / "search_efficiency.png").read_bytes()[:4] == b"\x89PNG"


def test_best_so_far_curve_is_held_after_an_early_stop() -> None:
    assert se.best_so_far([0.2, 0.1, 0.5], 5) == [0.2, 0.2, 0.5, 0.5, 0.5]
    assert se.best_so_far([], 5) == []


def test_variant_rows_are_their_strategy_with_a_preset() -> None:
    assert se.base_strategy("ppo-paper") == "ppo" and se.base_strategy("tpe") == "tpe"
    assert se.SETTINGS["reinforce-paper"] == {"preset": "paper"}
    assert all(se.SETTINGS[name] == {} for name in se.STRATEGIES)  # defaults, as shipped


def test_rank_reward_normalization_advantages_and_resume(tiny: Table) -> None:
    """rewardNormalization "rank" (added for this benchmark): centred ranks in [-1, 1]
    among recent rewards, and a resumed strategy continues exactly."""
    import copy

    from nas_trainer.strategies import make_strategy
    from nas_trainer.strategies.policy_gradient import _centred_rank

    assert _centred_rank(3.0, [1.0, 2.0, 3.0]) == 1.0
    assert _centred_rank(1.0, [1.0, 2.0, 3.0]) == -1.0
    assert _centred_rank(2.0, [1.0, 2.0, 2.0, 3.0]) == 0.0
    assert _centred_rank(5.0, [5.0]) == 0.0
    settings = {"preset": "paper", "rewardNormalization": "rank", "batchSize": 2,
                "hiddenSize": 8, "lstmLayers": 1, "baselineDecay": 0.5}
    a = make_strategy("reinforce", tiny.space, 3, **settings)
    assert a.rank_window() == 4
    for _ in range(5):
        for arch in a.ask(2):
            a.tell(arch, tiny.reward[arch.hash])
    assert len(a.recent_rewards) == 4
    b = make_strategy("reinforce", tiny.space, 3, **settings)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for _ in range(3):
        asked_a, asked_b = a.ask(2), b.ask(2)
        assert [x.tokens for x in asked_a] == [x.tokens for x in asked_b]
        for x, y in zip(asked_a, asked_b):
            a.tell(x, tiny.reward[x.hash])
            b.tell(y, tiny.reward[y.hash])

"""Strategies: the policy gradient is the paper's, sampled log-probabilities are right, a
restored strategy continues exactly, and every strategy learns or behaves as published."""
from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

from nas_trainer.evaluators import nas_bench_graph_table
from nas_trainer.results import ResultsFolder
from nas_trainer.spaces import get_space
from nas_trainer.strategies import STRATEGY_NAMES, make_strategy, run_on_table
from nas_trainer.strategies.adam import FlatAdam
from nas_trainer.strategies.policy_gradient import single_threaded


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Tiny tensors: threads only contend on a shared machine (restored afterwards).
    with single_threaded():
        yield

ONE_STEP = [{"name": "op", "choices": ["a", "b", "c", "d"]}]


def one_step_space():
    return get_space("custom", None, ONE_STEP)


def test_reinforce_gradient_is_onehot_minus_p_times_advantage():
    strategy = make_strategy("reinforce", one_step_space(), seed=0, preset="paper",
                             entropyWeight=0.0)
    policy = strategy.policy
    with torch.no_grad():
        probabilities = torch.exp(policy.score(torch.arange(4).unsqueeze(1))[0])
    assert torch.isclose(probabilities.sum(), torch.tensor(1.0))
    for token, advantage in [(2, 0.7), (0, -1.3)]:
        policy.zero_grad()
        loss, _ = strategy.loss(torch.tensor([[token]]), torch.tensor([advantage]))
        loss.backward()
        onehot = F.one_hot(torch.tensor(token), 4).float()
        # Minimising -A log p(a) moves the logits along (onehot - p) * A.
        expected = -(onehot - probabilities) * advantage
        assert torch.allclose(policy.head_bias.grad, expected, atol=1e-6)


def test_reinforce_batch_gradient_is_the_mean_over_the_batch():
    strategy = make_strategy("reinforce", one_step_space(), seed=0, preset="paper",
                             entropyWeight=0.0)
    policy = strategy.policy
    with torch.no_grad():
        p = torch.exp(policy.score(torch.arange(4).unsqueeze(1))[0])
    tokens, advantages = torch.tensor([[1], [3], [1]]), torch.tensor([0.5, -0.2, 1.0])
    loss, _ = strategy.loss(tokens, advantages)
    loss.backward()
    expected = -sum((F.one_hot(t[0], 4).float() - p) * a
                    for t, a in zip(tokens, advantages)) / 3
    assert torch.allclose(policy.head_bias.grad, expected, atol=1e-6)


def reference_log_prob(policy, tokens: list[int]) -> float:
    """Sum of log-softmax of the chosen tokens, one LSTM step at a time, written apart from
    the strategy's two code paths (numpy sampling, teacher-forced scoring)."""
    def shaped(logits):  # ENAS: l / temperature, then C·tanh(·)
        logits = logits / policy.temperature
        return policy.tanh_constant * torch.tanh(logits) if policy.tanh_constant else logits

    total, state = 0.0, None
    x = policy.start.detach().unsqueeze(0)
    anchors = []
    with torch.no_grad():
        for step in policy.steps:
            out, state = policy.lstm(x.unsqueeze(0), state)
            h = out[0]
            if step.kind == "choice":
                i = step.decision
                lo, hi = policy.offsets[i], policy.offsets[i] + policy.sizes[i]
                logits = shaped(h @ policy.head_weight[lo:hi].T + policy.head_bias[lo:hi])
                total += float(torch.log_softmax(logits, -1)[0, tokens[i]])
                x = policy.embedding[lo + tokens[i]].unsqueeze(0)
                continue
            chosen = []
            for position, earlier in step.skips:
                q = shaped(torch.tanh(anchors[earlier] @ policy.attn_prev.T
                                      + h @ policy.attn_curr.T) @ policy.attn_v)
                p_skip = torch.sigmoid(q)[0]  # the paper: P(j feeds i) = sigmoid(vᵀ tanh(...))
                total += float(torch.log(p_skip if tokens[position] else 1 - p_skip))
                if tokens[position]:
                    chosen.append(anchors[earlier])
            x = (torch.stack(chosen).sum(0) / (1 + len(chosen)) if chosen
                 else policy.start.detach().unsqueeze(0))
            anchors.append(h)
    return total


@pytest.mark.parametrize("name, options", [("nas-bench-graph", {}), ("macro-cnn", {"layers": 4}),
                                           ("nasnet", {"blocks": 2}), ("rnn-cell", {"base": 2})])
@pytest.mark.parametrize("strategy_name", ["reinforce", "ppo"])
@pytest.mark.parametrize("shaping", [{}, {"temperature": 5.0, "tanhConstant": 2.5}])
def test_sampled_log_probabilities_are_the_sum_of_log_softmax(name, options, strategy_name,
                                                             shaping):
    space = get_space(name, options)
    strategy = make_strategy(strategy_name, space, seed=1, **shaping)
    for round_ in range(2):
        archs = strategy.ask(4)
        tokens = torch.tensor([list(a.tokens) for a in archs])
        scored, _ = strategy.policy.score(tokens)
        for arch, score in zip(archs, scored.tolist()):
            assert arch.meta["policy_version"] == strategy.policy_version
            assert arch.meta["log_prob"] == pytest.approx(reference_log_prob(strategy.policy,
                                                                             arch.tokens), abs=1e-4)
            assert score == pytest.approx(arch.meta["log_prob"], abs=1e-4)
        for arch in archs:  # change the policy before the second round
            strategy.tell(arch, random.Random(round_).random())


@pytest.mark.parametrize("tanh_constant", [0.0, 1.5])
def test_tanh_constant_keeps_the_policy_from_collapsing(tanh_constant):
    """Rewarding one architecture over and over drives its probability towards 1, unless
    the logits are bounded: then each choice keeps at most e^C / (e^C + (k-1)e^-C)."""
    space = get_space("nas-bench-graph", {})
    strategy = make_strategy("reinforce", space, seed=0, **{
        "preset": "paper", "learningRate": 0.05, "entropyWeight": 0.0,
        "tanhConstant": tanh_constant})
    favourite, other = strategy.ask(2)
    for _ in range(300):
        strategy.tell(favourite, 1.0)
        strategy.tell(other, 0.0)
    with torch.no_grad():
        log_prob, _ = strategy.policy.score(torch.tensor([list(favourite.tokens)]))
    c = math.exp(tanh_constant)
    bound = sum(math.log(c / (c + (k - 1) / c)) for k in strategy.policy.sizes)
    if tanh_constant:
        assert float(log_prob) <= bound + 1e-5
    else:
        assert float(log_prob) > -0.1  # collapsed: the favourite is (almost) certain


def checkpoint_round_trip(state, tmp_path):
    """Through the results folder, as the search loop stores it (JSON + strategy.pt)."""
    folder = ResultsFolder(tmp_path)
    folder.save_checkpoint({}, state)
    return folder.load_checkpoint()[1]


EVERY_OPTION = {"riskSeekingQuantile": 0.3, "priorityQueueSize": 3, "learnFrom": "all",
                "candidateSamples": 8, "entropyHalfLife": 4.0}


@pytest.mark.parametrize("strategy_name", [*STRATEGY_NAMES, "reinforce+options",
                                           "ppo+options", "reinforce+paper"])
@pytest.mark.parametrize("space_name, options", [("nas-bench-graph", {}), ("macro-cnn", {"layers": 3})])
def test_restored_strategy_continues_as_if_never_stopped(strategy_name, space_name, options,
                                                         tmp_path):
    """Policy strategies: 11 tells before the stop, so that the predictor-guided asks
    (after 10 tells) and the told history are part of what is restored."""
    space = get_space(space_name, options)
    hyperparameters = {"batchSize": 2} if strategy_name in ("reinforce", "ppo") else {}
    if "+" in strategy_name:
        strategy_name, variant = strategy_name.split("+")
        hyperparameters = ({"batchSize": 2, **EVERY_OPTION} if variant == "options"
                           else {"preset": "paper"})
    if strategy_name == "regularized-evolution":
        hyperparameters = {"population": 4, "sampleSize": 2}
    if strategy_name == "tpe":
        hyperparameters = {"startupTrials": 3}
    rewards = random.Random(5)
    original = make_strategy(strategy_name, space, seed=3, **hyperparameters)
    for _ in range(5):
        for arch in original.ask(2):
            original.tell(arch, rewards.random())
    pending = original.ask(1)[0]  # asked, not yet told, when it stops
    restored = make_strategy(strategy_name, space, seed=3, **hyperparameters)
    restored.load_state_dict(checkpoint_round_trip(original.state_dict(), tmp_path))
    for strategy in (original, restored):
        strategy.tell(pending, 0.5)
    for _ in range(3):
        a, b = original.ask(2), restored.ask(2)
        assert [x.tokens for x in a] == [x.tokens for x in b]
        assert [x.meta.get("log_prob") for x in a] == pytest.approx(
            [x.meta.get("log_prob") for x in b])
        for x, y in zip(a, b):
            reward = rewards.random()
            original.tell(x, reward)
            restored.tell(y, reward)
    assert original.metrics() == pytest.approx(restored.metrics(), nan_ok=True)


@pytest.mark.parametrize("strategy_name", STRATEGY_NAMES)
def test_strategies_are_deterministic_per_seed(strategy_name):
    space = get_space("nas-bench-201")

    def first_asks(seed):
        strategy = make_strategy(strategy_name, space, seed=seed)
        hashes = []
        for _ in range(12):
            arch = strategy.ask(1)[0]
            hashes.append(arch.hash)
            strategy.tell(arch, len(arch.hash) % 7 / 7 + arch.tokens[0] / 10)
        return hashes

    assert first_asks(0) == first_asks(0)
    assert first_asks(0) != first_asks(1)


@pytest.mark.parametrize("strategy_name", ["reinforce", "ppo"])
def test_policy_strategies_learn_a_one_step_bandit(strategy_name):
    strategy = make_strategy(strategy_name, one_step_space(), seed=0, preset="paper",
                             learningRate=0.05)
    for _ in range(150):
        for arch in strategy.ask(1):
            strategy.tell(arch, 1.0 if arch.canonical["op"] == "c" else 0.0)
    picks = [a.canonical["op"] for a in strategy.ask(100)]
    assert picks.count("c") > 80
    assert strategy.metrics()["policy_version"] == 150


def test_reinforce_updates_once_per_batch_from_tells_in_any_order():
    strategy = make_strategy("reinforce", get_space("nas-bench-201"), seed=0, batchSize=3)
    archs = strategy.ask(6)
    for arch in reversed(archs):
        strategy.tell(arch, 0.5)
    assert strategy.policy_version == 2
    # Told an architecture it never asked for: still learns from it.
    strategy.tell(get_space("nas-bench-201").random(random.Random(0)), 0.9)
    assert len(strategy.buffer) == 1


def test_regularized_evolution_is_random_until_full_then_mutates_the_best_of_a_sample():
    space = get_space("nas-bench-201")
    strategy = make_strategy("regularized-evolution", space, seed=0, population=5, sampleSize=5)
    members = []
    for i in range(5):
        arch = strategy.ask(1)[0]
        members.append(arch)
        strategy.tell(arch, float(i))  # the last one is the best
    best = members[-1]
    # sampleSize == population: the sample always holds the best, so each child is it mutated.
    child = strategy.ask(1)[0]
    assert sum(a != b for a, b in zip(child.tokens, best.tokens)) == 1
    strategy.tell(child, -1.0)
    # Aging: the oldest member died, not the worst.
    assert [t for t, _ in strategy.population] == [m.tokens for m in members[1:]] + [child.tokens]


def test_tpe_accepts_results_for_architectures_it_did_not_ask():
    space = get_space("nas-bench-201")
    strategy = make_strategy("tpe", space, seed=0, startupTrials=2)
    for arch in [space.random(random.Random(i)) for i in range(4)]:
        strategy.tell(arch, arch.tokens[0] / 4)
    assert len(strategy.study.trials) == 4
    assert len(strategy.ask(2)) == 2


def test_make_strategy_errors_name_the_hyperparameter():
    space = one_step_space()
    with pytest.raises(ValueError, match="unknown strategy 'bohb' .valid: reinforce, ppo"):
        make_strategy("bohb", space)
    with pytest.raises(ValueError, match="population does not apply to reinforce"):
        make_strategy("reinforce", space, population=5)
    with pytest.raises(ValueError, match=r"learningRate must be > 0 \(got -1.0\)"):
        make_strategy("ppo", space, learningRate=-1)
    with pytest.raises(ValueError, match=r"sampleSize must be <= population \(got 9 > 4\)"):
        make_strategy("regularized-evolution", space, population=4, sampleSize=9)
    with pytest.raises(ValueError, match="momentum is not a hyperparameter of tpe"):
        make_strategy("tpe", space, momentum=0.9)


def test_flat_adam_matches_torch_adam():
    torch.manual_seed(0)
    mine = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(5))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in mine]
    flat, reference = FlatAdam(mine, lr=0.01), torch.optim.Adam(theirs, lr=0.01)
    for step in range(5):
        for params, optimizer in ((mine, flat), (theirs, reference)):
            optimizer.zero_grad()
            loss = (params[0] ** 2).sum() * (step + 1) + params[1].sin().sum()
            loss.backward()
            optimizer.step()
    for a, b in zip(mine, theirs):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("strategy_name", STRATEGY_NAMES)
def test_run_on_table_reports_every_evaluation(strategy_name):
    space = get_space("nas-bench-graph")
    table = nas_bench_graph_table("cora")
    run = run_on_table(strategy_name, space, table, budget=30, seed=0, parallelism=2)
    assert len(run.rewards) == len(run.hashes) == 30
    assert run.rewards == [table[h] for h in run.hashes]
    assert run.best_so_far()[-1] == run.best_reward == max(run.rewards)


def test_run_on_table_with_dedup_stops_when_the_space_is_exhausted():
    space = get_space("custom", None, [{"name": "x", "choices": [1, 2, 3]}])
    table = {space.from_tokens([i]).hash: float(i) for i in range(3)}
    run = run_on_table("random", space, table, budget=10, seed=0, dedup=True)
    assert sorted(run.rewards) == [0.0, 1.0, 2.0] and run.exhausted


# --- sample-efficiency options (issue 11) ----------------------------------------------

def told(strategy, rewards):
    for arch, reward in zip(strategy.ask(len(rewards)), rewards):
        strategy.tell(arch, reward)


def test_presets_are_the_papers_settings_or_the_tuned_ones():
    space = get_space("nas-bench-graph", {})
    paper = make_strategy("reinforce", space, preset="paper")
    assert (paper.optimizer.lr, paper.batch_size, paper.candidate_samples,
            paper.reward_normalization) == (6e-4, 1, 0, "none")
    ppo_paper = make_strategy("ppo", space, preset="paper")
    assert (ppo_paper.optimizer.lr, ppo_paper.policy.hidden_size, ppo_paper.entropy_weight) \
        == (3.5e-4, 100, 1e-5)
    tuned = make_strategy("reinforce", space)
    assert tuned.candidate_samples > 1  # the default is not the paper's
    overridden = make_strategy("reinforce", space, preset="paper", batchSize=4)
    assert (overridden.batch_size, overridden.optimizer.lr) == (4, 6e-4)
    with pytest.raises(ValueError, match=r"^preset must be one of tuned, paper \(got 'nasnet'\)"):
        make_strategy("ppo", space, preset="nasnet")


def test_risk_seeking_learns_only_from_the_top_quantile():
    strategy = make_strategy("reinforce", get_space("nas-bench-graph", {}), seed=0,
                             preset="paper", batchSize=4, riskSeekingQuantile=0.25)
    advantages = strategy._advantages([0.1, 0.2, 0.3, 0.4])
    # baseline: the 0.75 quantile of the batch, 0.325; only 0.4 is above it
    assert advantages == pytest.approx([0.0, 0.0, 0.0, 0.075])
    ranked = make_strategy("reinforce", get_space("nas-bench-graph", {}), seed=0,
                           preset="paper", batchSize=4, riskSeekingQuantile=0.25,
                           rewardNormalization="rank")
    # centred ranks -1, -1/3, 1/3, 1; the floor 1 - 2ε = 0.5
    assert ranked._advantages([0.1, 0.2, 0.3, 0.4]) == pytest.approx([0, 0, 0, 0.5])


def test_priority_queue_term_is_the_likelihood_of_the_best_told():
    strategy = make_strategy("reinforce", get_space("nas-bench-graph", {}), seed=0,
                             preset="paper", batchSize=100, priorityQueueSize=2)
    archs = strategy.ask(5)
    for arch, reward in zip(archs, [0.3, 0.9, 0.1, 0.8, 0.5]):
        strategy.tell(arch, reward)
    best_two = torch.tensor([list(archs[1].tokens), list(archs[3].tokens)])
    with torch.no_grad():
        expected = -strategy.policy.score(best_two)[0].mean()
        assert float(strategy.auxiliary_loss()) == pytest.approx(float(expected))
    # and an update raises their probability
    before = float(expected)
    strategy.batch_size = 1
    strategy.tell(archs[2], 0.1)
    with torch.no_grad():
        assert float(-strategy.policy.score(best_two)[0].mean()) < before


def test_learn_from_all_replays_every_told_result(monkeypatch):
    from nas_trainer.strategies import policy_gradient

    strategy = make_strategy("reinforce", get_space("nas-bench-graph", {}), seed=0,
                             preset="paper", batchSize=2, learnFrom="all")
    seen_batches = []
    original = strategy._update
    monkeypatch.setattr(strategy, "_update", lambda tokens, advantages, sampled: (
        seen_batches.append(len(tokens)), original(tokens, advantages, sampled))[1])
    monkeypatch.setattr(policy_gradient, "REPLAY_WINDOW", 5)
    told(strategy, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    assert seen_batches == [2, 4, 5, 5]
    # importance weights: p_now / p_sampled, at most 1
    tokens = torch.tensor([list(t) for t, _, _, _ in strategy.history[-3:]])
    weights = strategy.importance_weights(tokens, [lp for _, _, lp, _ in strategy.history[-3:]])
    assert ((weights > 0) & (weights <= 1)).all()


def test_candidate_samples_propose_unseen_architectures_the_predictor_favours():
    """Reward = the sum of three choices (512 architectures): after the startup tells,
    predictor-guided asks beat the policy's own draws and never repeat an architecture."""
    space = get_space("custom", None, [{"name": n, "choices": list(range(8))}
                                       for n in ("a", "b", "c")])

    def reward(arch):
        return sum(arch.canonical[n] for n in ("a", "b", "c")) / 21

    def asked_rewards(candidate_samples):
        strategy = make_strategy("reinforce", space, seed=0, preset="paper",
                                 candidateSamples=candidate_samples)
        rewards, hashes = [], []
        for _ in range(30):
            arch = strategy.ask(1)[0]
            hashes.append(arch.hash)
            rewards.append(reward(arch))
            strategy.tell(arch, rewards[-1])
        return rewards[10:], hashes

    guided, guided_hashes = asked_rewards(64)
    plain, _ = asked_rewards(0)
    assert sum(guided) / len(guided) > sum(plain) / len(plain) + 0.15
    assert len(set(guided_hashes[10:])) == 20 and not set(guided_hashes[10:]) & set(
        guided_hashes[:10])


def test_entropy_weight_halves_every_half_life():
    strategy = make_strategy("ppo", get_space("nas-bench-graph", {}), seed=0, preset="paper",
                             entropyWeight=0.2, entropyHalfLife=4.0)
    assert strategy.current_entropy_weight == pytest.approx(0.2)
    told(strategy, [0.5] * 8)
    assert strategy.current_entropy_weight == pytest.approx(0.05)


@pytest.mark.parametrize("preset", ["tuned", "paper"])
def test_the_reported_baseline_is_the_ema_of_told_rewards_whatever_the_preset(preset):
    # the controller exports it (nas_controller_policy_baseline); the dashboards plot it
    strategy = make_strategy("reinforce", one_step_space(), seed=0, preset=preset,
                             batchSize=1, baselineDecay=0.5)
    rewards = [0.2, 0.6, 0.4]
    for reward in rewards:
        strategy.tell(strategy.ask(1)[0], reward)
    expected = rewards[0]
    for reward in rewards:
        expected = 0.5 * expected + 0.5 * reward
    assert strategy.metrics()["baseline"] == pytest.approx(expected)

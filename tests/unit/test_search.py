"""The search loop: budget, deduplication, stop reasons, parallel executors, and resuming
from the results folder after a kill at any point without repeating a trial."""
from __future__ import annotations

import json
from typing import Callable

import pytest

from nas_trainer.evaluators import InProcessExecutor, nas_bench_graph_evaluator
from nas_trainer.results import ResultsFolder
from nas_trainer.search import (GOAL_REACHED, MAX_TRIALS_REACHED, SPACE_EXHAUSTED,
                                TOO_MANY_FAILURES, Budget, SearchLoop, TrialOutcome,
                                TrialRequest, run_search)
from nas_trainer.spaces import get_space
from nas_trainer.strategies import make_strategy
from nas_trainer.strategies.policy_gradient import single_threaded


@pytest.fixture(autouse=True)
def one_torch_thread():
    with single_threaded():
        yield


def grid_space(*sizes: int):
    return get_space("custom", None, [{"name": f"d{i}", "choices": list(range(n))}
                                      for i, n in enumerate(sizes)])


class FunctionEvaluator:
    """Reward = f(canonical); ValueError from f is a permanent failure."""

    def __init__(self, reward: Callable[[dict], float]) -> None:
        self.reward = reward
        self.evaluated: list[str] = []

    def evaluate(self, request: TrialRequest) -> TrialOutcome:
        self.evaluated.append(request.architecture.hash)
        return TrialOutcome(request.index, succeeded=True,
                            reward=self.reward(dict(request.architecture.canonical)))


class CountingStrategy:
    """Wraps a strategy and counts what it hears (the loop sees the same interface)."""

    def __init__(self, inner) -> None:
        self.inner, self.asked, self.told, self.failed = inner, 0, 0, 0

    def ask(self, n=1):
        archs = self.inner.ask(n)
        self.asked += len(archs)
        return archs

    def tell(self, arch, reward):
        self.told += 1
        self.inner.tell(arch, reward)

    def tell_failure(self, arch, reason=""):
        self.failed += 1
        self.inner.tell_failure(arch, reason)

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)


class Scripted:
    """Proposes a fixed list of token sequences (repeats included)."""

    name = "scripted"

    def __init__(self, space, script):
        self.space, self.script, self.told = space, list(script), []

    def ask(self, n=1):
        taken, self.script = self.script[:n], self.script[n:]
        return [self.space.from_tokens(t) for t in taken]

    def tell(self, arch, reward):
        self.told.append((arch.tokens, reward))

    def tell_failure(self, arch, reason=""):
        self.told.append((arch.tokens, None))

    def state_dict(self):
        return {"script": [list(t) for t in self.script], "told": [[list(t), r] for t, r in self.told]}

    def load_state_dict(self, state):
        self.script = [tuple(t) for t in state["script"]]
        self.told = [(tuple(t), r) for t, r in state["told"]]


def trial_lines(folder: ResultsFolder) -> list[dict]:
    return [json.loads(line) for line in folder.trials_file.read_text().splitlines()]


def test_budget_counts_trials_and_never_repeats_an_architecture(tmp_path):
    space = grid_space(10, 10)
    evaluator = FunctionEvaluator(lambda c: c["d0"] / 10 + c["d1"] / 100)
    folder = ResultsFolder(tmp_path)
    summary = run_search(space, make_strategy("random", space, seed=0),
                         InProcessExecutor(evaluator), folder, Budget(max_trials=25, parallelism=3))
    lines = trial_lines(folder)
    assert summary.reason == MAX_TRIALS_REACHED and summary.trials == 25
    assert [line["index"] for line in lines] == list(range(25))
    assert len({line["hash"] for line in lines}) == 25 == len(set(evaluator.evaluated))
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["reward"] == max(line["reward"] for line in lines) == summary.best.reward
    checkpoint = json.loads((tmp_path / "checkpoint" / "strategy.json").read_text())
    assert checkpoint["loop"]["next_index"] == 25 and checkpoint["loop"]["in_flight"] == []


def test_known_proposals_teach_the_strategy_but_cost_no_budget(tmp_path):
    space = grid_space(2, 3)  # 6 architectures, so random search repeats itself often
    strategy = CountingStrategy(make_strategy("random", space, seed=1))
    summary = run_search(space, strategy, InProcessExecutor(FunctionEvaluator(lambda c: 0.5)),
                         ResultsFolder(tmp_path), Budget(max_trials=5))
    assert summary.trials == 5 and summary.known_proposals > 0
    assert strategy.told == strategy.asked == 5 + summary.known_proposals


def test_a_tiny_space_ends_with_space_exhausted(tmp_path):
    space = grid_space(2, 2)  # 4 architectures
    summary = run_search(space, make_strategy("reinforce", space, seed=0),
                         InProcessExecutor(FunctionEvaluator(lambda c: c["d0"] + c["d1"])),
                         ResultsFolder(tmp_path), Budget(max_trials=10, parallelism=2))
    assert summary.reason == SPACE_EXHAUSTED and summary.trials == 4
    assert summary.best.reward == 2


def test_a_strategy_stuck_on_known_architectures_ends_the_search(tmp_path):
    space = grid_space(50, 50)
    strategy = Scripted(space, [(0, 0), (1, 1)] + [(0, 0), (1, 1)] * 10)
    summary = run_search(space, strategy, InProcessExecutor(FunctionEvaluator(lambda c: 0.0)),
                         ResultsFolder(tmp_path), Budget(max_trials=100, max_known_in_a_row=5))
    assert summary.reason == SPACE_EXHAUSTED
    assert summary.trials == 2 and summary.known_proposals == 5


def test_goal_stops_the_search(tmp_path):
    space = grid_space(10, 10)
    summary = run_search(space, make_strategy("random", space, seed=0),
                         InProcessExecutor(FunctionEvaluator(lambda c: c["d0"] / 9)),
                         ResultsFolder(tmp_path), Budget(max_trials=100, parallelism=4, goal=0.99))
    assert summary.reason == GOAL_REACHED and summary.best.reward >= 0.99
    assert summary.trials < 100


def test_failed_trials_count_against_max_and_too_many_fail_the_search(tmp_path):
    space = grid_space(10, 10)

    def sometimes_broken(canonical):
        if canonical["d0"] % 2:
            raise ValueError("odd first decision cannot be built")
        return 0.5

    strategy = CountingStrategy(make_strategy("random", space, seed=0))
    summary = run_search(space, strategy, InProcessExecutor(FunctionEvaluator(sometimes_broken)),
                         ResultsFolder(tmp_path / "a"), Budget(max_trials=12, max_failed=100))
    assert summary.reason == MAX_TRIALS_REACHED and summary.trials == 12
    assert summary.failed > 0 and strategy.failed >= summary.failed
    failed = [r for r in trial_lines(ResultsFolder(tmp_path / "a")) if r["status"] == "Failed"]
    assert failed[0]["reason"] == "PermanentError" and "cannot be built" in failed[0]["message"]

    summary = run_search(space, make_strategy("random", space, seed=0),
                         InProcessExecutor(FunctionEvaluator(sometimes_broken)),
                         ResultsFolder(tmp_path / "b"), Budget(max_trials=100, max_failed=3))
    assert summary.reason == TOO_MANY_FAILURES and summary.failed == 3


class ParkingExecutor:
    """Holds submitted trials and finishes them newest first, one per wait: an
    asynchronous executor whose trials complete out of order."""

    def __init__(self, reward: Callable[[dict], float]) -> None:
        self.reward = reward
        self.running: list[TrialRequest] = []
        self.most_in_flight = 0

    def submit(self, request):
        self.running.append(request)
        self.most_in_flight = max(self.most_in_flight, len(self.running))

    def wait(self, timeout):
        request = self.running.pop()
        return [TrialOutcome(request.index, True,
                             self.reward(dict(request.architecture.canonical)))]

    def cancel(self):
        self.running.clear()


def test_parallel_trials_finish_in_any_order(tmp_path):
    space = grid_space(10, 10)
    executor = ParkingExecutor(lambda c: c["d1"] / 10)
    summary = run_search(space, make_strategy("reinforce", space, seed=0, batchSize=2), executor,
                         ResultsFolder(tmp_path), Budget(max_trials=20, parallelism=4))
    assert summary.trials == 20 and executor.most_in_flight == 4
    order = [line["index"] for line in trial_lines(ResultsFolder(tmp_path))]
    assert sorted(order) == list(range(20)) and order != list(range(20))


def test_a_proposal_of_a_running_architecture_waits_for_its_result(tmp_path):
    space = grid_space(3, 3)
    strategy = Scripted(space, [(0, 0), (0, 0), (1, 1), (2, 2)])
    executor = ParkingExecutor(lambda c: c["d0"] + 0.5)
    summary = run_search(space, strategy, executor, ResultsFolder(tmp_path),
                         Budget(max_trials=3, parallelism=2))
    assert summary.trials == 3 and summary.known_proposals == 1
    # (0, 0) ran once and was told twice, both times with its one result.
    assert [r for t, r in strategy.told if t == (0, 0)] == [0.5, 0.5]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even `except Exception`)."""


class KillingEvaluator(FunctionEvaluator):
    def __init__(self, reward, kill_at: int) -> None:
        super().__init__(reward)
        self.kill_at = kill_at

    def evaluate(self, request):
        if len(self.evaluated) == self.kill_at:
            raise Killed()
        return super().evaluate(request)


def nas_bench_graph_search(folder, evaluator, strategy_name="reinforce", on_trial=None):
    space = get_space("nas-bench-graph")
    hyperparameters = {"batchSize": 2} if strategy_name == "reinforce" else {}
    strategy = make_strategy(strategy_name, space, seed=4, **hyperparameters)
    executor = InProcessExecutor(evaluator)
    loop = SearchLoop(space, strategy, executor, folder, Budget(max_trials=30, parallelism=3),
                      on_trial=on_trial)
    return loop.run()


def table_reward():
    table = nas_bench_graph_evaluator("cora")
    return lambda c: table.table[get_space("nas-bench-graph").from_canonical(c).hash]["valid_perf"]


@pytest.mark.parametrize("strategy_name", ["reinforce", "regularized-evolution", "tpe"])
@pytest.mark.parametrize("kill_at", [0, 7, 13])
def test_resume_after_a_kill_during_evaluation_repeats_nothing(tmp_path, kill_at, strategy_name):
    reward = table_reward()
    reference = ResultsFolder(tmp_path / "reference")
    nas_bench_graph_search(reference, FunctionEvaluator(reward), strategy_name)

    folder = ResultsFolder(tmp_path / "killed")
    with pytest.raises(Killed):
        nas_bench_graph_search(folder, KillingEvaluator(reward, kill_at), strategy_name)
    done_before = {line["hash"] for line in trial_lines(folder)} if folder.trials_file.exists() else set()
    resumed = FunctionEvaluator(reward)
    summary = nas_bench_graph_search(folder, resumed, strategy_name)

    assert summary.resumed and summary.trials == 30
    assert not done_before & set(resumed.evaluated)  # no finished trial ran again
    lines = trial_lines(folder)
    assert sorted(line["index"] for line in lines) == list(range(30))
    # Deterministic executor: the resumed search is the one that was never stopped.
    assert [(l["index"], l["hash"]) for l in lines] == [(l["index"], l["hash"])
                                                        for l in trial_lines(reference)]


class KillingStrategy(CountingStrategy):
    """Dies while being told its n-th result: after trials.jsonl has it, before the
    checkpoint knows it was told."""

    def __init__(self, inner, kill_at: int) -> None:
        super().__init__(inner)
        self.kill_at = kill_at

    def tell(self, arch, reward):
        if self.told == self.kill_at:
            raise Killed()
        super().tell(arch, reward)


def test_resume_after_a_kill_between_record_and_tell_tells_exactly_once(tmp_path):
    space = get_space("nas-bench-graph")
    reward = table_reward()
    reference = ResultsFolder(tmp_path / "reference")
    nas_bench_graph_search(reference, FunctionEvaluator(reward))

    folder = ResultsFolder(tmp_path / "killed")
    strategy = KillingStrategy(make_strategy("reinforce", space, seed=4, batchSize=2), kill_at=8)
    with pytest.raises(Killed):
        SearchLoop(space, strategy, InProcessExecutor(FunctionEvaluator(reward)), folder,
                   Budget(max_trials=30, parallelism=3)).run()
    assert len(trial_lines(folder)) == 9  # the 9th was recorded, then the process died
    summary = nas_bench_graph_search(folder, FunctionEvaluator(reward))
    assert summary.trials == 30
    assert trial_lines(folder) == [
        {**line, "finished_at": mine["finished_at"]}
        for line, mine in zip(trial_lines(reference), trial_lines(folder))]


def test_a_torn_last_line_is_dropped_and_the_trial_rerun(tmp_path):
    reward = table_reward()
    folder = ResultsFolder(tmp_path)
    with pytest.raises(Killed):
        nas_bench_graph_search(folder, KillingEvaluator(reward, 10))
    with open(folder.trials_file, "ab") as handle:
        handle.write(b'{"index": 99, "hash": "12')  # a write cut short by the kill
    summary = nas_bench_graph_search(folder, FunctionEvaluator(reward))
    assert summary.trials == 30
    assert sorted(line["index"] for line in trial_lines(folder)) == list(range(30))


def test_finished_search_run_again_does_nothing_more(tmp_path):
    reward = table_reward()
    folder = ResultsFolder(tmp_path)
    nas_bench_graph_search(folder, FunctionEvaluator(reward))
    again = FunctionEvaluator(reward)
    summary = nas_bench_graph_search(folder, again)
    assert summary.reason == MAX_TRIALS_REACHED and summary.trials == 30 and not again.evaluated


def test_checkpoint_pair_survives_a_crash_between_its_two_files(tmp_path):
    import torch

    folder = ResultsFolder(tmp_path)
    folder.save_checkpoint({"step": 1}, {"strategy": "x", "weights": torch.tensor([1.0])})
    first_json = (tmp_path / "checkpoint" / "strategy.json").read_bytes()
    folder.save_checkpoint({"step": 2}, {"strategy": "x", "weights": torch.tensor([2.0])})
    assert folder.load_checkpoint()[1]["weights"].item() == 2.0
    # Crash after the new strategy.pt was renamed into place, before strategy.json was.
    (tmp_path / "checkpoint" / "strategy.json").write_bytes(first_json)
    loop, strategy = folder.load_checkpoint()
    assert loop == {"step": 1} and strategy["weights"].item() == 1.0


def test_an_outcome_that_ran_another_architecture_records_and_tells_that_one(tmp_path):
    """A Trial index a replaced controller had written with another architecture: the
    executor reports what ran, and the loop records and tells that, not its proposal."""
    space = grid_space(4, 4)
    ran = space.from_tokens([3, 3])

    class Swapping:
        def evaluate(self, request: TrialRequest) -> TrialOutcome:
            architecture = ran if request.index == 0 else None
            return TrialOutcome(request.index, succeeded=True, reward=0.9,
                                architecture=architecture)

    strategy = CountingStrategy(Scripted(space, [[0, 1], [1, 2]]))
    told: list[str] = []
    strategy.tell = lambda arch, reward: told.append(arch.hash)
    folder = ResultsFolder(tmp_path)
    SearchLoop(space, strategy, InProcessExecutor(Swapping()), folder,
               Budget(max_trials=2)).run()
    records = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert records[0]["hash"] == ran.hash and records[0]["architecture"]["tokens"] == [3, 3]
    assert told[0] == ran.hash and told[1] == space.from_tokens([1, 2]).hash

"""The controller's resume rule, killed at every write it makes.

The search loop runs against an in-memory Trial store standing in for the API server
(create-or-adopt by name, as the API does) and an "operator" that finishes Trials from
the NAS-Bench-Graph table. A kill is an exception raised before the k-th write (a
checkpoint, a trials.jsonl line, best.json or a Trial create), for every k; a fresh
controller then resumes from the same folder and store.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from nas_trainer.controller.executor import outcome_of
from nas_trainer.controller.loop import KubernetesSearchLoop
from nas_trainer.controller.trials_api import build_trial, view_trial
from nas_trainer.evaluators.tabular import nas_bench_graph_evaluator
from nas_trainer.results import ResultsFolder, TrialRecord
from nas_trainer.search import (GOAL_REACHED, TOO_MANY_FAILURES, Budget, TrialOutcome,
                                TrialRequest)
from nas_trainer.spaces import get_space
from nas_trainer.strategies import make_strategy

SEARCH = {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
          "metadata": {"name": "cora", "namespace": "t", "uid": "u", "generation": 1}, "spec": {}}


class Killed(BaseException):
    """The controller process died here."""


class Killer:
    def __init__(self, at: int | None = None) -> None:
        self.at, self.count = at, 0

    def tick(self) -> None:
        self.count += 1
        if self.count == self.at:
            raise Killed(f"killed before write {self.count}")


class KillableFolder(ResultsFolder):
    """The search volume; records the policy version of every checkpoint written."""

    def __init__(self, path: Path, killer: Killer, versions: list[int]) -> None:
        super().__init__(path)
        self.killer, self.versions = killer, versions

    def save_checkpoint(self, loop: Any, strategy: Any) -> None:
        self.killer.tick()
        super().save_checkpoint(loop, strategy)
        self.versions.append(int(strategy["policy_version"]))

    def append_trial(self, record: TrialRecord) -> None:
        self.killer.tick()
        super().append_trial(record)

    def write_best(self, record: TrialRecord) -> None:
        self.killer.tick()
        super().write_best(record)


class TrialStore:
    """Trials by name, as the API server keeps them."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.creates = 0

    def create_or_adopt(self, body: dict) -> tuple[dict, bool]:
        name = body["metadata"]["name"]
        if name in self.objects:
            return self.objects[name], False
        self.objects[name] = body
        self.creates += 1
        return body, True

    def list_trials(self) -> list[dict]:
        return list(self.objects.values())


class StoreExecutor:
    """submit creates (or adopts) the Trial; wait plays the operator: it reports the
    finished Trials, or else finishes the oldest submitted one from the table (one result
    per wait, so a resumed run sees results in the order an unkilled one did)."""

    def __init__(self, store: TrialStore, killer: Killer) -> None:
        self.store, self.killer = store, killer
        self.evaluator = nas_bench_graph_evaluator("cora")
        self.submitted: dict[int, str] = {}
        self.reported: set[int] = set()

    def submit(self, request: TrialRequest) -> None:
        self.killer.tick()
        arch = request.architecture
        body = build_trial(SEARCH, request.index, arch.to_json(), arch.meta.get("log_prob"),
                           int(arch.meta.get("policy_version") or 0))
        obj, _ = self.store.create_or_adopt(body)
        self.submitted[request.index] = obj["metadata"]["name"]

    def wait(self, timeout: float | None) -> list[TrialOutcome]:
        outcomes = self._finished()
        if outcomes:
            return outcomes
        unfinished = [i for i in sorted(self.submitted)
                      if "status" not in self.store.objects[self.submitted[i]]]
        if unfinished:
            obj = self.store.objects[self.submitted[unfinished[0]]]
            result = self.evaluator.evaluate(TrialRequest(unfinished[0], self._arch(obj)))
            obj["status"] = {"phase": "Succeeded", "reward": result.reward,
                             "metrics": dict(result.metrics)}
        return self._finished()

    def _finished(self) -> list[TrialOutcome]:
        outcomes = []
        for index in sorted(set(self.submitted) - self.reported):
            view = view_trial(self.store.objects[self.submitted[index]])
            if view.finished:
                outcomes.append(outcome_of(view))
                self.reported.add(index)
        return outcomes

    def cancel(self) -> None:
        pass

    def expect(self, view) -> None:
        self.submitted[view.index] = view.name
        self.reported.discard(view.index)

    @staticmethod
    def _arch(obj: dict):
        return SPACE.parse(obj["spec"]["architecture"])


class NoStatus:
    def progress(self, *args: Any) -> None:
        pass


SPACE = get_space("nas-bench-graph", {"dataset": "cora"})


def run_controller(folder_path: Path, store: TrialStore, budget: Budget, kill_at: int | None,
                   versions: list[int]) -> tuple[KubernetesSearchLoop, Killer]:
    killer = Killer(kill_at)
    strategy = make_strategy("reinforce", SPACE, seed=3, hiddenSize=16, lstmLayers=1,
                             batchSize=1)
    loop = KubernetesSearchLoop(SPACE, strategy, StoreExecutor(store, killer),
                                KillableFolder(folder_path, killer, versions), budget, store,
                                NoStatus(), epoch=1)
    summary = loop.run()
    if summary.reason in (GOAL_REACHED, TOO_MANY_FAILURES):
        loop.record_late_trials()  # as the controller's runner does
    return loop, killer


def outcome(folder_path: Path) -> dict[int, tuple[str, float]]:
    records = ResultsFolder(folder_path).read_trials()
    indices = [r.index for r in records]
    assert len(indices) == len(set(indices)), f"a trial recorded twice: {indices}"
    return {r.index: (r.hash, r.reward) for r in records}


def check_invariants(folder_path: Path, store: TrialStore, loop: KubernetesSearchLoop,
                     versions: list[int], budget: Budget) -> None:
    records = outcome(folder_path)
    assert sorted(records) == list(range(budget.max_trials)), "a trial lost or one too many"
    trials = {view_trial(o).index: view_trial(o) for o in store.objects.values()}
    assert sorted(trials) == list(range(budget.max_trials)), "trial indices have a gap"
    assert store.creates == len(trials)
    for index, (hash_, _) in records.items():
        assert trials[index].hash == hash_, f"trial {index} ran another architecture"
    assert versions == sorted(versions), f"policy version went back: {versions}"
    assert all(t.policy_version <= versions[-1] for t in trials.values())
    # batch size 1: one policy update per tell, so this says every result was told once
    assert loop.strategy.policy_version == len(records) + loop.known_proposals


@pytest.mark.parametrize("parallelism", [1, 3])
def test_killed_before_any_write_the_search_resumes_as_if_never_killed(tmp_path, parallelism):
    budget = Budget(max_trials=5 if parallelism == 1 else 7, parallelism=parallelism)
    reference_versions: list[int] = []
    reference_store = TrialStore()
    _, killer = run_controller(tmp_path / "reference", reference_store, budget, None,
                               reference_versions)
    reference = outcome(tmp_path / "reference")
    writes = killer.count
    assert writes > 3 * budget.max_trials

    for kill_at in range(1, writes + 1):
        path, store, versions = tmp_path / f"kill-{kill_at}", TrialStore(), []
        with pytest.raises(Killed):
            run_controller(path, store, budget, kill_at, versions)
        loop, _ = run_controller(path, store, budget, None, versions)
        check_invariants(path, store, loop, versions, budget)
        assert outcome(path) == reference, f"killed before write {kill_at}: another search"
        shutil.rmtree(path)


def test_killed_twice_in_a_row_still_loses_nothing(tmp_path):
    budget = Budget(max_trials=10, parallelism=2)
    store, versions = TrialStore(), []
    for kill_at in (7, 2, 5, 1, 9):
        with pytest.raises(Killed):
            run_controller(tmp_path, store, budget, kill_at, versions)
    loop, _ = run_controller(tmp_path, store, budget, None, versions)
    check_invariants(tmp_path, store, loop, versions, budget)


def test_trials_of_a_lost_volume_are_adopted_not_run_again(tmp_path):
    budget = Budget(max_trials=10, parallelism=2)
    store, versions = TrialStore(), []
    with pytest.raises(Killed):
        run_controller(tmp_path / "old", store, budget, 20, versions)
    created_before = {o["metadata"]["name"]: o["spec"]["architecture"]["hash"]
                      for o in store.objects.values()}
    assert len(created_before) >= 4

    loop, _ = run_controller(tmp_path / "new-volume", store, budget, None, [])
    records = outcome(tmp_path / "new-volume")
    assert sorted(records) == list(range(10))
    for obj in store.objects.values():
        index = obj["spec"]["index"]
        assert records[index][0] == obj["spec"]["architecture"]["hash"]
    for name, hash_ in created_before.items():  # the old Trials were adopted as they were
        assert store.objects[name]["spec"]["architecture"]["hash"] == hash_
    assert store.creates == 10


def test_trials_running_when_the_goal_is_reached_are_recorded_too(tmp_path):
    # this strategy's second trial on cora scores 0.7987, the first 0.7967
    budget = Budget(max_trials=30, parallelism=3, goal=0.798)
    store, versions = TrialStore(), []
    loop, killer = run_controller(tmp_path / "reference", store, budget, None, versions)
    assert loop.stop_reason() == GOAL_REACHED
    recorded = outcome(tmp_path / "reference")
    created = sorted(view_trial(o).index for o in store.objects.values())
    assert created == sorted(recorded) == list(range(len(created))) and len(created) < 30
    reached = min(i for i, (_, reward) in recorded.items() if reward >= budget.goal)
    assert max(created) > reached, "no trial was running when the goal was reached"

    for kill_at in range(1, killer.count + 1):
        path, store, versions = tmp_path / f"kill-{kill_at}", TrialStore(), []
        with pytest.raises(Killed):
            run_controller(path, store, budget, kill_at, versions)
        run_controller(path, store, budget, None, versions)
        assert outcome(path) == recorded, f"killed before write {kill_at}"
        assert versions == sorted(versions)
        shutil.rmtree(path)

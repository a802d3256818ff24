"""A trial stopped early, end to end without a cluster: the trainer ends at the stop with a
result marked partial, the search records it as such and tells the strategy so, the
operator shows it in the Trial's status, and `nas run` stops trials on a real search."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from nas_operator.trial_status import derive_trial_status
from nas_trainer.early_stopping.files import PROGRESS_FILE, read_progress, write_stop
from nas_trainer.evaluators import InProcessExecutor
from nas_trainer.results import ResultsFolder
from nas_trainer.search import Budget, SearchLoop, TrialOutcome, TrialRequest
from nas_trainer.spaces import get_space
from nas_trainer.strategies import make_strategy
from nas_trainer.training import TrainerConfig, train_architecture
from nas_trainer.training.result import compact

ROOT = Path(__file__).resolve().parents[2]
torch.set_num_threads(1)


def chain(filters: list[int]) -> dict:
    layers = [{"filter_height": 3, "filter_width": 3, "filters": f, "stride": 1,
               "inputs": [i - 1] if i else []} for i, f in enumerate(filters)]
    return {"schema": "nas.architecture/v1", "space": "macro-cnn",
            "options": {"layers": len(layers)}, "canonical": {"layers": layers}, "hash": "test"}


CONFIG = TrainerConfig.from_dict({"dataset": "digits", "epochs": 4, "batchSize": 64,
                                  "reward": {"metric": "val_accuracy", "lastEpochs": 2}})


# --- the trainer ------------------------------------------------------------------------------

def test_the_trainer_reports_each_epoch_but_the_last(tmp_path):
    outcome = train_architecture(chain([8]), CONFIG, out_dir=tmp_path, log=lambda _: None)
    values, total = read_progress(tmp_path)
    assert sorted(values) == [1, 2, 3] and total == 4
    doc = outcome.result.to_json()
    assert doc["epochs"] == 4 and "stoppedEarly" not in doc


def test_a_stop_marker_ends_training_after_that_epoch_with_a_partial_result(tmp_path):
    write_stop(tmp_path, 2, "stopped by ASHA at epoch 2: reward 0.1 is not in the top 1 of 3")
    outcome = train_architecture(chain([8]), CONFIG, out_dir=tmp_path, log=lambda _: None)
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["stoppedEarly"] is True and doc["epochs"] == 2
    assert doc["stopReason"].startswith("stopped by ASHA at epoch 2")
    assert len(outcome.history) == 2 and (tmp_path / "model.pt").exists()
    # The reward is the one of the epochs trained (reward: best of the last 2, cubed).
    assert doc["reward"] == pytest.approx(max(e["val_accuracy"] for e in outcome.history) ** 3)
    assert json.loads(compact(doc))["stoppedEarly"] is True  # survives the termination message


def test_without_an_output_folder_nothing_is_written_or_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outcome = train_architecture(chain([8]), CONFIG, log=lambda _: None)
    assert outcome.result.epochs == 4 and not (tmp_path / PROGRESS_FILE).exists()


# --- the search loop and the strategies ----------------------------------------------------

class PartialEvaluator:
    """Odd trials were stopped early after 2 epochs."""

    def evaluate(self, request: TrialRequest) -> TrialOutcome:
        partial = request.index % 2 == 1
        return TrialOutcome(request.index, succeeded=True, reward=0.1 if partial else 0.5,
                            stopped_early=partial, epochs=2 if partial else 8,
                            message="stopped by the median rule" if partial else "")


class Recording:
    """Wraps a strategy and notes how each result was told."""

    def __init__(self, strategy):
        self.strategy = strategy
        self.told: list[tuple[str, float, int | None]] = []

    def __getattr__(self, name):
        return getattr(self.strategy, name)

    def tell(self, arch, reward):
        self.told.append(("full", reward, None))
        self.strategy.tell(arch, reward)

    def tell_partial(self, arch, reward, epochs):
        self.told.append(("partial", reward, epochs))
        self.strategy.tell_partial(arch, reward, epochs)


def test_the_loop_records_partial_results_and_tells_them_as_partial_also_after_a_restart(tmp_path):
    space = get_space("macro-cnn", {"layers": 3})
    folder = ResultsFolder(tmp_path)
    strategy = Recording(make_strategy("regularized-evolution", space, seed=0))
    SearchLoop(space, strategy, InProcessExecutor(PartialEvaluator()), folder,
               Budget(max_trials=4, parallelism=2)).run()
    records = folder.read_trials()
    assert [(r.stopped_early, r.epochs) for r in records] == [
        (False, 8), (True, 2), (False, 8), (True, 2)]
    assert records[1].message == "stopped by the median rule"
    assert [kind for kind, _, _ in strategy.told] == ["full", "partial", "full", "partial"]
    # A fresh strategy that resumes without a checkpoint hears every result as it was.
    (tmp_path / "checkpoint" / "strategy.json").unlink()
    fresh = Recording(make_strategy("regularized-evolution", space, seed=0))
    loop = SearchLoop(space, fresh, InProcessExecutor(PartialEvaluator()), folder,
                      Budget(max_trials=4, parallelism=2))
    loop.resume()
    assert fresh.told == strategy.told


@pytest.mark.parametrize("name", ["reinforce", "ppo", "regularized-evolution", "random", "tpe"])
def test_every_strategy_takes_a_partial_result_and_keeps_it_across_a_checkpoint(name):
    space = get_space("macro-cnn", {"layers": 3})
    strategy = make_strategy(name, space, seed=1)
    for i, arch in enumerate(strategy.ask(4)):
        if i % 2:
            strategy.tell_partial(arch, 0.05, 2)
        else:
            strategy.tell(arch, 0.5 + i / 10)
    restored = make_strategy(name, space, seed=1)
    restored.load_state_dict(copy.deepcopy(strategy.state_dict()))
    assert [a.hash for a in restored.ask(3)] == [a.hash for a in strategy.ask(3)]


def test_tpe_marks_a_partial_result_as_a_pruned_trial_at_the_epochs_reached():
    from optuna.trial import TrialState

    space = get_space("macro-cnn", {"layers": 3})
    tpe = make_strategy("tpe", space, seed=0)
    asked = tpe.ask(2)
    tpe.tell(asked[0], 0.6)
    tpe.tell_partial(asked[1], 0.2, 3)
    stranger = make_strategy("random", space, seed=9).ask(1)[0]
    tpe.tell_partial(stranger, 0.1, 2)   # never asked: added as a pruned trial
    trials = tpe.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED]
    assert trials[1].intermediate_values == {3: 0.2} and trials[2].intermediate_values == {2: 0.1}


# --- the operator ---------------------------------------------------------------------------

def test_the_trial_status_says_stopped_early_with_the_epochs_and_why():
    message = json.dumps({"schema": "nas.result/v1", "reward": 0.3, "metrics": {"val_accuracy": 0.67},
                          "epochs": 2, "seconds": 3.0, "stoppedEarly": True,
                          "stopReason": "stopped by ASHA at epoch 2: reward 0.3000 is not in "
                                        "the top 1 of 3 trials there"})
    trial = {"metadata": {"name": "s-00001", "namespace": "ns"},
             "spec": {"searchName": "s", "index": 1, "architecture": {"canonical": {}, "hash": "h"}},
             "status": {}}
    job = {"metadata": {"name": "s-00001"}, "spec": {},
           "status": {"startTime": "2025-01-01T11:00:00Z", "conditions": [
               {"type": "Complete", "status": "True", "lastTransitionTime": "2025-01-01T11:05:00Z"}]}}
    pod = {"metadata": {"name": "s-00001-a", "creationTimestamp": "2025-01-01T11:00:00Z"},
           "status": {"phase": "Succeeded", "containerStatuses": [
               {"name": "trainer", "state": {"terminated": {"exitCode": 0, "message": message}}}]}}
    status = derive_trial_status(trial, job, [pod])
    assert status["phase"] == "Succeeded" and status["reason"] == "StoppedEarly"
    assert status["stoppedEarly"] is True and status["epochs"] == 2 and status["reward"] == 0.3
    assert status["message"].startswith("stopped by ASHA at epoch 2")


# --- nas run, for real ----------------------------------------------------------------------

def test_nas_run_stops_trials_of_a_real_search_and_says_so_in_its_results(tmp_path):
    doc = yaml.safe_load((ROOT / "examples" / "early-stopping-digits.yaml").read_text())
    doc["spec"]["trials"].update(max=6, parallelism=2)
    doc["spec"]["strategy"] = {"name": "random", "seed": 3}
    doc["spec"]["trainer"].update(epochs=6)
    doc["spec"]["earlyStopping"] = {"policy": "median", "gracePeriod": 1, "minTrials": 2}
    doc["spec"]["searchSpace"]["options"] = {"layers": 2, "strides": True, "skips": False}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(doc))
    done = subprocess.run([sys.executable, "-m", "nas_trainer.cli", "run", str(path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in (tmp_path / "out" / "trials.jsonl").read_text().splitlines()]
    stopped = [line for line in lines if line["stopped_early"]]
    assert len(lines) == 6 and stopped, lines
    for line in stopped:
        assert line["status"] == "Succeeded" and line["epochs"] < 6
        assert "below the median" in line["message"]
        stop = json.loads((tmp_path / "out" / "trials" / f"{line['index']:05d}" / "stop.json").read_text())
        assert stop["epoch"] <= line["epochs"]


def test_the_controller_reads_a_trial_stopped_early_as_a_partial_outcome():
    from nas_trainer.controller.executor import outcome_of
    from nas_trainer.controller.trials_api import view_trial

    trial = {"metadata": {"name": "s-00002", "labels": {}},
             "spec": {"index": 2, "architecture": {"space": "macro-cnn", "hash": "h"}},
             "status": {"phase": "Succeeded", "reward": 0.3, "reason": "StoppedEarly",
                        "stoppedEarly": True, "epochs": 2, "message": "stopped by ASHA"}}
    outcome = outcome_of(view_trial(trial))
    assert outcome.succeeded and outcome.reward == 0.3
    assert outcome.stopped_early and outcome.epochs == 2
    trial["status"].update(reason="Completed", stoppedEarly=None, epochs=8)
    full = outcome_of(view_trial(trial))
    assert not full.stopped_early and full.epochs == 8

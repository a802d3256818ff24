"""Early stopping (spec.earlyStopping): the manifest section, the rules, the files between
trainer and search, and the search side that reads progress and writes stops."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from nas_trainer.early_stopping.files import (
    PROGRESS_FILE,
    ProgressWriter,
    read_progress,
    read_stop,
    write_stop,
)
from nas_trainer.early_stopping.monitor import EarlyStoppingExecutor, EarlyStoppingMonitor
from nas_trainer.early_stopping.rules import judge, rungs
from nas_trainer.early_stopping.spec import EarlyStoppingSpec
from nas_trainer.manifest import ManifestError, parse_search
from nas_trainer.search import TrialOutcome, TrialRequest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "examples" / "early-stopping-digits.yaml").read_text())


def manifest(**changes) -> dict:
    doc = copy.deepcopy(EXAMPLE)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc["spec"]
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return doc


# --- the manifest section -----------------------------------------------------------------

def test_the_example_parses_with_its_settings_and_defaults_fill_the_rest():
    spec = parse_search(EXAMPLE).early_stopping
    assert spec == EarlyStoppingSpec("asha", grace_period=2, reduction_factor=3, min_trials=3)
    bare = parse_search(manifest(earlyStopping={})).early_stopping
    assert bare == EarlyStoppingSpec("asha", 1, 3, 3)
    assert parse_search(manifest(earlyStopping=None)).early_stopping is None


@pytest.mark.parametrize("changes, words", [
    ({"trainer__mountSearchVolume": None},
     "spec.earlyStopping needs the trial pods to mount the search volume"),
    ({"trainer__mountSearchVolume": None, "storage": {"claimName": "mine",
                                                       "accessModes": ["ReadWriteMany"]}},
     "set spec.trainer.mountSearchVolume: true"),
    ({"earlyStopping__gracePeriod": 12},
     "spec.earlyStopping.gracePeriod must be < spec.trainer.epochs (got 12 >= 12)"),
    ({"earlyStopping__policy": "hyperband"},
     "spec.earlyStopping.policy must be one of asha, median (got 'hyperband')"),
    ({"earlyStopping__reductionFactor": 1}, "spec.earlyStopping.reductionFactor must be >= 2"),
    ({"earlyStopping__patience": 3}, "spec.earlyStopping.patience is not a field"),
])
def test_a_section_that_could_not_work_is_refused_naming_the_field(changes, words):
    with pytest.raises(ManifestError) as refused:
        parse_search(manifest(**changes))
    assert words in str(refused.value)


def test_a_volume_the_operator_makes_read_write_many_needs_no_mount_flag():
    doc = manifest(trainer__mountSearchVolume=None,
                   storage={"accessModes": ["ReadWriteMany"], "size": "1Gi"})
    assert parse_search(doc).early_stopping is not None


def test_nas_bench_graph_trials_have_no_epochs_to_stop():
    doc = yaml.safe_load((ROOT / "examples" / "nas-bench-graph-cora.yaml").read_text())
    doc["spec"]["earlyStopping"] = {"policy": "median"}
    doc["spec"].setdefault("trainer", {})["mountSearchVolume"] = True
    with pytest.raises(ManifestError) as refused:
        parse_search(doc)
    assert "cannot stop nas-bench-graph trials" in str(refused.value)


# --- the rules ------------------------------------------------------------------------------

ASHA = EarlyStoppingSpec("asha", grace_period=1, reduction_factor=3, min_trials=3)
MEDIAN = EarlyStoppingSpec("median", grace_period=2, min_trials=3)


def test_asha_rungs_grow_by_the_reduction_factor_below_the_last_epoch():
    assert rungs(ASHA, 27) == [1, 3, 9]
    assert rungs(EarlyStoppingSpec("asha", 2, 3), 12) == [2, 6]
    assert rungs(EarlyStoppingSpec("asha", 2, 2), 2) == []


def test_asha_keeps_the_top_third_at_a_rung_and_judges_nobody_before_min_trials():
    curves = {0: {1: 0.9}, 1: {1: 0.5}}
    assert judge(ASHA, 1, 0, 27, curves) == (None, 1)  # two trials there: too few to judge
    curves[2] = {1: 0.4}
    decision, judged = judge(ASHA, 2, 0, 27, curves)
    assert judged == 1 and decision.epoch == 1
    assert "not in the top 1 of 3 trials" in decision.message
    assert judge(ASHA, 0, 0, 27, curves)[0] is None  # the best goes on


def test_asha_judges_each_rung_once_as_the_trial_reaches_it():
    curves = {i: {1: 0.5 + i / 100, 2: 0.5, 3: 0.1 * i} for i in range(6)}
    # Trial 5 passed rung 1 (best there); at rung 3 it is again in the top 2 of 6.
    assert judge(ASHA, 5, 1, 27, curves) == (None, 3)
    # Trial 0 is judged at rung 1 first: last of 6 there.
    decision, judged = judge(ASHA, 0, 0, 27, curves)
    assert (judged, decision.epoch) == (1, 1)


def test_the_median_rule_stops_a_trial_below_the_others_median_from_the_grace_period_on():
    curves = {0: {1: 0.1, 2: 0.9}, 1: {1: 0.9, 2: 0.8}, 2: {1: 0.9, 2: 0.3}}
    assert judge(MEDIAN, 2, 0, 10, {k: {1: v[1]} for k, v in curves.items()})[0] is None  # grace
    decision, judged = judge(MEDIAN, 2, 0, 10, curves)
    assert judged == 2 and "below the median 0.8500 of 2 other trials" in decision.message
    assert judge(MEDIAN, 1, 0, 10, curves)[0] is None


def test_no_rule_judges_the_last_two_epochs_where_a_stop_could_not_land_in_time():
    curves = {i: {9: float(i), 10: float(i)} for i in range(5)}
    assert judge(MEDIAN, 0, 0, 10, curves) == (None, 0)
    assert judge(EarlyStoppingSpec("asha", 9, 3, 1), 0, 0, 10, curves) == (None, 0)
    curves = {i: {8: float(i)} for i in range(5)}
    assert judge(MEDIAN, 0, 0, 10, curves)[0].epoch == 8


# --- the files ---------------------------------------------------------------------------------

def test_progress_lines_and_the_stop_marker_round_trip(tmp_path):
    writer = ProgressWriter(tmp_path, total_epochs=5)
    writer.report(1, 0.25)
    writer.report(2, float("nan"))  # a diverged child: the worst reward
    with open(tmp_path / PROGRESS_FILE, "a") as handle:
        handle.write('{"epoch": 3, "of": 5, "rew')  # a line being written
    assert read_progress(tmp_path) == ({1: 0.25, 2: 0.0}, 5)
    assert writer.stop_requested(2) is None
    write_stop(tmp_path, 2, "stopped by ASHA at epoch 2")
    assert read_stop(tmp_path) == {"epoch": 2, "message": "stopped by ASHA at epoch 2"}
    assert writer.stop_requested(1) is None  # a retried attempt trains up to the epoch judged
    assert writer.stop_requested(2) == "stopped by ASHA at epoch 2"
    ProgressWriter(tmp_path, total_epochs=5)  # a new attempt starts the file over
    assert read_progress(tmp_path) == ({}, None)


# --- the search side -------------------------------------------------------------------------

class ScriptedExecutor:
    """Trials whose progress files the test writes; they finish when told to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: list[TrialOutcome] = []
        self.cancelled = False

    def folder(self, index: int) -> Path:
        return self.root / f"{index:05d}"

    def submit(self, request: TrialRequest) -> None:
        ProgressWriter(self.folder(request.index), total_epochs=9)

    def wait(self, timeout):
        done, self.done = self.done, []
        return done

    def cancel(self) -> None:
        self.cancelled = True

    def expect(self, index: int) -> str:
        return f"expected {index}"


def report(executor: ScriptedExecutor, index: int, rewards: list[float]) -> None:
    """Trial `index` has trained these epochs (its progress.jsonl written anew)."""
    writer = ProgressWriter(executor.folder(index), total_epochs=9)
    for epoch, reward in enumerate(rewards, start=1):
        writer.report(epoch, reward)


def test_the_monitor_stops_the_trailing_trial_writes_its_marker_and_tells_who(tmp_path):
    inner = ScriptedExecutor(tmp_path)
    told = []
    monitor = EarlyStoppingMonitor(ASHA, inner.folder, on_stop=lambda i, d: told.append((i, d)))
    executor = EarlyStoppingExecutor(inner, monitor, poll_seconds=0.0)
    for index in range(3):
        executor.submit(TrialRequest(index, architecture=None))
    report(inner, 0, [0.9])
    report(inner, 1, [0.8])
    assert executor.wait(0) == [] and told == []   # two at epoch 1: too few to judge
    report(inner, 2, [0.2])
    executor.wait(0)
    assert [index for index, _ in told] == [2]
    assert read_stop(inner.folder(2))["epoch"] == 1
    assert read_stop(inner.folder(0)) is None and read_stop(inner.folder(1)) is None
    executor.wait(0)
    # Trial 1 was judged at epoch 1 when only two trials were there (ASHA judges a rung as
    # a trial reaches it, never again): it goes on.
    assert [index for index, _ in told] == [2]
    assert executor.expect(4) == "expected 4"  # the wrapped executor's own calls pass through
    executor.cancel()
    assert inner.cancelled


def test_a_finished_trials_curve_counts_and_a_resumed_monitor_reads_it_back(tmp_path):
    inner = ScriptedExecutor(tmp_path)
    monitor = EarlyStoppingMonitor(MEDIAN, inner.folder)
    executor = EarlyStoppingExecutor(inner, monitor, poll_seconds=0.0)
    for index in range(2):
        executor.submit(TrialRequest(index, architecture=None))
        report(inner, index, [0.5, 0.9, 0.9])
        inner.done.append(TrialOutcome(index, succeeded=True, reward=0.9))
        assert [o.index for o in executor.wait(0)] == [index]
    resumed = EarlyStoppingMonitor(MEDIAN, inner.folder)
    resumed.load_existing(tmp_path)
    assert resumed.curves == {0: {1: 0.5, 2: 0.9, 3: 0.9}, 1: {1: 0.5, 2: 0.9, 3: 0.9}}
    executor = EarlyStoppingExecutor(inner, resumed, poll_seconds=0.0)
    executor.submit(TrialRequest(2, architecture=None))
    report(inner, 2, [0.5, 0.4])
    executor.wait(0)
    assert "below the median 0.9000 of 2 other trials" in read_stop(inner.folder(2))["message"]


def test_a_stale_controller_writes_no_stop(tmp_path):
    inner = ScriptedExecutor(tmp_path)

    def fenced_out() -> None:
        raise RuntimeError("fenced out")

    monitor = EarlyStoppingMonitor(ASHA, inner.folder, before_write=fenced_out)
    for index, reward in enumerate([0.9, 0.8, 0.1]):
        monitor.watch(index)
        report(inner, index, [reward])
    with pytest.raises(RuntimeError, match="fenced out"):
        monitor.poll()
    assert read_stop(inner.folder(2)) is None


def test_progress_lines_stay_small(tmp_path):
    writer = ProgressWriter(tmp_path, total_epochs=1000)
    for epoch in range(1, 1000):
        writer.report(epoch, 0.123456789)
    size = (tmp_path / PROGRESS_FILE).stat().st_size
    assert size / 999 < 60
    assert json.loads((tmp_path / PROGRESS_FILE).read_text().splitlines()[-1])["epoch"] == 999

"""`nas` end to end on NAS-Bench-Graph (answers instantly): run, interrupt, continue, best,
plot, validate."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nas_trainer.cli import app
from nas_trainer.evaluators import InProcessExecutor
from nas_trainer.results import ResultsFolder, TrialRecord
from nas_trainer.strategies.policy_gradient import single_threaded

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CORA = EXAMPLES / "nas-bench-graph-cora.yaml"
runner = CliRunner()


@pytest.fixture(autouse=True)
def one_torch_thread():
    with single_threaded():
        yield


def nas(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def text(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]


def assert_no_trial_repeated(lines: list[dict], total: int) -> None:
    assert sorted(line["index"] for line in lines) == list(range(total))
    assert len({line["hash"] for line in lines}) == total


def test_run_prints_the_best_architecture_and_fills_the_results_folder(tmp_path):
    out = tmp_path / "cora"
    result = nas("run", CORA, "--out", out, "--max-trials", 12, "--parallelism", 3)
    assert result.exit_code == 0, result.output
    assert "MaxTrialsReached: 12 trials" in text(result)
    assert "Best architecture" in text(result) and '"link"' in text(result)
    assert_no_trial_repeated(records(out), 12)
    assert yaml.safe_load((out / "search.yaml").read_text())["spec"]["trials"]["max"] == 12
    best = json.loads((out / "best.json").read_text())
    assert best["reward"] == max(r["reward"] for r in records(out))
    assert best["metrics"]["test_accuracy"] > 0  # NAS-Bench-Graph's `perf` of the best
    assert (out / "checkpoint" / "strategy.json").exists()
    assert (out / "checkpoint" / "strategy.pt").exists()

    shown = nas("best", out)
    assert shown.exit_code == 0 and best["hash"] in text(shown)
    as_json = nas("best", out, "--json")
    assert json.loads(as_json.output)["hash"] == best["hash"]

    plotted = nas("plot", out, "-o", tmp_path / "progress.png")
    assert plotted.exit_code == 0
    assert (tmp_path / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = nas("run", CORA, "--out", out, "--max-trials", 12, "--parallelism", 3)
    assert again.exit_code == 0 and "12 trials already done" in text(again)
    assert len(records(out)) == 12


def test_ctrl_c_then_rerun_continues_without_repeating(tmp_path, monkeypatch):
    out = tmp_path / "cora"
    real_wait = InProcessExecutor.wait
    calls = {"n": 0}

    def interrupted_wait(self, timeout):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_wait(self, timeout)

    monkeypatch.setattr(InProcessExecutor, "wait", interrupted_wait)
    result = nas("run", CORA, "--out", out, "--max-trials", 20, "--parallelism", 2)
    assert result.exit_code == 130
    assert "run the same command again to continue" in text(result)
    done = len(records(out))
    assert done == 6

    monkeypatch.setattr(InProcessExecutor, "wait", real_wait)
    result = nas("run", CORA, "--out", out, "--max-trials", 20, "--parallelism", 2)
    assert result.exit_code == 0 and f"{done} trials already done" in text(result)
    assert_no_trial_repeated(records(out), 20)


def test_sigkill_then_rerun_finishes_without_repeating(tmp_path):
    out = tmp_path / "cora"
    command = [str(Path(sys.executable).parent / "nas"), "run", str(CORA), "--out", str(out),
               "--max-trials", "80"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trials = out / "trials.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if trials.exists() and trials.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = len(records(out))
    assert 3 <= killed_at < 80, "the run ended before it could be killed"

    result = nas("run", CORA, "--out", out, "--max-trials", 80)
    assert result.exit_code == 0, result.output
    assert f"{killed_at} trials already done" in text(result)
    assert_no_trial_repeated(records(out), 80)


def test_a_folder_of_another_search_is_refused(tmp_path):
    out = tmp_path / "cora"
    assert nas("run", CORA, "--out", out, "--max-trials", 2).exit_code == 0
    other = yaml.safe_load(CORA.read_text())
    other["spec"]["strategy"] = {"name": "random"}
    manifest = tmp_path / "random.yaml"
    manifest.write_text(yaml.safe_dump(other))
    result = runner.invoke(app, ["run", str(manifest), "--out", str(out)])
    assert result.exit_code == 2
    assert "holds a search with a different spec.strategy" in text(result)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("nas-bench-graph-*.yaml"))
                         + sorted(EXAMPLES.glob("custom-*.yaml")), ids=lambda p: p.name)
def test_validate_accepts_the_examples(path):
    result = nas("validate", path)
    assert result.exit_code == 0 and "valid" in text(result)


def test_validate_counts_in_words(tmp_path):
    doc = yaml.safe_load(CORA.read_text())
    doc["spec"]["trials"] = {"max": 1, "parallelism": 1}
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump(doc))
    said = " ".join(text(nas("validate", one)).split())
    assert "(7 decisions, 26206 architectures)" in said and "up to 1 trial, 1 at a time" in said


def test_validate_rejects_a_bad_manifest_naming_the_field(tmp_path):
    doc = yaml.safe_load(CORA.read_text())
    doc["spec"]["trials"] = {"max": 4, "parallelism": 8}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "spec.trials.parallelism must be <= spec.trials.max (got 8 > 4)" in text(result)


def test_best_says_where_the_weights_are(tmp_path, monkeypatch):
    """A cluster's volume: the final training's best/model.pt wins over the trial's own."""
    monkeypatch.chdir(tmp_path)
    folder = ResultsFolder("volume")
    for index, reward in ((0, 0.5), (1, 0.8)):
        folder.append_trial(TrialRecord(index, f"h{index}", {"canonical": {"w": index}},
                                        "Succeeded", reward))
    assert "weights" not in text(nas("best", "volume"))  # a search whose pods kept none
    trial_weights = folder.trial_dir(1) / "model.pt"
    trial_weights.parent.mkdir(parents=True)
    trial_weights.write_bytes(b"weights")
    assert "weights │ volume/trials/00001/model.pt" in text(nas("best", "volume"))
    folder.final_dir.mkdir()
    (folder.final_dir / "model.pt").write_bytes(b"weights")
    shown = text(nas("best", "volume"))
    assert "trial │ 1 " in shown and "weights │ volume/best/model.pt" in shown


def test_best_of_an_empty_folder_says_so(tmp_path):
    result = runner.invoke(app, ["best", str(tmp_path)])
    assert result.exit_code == 2 and "not a results folder" in text(result)

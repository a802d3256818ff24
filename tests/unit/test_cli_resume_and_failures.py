"""`nas run` as a newcomer meets it: why trials failed is printed, a results folder is not
continued with a manifest whose rewards mean something else, a search that could not start
leaves no folder behind, and a continued run shows the best reward it already has."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nas_trainer.cli import app
from nas_trainer.strategies.policy_gradient import single_threaded

CORA = Path(__file__).resolve().parents[2] / "examples" / "nas-bench-graph-cora.yaml"
runner = CliRunner()  # its output holds stderr too (the errors console)


@pytest.fixture(autouse=True)
def one_torch_thread():
    with single_threaded():
        yield


def nas(*args) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def custom_search(tmp_path: Path, code: str, **trainer) -> Path:
    """A custom space whose trainer is a Python one-liner."""
    doc = {"apiVersion": "archsearch.io/v1alpha1", "kind": "ArchitectureSearch",
           "metadata": {"name": "one-liner"},
           "spec": {"searchSpace": {"name": "custom",
                                    "decisions": [{"name": "x", "choices": [1, 2, 3]}]},
                    "strategy": {"name": "random"},
                    "trials": {"max": 3, "maxFailed": 2, "retries": 0},
                    "trainer": {"command": [sys.executable, "-c", code], **trainer}}}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_reason_trials_failed_is_printed(tmp_path):
    failing = custom_search(tmp_path, "import sys; print('no GPU here', file=sys.stderr); "
                                      "sys.exit(1)")
    code, output = nas("run", failing, "--out", tmp_path / "out")
    assert code == 1 and "TooManyFailures: 2 trials (2 failed" in output
    assert "failed 2 × RetriesExhausted: exit code 1 after 1 attempts" in output
    assert "no GPU here" in output
    assert f"(log: {tmp_path / 'out' / 'trials' / '00001' / 'log.txt'})" in output


def test_a_folder_is_not_continued_with_other_data_or_another_reward(tmp_path):
    ok = ("import json, os; json.dump({'schema': 'nas.result/v1', 'reward': 0.5}, "
          "open(os.environ['NAS_OUTPUT_DIR'] + '/result.json', 'w'))")
    out = tmp_path / "out"
    assert nas("run", custom_search(tmp_path, ok, dataset="a"), "--out", out)[0] == 0
    code, output = nas("run", custom_search(tmp_path, ok, dataset="b"), "--out", out)
    assert code == 2
    assert "holds a search whose spec.trainer.dataset was 'a', not 'b'" in output
    code, output = nas("run", custom_search(tmp_path, ok + "  # v2", dataset="a"), "--out", out)
    assert code == 2 and "spec.trainer.command was" in output
    # other trainer settings may change, as on a cluster; the run says so
    code, output = nas("run", custom_search(tmp_path, ok, dataset="a", epochs=3), "--out", out)
    assert code == 0 and "Note: spec.trainer epochs changed since the last run" in output


def test_a_search_that_cannot_start_leaves_the_folder_free(tmp_path, monkeypatch):
    from nas_trainer import manifest

    def broken(self, space):
        raise RuntimeError("strategy could not be built")

    monkeypatch.setattr(manifest.StrategySpec, "build", broken)
    with pytest.raises(RuntimeError):
        runner.invoke(app, ["run", str(CORA), "--out", str(tmp_path / "out")],
                      catch_exceptions=False)
    assert not (tmp_path / "out" / "search.yaml").exists()


def test_a_continued_run_shows_the_best_so_far_and_big_seeds_work(tmp_path):
    doc = yaml.safe_load(CORA.read_text())
    doc["spec"]["strategy"] = {"name": "tpe", "seed": 2**40}  # Optuna's seeds are 32-bit
    path = tmp_path / "tpe.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    code, output = nas("run", path, "--out", out, "--max-trials", 3)
    assert code == 0 and "MaxTrialsReached: 3 trials" in output
    best = json.loads((out / "best.json").read_text())["reward"]
    code, output = nas("run", path, "--out", out, "--max-trials", 3)
    assert code == 0 and f"3/3 best {best:.4f}" in output


def test_a_damaged_trials_file_is_an_error_not_a_traceback(tmp_path):
    out = tmp_path / "out"
    assert nas("run", CORA, "--out", out, "--max-trials", 3)[0] == 0
    lines = (out / "trials.jsonl").read_text().splitlines()
    lines[1] = lines[1][:20]  # damaged in the middle, not a half-written last line
    (out / "trials.jsonl").write_text("\n".join(lines) + "\n")
    for command in (("best", out), ("plot", out), ("run", CORA, "--out", out)):
        code, output = nas(*command)
        assert code == 2, output
        assert "2 is not a trial record" in output and "fix or delete that line" in output
        assert "Traceback" not in output

"""`nas-train`: exit codes, the termination message, the trial folder, and loading the
trained model back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nas_trainer import train_cli
from nas_trainer.export import load_final_model, load_model, load_trained_model
from nas_trainer.training import TrainerConfig, train_architecture
from nas_trainer.training.run import save_outcome

torch.set_num_threads(1)
ARCHITECTURE = {
    "schema": "nas.architecture/v1", "space": "macro-cnn", "options": {"layers": 2},
    "tokens": [1, 1, 0, 1, 1, 0, 1],
    "canonical": {"layers": [
        {"filter_height": 3, "filter_width": 3, "filters": 24, "stride": 1, "inputs": []},
        {"filter_height": 3, "filter_width": 3, "filters": 24, "stride": 1, "inputs": [0]}]},
    "hash": "0123456789abcdef"}
CONFIG = {"dataset": "digits", "epochs": 2, "batchSize": 64, "image": "ignored:latest"}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "arch.json").write_text(json.dumps(ARCHITECTURE))
    (tmp_path / "trainer.json").write_text(json.dumps(CONFIG))
    return {"arch": tmp_path / "arch.json", "config": tmp_path / "trainer.json",
            "log": tmp_path / "termination-log", "out": tmp_path / "trial"}


def test_a_trained_child_exits_0_with_its_result_in_the_termination_message(files, capsys):
    code = train_cli.main(["--architecture", str(files["arch"]), "--config", str(files["config"]),
                           "--out", str(files["out"]), "--termination-log", str(files["log"]),
                           "--quiet"])
    assert code == 0
    message = files["log"].read_bytes()
    assert len(message) < 4096
    result = json.loads(message)
    assert result["schema"] == "nas.result/v1" and result["epochs"] == 2
    assert result["reward"] == pytest.approx(result["metrics"]["best_val_accuracy"] ** 3)
    assert result["parameters"] > 0 and result["flops"] > 0 and result["seconds"] > 0
    assert result["device"] == "cpu" and result["hash"] == ARCHITECTURE["hash"]
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((files["out"] / "result.json").read_text())
    epochs = [json.loads(line) for line in (files["out"] / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2] and "val_accuracy" in epochs[0]
    assert (files["out"] / "model.pt").exists()


def test_an_invalid_architecture_exits_3_with_a_permanent_error(files, capsys):
    broken = dict(ARCHITECTURE, canonical={"layers": [{"filter_height": 4, "filter_width": 3,
                                                       "filters": 24, "inputs": []}]})
    files["arch"].write_text(json.dumps(broken))
    code = train_cli.main(["-a", str(files["arch"]), "-c", str(files["config"]),
                           "--termination-log", str(files["log"])])
    assert code == 3
    error = json.loads(files["log"].read_text())
    assert error["permanent"] is True and "filter_height" in error["error"]
    assert "filter_height" in capsys.readouterr().err


@pytest.mark.parametrize("config, message", [
    ({"dataset": "digits", "epochs": 0}, "trainer.epochs must be >= 1"),
    ({"dataset": "digits", "reward": {"transform": "exp"}}, "transform"),
    ({"epochs": 1}, "trainer.dataset is required"),
])
def test_an_invalid_configuration_exits_3(files, config, message):
    files["config"].write_text(json.dumps(config))
    code = train_cli.main(["-a", str(files["arch"]), "-c", str(files["config"]),
                           "--termination-log", str(files["log"])])
    assert code == 3 and message in json.loads(files["log"].read_text())["error"]


def test_unreadable_input_is_permanent(files):
    files["arch"].write_text("{not json: [")
    assert train_cli.main(["-a", str(files["arch"]), "-c", str(files["config"]),
                           "--termination-log", str(files["log"])]) == 3
    assert "neither JSON nor YAML" in json.loads(files["log"].read_text())["error"]


def test_the_pod_environment_and_a_manifest_config_are_understood(tmp_path, monkeypatch):
    """As in a trial pod: inline JSON in NAS_ARCHITECTURE, NAS_TRAINER_CONFIG and the
    output folder in NAS_OUTPUT_DIR; and a whole manifest given as --config."""
    monkeypatch.setenv("NAS_ARCHITECTURE", json.dumps(ARCHITECTURE))
    monkeypatch.setenv("NAS_TRAINER_CONFIG", json.dumps(dict(CONFIG, epochs=1)))
    monkeypatch.setenv("NAS_OUTPUT_DIR", str(tmp_path / "from-env"))
    log = tmp_path / "log"
    assert train_cli.main(["--termination-log", str(log), "-q"]) == 0
    assert json.loads(log.read_text())["epochs"] == 1
    assert (tmp_path / "from-env" / "result.json").exists()

    manifest = tmp_path / "search.yaml"
    manifest.write_text("apiVersion: archsearch.io/v1alpha1\nkind: ArchitectureSearch\n"
                        "spec:\n  trainer:\n    dataset: digits\n    epochs: 1\n"
                        "    batchSize: 128\n")
    assert train_cli.main(["-c", str(manifest), "--termination-log", str(log), "-q"]) == 0
    assert json.loads(log.read_text())["epochs"] == 1


def test_the_installed_command_exits_3_on_a_bad_architecture_from_stdin(tmp_path):
    log = tmp_path / "log"
    env = dict(os.environ, NAS_TRAINER_CONFIG=json.dumps(CONFIG))
    proc = subprocess.run([sys.executable, "-m", "nas_trainer.train_cli", "-a", "-",
                           "--termination-log", str(log)],
                          input=json.dumps({"space": "no-such-space", "canonical": {}}),
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "no-such-space" in proc.stderr
    assert json.loads(log.read_text())["permanent"] is True


def test_export_rebuilds_the_trained_network(tmp_path):
    config = TrainerConfig.from_dict(dict(CONFIG, epochs=1))
    outcome = train_architecture(ARCHITECTURE, config, log=lambda _: None)
    trial = tmp_path / "trials" / "00007"
    save_outcome(trial, ARCHITECTURE, outcome)
    x = torch.randn(5, 1, 8, 8)
    expected = outcome.model.eval()(x)
    assert torch.equal(load_model(trial / "model.pt")(x), expected)
    assert torch.equal(load_trained_model(tmp_path, 7)(x), expected)
    checkpoint = torch.load(trial / "model.pt", weights_only=True)
    assert checkpoint["architecture"]["hash"] == ARCHITECTURE["hash"]
    assert len(checkpoint["normalization"]["mean"]) == 1
    with pytest.raises(FileNotFoundError, match="did not mount"):
        load_trained_model(tmp_path, 8)
    with pytest.raises(FileNotFoundError, match="status.final"):
        load_final_model(tmp_path)
    save_outcome(tmp_path / "best", ARCHITECTURE, outcome)  # as the final training leaves it
    assert torch.equal(load_final_model(tmp_path)(x), expected)


def test_a_nas_bench_graph_trial_is_answered_from_the_table_without_torch(tmp_path):
    """A tabular trial pod must not pay seconds of torch import for a table lookup."""
    from nas_trainer.spaces import get_space
    import random

    arch = get_space("nas-bench-graph", {"dataset": "cora"}).random(random.Random(3)).to_json()
    log = tmp_path / "termination-log"
    probe = (
        "import sys, json; from nas_trainer import train_cli\n"
        f"code = train_cli.main(['-a', {str(tmp_path / 'a.json')!r}, '--termination-log', "
        f"{str(log)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules}))\n"
    )
    (tmp_path / "a.json").write_text(json.dumps(arch))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"code": 0, "torch": False}
    result = json.loads(log.read_text())
    assert result["execution"] == "table" and 0 < result["reward"] <= 1
    assert result["metrics"]["test_accuracy"] > 0
    assert json.loads((tmp_path / "out" / "result.json").read_text())["reward"] == result["reward"]


@pytest.mark.parametrize("download, code, said", [
    (False, 3, "not found under"),     # the files are not where dataPath says: permanent
    (True, 1, "could not fetch"),      # the download failed: worth another attempt
])
def test_missing_data_is_permanent_a_failed_download_is_retried(files, tmp_path, monkeypatch,
                                                                download, code, said):
    from nas_trainer.data import idx

    mirrors, md5s = idx.IDX["mnist"]
    monkeypatch.setitem(idx.IDX, "mnist", (["http://127.0.0.1:9/"], md5s))  # refused at once
    files["config"].write_text(json.dumps({"dataset": "mnist", "dataPath": str(tmp_path / "none"),
                                           "download": download, "epochs": 1}))
    exit_code = train_cli.main(["--architecture", str(files["arch"]),
                                "--config", str(files["config"]),
                                "--termination-log", str(files["log"]), "--quiet"])
    error = json.loads(files["log"].read_text())
    assert exit_code == code and error["permanent"] is (code == 3)
    assert said in error["error"]

"""Data-parallel trials (trainer.processes): `nas-train` runs its workers under torchrun
(gloo on this CPU) and reports like a single-process trial: one result, one exit code."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nas_trainer.spaces import get_space
from nas_trainer.training.config import ConfigError, TrainerConfig
from nas_trainer.training.distributed import World, processes_wanted, shard

TRAINER = {"dataset": "digits", "epochs": 1, "batchSize": 64, "learningRate": 0.1, "seed": 0,
           "reward": {"metric": "val_accuracy"}}


def test_each_process_takes_an_equal_slice_of_the_global_batch():
    batch = torch.arange(8)
    slices = [shard(batch, World(rank, 2, rank)) for rank in range(2)]
    assert [s.tolist() for s in slices] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert shard(batch, World()).tolist() == batch.tolist()


def test_processes_default_to_one_on_the_cpu_and_follow_the_spec():
    assert processes_wanted(None, "cpu") == 1
    assert processes_wanted(3, "cpu") == 3
    assert processes_wanted(None, "cuda:1") == 1  # one named GPU: one process


@pytest.mark.parametrize("value, words", [
    (0, "trainer.processes must be between 1 and 64 (got 0)"),
    (65, "trainer.processes must be between 1 and 64 (got 65)"),
])
def test_processes_out_of_range_is_a_configuration_error(value, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        TrainerConfig.from_dict({**TRAINER, "processes": value})


def train(tmp_path: Path, trainer: dict) -> tuple[subprocess.CompletedProcess, Path, Path]:
    architecture = get_space("macro-cnn", {"layers": 2}).random(random.Random(0))
    arch_file, config_file = tmp_path / "arch.json", tmp_path / "trainer.json"
    arch_file.write_text(json.dumps(architecture.to_json()))
    config_file.write_text(json.dumps(trainer))
    termination, out = tmp_path / "termination-log", tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    done = subprocess.run(
        [sys.executable, "-m", "nas_trainer.train_cli", "-a", str(arch_file), "-c",
         str(config_file), "--termination-log", str(termination), "-o", str(out)],
        capture_output=True, text=True, timeout=300, env=env)
    return done, termination, out


def test_a_two_process_trial_trains_with_ddp_and_reports_once(tmp_path):
    done, termination, out = train(tmp_path, {**TRAINER, "processes": 2})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(termination.read_text())
    assert result["execution"] == "eager, DDP over 2 processes (gloo)"
    assert 0 < result["reward"] <= 1
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and json.loads(lines[0])["reward"] == result["reward"]
    assert json.loads((out / "result.json").read_text())["reward"] == result["reward"]
    assert (out / "model.pt").is_file()
    assert done.stderr.count("epoch 1/1") == 1, "only rank 0 logs"


def test_a_permanent_error_in_the_workers_exits_3_with_its_sentence(tmp_path):
    done, termination, _ = train(tmp_path, {**TRAINER, "processes": 2, "batchSize": 1})
    assert done.returncode == 3, done.stderr[-2000:]
    doc = json.loads(termination.read_text())
    assert doc["permanent"] is True
    assert "trainer.batchSize (1) must be at least trainer.processes (2)" in doc["error"]


def test_a_shared_weights_trial_keeps_one_process_unless_told_otherwise(tmp_path):
    from nas_trainer.distributed_launch import processes_for

    architecture = {"space": "macro-cnn"}
    assert processes_for(architecture, lambda: {"sharedWeights": {}}) == 1
    assert processes_for(architecture, lambda: {"sharedWeights": {}, "processes": 2}) == 2
    done, termination, _ = train(tmp_path, {**TRAINER, "processes": 2, "sharedWeights": {}})
    assert done.returncode == 3, done.stderr[-2000:]
    assert "trainer.processes > 1 does not apply with trainer.sharedWeights" in \
        json.loads(termination.read_text())["error"]


def ptb_layout_corpus(folder: Path) -> None:
    """A learnable toy language (each word followed by the next in the list)."""
    rng = random.Random(0)
    words = "a b c d e f g h".split()
    for split, lines in (("train", 200), ("valid", 30), ("test", 30)):
        text = []
        for _ in range(lines):
            start = rng.randrange(len(words))
            text.append(" ".join(words[(start + k) % len(words)] for k in range(8)))
        (folder / f"ptb.{split}.txt").write_text("\n".join(text) + "\n")


def train_language_model(tmp_path: Path, processes: int) -> dict:
    folder = tmp_path / f"p{processes}"
    folder.mkdir()
    ptb_layout_corpus(folder)
    architecture = get_space("rnn-cell").random(random.Random(4)).to_json()
    (folder / "arch.json").write_text(json.dumps(architecture))
    (folder / "trainer.json").write_text(json.dumps({
        "dataset": "ptb", "dataPath": str(folder), "download": False, "epochs": 2,
        "batchSize": 8, "bptt": 8, "seed": 0, "processes": processes,
        "model": {"hiddenSize": 16, "embeddingSize": 16, "dropout": 0.0}}))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    done = subprocess.run(
        [sys.executable, "-m", "nas_trainer.train_cli", "-a", str(folder / "arch.json"), "-c",
         str(folder / "trainer.json"), "--termination-log", str(folder / "termination-log"),
         "-o", str(folder / "out")], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((folder / "termination-log").read_text())


def test_a_language_model_trains_data_parallel_as_it_does_in_one_process(tmp_path):
    alone, parallel = train_language_model(tmp_path, 1), train_language_model(tmp_path, 2)
    assert parallel["execution"].endswith("DDP over 2 processes (gloo)")
    # the same global batch of streams, gradients averaged: the same training, up to
    # floating-point order
    assert parallel["metrics"]["best_val_perplexity"] == pytest.approx(
        alone["metrics"]["best_val_perplexity"], rel=1e-3)
    assert parallel["metrics"]["train_loss"] == pytest.approx(
        alone["metrics"]["train_loss"], rel=1e-3)

"""The trainer: configuration, schedule, augmentation, reward, determinism, and the
accuracy it reaches against a plain PyTorch loop."""
from __future__ import annotations

import json
import math
import random

import pytest
import torch
import torch.nn.functional as F

from nas_trainer.data import load_dataset
from nas_trainer.data.splits import Augment
from nas_trainer.models import build_model
from nas_trainer.spaces import get_space
from nas_trainer.training import ConfigError, RewardConfig, TrainerConfig, train_architecture
from nas_trainer.training.config import resolve_optimization
from nas_trainer.training.device_data import DeviceImages
from nas_trainer.training.engine import cosine_schedule
from nas_trainer.training.packing import choose_pack_size, train_packed
from nas_trainer.training.result import compact
from nas_trainer.training.reward import compute_reward

torch.set_num_threads(1)
QUIET = {"log": lambda _message: None}


def chain(filters: list[int], kernel: int = 3) -> dict:
    """A macro-cnn architecture whose layers each read the previous one."""
    layers = [{"filter_height": kernel, "filter_width": kernel, "filters": f, "stride": 1,
               "inputs": [i - 1] if i else []} for i, f in enumerate(filters)]
    return {"schema": "nas.architecture/v1", "space": "macro-cnn",
            "options": {"layers": len(layers)}, "canonical": {"layers": layers}, "hash": "test"}


# --- configuration --------------------------------------------------------------------

def test_config_reads_the_manifest_block_and_ignores_pod_fields(capsys):
    config = TrainerConfig.from_dict({
        "image": "ghcr.io/x/trainer:1", "resources": {"limits": {"nvidia.com/gpu": 1}},
        "dataset": "digits", "epochs": 3, "batchSize": 32, "learningRate": 0.05,
        "reward": {"metric": "val_accuracy", "transform": "identity", "lastEpochs": 2},
        "augment": {"pad": 2, "flip": False}, "model": {"cellsPerStage": 2}, "shinyNewKey": 1})
    assert (config.dataset, config.epochs, config.batch_size) == ("digits", 3, 32)
    assert config.augment == Augment(pad=2, flip=False)
    assert config.model == {"cells_per_stage": 2}
    assert config.reward_for(language=False) == RewardConfig("val_accuracy", "identity", 2)
    assert "shinyNewKey" in capsys.readouterr().err


@pytest.mark.parametrize("doc, message", [
    ({"epochs": 0}, "trainer.epochs must be >= 1 (got 0)"),
    ({"batchSize": -1}, "batchSize"),
    ({"dataset": "imagenet"}, "trainer.dataset must be one of"),
    ({"epochs": 2.5}, "integer"),
    ({"cudaGraph": "sometimes"}, "cudaGraph"),
    ({"labelSmoothing": 1.5}, "labelSmoothing"),
    ({"cpuThreads": 0}, "cpuThreads"),
])
def test_bad_configuration_is_a_config_error_saying_what_to_fix(doc, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainerConfig.from_dict(doc)


def test_bad_reward_settings_are_config_errors():
    with pytest.raises(ConfigError, match="transform"):
        TrainerConfig.from_dict({"reward": {"transform": "log"}}).reward_for(False)
    with pytest.raises(ConfigError, match="reward.metric"):
        train_architecture(chain([8]), TrainerConfig.from_dict(
            {"dataset": "digits", "reward": {"metric": "val_acc"}}), **QUIET)


def test_learning_rate_scales_with_batch_unless_given():
    assert resolve_optimization(TrainerConfig(batch_size=256), "macro-cnn").learning_rate == 0.2
    assert resolve_optimization(TrainerConfig(batch_size=256, learning_rate=0.05),
                                "macro-cnn").learning_rate == 0.05
    language = resolve_optimization(TrainerConfig(), "rnn-cell")
    assert language.grad_clip == 0.25 and language.momentum == 0 and not language.nesterov


def test_cosine_schedule_warms_up_then_decays_to_zero():
    lr = cosine_schedule(0.4, total_steps=100, warmup_fraction=0.05, device=torch.device("cpu"))
    assert lr[0] == pytest.approx(0.08) and lr[4] == pytest.approx(0.4)
    assert lr[5] == pytest.approx(0.4) and lr[99] < 1e-3 and float(lr[100:].abs().max()) == 0
    assert (lr[5:100].diff() <= 1e-7).all()


# --- reward ---------------------------------------------------------------------------

def test_default_rewards_are_the_papers():
    history = [{"val_accuracy": a} for a in (0.5, 0.9, 0.8, 0.7, 0.6, 0.65, 0.6)]
    reward, best = compute_reward(history, RewardConfig.default_for(language=False))
    assert best == 0.8 and reward == pytest.approx(0.8 ** 3)  # epoch 2 is not in the last 5
    text = [{"val_perplexity": p} for p in (200.0, 120.0, 150.0)]
    reward, best = compute_reward(text, RewardConfig.default_for(language=True))
    assert best == 120.0 and reward == pytest.approx(80 / 120 ** 2)


def test_a_diverged_child_gets_zero_reward():
    history = [{"val_perplexity": math.inf}, {"val_perplexity": math.nan}]
    assert compute_reward(history, RewardConfig.default_for(language=True)) [0] == 0.0


# --- device data ----------------------------------------------------------------------

def test_batched_crop_and_flip_take_windows_of_the_padded_images():
    x = torch.arange(2 * 4 * 4 * 1, dtype=torch.uint8).view(2, 4, 4, 1)
    images = DeviceImages(x, torch.tensor([0, 1]), [0.0], [1.0], torch.device("cpu"),
                          torch.float32, Augment(pad=1, flip=True))
    padded = F.pad(x[..., 0].float(), (1, 1, 1, 1))
    torch.manual_seed(0)
    for _ in range(20):
        out, y = images.batch(torch.tensor([1, 0, 1]), augment=True)
        assert out.shape == (3, 1, 4, 4) and y.tolist() == [1, 0, 1]
        for sample, index in zip(out[:, 0], (1, 0, 1)):
            windows = [padded[index, r:r + 4, c:c + 4] for r in range(3) for c in range(3)]
            assert any(torch.equal(sample, w) or torch.equal(sample, w.flip(1))
                       for w in windows)
    plain, _ = images.batch(torch.tensor([0]), augment=False)
    assert torch.equal(plain[0, 0], x[0, :, :, 0].float())


# --- training -------------------------------------------------------------------------

def test_deterministic_mode_gives_identical_results_twice():
    config = TrainerConfig.from_dict({"dataset": "digits", "epochs": 2, "batchSize": 64,
                                      "deterministic": True, "seed": 3})
    first = train_architecture(chain([12, 12]), config, **QUIET)
    second = train_architecture(chain([12, 12]), config, **QUIET)
    assert first.result.metrics == second.result.metrics
    assert first.history[-1]["train_loss"] == second.history[-1]["train_loss"]
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.are_deterministic_algorithms_enabled()
    train_architecture(chain([4]), TrainerConfig.from_dict(
        {"dataset": "digits", "epochs": 1}), **QUIET)
    assert not torch.are_deterministic_algorithms_enabled()  # switched back off


def plain_pytorch_accuracy(architecture: dict, epochs: int, batch: int, lr: float,
                           weight_decay: float) -> float:
    """The reference: a textbook PyTorch loop (no augmentation, cosine annealing)."""
    torch.manual_seed(0)
    data = load_dataset("digits")
    x = data.train_x.permute(0, 3, 1, 2).float()
    mean, std = x.mean(), x.std()
    x = (x - mean) / std
    model = build_model(architecture, 10, (1, 8, 8))
    steps = len(x) // batch
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                                weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for s in range(steps):
            index = order[s * batch:(s + 1) * batch]
            loss = F.cross_entropy(model(x[index]), data.train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    with torch.no_grad():
        held_out = torch.cat([data.val_x, data.test_x]).permute(0, 3, 1, 2).float()
        predicted = model((held_out - mean) / std).argmax(1)
    return (predicted == torch.cat([data.val_y, data.test_y])).float().mean().item()


def test_trainer_reaches_the_accuracy_of_a_plain_pytorch_loop_on_digits():
    architecture = chain([24, 24, 24])
    settings = {"epochs": 12, "batch": 32, "lr": 0.05, "weight_decay": 5e-4}
    config = TrainerConfig.from_dict({
        "dataset": "digits", "epochs": settings["epochs"], "batchSize": settings["batch"],
        "learningRate": settings["lr"], "weightDecay": settings["weight_decay"],
        "augment": False, "warmupFraction": 0})
    outcome = train_architecture(architecture, config, **QUIET)
    metrics = outcome.result.metrics
    # Accuracy over validation and test together (647 images), as the reference reports.
    trainer = (metrics["val_accuracy"] * 287 + metrics["test_accuracy"] * 360) / 647
    reference = plain_pytorch_accuracy(architecture, **settings)
    assert reference > 0.95
    assert abs(trainer - reference) <= 0.01, (trainer, reference)


def test_language_model_trains_on_a_ptb_layout_corpus(tmp_path):
    rng = random.Random(0)
    words = "a b c d e f g h".split()
    for split, lines in (("train", 200), ("valid", 30), ("test", 30)):
        # A learnable language: each word is followed by the next one in the list.
        text = []
        for _ in range(lines):
            start = rng.randrange(len(words))
            text.append(" ".join(words[(start + k) % len(words)] for k in range(8)))
        (tmp_path / f"ptb.{split}.txt").write_text("\n".join(text) + "\n")
    architecture = get_space("rnn-cell").random(random.Random(4)).to_json()
    config = TrainerConfig.from_dict({
        "dataset": "ptb", "dataPath": str(tmp_path), "download": False, "epochs": 3,
        "batchSize": 8, "bptt": 8, "model": {"hiddenSize": 16, "embeddingSize": 16}})
    result = train_architecture(architecture, config, **QUIET).result
    perplexity = result.metrics["best_val_perplexity"]
    assert result.metrics["test_perplexity"] is not None
    assert result.reward == pytest.approx(80 / perplexity ** 2)
    assert perplexity < 10  # the vocabulary has 10 symbols: better than a uniform guess


def test_space_and_dataset_kinds_must_match():
    with pytest.raises(ConfigError, match="needs a text corpus"):
        architecture = get_space("rnn-cell").random(random.Random(0)).to_json()
        train_architecture(architecture, TrainerConfig.from_dict({"dataset": "digits"}), **QUIET)
    with pytest.raises(ConfigError, match="dataset is required"):
        train_architecture(chain([4]), TrainerConfig(), **QUIET)


def test_nas_bench_graph_is_answered_from_the_table():
    pytest.importorskip("nas_bench_graph")
    from nas_bench_graph import Arch, light_read

    architecture = get_space("nas-bench-graph", {"dataset": "cora"}).random(
        random.Random(0)).to_json()
    result = train_architecture(architecture, TrainerConfig(), **QUIET).result
    canonical = architecture["canonical"]
    entry = light_read("cora")[Arch(canonical["link"], canonical["ops"]).valid_hash()]
    assert result.reward == pytest.approx(entry["valid_perf"])
    assert result.metrics["test_accuracy"] == pytest.approx(entry["perf"])
    assert result.execution == "table" and result.epochs == 0


def test_packing_trains_several_children_and_reports_each():
    config = TrainerConfig.from_dict({"dataset": "digits", "epochs": 1, "batchSize": 128})
    architectures = [chain([8]), chain([8, 8])]
    outcomes = train_packed(architectures, config, **QUIET)
    assert len(outcomes) == 2
    assert outcomes[0].result.parameters < outcomes[1].result.parameters
    assert all(0 < o.result.reward <= 1 for o in outcomes)
    # the pack's phases, as a single run reports its own (what warm_worker.py subtracts)
    timings = outcomes[0].result.to_json()["timings"]
    assert set(timings) == {"data", "build", "capture", "train"}
    assert 0 < timings["train"] <= outcomes[0].result.seconds


def test_pack_size_rule_fills_the_gpu_within_memory():
    assert choose_pack_size(step_flops=1e13, child_bytes=1 << 30, free_bytes=80 << 30) == 1
    assert choose_pack_size(step_flops=1e11, child_bytes=1 << 30, free_bytes=80 << 30) == 8
    assert choose_pack_size(step_flops=1e11, child_bytes=20 << 30, free_bytes=80 << 30) == 3


def test_result_json_is_compacted_under_the_termination_message_limit():
    doc = {"schema": "nas.result/v1", "reward": 0.5, "epochs": 3,
           "metrics": {f"metric_{i:04d}": 0.123456789 for i in range(300)},
           "timings": {"train": 1.0}}
    text = compact(doc)
    assert len(text.encode()) < 4096
    parsed = json.loads(text)
    assert parsed["reward"] == 0.5 and parsed["schema"] == "nas.result/v1"


def test_graph_safe_sgd_matches_torch_optim_sgd():
    from nas_trainer.training.engine import SGD

    torch.manual_seed(0)
    ours, reference = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    reference.load_state_dict(ours.state_dict())
    lr = torch.tensor(0.1)
    sgd = SGD(ours.parameters(), lr, momentum=0.9, nesterov=True, weight_decay=1e-3)
    torch_sgd = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=1e-3)
    for step in range(5):
        lr.fill_(0.1 / (step + 1))
        for group in torch_sgd.param_groups:
            group["lr"] = 0.1 / (step + 1)
        x = torch.randn(8, 4)
        for model, optimizer in ((ours, sgd), (reference, torch_sgd)):
            optimizer.zero_grad()
            model(x).square().sum().backward()
            optimizer.step()
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)

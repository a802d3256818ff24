"""One trial end to end: data → child network → training → reward → result.

    outcome = train_architecture(architecture_json, TrainerConfig.from_dict(spec_trainer))
    outcome.result.to_json()   # contract 3

Every second counts: `seconds` runs from `started` (the CLI passes its own start, before
torch is imported) through data loading, model build, CUDA-graph capture, training and
the final evaluation; `timings` breaks it down.
"""
from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from ..cpus import usable_cpus
from ..data import DatasetError, ImageData, TextData, load_dataset
from ..early_stopping.files import ProgressWriter
from ..models import (IMAGE_SPACES, LANGUAGE_SPACES, ArchitectureError, build_model,
                      count_flops, count_parameters)
from . import distributed
from .config import ConfigError, TrainerConfig, resolve_optimization
from .image import ImageTraining, device_splits
from .laps import Laps
from .language import LanguageTraining
from .result import TrialResult, save_model, write_trial_folder
from .reward import compute_reward
from .tabular import tabular_result
from ..trainer_options import IMAGE_METRICS, LANGUAGE_METRICS

Log = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quiet(_: str) -> None:
    pass


@dataclass
class TrialOutcome:
    result: TrialResult
    history: list[dict[str, float]] = field(default_factory=list)
    model: nn.Module | None = None
    build: dict[str, Any] = field(default_factory=dict)   # build_model's arguments
    extra: dict[str, Any] = field(default_factory=dict)   # preprocessing to use the model


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device is {name} but no CUDA device is available")
    return device


def seed_everything(config: TrainerConfig) -> None:
    """Seed every generator; in deterministic mode also force deterministic kernels
    (ops without one warn rather than fail, so a trial never dies of it)."""
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if config.deterministic or torch.are_deterministic_algorithms_enabled():
        # (Only when it changes anything: the call imports torch._dynamo, ~5 s.)
        torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = config.deterministic
    torch.backends.cudnn.benchmark = not config.deterministic and \
        os.environ.get("NAS_CUDNN_BENCHMARK", "1") != "0"


def limit_cpu_threads(config: TrainerConfig, device: torch.device) -> None:
    """On the CPU: `trainer.cpuThreads` when given, else OMP_NUM_THREADS when set (`nas
    run` sets it to share the cores between trials side by side, where OpenMP's
    spin-waiting would cost 10× in wall time), else every core this process may use:
    its affinity capped by the pod's CPU limit, not the node's core count."""
    if device.type != "cpu":
        return
    if config.cpu_threads is not None:
        torch.set_num_threads(config.cpu_threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(usable_cpus())


def load_data(config: TrainerConfig, space: str) -> ImageData | TextData:
    if config.dataset is None:
        raise ConfigError("trainer.dataset is required to train a child network")
    try:
        data = load_dataset(config.dataset, config.data_path, validation=config.validation,
                            split_seed=config.split_seed, download=config.download,
                            options=config.dataset_options)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    language = space in LANGUAGE_SPACES
    if language != isinstance(data, TextData):
        kind = "a text corpus (ptb)" if language else "an image dataset"
        raise ConfigError(f"space {space} needs {kind}, not dataset {config.dataset}")
    return data


def build_options(space: str, config: TrainerConfig) -> dict[str, Any]:
    options = dict(config.model)
    if space == "nasnet":
        options.setdefault("auxiliary", config.aux_weight > 0)
        options.setdefault("drop_path", config.drop_path > 0)
    return options


def build_child(architecture: Mapping[str, Any], config: TrainerConfig,
                data: ImageData | TextData) -> tuple[nn.Module, dict[str, Any]]:
    """The child network on the CPU, and the arguments that rebuild it."""
    space = architecture.get("space")
    if isinstance(data, TextData):
        build = {"num_classes": data.vocab_size, "input_shape": [config.bptt]}
    else:
        build = {"num_classes": data.num_classes, "input_shape": list(data.input_shape)}
    build["options"] = build_options(str(space), config)
    model = build_model(architecture, build["num_classes"], tuple(build["input_shape"]),
                        **build["options"])
    return model, build


def to_floats(metrics: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def tabular_outcome(architecture: Mapping[str, Any], started: float) -> TrialOutcome:
    return TrialOutcome(tabular_result(architecture, started))


def train_architecture(architecture: Mapping[str, Any], config: TrainerConfig, *,
                       out_dir: str | Path | None = None, log: Log = log_to_stderr,
                       started: float | None = None,
                       data: ImageData | TextData | None = None) -> TrialOutcome:
    """Train one child network and return its result; writes result.json, epochs.jsonl
    and model.pt under `out_dir` when given. `data` skips loading the dataset (a caller
    running many trials in one process loads it once). Raises ArchitectureError /
    ConfigError for permanent failures."""
    started = time.perf_counter() if started is None else started
    space = architecture.get("space") if isinstance(architecture, Mapping) else None
    if space == "nas-bench-graph":
        outcome = tabular_outcome(architecture, started)
        if out_dir:
            write_trial_folder(Path(out_dir), outcome.result.to_json(), [])
        return outcome
    if space not in IMAGE_SPACES + LANGUAGE_SPACES:
        # Let the builder explain (unknown or custom space).
        build_model(architecture, 1)
    language = space in LANGUAGE_SPACES
    reward_config = config.reward_for(language)
    known = LANGUAGE_METRICS if language else IMAGE_METRICS
    if reward_config.metric not in known:
        raise ConfigError(f"trainer.reward.metric must be one of {list(known)} "
                          f"(got {reward_config.metric!r})")
    laps = Laps()
    lap, timings = laps.lap, laps.timings

    # 1. data
    seed_everything(config)
    world = distributed.current_world()
    device = distributed.device_for(world, select_device(config.device))
    if world.distributed and config.shared_weights is not None:
        raise ConfigError("trainer.processes > 1 does not apply with trainer.sharedWeights: "
                          "one process updates the supernet per child; remove processes")
    if not world.is_main:
        log = quiet  # one log, rank 0's
    distributed.join(world, device)  # left when the worker ends (train_cli)
    limit_cpu_threads(config, device)
    if data is None:
        data = load_data(config, str(space))
    elif (space in LANGUAGE_SPACES) != isinstance(data, TextData):
        raise ConfigError(f"space {space} cannot train on dataset {data.name}")
    amp = device.type == "cuda" and torch.cuda.is_bf16_supported()
    lap("data")
    if config.shared_weights is not None:  # scored on the search's supernet (ENAS)
        from ..oneshot.estimator import estimate

        return TrialOutcome(estimate(architecture, config, config.shared_weights, data, device,
                                     out_dir, log, started))

    # 2. the child network
    model, build = build_child(architecture, config, data)
    parameters = count_parameters(model)
    # FLOPs on the CPU copy: on the GPU this fp32 batch-1 forward would make cuDNN tune
    # algorithms for shapes training never uses.
    if isinstance(data, TextData):
        tokens = data.train[:config.bptt].view(1, -1)
        flops = count_flops(model, tokens) // tokens.shape[1]  # per token
    else:
        flops = count_flops(model, torch.zeros(1, *data.input_shape))
    model = model.to(device)
    if device.type == "cuda" and not language:
        model = model.to(memory_format=torch.channels_last)
    optimization = resolve_optimization(config, str(space))
    if isinstance(data, TextData):
        tokens = data.train[:config.bptt].view(1, -1).to(device)
        training: ImageTraining | LanguageTraining = LanguageTraining(
            distributed.wrap(model, world, device, tokens), data, config, optimization,
            device, amp, world=world)  # type: ignore[arg-type]
        extra: dict[str, Any] = {"dataset": data.name, "vocab": data.vocab}
    else:
        splits = device_splits(data, config, device, torch.bfloat16 if amp else torch.float32)
        sample = torch.zeros(2, *data.input_shape, device=device)
        training = ImageTraining(distributed.wrap(model, world, device, sample), splits,
                                 config, optimization, device, amp, world=world)
        mean, std = splits["train"].stats
        extra = {"dataset": data.name, "normalization": {"mean": mean, "std": std}}
    lap("build")
    execution = training.prepare()
    if world.distributed:
        execution = f"{execution}, {distributed.describe(world, device)}"
    lap("capture")
    log(f"{space} {architecture.get('hash', '')}: {parameters:,} parameters, "
        f"{flops:,} FLOPs, {device.type}, steps {execution}")

    # 3. training, one line of metrics per epoch; with an output folder each epoch's
    # reward goes to progress.jsonl and a stop.json there ends the training (early stopping)
    history: list[dict[str, float]] = []
    progress = ProgressWriter(out_dir, config.epochs) if out_dir and world.is_main else None
    stop_reason: str | None = None
    epoch_start = time.perf_counter()
    for epoch in training.run():
        if epoch is None:
            continue
        metrics = to_floats(training.history[-1])  # waits for the epoch to finish
        now = time.perf_counter()
        history.append({"epoch": epoch + 1, **metrics, "seconds": round(now - epoch_start, 3)})
        epoch_start = now
        log(f"epoch {epoch + 1}/{config.epochs} " +
            " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if out_dir and epoch + 1 < config.epochs:
            if progress is not None:
                progress.report(epoch + 1, compute_reward(history, reward_config)[0])
                stop_reason = progress.stop_requested(epoch + 1)
            if world.distributed:  # every process stops after the same epoch, as rank 0 read
                flag = torch.tensor([float(stop_reason is not None)], device=device)
                distributed.sum_over_workers([flag], world)
                stop_reason = stop_reason or ("stopped early" if flag.item() else None)
            if stop_reason is not None:
                log(f"stopping after epoch {epoch + 1}: {stop_reason}")
                break
    lap("train")

    # 4. final evaluation and reward
    final = to_floats(training.final_metrics())
    lap("eval")
    reward, best = compute_reward(history, reward_config)
    metrics = {k: v for k, v in history[-1].items() if k not in ("epoch", "seconds")}
    metrics[f"best_{reward_config.metric}"] = best
    metrics.update(final)
    result = TrialResult(reward=reward, metrics=metrics, epochs=len(history),
                         seconds=time.perf_counter() - started, parameters=parameters,
                         flops=int(flops), device=device.type, execution=execution,
                         timings=timings, hash=architecture.get("hash"),
                         stop_reason=stop_reason)
    outcome = TrialOutcome(result, history, model, build, extra)
    if out_dir and world.is_main:
        save_outcome(Path(out_dir), architecture, outcome)
    return outcome


def save_outcome(out_dir: Path, architecture: Mapping[str, Any], outcome: TrialOutcome) -> None:
    write_trial_folder(out_dir, outcome.result.to_json(), outcome.history)
    if outcome.model is not None:
        save_model(out_dir / "model.pt", outcome.model, architecture, outcome.build,
                   outcome.extra)


__all__ = ["ArchitectureError", "ConfigError", "DatasetError", "TrialOutcome", "save_outcome",
           "select_device", "seed_everything", "train_architecture"]

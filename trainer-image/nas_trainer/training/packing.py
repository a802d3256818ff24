"""Several children trained at once on one GPU.

A small child leaves most of an H100 idle even with its step captured as a graph: its
kernels are too small to fill the SMs. Packing K children in one process, each on its
own CUDA stream with its own captured step, lets their kernels run side by side; one
Python thread round-robins the graph replays (each is a single cheap launch), and the
dataset is held on the device once for all of them.

`choose_pack_size` is the rule for K; benchmarks/trainer_throughput.py measures
K = 1, 2, 4, 8 and prints the K this rule picks next to the best one measured.
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import torch

from ..data import ImageData
from ..models import IMAGE_SPACES, count_flops, count_parameters
from .config import ConfigError, TrainerConfig, resolve_optimization
from .image import ImageTraining, device_splits
from .laps import Laps
from .result import TrialResult
from .reward import compute_reward
from .run import (IMAGE_METRICS, Log, TrialOutcome, build_child, load_data, log_to_stderr,
                  seed_everything, select_device, to_floats)

# A step of at least this many FLOPs keeps an H100 busy on its own (calibrated with
# benchmarks/trainer_throughput.py: a ResNet-20-sized child at batch 512, ~0.15 TFLOP
# per step, still gains from sharing the GPU).
SATURATING_STEP_FLOPS = 1.0e12
MAX_PACK = 8


def choose_pack_size(step_flops: float, child_bytes: int, free_bytes: int,
                     max_pack: int = MAX_PACK) -> int:
    """How many children of this size to train at once on one GPU: enough that their
    steps add up to a saturating amount of work, as many as fit in 80% of free memory."""
    by_work = max(1, math.floor(SATURATING_STEP_FLOPS / max(step_flops, 1.0)))
    by_memory = max(1, int(0.8 * free_bytes // max(child_bytes, 1)))
    return max(1, min(max_pack, by_work, by_memory))


def train_packed(architectures: Sequence[Mapping[str, Any]], config: TrainerConfig, *,
                 data: ImageData | None = None, log: Log = log_to_stderr,
                 started: float | None = None) -> list[TrialOutcome]:
    """Train image children together (one stream and one captured step each), and
    return one outcome per architecture, in order. `seconds` and `timings` of each are
    the whole pack's (its children's steps interleave: no child has a time of its own)."""
    started = time.perf_counter() if started is None else started
    spaces = {a.get("space") for a in architectures}
    if not spaces <= set(IMAGE_SPACES):
        raise ConfigError(f"packing trains image children only (got spaces {sorted(spaces)})")
    seed_everything(config)
    device = select_device(config.device)
    if data is None:
        loaded = load_data(config, str(next(iter(spaces))))
        assert isinstance(loaded, ImageData)
        data = loaded
    amp = device.type == "cuda" and torch.cuda.is_bf16_supported()
    laps = Laps()  # the pack's phases, as a single run reports its own
    lap, timings = laps.lap, laps.timings
    splits = device_splits(data, config, device, torch.bfloat16 if amp else torch.float32)
    lap("data")

    trainings, stats = [], []
    for architecture in architectures:
        model, build = build_child(architecture, config, data)
        parameters = count_parameters(model)
        flops = count_flops(model, torch.zeros(1, *data.input_shape))  # on the CPU copy
        model = model.to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        training = ImageTraining(model, splits, config,
                                 resolve_optimization(config, str(architecture["space"])),
                                 device, amp, stream)
        trainings.append(training)
        stats.append((parameters, flops, build))
    lap("build")
    executions = [t.prepare() for t in trainings]
    lap("capture")
    log(f"packed {len(trainings)} children on {device.type}: {executions}")

    # Round-robin: each next() enqueues one step (or an epoch's evaluation) of one child.
    runs = [t.run() for t in trainings]
    while runs:
        for run in list(runs):
            if next(run, StopIteration) is StopIteration:
                runs.remove(run)
    finals = [t.final_metrics() for t in trainings]
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the metrics live on other streams
    lap("train")  # every child's steps and evaluations, interleaved
    seconds = time.perf_counter() - started

    outcomes = []
    mean, std = splits["train"].stats  # what model.pt needs to use the model, as run.py
    extra = {"dataset": data.name, "normalization": {"mean": mean, "std": std}}
    for architecture, training, final, execution, (parameters, flops, build) in zip(
            architectures, trainings, finals, executions, stats):
        history = [{"epoch": i + 1, **to_floats(m)} for i, m in enumerate(training.history)]
        reward_config = config.reward_for(language=False)
        if reward_config.metric not in IMAGE_METRICS:
            raise ConfigError(f"trainer.reward.metric must be one of {list(IMAGE_METRICS)}")
        reward, best = compute_reward(history, reward_config)
        metrics = {k: v for k, v in history[-1].items() if k != "epoch"}
        metrics[f"best_{reward_config.metric}"] = best
        metrics.update(to_floats(final))
        result = TrialResult(reward=reward, metrics=metrics, epochs=config.epochs,
                             seconds=seconds, parameters=parameters, flops=flops,
                             device=device.type, execution=execution,
                             hash=architecture.get("hash"), timings=dict(timings))
        outcomes.append(TrialOutcome(result, history, training.model, build, extra))
    return outcomes

"""One trial of a shared-weights search: score the child on the supernet as it is, then
train the supernet on that child for a few steps, and checkpoint it.

The supernet lives in `supernet/` beside the search's `trials/` folder (on the search
volume in a cluster, in the run folder with `nas run`), so each trial, in whatever
process or pod, continues from the last one's weights, and a killed trial loses nothing
that was saved: the checkpoint is replaced atomically after each child, under a file
lock. Scoring before training keeps the reward honest (the child is judged on weights
that have not just been fitted to it), as ENAS judges children on a validation batch
between phases of shared-weight training.
"""
from __future__ import annotations

import fcntl
import io
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..data.splits import ImageData
from ..models import build_model, count_parameters
from ..results import atomic_write
from ..training.config import ConfigError, TrainerConfig
from ..training.device_data import DeviceImages
from ..training.engine import SGD
from ..training.image import device_splits
from ..training.laps import Laps
from ..training.result import TrialResult, write_trial_folder
from ..training.reward import compute_reward
from .held import HELD
from .settings import SPACES, SUPERNET_FOLDER, SharedWeights
from .supernets import BUILDERS, SHAPES

CHECKPOINT = "supernet.pt"
DEFAULT_LEARNING_RATE = 0.05
DEFAULT_WEIGHT_DECAY = 1e-4
GRAD_CLIP = 5.0  # ENAS clips the shared weights' gradient norm at 5
ESTIMATE = "sharedWeights"
# What a child was scored on, named in its result's `execution`
NEW_SUPERNET = "a new supernet"
READ_SUPERNET = "the supernet read from its checkpoint"
HELD_SUPERNET = "the supernet this process holds"


def supernet_source(execution: str) -> str | None:
    """Which of the three a shared-weights result's `execution` names."""
    return next((source for source in (NEW_SUPERNET, READ_SUPERNET, HELD_SUPERNET)
                 if f"scored on {source}," in execution), None)


def supernet_folder(out_dir: str | Path) -> Path:
    """`<results>/supernet` for a trial folder `<results>/trials/<index>`."""
    return Path(out_dir).resolve().parent.parent / SUPERNET_FOLDER


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One trial at a time updates the supernet (a second waits)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Supernet:
    """The shared weights, their optimizer state and counters, as saved on disk."""

    def __init__(self, architecture: Mapping[str, Any], data: ImageData,
                 config: TrainerConfig, device: torch.device) -> None:
        space = architecture["space"]
        self.space, self.shape = space, SHAPES[space](architecture)
        torch.manual_seed(config.seed)  # the first trial's initial weights: the seed's
        self.model = BUILDERS[space](architecture, data.input_shape[0],
                                     data.num_classes).to(device)
        lr = config.learning_rate or DEFAULT_LEARNING_RATE
        decay = config.weight_decay if config.weight_decay is not None else DEFAULT_WEIGHT_DECAY
        self.lr = torch.tensor(lr, device=device)
        self.optimizer = SGD(self.model.parameters(), self.lr, 0.9, True, decay)
        self.steps = 0       # shared-weight training steps so far
        self.children = 0    # children scored so far

    def state(self) -> dict[str, Any]:
        return {"space": self.space, "shape": self.shape, "weights": self.model.state_dict(),
                "momentum": self.optimizer.buffers, "steps": self.steps,
                "children": self.children}

    def load(self, state: Mapping[str, Any], path: Path | str = CHECKPOINT) -> None:
        # checkpoints from before nasnet had a supernet hold macro-cnn weights and no space
        space, shape = state.get("space", "macro-cnn"), state.get("shape")
        if space != self.space or (shape is not None and shape != self.shape):
            raise ConfigError(
                f"{path} holds a {space} supernet {shape or ''}, this trial's "
                f"spec.searchSpace is {self.space} {self.shape}: a search's supernet "
                "cannot change space; use a new results folder (or delete the supernet "
                "folder to start its weights afresh)")
        self.model.load_state_dict(state["weights"])
        for buffer, saved in zip(self.optimizer.buffers, state["momentum"]):
            buffer.copy_(saved)
        self.steps, self.children = int(state["steps"]), int(state["children"])


def estimate(architecture: Mapping[str, Any], config: TrainerConfig, settings: SharedWeights,
             data: ImageData, device: torch.device, out_dir: str | Path | None,
             log: Callable[[str], None], started: float) -> TrialResult:
    """Score `architecture` on the shared weights, then train them on it; writes the trial
    folder and returns its result (marked as a shared-weights estimate)."""
    space = architecture.get("space")
    if space not in SPACES:
        raise ConfigError(f"trainer.sharedWeights supports the {' and '.join(SPACES)} spaces "
                          f"(the search space is {space})")
    if not out_dir:
        raise ConfigError("trainer.sharedWeights keeps the supernet beside the trial folders: "
                          "the trial needs its folder on the search volume (NAS_OUTPUT_DIR; "
                          "in a cluster, a ReadWriteMany volume or trainer.mountSearchVolume)")
    canonical = architecture["canonical"]
    folder = supernet_folder(out_dir)
    laps = Laps()  # load counts the wait for the lock
    with locked(folder):
        path = folder / CHECKPOINT
        held = HELD.take(path, architecture, config, device, data)
        try:
            if held is not None:
                supernet, splits = held
                source = HELD_SUPERNET
            else:
                splits = device_splits(data, config, device, torch.float32)
                supernet = Supernet(architecture, data, config, device)
                source = NEW_SUPERNET
                if path.exists():
                    supernet.load(torch.load(path, map_location=device, weights_only=True),
                                  path)
                    source = READ_SUPERNET
            laps.lap("load")
            val_loss, val_accuracy = score(supernet.model, canonical, splits["val"], config,
                                           settings, supernet.children)
            laps.lap("score")
            train_loss, train_accuracy = train(supernet, canonical, splits["train"], config,
                                               settings)
            laps.lap("train")
            supernet.children += 1
            buffer = io.BytesIO()
            torch.save(supernet.state(), buffer)
            atomic_write(path, buffer.getvalue())
        except BaseException:
            HELD.forget()  # weights changed in memory but not saved: never reuse them
            raise
        HELD.keep(path, architecture, config, device, data, supernet, splits)
    history = [{"epoch": 1, "train_loss": train_loss, "train_accuracy": train_accuracy,
                "val_loss": val_loss, "val_accuracy": val_accuracy}]
    reward_config = config.reward_for(False)
    reward, best = compute_reward(history, reward_config)
    child = build_model(architecture, data.num_classes, data.input_shape)
    metrics = {k: v for k, v in history[0].items() if k != "epoch"}
    metrics[f"best_{reward_config.metric}"] = best
    metrics["supernet_steps"] = float(supernet.steps)
    log(f"{space} {architecture.get('hash', '')}: shared-weights val_accuracy "
        f"{val_accuracy:.4f} (supernet step {supernet.steps}, child {supernet.children})")
    result = TrialResult(
        reward=reward, metrics=metrics, epochs=0, seconds=time.perf_counter() - started,
        parameters=count_parameters(child), flops=0, device=device.type,
        execution=(f"shared weights: scored on {source}, then {settings.steps_per_child} "
                   "supernet steps"),
        timings=laps.timings, hash=architecture.get("hash"), estimate=ESTIMATE)
    write_trial_folder(Path(out_dir), result.to_json(), history)
    return result


@torch.no_grad()
def score(model: nn.Module, canonical: Mapping[str, Any], split: DeviceImages,
          config: TrainerConfig, settings: SharedWeights, child: int) -> tuple[float, float]:
    """Validation loss and accuracy of the child on the shared weights: the whole split,
    or `scoreBatches` batches drawn anew for each child."""
    batch = min(config.batch_size, split.count)
    if settings.score_batches:
        generator = torch.Generator().manual_seed(config.seed * 7919 + child)
        order = torch.randperm(split.count, generator=generator)[:batch * settings.score_batches]
    else:
        order = torch.arange(split.count)
    loss_sum, correct = 0.0, 0.0
    for start in range(0, len(order), batch):
        index = order[start:start + batch].to(split.y.device)
        x, y = split.batch(index, augment=False)
        logits = model(x, canonical)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += float((logits.argmax(1) == y).sum())
    return loss_sum / len(order), correct / len(order)


def train(supernet: Supernet, canonical: Mapping[str, Any], split: DeviceImages,
          config: TrainerConfig, settings: SharedWeights) -> tuple[float, float]:
    """`stepsPerChild` SGD steps of the shared weights on this child; its mean training
    loss and accuracy. The batches follow from the step count, so a resumed search draws
    what an uninterrupted one would."""
    batch = min(config.batch_size, split.count)
    model = supernet.model
    loss_sum, correct, seen = 0.0, 0.0, 0
    for _ in range(settings.steps_per_child):
        generator = torch.Generator().manual_seed(config.seed * 104_729 + supernet.steps)
        index = torch.randperm(split.count, generator=generator)[:batch]
        torch.manual_seed(config.seed * 104_729 + supernet.steps)  # augmentation's draws
        x, y = split.batch(index.to(split.y.device), augment=True)
        supernet.optimizer.zero_grad()
        logits = model(x, canonical)
        loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        supernet.optimizer.step()
        supernet.steps += 1
        loss_sum += float(loss.detach()) * len(y)
        correct += float((logits.argmax(1) == y).sum())
        seen += len(y)
    return loss_sum / seen, correct / seen

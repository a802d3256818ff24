"""Training an image classifier: the whole dataset on the device, augmentation there,
bf16 autocast and channels_last on CUDA, SGD with Nesterov momentum and a cosine
schedule, every step captured as one CUDA graph when possible."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..data.splits import ImageData
from ..models import set_drop_path_prob
from . import distributed
from .config import ConfigError, Optimization, TrainerConfig
from .device_data import DeviceImages, channel_stats
from .engine import SGD, StepRunner, cosine_schedule

Metrics = dict[str, torch.Tensor]


def device_splits(data: ImageData, config: TrainerConfig, device: torch.device,
                  dtype: torch.dtype) -> dict[str, DeviceImages]:
    """The dataset's splits on the device; several trainings may share them."""
    train_x = data.train_x.to(device)
    mean, std = channel_stats(train_x)
    augment = config.augment if config.augment is not None else data.augment
    splits = {"train": DeviceImages(train_x, data.train_y, mean, std, device, dtype, augment),
              "val": DeviceImages(data.val_x, data.val_y, mean, std, device, dtype)}
    if data.test_x is not None:
        splits["test"] = DeviceImages(data.test_x, data.test_y, mean, std, device, dtype)
    return splits


class ImageTraining:
    """One child network's training. `run()` is a generator that yields after every
    step it enqueues, so several trainings can be interleaved on one GPU (packing); it
    records per-epoch metrics as device tensors and never waits for the GPU itself."""

    def __init__(self, model: nn.Module, splits: dict[str, DeviceImages], config: TrainerConfig,
                 optimization: Optimization, device: torch.device, amp: bool,
                 stream: torch.cuda.Stream | None = None,
                 world: distributed.World = distributed.World()) -> None:
        self.model, self.splits, self.config, self.device = model, splits, config, device
        self.world = world
        self.train_data = splits["train"]
        # the global batch, an equal share per process (data-parallel)
        self.batch = min(config.batch_size, self.train_data.count) // world.size * world.size
        if self.batch < 1:
            raise ConfigError(f"trainer.batchSize ({config.batch_size}) must be at least "
                              f"trainer.processes ({world.size})")
        self.steps_per_epoch = self.train_data.count // self.batch
        self.epochs = config.epochs
        self.autocast: Callable[[], contextlib.AbstractContextManager] = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False))
            if amp else contextlib.nullcontext)
        self.aux_weight = config.aux_weight
        self.drop_path = config.drop_path
        self.clip = optimization.grad_clip
        self.label_smoothing = config.label_smoothing

        total = self.steps_per_epoch * self.epochs
        self.schedule = cosine_schedule(optimization.learning_rate, total,
                                        config.warmup_fraction, device)
        # Device-side state the captured step reads and advances.
        self.lr = self.schedule[0].clone()
        self.order = torch.zeros(self.steps_per_epoch, self.batch, dtype=torch.long,
                                 device=device)
        self.step_in_epoch = torch.zeros((), dtype=torch.long, device=device)
        self.global_step = torch.zeros((), dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.optimizer = SGD(model.parameters(), self.lr, optimization.momentum,
                             optimization.nesterov, optimization.weight_decay)
        self.runner = StepRunner(self.train_step, model, self.optimizer,
                                 [self.lr, self.order, self.step_in_epoch, self.global_step,
                                  self.loss_sum, self.correct],
                                 device, stream,
                                 # collectives stay out of CUDA graphs
                                 "off" if world.distributed else config.cuda_graph)
        self.history: list[Metrics] = []

    def loss(self, output: torch.Tensor | tuple[torch.Tensor, torch.Tensor], y: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, main logits); an auxiliary head's loss is added with its weight."""
        logits, aux = output if isinstance(output, tuple) else (output, None)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if aux is not None:
            loss = loss + self.aux_weight * F.cross_entropy(
                aux, y, label_smoothing=self.label_smoothing)
        return loss, logits

    def train_step(self) -> None:
        self.optimizer.zero_grad()
        index = distributed.shard(
            self.order.index_select(0, self.step_in_epoch.view(1)).view(-1), self.world)
        x, y = self.train_data.batch(index, augment=True)
        self.lr.copy_(self.schedule.index_select(0, self.global_step.view(1)).view(()))
        with self.autocast():
            loss, logits = self.loss(self.model(x), y)
        loss.backward()
        if self.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip, foreach=True)
        self.optimizer.step()
        with torch.no_grad():
            self.step_in_epoch += 1
            self.global_step += 1
            self.loss_sum += loss.detach().float()
            self.correct += (logits.argmax(1) == y).sum()

    def prepare(self) -> str:
        """Capture the step (CUDA); returns how steps run."""
        return self.runner.prepare()

    def begin_epoch(self, epoch: int) -> None:
        with self.runner.on_stream():
            count = self.steps_per_epoch * self.batch
            order = self.permutation(epoch)[:count]
            self.order.copy_(order.view(self.steps_per_epoch, self.batch))
            self.step_in_epoch.zero_()
            self.loss_sum.zero_()
            self.correct.zero_()
            if self.drop_path:
                # ScheduledDropPath: the probability grows linearly over training.
                set_drop_path_prob(self.model, self.drop_path * epoch / self.epochs)

    def run(self) -> Iterator[int | None]:
        """Enqueue all training; yields None after each step and the epoch number after
        each epoch, whose metrics are then in `history[-1]` (device tensors)."""
        for epoch in range(self.epochs):
            self.begin_epoch(epoch)
            for _ in range(self.steps_per_epoch):
                self.runner.step()
                yield None
            with self.runner.on_stream():
                val_loss, val_accuracy = self.evaluate(self.splits["val"])
                samples = self.steps_per_epoch * self.batch
                # each process summed its share: the epoch's sums are their totals
                distributed.sum_over_workers([self.loss_sum, self.correct], self.world)
                self.history.append({
                    "train_loss": self.loss_sum / (self.steps_per_epoch * self.world.size),
                    "train_accuracy": self.correct / samples,
                    "val_loss": val_loss, "val_accuracy": val_accuracy})
            yield epoch

    def permutation(self, epoch: int) -> torch.Tensor:
        """The epoch's order of the training samples; every process of a data-parallel
        trial draws the same one (a generator seeded by the seed and the epoch), as each
        takes its slice of every batch."""
        if not self.world.distributed:
            return torch.randperm(self.train_data.count, device=self.device)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.config.seed * 100_003 + epoch)
        return torch.randperm(self.train_data.count, device=self.device, generator=generator)

    @torch.no_grad()
    def evaluate(self, split: DeviceImages) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and accuracy over a split, in eval mode; device tensors.

        Every batch has the training batch's shape (the last one is filled up with
        repeats that are masked out): the convolution algorithms cuDNN tuned for training
        serve evaluation too, instead of being tuned again for each new shape.
        """
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        offsets = torch.arange(self.batch, device=self.device)
        for start in range(0, split.count, self.batch):
            index = start + offsets
            real = (index < split.count).float()
            x, y = split.batch(index.clamp(max=split.count - 1), augment=False)
            with self.autocast():
                logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y, reduction="none")
            loss_sum += (loss * real).sum()
            correct += ((logits.argmax(1) == y).float() * real).sum()
        self.model.train()
        return loss_sum / split.count, correct / split.count

    def final_metrics(self) -> dict[str, torch.Tensor]:
        """Test-set metrics of the final weights (when the dataset has a test set)."""
        if "test" not in self.splits:
            return {}
        with self.runner.on_stream():
            loss, accuracy = self.evaluate(self.splits["test"])
        return {"test_loss": loss, "test_accuracy": accuracy}


"""Training a word-level language model (rnn-cell): the corpus on the device as
`batch` parallel token streams, truncated backpropagation through `bptt` steps with the
recurrent state carried across windows, gradient clipping; the step captured as one CUDA
graph when possible (an unrolled cell is hundreds of tiny kernels).

Data-parallel (trainer.processes > 1): the `batch` streams are the global batch; each
process carries its own equal share of them (and their recurrent state), DDP averages
the gradients, so the update is the single-process one up to floating-point order. Every
process evaluates the whole validation text on its unwrapped copy (the same weights),
so no collective runs outside the training step."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..data.splits import TextData
from ..models import RNNLanguageModel
from . import distributed
from .config import ConfigError, Optimization, TrainerConfig
from .engine import SGD, StepRunner, cosine_schedule

Metrics = dict[str, torch.Tensor]


def streams(ids: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """Cut a token sequence into `batch` equal rows (dropping the tail): (batch, length)."""
    length = ids.numel() // batch
    return ids[:batch * length].view(batch, length).to(device)


class LanguageTraining:
    """Same protocol as ImageTraining: prepare(), run() generator, history, final_metrics()."""

    def __init__(self, model: RNNLanguageModel, data: TextData, config: TrainerConfig,
                 optimization: Optimization, device: torch.device, amp: bool,
                 stream: torch.cuda.Stream | None = None,
                 world: distributed.World = distributed.World()) -> None:
        self.model, self.config, self.device = model, config, device
        self.world = world
        self.bptt = config.bptt
        streams_fit = max(1, min(config.batch_size, (data.train.numel() - 1) // (self.bptt + 1)))
        self.batch = streams_fit // world.size * world.size  # an equal share per process
        if self.batch < 1:
            raise ConfigError(f"trainer.batchSize ({config.batch_size}) must be at least "
                              f"trainer.processes ({world.size})")
        share = self.batch // world.size
        self.train_tokens = streams(data.train, self.batch, device)[
            world.rank * share:(world.rank + 1) * share]
        self.steps_per_epoch = (self.train_tokens.shape[1] - 1) // self.bptt
        if self.steps_per_epoch < 1:
            raise ValueError(f"the training text is too short for bptt {self.bptt}")
        eval_batch = max(1, min(self.batch, (data.val.numel() - 1) // 2))
        self.val_tokens = streams(data.val, eval_batch, device)
        self.test_tokens = None if data.test is None else streams(
            data.test, max(1, min(self.batch, (data.test.numel() - 1) // 2)), device)
        self.epochs = config.epochs
        self.autocast: Callable[[], contextlib.AbstractContextManager] = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False))
            if amp else contextlib.nullcontext)
        self.clip = optimization.grad_clip

        total = self.steps_per_epoch * self.epochs
        self.schedule = cosine_schedule(optimization.learning_rate, total,
                                        config.warmup_fraction, device)
        self.lr = self.schedule[0].clone()
        self.offsets = torch.arange(self.bptt, device=device)
        self.step_in_epoch = torch.zeros((), dtype=torch.long, device=device)
        self.global_step = torch.zeros((), dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.h, self.c = distributed.unwrap(model).initial_state(share, device)
        self.optimizer = SGD(model.parameters(), self.lr, optimization.momentum,
                             optimization.nesterov, optimization.weight_decay)
        self.runner = StepRunner(self.train_step, model, self.optimizer,
                                 [self.lr, self.step_in_epoch, self.global_step, self.loss_sum,
                                  self.h, self.c],
                                 device, stream,
                                 "off" if world.distributed else config.cuda_graph)
        self.history: list[Metrics] = []

    def train_step(self) -> None:
        self.optimizer.zero_grad()
        positions = self.step_in_epoch * self.bptt + self.offsets
        x = self.train_tokens.index_select(1, positions)
        y = self.train_tokens.index_select(1, positions + 1)
        self.lr.copy_(self.schedule.index_select(0, self.global_step.view(1)).view(()))
        with self.autocast():
            logits, (h, c) = self.model(x, (self.h, self.c))
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
        loss.backward()
        if self.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip, foreach=True)
        self.optimizer.step()
        with torch.no_grad():
            # Truncated BPTT: the state goes on to the next window, the graph does not.
            self.h.copy_(h)
            self.c.copy_(c)
            self.step_in_epoch += 1
            self.global_step += 1
            self.loss_sum += loss.detach()

    def prepare(self) -> str:
        return self.runner.prepare()

    def run(self) -> Iterator[int | None]:
        for epoch in range(self.epochs):
            with self.runner.on_stream():
                for t in (self.step_in_epoch, self.loss_sum, self.h, self.c):
                    t.zero_()
            for _ in range(self.steps_per_epoch):
                self.runner.step()
                yield None
            with self.runner.on_stream():
                val_loss = self.evaluate(self.val_tokens)
                # each process summed its share's mean losses: their mean is the batch's
                distributed.sum_over_workers([self.loss_sum], self.world)
                self.history.append({"train_loss": self.loss_sum / (self.steps_per_epoch
                                                                    * self.world.size),
                                     "val_loss": val_loss, "val_perplexity": val_loss.exp()})
            yield epoch

    @torch.no_grad()
    def evaluate(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy over a whole split (state carried)."""
        model = distributed.unwrap(self.model)
        model.eval()
        state = model.initial_state(tokens.shape[0], self.device)
        loss_sum = torch.zeros((), device=self.device)
        length = tokens.shape[1] - 1
        for start in range(0, length, self.bptt):
            end = min(start + self.bptt, length)
            with self.autocast():
                logits, state = model(tokens[:, start:end], state)
            loss_sum += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                        tokens[:, start + 1:end + 1].reshape(-1), reduction="sum")
        model.train()
        return loss_sum / (length * tokens.shape[0])

    def final_metrics(self) -> dict[str, torch.Tensor]:
        if self.test_tokens is None:
            return {}
        with self.runner.on_stream():
            loss = self.evaluate(self.test_tokens)
        return {"test_loss": loss, "test_perplexity": loss.exp()}

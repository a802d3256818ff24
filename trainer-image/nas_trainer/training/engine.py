"""Run a training step — forward, backward, optimizer step — eagerly, or captured once as
a CUDA graph and replayed.

Small NAS children are bound by kernel launches: replaying the whole step as one graph
removes the per-kernel CPU cost (about 3× for a ResNet-20 on an H100). The step must
then keep everything on the device: its batch index, learning rate and metric sums live
in device tensors that the step itself advances, and it never syncs with the host.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

WARMUP_STEPS = 3  # eager steps on a side stream before capture (cuDNN autotuning, lazy init)


class SGD:
    """SGD with (Nesterov) momentum and weight decay, as torch.optim.SGD computes it, on
    multi-tensor (foreach) kernels, reading its learning rate from a device tensor so a
    schedule can advance it inside a CUDA graph.

    Written out rather than taken from torch.optim: constructing any torch.optim
    optimizer imports torch._dynamo, 3–8 s that every trial would pay.
    """

    def __init__(self, parameters: Iterable[nn.Parameter], lr: torch.Tensor, momentum: float,
                 nesterov: bool, weight_decay: float) -> None:
        self.params = [p for p in parameters if p.requires_grad]
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov and momentum > 0
        self.weight_decay = weight_decay
        self.buffers = [torch.zeros_like(p) for p in self.params] if momentum else []

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        params = [self.params[i] for i in live]
        grads = [p.grad for p in params]
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if self.momentum:
            buffers = [self.buffers[i] for i in live]
            torch._foreach_mul_(buffers, self.momentum)
            torch._foreach_add_(buffers, grads)
            grads = (torch._foreach_add(grads, buffers, alpha=self.momentum) if self.nesterov
                     else buffers)
        torch._foreach_sub_(params, torch._foreach_mul(grads, self.lr))

    def reset(self) -> None:
        """Forget the momentum (zero momentum + a gradient = SGD's first step)."""
        for buffer in self.buffers:
            buffer.zero_()


def cosine_schedule(base_lr: float, total_steps: int, warmup_fraction: float,
                    device: torch.device) -> torch.Tensor:
    """Per-step learning rates: linear warmup, then cosine to zero. A few trailing zeros
    let the pre-capture warmup steps index past the end harmlessly."""
    steps = torch.arange(total_steps + WARMUP_STEPS + 1, dtype=torch.float64)
    warmup = max(1, round(warmup_fraction * total_steps)) if warmup_fraction > 0 else 0
    progress = ((steps - warmup) / max(1, total_steps - warmup)).clamp(0, 1)
    lr = base_lr * 0.5 * (1 + torch.cos(torch.pi * progress))
    if warmup:
        lr = torch.where(steps < warmup, base_lr * (steps + 1) / warmup, lr)
    lr[total_steps:] = 0.0
    return lr.to(device=device, dtype=torch.float32)


class StepRunner:
    """Calls `step()` eagerly, or after `prepare()` replays it as a CUDA graph.

    `state` lists the device tensors the step advances besides the model and optimizer
    (counters, metric sums): the warmup steps run before capture are undone, so training
    starts from the same weights and counters either way.
    """

    def __init__(self, step: Callable[[], None], model: nn.Module,
                 optimizer: SGD, state: list[torch.Tensor],
                 device: torch.device, stream: torch.cuda.Stream | None = None,
                 mode: str = "auto") -> None:
        self.step_fn, self.model, self.optimizer, self.state = step, model, optimizer, state
        self.device, self.mode = device, mode
        self.stream = stream if stream is not None or device.type != "cuda" else \
            torch.cuda.current_stream(device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.execution = "eager"
        if stream is not None:
            # Everything the step reads was made on the current stream: order after it.
            stream.wait_stream(torch.cuda.current_stream(device))

    def on_stream(self) -> contextlib.AbstractContextManager:
        return torch.cuda.stream(self.stream) if self.stream is not None else \
            contextlib.nullcontext()

    def prepare(self) -> str:
        """Capture the step when on CUDA and allowed; returns how steps will run:
        'cuda-graph', 'eager', or 'eager (capture failed: ...)'."""
        if self.device.type != "cuda" or self.mode == "off":
            return self.execution
        with self.preserved():
            try:
                self.graph = self.capture()
                self.execution = "cuda-graph"
            except Exception as err:  # noqa: BLE001 - any capture failure falls back
                if self.mode == "on":
                    raise
                self.graph = None
                torch.cuda.synchronize(self.device)
                self.execution = f"eager (capture failed: {type(err).__name__}: {str(err)[:120]})"
        return self.execution

    def capture(self) -> torch.cuda.CUDAGraph:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(self.stream)
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self.step_fn()
        self.stream.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.step_fn()
        return graph

    @contextlib.contextmanager
    def preserved(self) -> Iterator[None]:
        """Undo whatever the steps inside change: weights, BN statistics, momentum, state."""
        with self.on_stream():
            weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            state = [t.detach().clone() for t in self.state]
        try:
            yield
        finally:
            with torch.no_grad(), self.on_stream():
                for key, value in self.model.state_dict().items():
                    value.copy_(weights[key])
                for tensor, saved in zip(self.state, state):
                    tensor.copy_(saved)
                self.optimizer.reset()

    def step(self) -> None:
        with self.on_stream():
            if self.graph is not None:
                self.graph.replay()
            else:
                self.step_fn()

"""One child network trained by several processes of one pod: data-parallel (DDP).

`trainer.processes` (or, when it is not set, the number of GPUs the pod can see, so a
trial given `nvidia.com/gpu: 4` uses all four) decides how many. The trial's command
stays the same: the first process re-runs itself under torchrun (`launch_command`),
whose workers find RANK/WORLD_SIZE/LOCAL_RANK in their environment. Each worker trains
on its share of every batch (the global batch stays `trainer.batchSize`, so the result
does not depend on the number of processes beyond floating-point order), DDP averages
the gradients, and only rank 0 writes the result, the trial folder and the weights.

The backend is NCCL on GPUs and gloo on the CPU (how the test suite runs it).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..distributed_launch import LOCAL_RANK_ENV, RANK_ENV, WORLD_ENV


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_world() -> World:
    """This process's place among the trial's processes (a single one when not launched
    by torchrun)."""
    size = int(os.environ.get(WORLD_ENV) or 1)
    if size <= 1:
        return World()
    return World(int(os.environ.get(RANK_ENV) or 0), size,
                 int(os.environ.get(LOCAL_RANK_ENV) or 0))


def processes_wanted(configured: int | None, device: str) -> int:
    """How many processes a trial runs: `trainer.processes`, else one per visible GPU
    (when the trial may use CUDA), else one. Imports torch only to count GPUs."""
    if configured is not None:
        return configured
    if device == "cpu" or device.startswith("cuda:") or device == "mps":
        return 1
    import torch as _torch

    return max(1, _torch.cuda.device_count()) if _torch.cuda.is_available() else 1


def launch_command(processes: int, argv: Sequence[str]) -> list[str]:
    """The same trainer command under torchrun: ``processes`` workers on this node, a
    rendezvous on loopback (--standalone) that needs no open port chosen in advance."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
            f"--nproc-per-node={processes}", "-m", "nas_trainer.train_cli", *argv]


def device_for(world: World, device: torch.device) -> torch.device:
    """Each worker its own GPU (LOCAL_RANK); CPU workers share the CPU."""
    if world.distributed and device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def join(world: World, device: torch.device) -> None:
    """Join the trial's process group (torchrun's rendezvous gives the address)."""
    import torch.distributed as dist

    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def leave() -> None:
    """Leave the trial's process group, if this process joined one."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, world: World, device: torch.device,
         sample: torch.Tensor) -> nn.Module:
    """The model DDP averages gradients for; unchanged for a single process. ``sample``
    (a batch of the input's shape) finds whether the child leaves parameters out of a
    training step (DDP must then look for them after every backward pass)."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids,
                                   find_unused_parameters=leaves_parameters_out(model, sample))


def leaves_parameters_out(model: nn.Module, sample: torch.Tensor) -> bool:
    """Whether a training step's backward pass misses some parameter; the model's
    weights and statistics are as before."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        sum(o.float().sum() for o in tensors_in(model(sample))).backward()
        return any(p.requires_grad and p.grad is None for p in model.parameters())
    finally:
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for key, value in model.state_dict().items():
                value.copy_(saved[key])


def tensors_in(output: object) -> list[torch.Tensor]:
    """The floating-point tensors of a model's output, however nested (a language model
    returns its logits and its recurrent state)."""
    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    if isinstance(output, (tuple, list)):
        return [t for part in output for t in tensors_in(part)]
    return []


def unwrap(model: nn.Module) -> nn.Module:
    """The child network itself (what is saved and exported)."""
    return getattr(model, "module", model)


def shard(batch: torch.Tensor, world: World) -> torch.Tensor:
    """This worker's share of a global batch of indices (an equal slice each)."""
    if not world.distributed:
        return batch
    per_worker = batch.shape[0] // world.size
    return batch[world.rank * per_worker:(world.rank + 1) * per_worker]


def sum_over_workers(tensors: list[torch.Tensor], world: World) -> None:
    """Sums each tensor over the workers, in place (training metrics of an epoch)."""
    if not world.distributed:
        return
    import torch.distributed as dist

    for tensor in tensors:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


def describe(world: World, device: torch.device) -> str:
    """How the steps ran, for the result's ``execution``."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    return f"DDP over {world.size} processes ({backend})"

"""A warm worker's pack trained together (spec.trials.packing, contract 8).

The Trials of a pack whose children are image networks trained with the same trainer
config go through `training.packing.train_packed` at once, in chunks of as many as fit
the GPU (`choose_pack_size`, from one measured training step of the largest child).
Everything else (language or table spaces, differing configs, shared weights) is
trained one Trial after another by the worker, as is a chunk whose packed training
fails, so that every Trial still gets its own answer. Each child trained together
yields the result JSON and trial folder (result.json, epochs.jsonl, model.pt) a single
run writes; its `seconds` is the wall time of its whole chunk.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from nas_contracts.result import EXIT_OK

from .train_cli import Evaluation, cached_data
from .trainer_options import IMAGE_SPACES

Assignment = dict[str, Any]


def _config_key(assignment: Assignment) -> str | None:
    """The assignment's trainer config as a comparable key; None when it cannot be packed."""
    config = assignment.get("config")
    architecture = assignment.get("architecture")
    if not isinstance(config, dict) or not isinstance(architecture, dict):
        return None
    if architecture.get("space") not in IMAGE_SPACES:
        return None  # train_packed trains image children only
    processes = config.get("processes")
    if config.get("sharedWeights") is not None or (isinstance(processes, int)
                                                   and processes > 1):
        return None  # a supernet's child, or a child of several processes: alone
    return json.dumps(config, sort_keys=True, default=str)


def plan(assignments: list[Assignment]) -> list[list[Assignment]]:
    """The pending assignments in groups to train at once (same config, image spaces), in
    the order their first member was written; a group of one is trained alone."""
    groups: dict[Any, list[Assignment]] = {}
    for position, assignment in enumerate(assignments):
        key = _config_key(assignment)
        groups.setdefault(key if key is not None else ("alone", position), []).append(
            assignment)
    return list(groups.values())


def chunks(group: list[Assignment], size: int) -> list[list[Assignment]]:
    size = max(1, size)
    return [group[i:i + size] for i in range(0, len(group), size)]


def pack_size(group: list[Assignment], data_cache: dict[Any, Any]) -> int:
    """How many of ``group`` to train at once. On a GPU: `choose_pack_size` for the
    largest child. On the CPU all of them: its steps run one after another either way, so
    packing there neither gains nor loses throughput, but the pack's data and config are
    set up once and its Trials are answered together, as on a GPU."""
    import torch

    from .models import count_flops
    from .training import TrainerConfig
    from .training.packing import choose_pack_size
    from .training.run import build_child, select_device

    config_doc = dict(group[0]["config"])
    config = TrainerConfig.from_dict(config_doc)
    device = select_device(config.device)
    if device.type != "cuda":
        return len(group)
    data = cached_data(config_doc, config, str(group[0]["architecture"]["space"]), data_cache)
    sample = torch.zeros(1, *data.input_shape)
    sized = [(count_flops(build_child(a["architecture"], config, data)[0], sample), a)
             for a in group]
    flops, largest = max(sized, key=lambda s: s[0])
    child_bytes = _measured_child_bytes(largest["architecture"], config, data, device)
    free_bytes, _ = torch.cuda.mem_get_info(device)
    return choose_pack_size(3 * flops * config.batch_size, child_bytes, free_bytes)


def _measured_child_bytes(architecture: dict[str, Any], config: Any, data: Any,
                          device: Any) -> int:
    """GPU memory one child takes while training: one forward and backward step at the
    training batch size, measured; doubled for the captured graph's own memory pool, plus
    the optimizer's momentum (one copy of the weights)."""
    import torch

    from .training.run import build_child

    model = build_child(architecture, config, data)[0].to(device)
    model = model.to(memory_format=torch.channels_last)
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    batch = torch.randn(config.batch_size, *data.input_shape, device=device)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.cuda.is_bf16_supported()):
        out = model(batch.to(memory_format=torch.channels_last))
    out = out[0] if isinstance(out, (tuple, list)) else out
    out.float().sum().backward()
    torch.cuda.synchronize(device)
    step = torch.cuda.max_memory_allocated(device) - base
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    del model, batch, out
    torch.cuda.empty_cache()
    return 2 * step + weights


def train_together(chunk: list[Assignment], data_cache: dict[Any, Any],
                   log: Callable[[str], None]) -> list[Evaluation]:
    """Train ``chunk`` (one config, image spaces) at once; one Evaluation per assignment,
    in order, each the result JSON a single run gives. Raises whatever train_packed
    raises: the caller trains the chunk one Trial after another instead."""
    from .training import TrainerConfig
    from .training.packing import train_packed
    from .training.run import limit_cpu_threads, save_outcome, select_device

    started = time.perf_counter()
    config_doc = dict(chunk[0]["config"])
    config = TrainerConfig.from_dict(config_doc)
    limit_cpu_threads(config, select_device(config.device))  # as a single run does
    data = cached_data(config_doc, config, str(chunk[0]["architecture"]["space"]), data_cache)
    outcomes = train_packed([a["architecture"] for a in chunk], config, data=data, log=log,
                            started=started)
    evaluations = []
    for assignment, outcome in zip(chunk, outcomes):
        if assignment.get("outputDir"):  # the trial folder a single run writes
            save_outcome(Path(assignment["outputDir"]), assignment["architecture"], outcome)
        evaluations.append(Evaluation(EXIT_OK, outcome.result.to_json()))
    return evaluations

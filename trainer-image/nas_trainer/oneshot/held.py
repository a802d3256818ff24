"""The supernet a process last saved, kept in memory for its next child (ENAS's one
long-running trainer): see `HeldSupernet`."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch

from ..data.splits import ImageData
from ..training.config import TrainerConfig
from .supernets import SHAPES

if TYPE_CHECKING:
    from .estimator import Supernet


class HeldSupernet:
    """The supernet a process last saved, kept in memory for its next child: a warm worker
    (spec.trials.mode WarmPool) or `nas run` then scores and trains child after child
    without reading the checkpoint or moving the data to the device again, as ENAS's one
    long-running trainer does. Reused only while the checkpoint on disk is the very file
    this process wrote (its inode, size and mtime): any other writer, or a failed child,
    and the next child loads from disk."""

    def __init__(self) -> None:
        self._entry: tuple[Any, ...] | None = None

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int, int] | None:
        try:
            found = path.stat()
        except FileNotFoundError:
            return None
        return (found.st_ino, found.st_size, found.st_mtime_ns)

    @staticmethod
    def _key(path: Path, architecture: Mapping[str, Any], config: TrainerConfig,
             device: torch.device) -> tuple[Any, ...]:
        space = architecture["space"]
        return (str(path), space, repr(SHAPES[space](architecture)), str(device),
                repr(config.augment), config.seed, config.batch_size, config.learning_rate,
                config.weight_decay)

    def take(self, path: Path, architecture: Mapping[str, Any], config: TrainerConfig,
             device: torch.device, data: ImageData) -> tuple[Supernet, Any] | None:
        entry, self._entry = self._entry, None
        if entry is None:
            return None
        key, stamp, held_data, supernet, splits = entry
        if (key != self._key(path, architecture, config, device) or held_data is not data
                or stamp != self._stamp(path)):
            return None
        return supernet, splits

    def keep(self, path: Path, architecture: Mapping[str, Any], config: TrainerConfig,
             device: torch.device, data: ImageData, supernet: Supernet, splits: Any) -> None:
        self._entry = (self._key(path, architecture, config, device), self._stamp(path),
                       data, supernet, splits)

    def forget(self) -> None:
        self._entry = None


HELD = HeldSupernet()

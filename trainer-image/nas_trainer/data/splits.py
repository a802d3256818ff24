"""What a dataset loader returns, and the seeded validation hold-out."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..trainer_options import Augment


class DatasetError(RuntimeError):
    """The data is not where or what the configuration says (missing or malformed files):
    permanent, a retry of the trial would fail the same way."""


class DatasetUnavailable(DatasetError):
    """The data could not be fetched (no network, a mirror down, a bad download): worth
    retrying the trial."""


@dataclass
class ImageData:
    """Images as uint8 tensors (N, H, W, C) on the CPU, labels as int64 (N,).

    Channels last on purpose: a batch gathered from it, permuted to NCHW, is already a
    channels_last tensor. The validation split comes out of the training set.
    """
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    num_classes: int
    augment: Augment

    @property
    def input_shape(self) -> tuple[int, int, int]:
        _, h, w, c = self.train_x.shape
        return (c, h, w)


@dataclass
class TextData:
    """A word-level corpus as int64 token ids; `vocab[i]` is the word of id i."""
    name: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor | None
    vocab: list[str]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


def holdout_count(n: int, validation: float | int) -> int:
    """Validation examples to hold out of n: a fraction in (0, 1) or a count."""
    count = round(n * validation) if 0 < validation < 1 else int(validation)
    if not 1 <= count < n:
        # Named as in the manifest: the default (5,000 for CIFAR and MNIST) is what a small
        # copy of a dataset runs into.
        raise ValueError(f"spec.trainer.validation must hold out at least one and leave at "
                         f"least one training example (asked for {validation} of {n}); set "
                         f"it to a fraction such as 0.1 or a count below {n}")
    return count


def split_holdout(x: torch.Tensor, y: torch.Tensor, validation: float | int, seed: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train_x, train_y, val_x, val_y): a seeded random hold-out of the training set.

    The seed is the search's, not the trial's, so every trial is scored on the same
    validation images.
    """
    count = holdout_count(len(y), validation)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val, train = order[:count], order[count:]
    return x[train], y[train], x[val], y[val]

"""Built-in datasets, loaded whole into CPU tensors (the trainer moves them to the device).

    data = load_dataset("cifar10", "/datasets/cifar10")   # ImageData
    text = load_dataset("ptb", "/datasets/ptb")            # TextData

Image datasets hold out a seeded validation split from their training set; the test set
is never used for validation. On-disk datasets are read from their official formats and,
when missing and the network allows, downloaded and checked against the official MD5.
"""
from __future__ import annotations

from typing import Any, Mapping

from .builtin import load_digits, load_synthetic
from .cifar import load_cifar
from .idx import load_idx_dataset, read_idx
from .image_folder import load_image_folder
from .splits import Augment, DatasetError, DatasetUnavailable, ImageData, TextData, split_holdout
from .text import load_ptb
from ..trainer_options import (  # noqa: F401  (torch-free: the manifest reads them too)
    DATASET_OPTIONS, DATASETS, IMAGE_DATASETS, TEXT_DATASETS)

__all__ = ["Augment", "DATASETS", "DatasetError", "DatasetUnavailable", "ImageData",
           "TextData", "load_dataset", "read_idx", "split_holdout"]


def load_dataset(name: str, data_path: str | None = None, *,
                 validation: float | int | None = None, split_seed: int = 0,
                 download: bool = True, options: Mapping[str, Any] | None = None
                 ) -> ImageData | TextData:
    """Load a built-in dataset. `validation` (a fraction or a count) overrides the
    dataset's default hold-out; `options` are dataset-specific (DATASET_OPTIONS)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; built-in datasets are {list(DATASETS)}")
    known = DATASET_OPTIONS.get(name, {})
    unknown = sorted(set(options or {}) - set(known))
    if unknown:
        raise ValueError(f"dataset {name} takes no options {unknown} (known: {sorted(known)})")
    kwargs: dict[str, Any] = {known[k]: v for k, v in (options or {}).items()}
    if validation is not None:
        kwargs["validation"] = validation
    if name == "digits":
        return load_digits(split_seed=split_seed, **kwargs)
    if name == "synthetic":
        return load_synthetic(split_seed=split_seed, **kwargs)
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, data_path, split_seed=split_seed, download=download, **kwargs)
    if name in ("mnist", "fashion-mnist"):
        return load_idx_dataset(name, data_path, split_seed=split_seed, download=download,
                                **kwargs)
    if name == "image-folder":
        return load_image_folder(data_path, split_seed=split_seed, **kwargs)
    return load_ptb(data_path, download=download)

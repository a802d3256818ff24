"""CIFAR-10 and CIFAR-100 from the official "python version" pickle batches."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from .download import default_root, extract_tar, fetch
from .splits import Augment, DatasetError, ImageData, split_holdout

# name -> (archive, md5 of the archive, folder inside it, train files, test file, label key)
CIFAR = {
    "cifar10": ("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                "test_batch", b"labels", 10),
    "cifar100": ("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                 "cifar-100-python", ["train"], "test", b"fine_labels", 100),
}
URL = "https://www.cs.toronto.edu/~kriz/"


def read_batch(path: Path, label_key: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """One pickle batch -> uint8 images (N, 32, 32, 3) and int64 labels."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    x = torch.from_numpy(data.transpose(0, 2, 3, 1).copy())
    return x, torch.tensor(batch[label_key], dtype=torch.long)


def locate(name: str, data_path: str | None, download: bool) -> Path:
    """The folder holding the batches: dataPath itself, dataPath/<folder>, or the
    official archive (found in dataPath or downloaded there) extracted."""
    archive, md5, folder, train_files, *_ = CIFAR[name]
    root = Path(data_path) if data_path else default_root(name)
    for candidate in (root, root / folder):
        if (candidate / train_files[0]).exists():
            return candidate
    if not (root / archive).exists() and not download:
        raise DatasetError(f"{name}: no {folder}/ or {archive} under {root}")
    fetch([URL + archive], root / archive, md5)
    extract_tar(root / archive, root)
    return root / folder


def load_cifar(name: str, data_path: str | None = None, validation: float | int = 5000,
               split_seed: int = 0, download: bool = True) -> ImageData:
    _, _, _, train_files, test_file, label_key, classes = CIFAR[name]
    folder = locate(name, data_path, download)
    parts = [read_batch(folder / f, label_key) for f in train_files]
    x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    test_x, test_y = read_batch(folder / test_file, label_key)
    train_x, train_y, val_x, val_y = split_holdout(x, y, validation, split_seed)
    return ImageData(name, train_x, train_y, val_x, val_y, test_x, test_y,
                     num_classes=classes, augment=Augment(pad=4, flip=True))

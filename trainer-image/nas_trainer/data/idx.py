"""MNIST and Fashion-MNIST from their IDX files (gzipped or not)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from .download import default_root, fetch
from .splits import Augment, DatasetError, ImageData, split_holdout

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# name -> (mirrors, md5 of each .gz in FILES order)
IDX = {
    "mnist": (["https://ossci-datasets.s3.amazonaws.com/mnist/",
               "http://yann.lecun.com/exdb/mnist/"],
              ["f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
               "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"]),
    "fashion-mnist": (["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                       "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/"
                       "master/data/fashion/"],
                      ["8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                       "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"]),
}
DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file: 2 zero bytes, a type byte, the number of dimensions, the
    dimensions as big-endian int32, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in DTYPES:
        raise DatasetError(f"{path} is not an IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, dtype=DTYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetError(f"{path}: header says {tuple(dims)}, found {data.size} values")
    return data.reshape(tuple(int(d) for d in dims))


def find_file(stem: str, roots: list[Path]) -> Path | None:
    for root in roots:
        for name in (stem, stem + ".gz"):
            if (root / name).exists():
                return root / name
    return None


def load_idx_dataset(name: str, data_path: str | None = None, validation: float | int = 5000,
                     split_seed: int = 0, download: bool = True) -> ImageData:
    mirrors, md5s = IDX[name]
    root = Path(data_path) if data_path else default_root(name)
    # Also the layout torchvision leaves behind: <root>/<Name>/raw/.
    roots = [root, root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"]
    paths = []
    for stem, md5 in zip(FILES, md5s):
        path = find_file(stem, roots)
        if path is None:
            if not download:
                raise DatasetError(f"{name}: {stem}[.gz] not found under {root}")
            path = fetch([m + stem + ".gz" for m in mirrors], root / (stem + ".gz"), md5)
        paths.append(path)
    images, labels, test_images, test_labels = (read_idx(p) for p in paths)
    x = torch.from_numpy(images.astype(np.uint8)).unsqueeze(-1)
    y = torch.from_numpy(labels.astype(np.int64))
    test_x = torch.from_numpy(test_images.astype(np.uint8)).unsqueeze(-1)
    test_y = torch.from_numpy(test_labels.astype(np.int64))
    train_x, train_y, val_x, val_y = split_holdout(x, y, validation, split_seed)
    return ImageData(name, train_x, train_y, val_x, val_y, test_x, test_y, num_classes=10,
                     augment=Augment(pad=2, flip=False))

"""Images in one folder per class: <dataPath>/<class>/*.png, or with train/ and test/
subfolders each laid out that way. Classes are the sorted folder names."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .splits import Augment, DatasetError, ImageData, split_holdout

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


def read_folder(root: Path, classes: list[str], size: int, mode: str
                ) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from PIL import Image
    except ImportError as err:
        raise DatasetError("the image-folder dataset needs Pillow: pip install pillow") from err
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in EXTENSIONS:
                continue
            with Image.open(path) as img:
                img = img.convert(mode).resize((size, size), Image.BILINEAR)
                images.append(np.asarray(img, dtype=np.uint8).reshape(size, size, -1))
            labels.append(label)
    if not images:
        raise DatasetError(f"no images under {root}")
    return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long)


def load_image_folder(data_path: str | None, validation: float | int = 0.1,
                      split_seed: int = 0, image_size: int = 32, grayscale: bool = False,
                      augment: Augment | None = None) -> ImageData:
    if not data_path:
        raise DatasetError("the image-folder dataset needs trainer.dataPath")
    root = Path(data_path)
    train_root = root / "train" if (root / "train").is_dir() else root
    if not train_root.is_dir():
        raise DatasetError(f"image-folder: {train_root} is not a folder")
    classes = sorted(p.name for p in train_root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DatasetError(f"image-folder: {train_root} needs one subfolder per class "
                           f"(found {classes})")
    mode = "L" if grayscale else "RGB"
    x, y = read_folder(train_root, classes, image_size, mode)
    test_x = test_y = None
    if train_root != root and (root / "test").is_dir():
        # Labels are indices into train/'s sorted class folders: test/ must name the same
        # classes (a missing one used to end in FileNotFoundError, retried as if transient).
        test_classes = sorted(p.name for p in (root / "test").iterdir() if p.is_dir())
        if test_classes != classes:
            missing = sorted(set(classes) - set(test_classes))
            extra = sorted(set(test_classes) - set(classes))
            raise DatasetError(f"image-folder: {root / 'test'} must have the class folders of "
                               f"{train_root} (missing: {missing or 'none'}; not in train: "
                               f"{extra or 'none'})")
        test_x, test_y = read_folder(root / "test", classes, image_size, mode)
    train_x, train_y, val_x, val_y = split_holdout(x, y, validation, split_seed)
    return ImageData("image-folder", train_x, train_y, val_x, val_y, test_x, test_y,
                     num_classes=len(classes),
                     augment=augment or Augment(pad=max(1, image_size // 8), flip=True))

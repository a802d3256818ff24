"""Datasets that need no files: `digits` (scikit-learn's 8×8 digits) and `synthetic`."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .splits import Augment, ImageData, split_holdout


def load_digits(validation: float | int = 0.15, split_seed: int = 0,
                test_fraction: float = 0.2) -> ImageData:
    """The 1,797 8×8 grey digits, kept at 8×8 (one channel): small children train in
    seconds on a CPU. A fixed 20% is the test set; the validation split comes out of the
    rest. Pixel values 0–16 are scaled to 0–240 so they fit uint8 with headroom."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = torch.from_numpy(bunch.images).to(torch.uint8).mul_(15).unsqueeze(-1)  # (N, 8, 8, 1)
    y = torch.from_numpy(bunch.target).long()
    # The test set is fixed (seed 0) whatever the split seed, so results stay comparable.
    rest_x, rest_y, test_x, test_y = split_holdout(x, y, test_fraction, seed=0)
    train_x, train_y, val_x, val_y = split_holdout(rest_x, rest_y, validation, split_seed)
    return ImageData("digits", train_x, train_y, val_x, val_y, test_x, test_y,
                     num_classes=10, augment=Augment(pad=1, flip=False))


def load_synthetic(images: int = 5000, image_size: int = 32, channels: int = 3,
                   classes: int = 10, test_images: int = 1000, validation: float | int = 0.1,
                   seed: int = 0, split_seed: int = 0) -> ImageData:
    """Deterministic, learnable images: each class is a smooth random pattern; an image is
    its class pattern at a random contrast plus pixel noise. Same arguments, same bytes."""
    gen = torch.Generator().manual_seed(seed)
    patterns = F.interpolate(torch.randn(classes, channels, 4, 4, generator=gen),
                             size=(image_size, image_size), mode="bilinear",
                             align_corners=False)
    total = images + test_images
    y = torch.randint(classes, (total,), generator=gen)
    x = torch.empty(total, image_size, image_size, channels, dtype=torch.uint8)
    for start in range(0, total, 4096):  # in chunks: bounded float memory for big sets
        end = min(total, start + 4096)
        contrast = torch.rand(end - start, 1, 1, 1, generator=gen) * 40 + 30
        noise = torch.randn(end - start, channels, image_size, image_size, generator=gen)
        chunk = 128 + contrast * patterns[y[start:end]] + 35 * noise
        x[start:end] = chunk.clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    train_x, train_y, val_x, val_y = split_holdout(x[:images], y[:images], validation,
                                                   split_seed)
    test_x, test_y = (x[images:], y[images:]) if test_images else (None, None)
    return ImageData("synthetic", train_x, train_y, val_x, val_y, test_x, test_y,
                     num_classes=classes, augment=Augment(pad=image_size // 8, flip=True))

"""A dataset split held on the device as uint8, batched and augmented there.

One gather does batch selection, random crop and horizontal flip: the images are kept
zero-padded once (N, H+2p, W+2p, C), and a batch is indexed with per-sample row and column
offsets. Normalisation happens on the fly, in the compute dtype. No Python work per
sample, and nothing that syncs with the host, so it can sit inside a CUDA graph.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.splits import Augment


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (N, H, W, C), on the 0–255 scale;
    computed where x lives (fast on a GPU), in chunks to bound memory."""
    channels = x.shape[-1]
    total = torch.zeros(channels, dtype=torch.float64, device=x.device)
    squares = torch.zeros(channels, dtype=torch.float64, device=x.device)
    for chunk in x.split(4096):
        pixels = chunk.reshape(-1, channels).double()
        total += pixels.sum(0)
        squares += pixels.square().sum(0)
    n = x[..., 0].numel()
    mean = total / n
    std = (squares / n - mean.square()).clamp_min(1.0).sqrt()
    return mean.tolist(), std.tolist()


class DeviceImages:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: list[float], std: list[float],
                 device: torch.device, dtype: torch.dtype, augment: Augment = Augment()) -> None:
        """x: uint8 (N, H, W, C) (on any device); y: int64 (N,)."""
        self.count, self.height, self.width, channels = x.shape
        self.pad, self.flip = augment.pad, augment.flip
        self.stats = (mean, std)
        p = self.pad
        x = x.to(device, non_blocking=True)
        self.padded = F.pad(x, (0, 0, p, p, p, p)) if p else x          # (N, H+2p, W+2p, C)
        self.y = y.to(device, non_blocking=True)
        self.dtype = dtype
        self.mean = torch.tensor(mean, device=device, dtype=dtype).view(1, channels, 1, 1)
        self.inv_std = (1.0 / torch.tensor(std, device=device)).to(dtype).view(1, channels, 1, 1)
        # channels_last on CUDA (tensor-core convolutions); plain NCHW on the CPU, where
        # PyTorch 2.15's oneDNN path corrupts memory in the backward of a strided 1×1
        # convolution of a channels_last input.
        self.channels_last = device.type == "cuda"
        self.rows = torch.arange(self.height, device=device)
        self.cols = torch.arange(self.width, device=device)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, C) → normalised (B, C, H, W), channels_last in memory on CUDA."""
        x = x.permute(0, 3, 1, 2)
        # (An explicit format: with one channel both layouts claim to be "contiguous".)
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        return (x.to(self.dtype, memory_format=layout) - self.mean) * self.inv_std

    def batch(self, index: torch.Tensor, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of `index` (a device tensor), randomly cropped and flipped
        when `augment` and the split's augmentation allow it."""
        p = self.pad
        if not augment or not (p or self.flip):
            x = self.padded[index, p:p + self.height, p:p + self.width] if p else self.padded[index]
            return self.normalize(x), self.y[index]
        b = index.shape[0]
        dy = torch.randint(0, 2 * p + 1, (b, 1), device=index.device)
        dx = torch.randint(0, 2 * p + 1, (b, 1), device=index.device)
        rows = dy + self.rows                                              # (B, H)
        cols = dx + self.cols                                              # (B, W)
        if self.flip:
            flipped = torch.rand(b, 1, device=index.device) < 0.5
            cols = torch.where(flipped, dx + (self.width - 1) - self.cols, cols)
        x = self.padded[index[:, None, None], rows[:, :, None], cols[:, None, :]]
        return self.normalize(x), self.y[index]

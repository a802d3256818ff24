"""Layers shared by the child-network builders, and the error they raise."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ArchitectureError

__all__ = ["ArchitectureError"]


def conv_bn_relu(c_in: int, c_out: int, kernel: tuple[int, int], stride: int = 1) -> nn.Sequential:
    """Conv → BN → ReLU with 'same' padding (odd kernels), the macro-cnn layer."""
    padding = (kernel[0] // 2, kernel[1] // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ReLUConvBN(nn.Sequential):
    """ReLU → Conv → BN: the pre-activation convolution of NASNet and NAS-Bench-201."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 dilation: int = 1) -> None:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (dilation * (kh // 2), dilation * (kw // 2))
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, (kh, kw), stride=stride, padding=padding, dilation=dilation,
                      bias=False),
            nn.BatchNorm2d(c_out),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing half the pixels: two 1×1 stride-2 convolutions,
    one on the input and one on the input shifted by one pixel, concatenated (NASNet).

    The shifted copy is padded back to the input's size first, so odd sizes work too.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        half = c_out // 2
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, half, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - half, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Zero-pad a feature map on the bottom/right to height × width."""
    dh, dw = height - x.shape[-2], width - x.shape[-1]
    return F.pad(x, (0, dw, 0, dh)) if dh or dw else x


def concat_padded(xs: list[torch.Tensor]) -> torch.Tensor:
    """Depth-concatenate feature maps of different sizes, zero-padding the smaller ones."""
    if len(xs) == 1:
        return xs[0]
    height = max(x.shape[-2] for x in xs)
    width = max(x.shape[-1] for x in xs)
    return torch.cat([pad_to(x, height, width) for x in xs], dim=1)


class DropPath(nn.Module):
    """Drop the whole path of a sample with probability `prob`, scaling the kept ones.

    `prob` is a device buffer, not a Python float, so the trainer can raise it epoch by
    epoch (ScheduledDropPath) without re-capturing a CUDA graph.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("prob", torch.zeros(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = 1.0 - self.prob
        mask = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) < keep).to(x.dtype)
        return x * (mask / keep.to(x.dtype))


def set_drop_path_prob(model: nn.Module, prob: float) -> None:
    """Set every DropPath of the model to `prob` in place (graph-safe)."""
    for module in model.modules():
        if isinstance(module, DropPath):
            module.prob.fill_(prob)


def require(condition: bool, message: str) -> None:
    """Raise ArchitectureError(message) unless condition holds."""
    if not condition:
        raise ArchitectureError(message)

"""Which supernet holds a space's children: space name -> builder (oneshot/settings.py
lists the same names for the torch-free checks)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from torch import nn

from .macro_supernet import MacroSupernet
from .nasnet_supernet import NasnetSupernet

# builder(architecture, input channels, classes) -> the supernet
Builder = Callable[[Mapping[str, Any], int, int], nn.Module]


def _macro_cnn(architecture: Mapping[str, Any], in_channels: int, classes: int) -> nn.Module:
    return MacroSupernet(len(architecture["canonical"]["layers"]), in_channels, classes)


def _nasnet(architecture: Mapping[str, Any], in_channels: int, classes: int) -> nn.Module:
    return NasnetSupernet(architecture.get("options") or {}, in_channels, classes)


def _macro_cnn_shape(architecture: Mapping[str, Any]) -> dict[str, Any]:
    return {"layers": len(architecture["canonical"]["layers"])}


def _nasnet_shape(architecture: Mapping[str, Any]) -> dict[str, Any]:
    options = architecture.get("options") or {}
    return {key: int(options.get(key, default))
            for key, default in (("blocks", 5), ("cells", 2), ("filters", 16))}


BUILDERS: dict[str, Builder] = {"macro-cnn": _macro_cnn, "nasnet": _nasnet}
# what fixes the supernet's shape: a checkpoint made for another shape cannot be continued
SHAPES: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "macro-cnn": _macro_cnn_shape, "nasnet": _nasnet_shape}

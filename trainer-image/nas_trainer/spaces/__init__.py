"""Search spaces by name: `get_space(name, options, decisions=None)`."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .base import Anchor, Decision, OptionError, SearchSpace
from .custom import CustomSpace
from .macro_cnn import MacroCnnSpace
from .nas_bench_201 import NasBench201Space
from .nasnet import NasnetSpace
from .rnn_cell import RnnCellSpace

_BUILT_IN: dict[str, type[SearchSpace]] = {
    space.name: space
    for space in (MacroCnnSpace, NasnetSpace, RnnCellSpace, NasBench201Space)
}
SPACE_NAMES = ("macro-cnn", "nasnet", "rnn-cell", "nas-bench-201", "nas-bench-graph", "custom")


def get_space(name: str, options: Mapping[str, Any] | None = None,
              decisions: Sequence[Mapping[str, Any] | Decision] | None = None) -> SearchSpace:
    """Build a space; ValueError names what is wrong (unknown space, bad option)."""
    if name == "custom":
        return CustomSpace(options, decisions)
    if decisions:
        raise ValueError(f"decisions are only for the custom space, not {name}")
    if name == "nas-bench-graph":
        # Imported here: it pulls in the nas-bench-graph package, which only this space needs.
        from .nas_bench_graph import NasBenchGraphSpace
        return NasBenchGraphSpace(options)
    if name not in _BUILT_IN:
        raise ValueError(f"unknown search space {name!r} (valid: {', '.join(SPACE_NAMES)})")
    return _BUILT_IN[name](options)


__all__ = ["Anchor", "Decision", "OptionError", "SearchSpace", "SPACE_NAMES", "get_space",
           "CustomSpace", "MacroCnnSpace", "NasnetSpace", "RnnCellSpace", "NasBench201Space"]

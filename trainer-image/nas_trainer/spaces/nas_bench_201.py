"""NAS-Bench-201's cell (Dong & Yang 2020): 4 nodes, 6 edges, 5 operations per edge."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .base import Decision, SearchSpace

OPERATIONS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Edge "j<-i" feeds node j from node i; the order is the one of NAS-Bench-201's arch_str.
EDGES = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
_ARCH_STR = re.compile(r"^\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|$")


@dataclass(frozen=True)
class NasBench201Options:
    pass


def arch_str(edges: Mapping[str, str]) -> str:
    """NAS-Bench-201's own string, e.g. |nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|."""
    nodes = []
    for j in (1, 2, 3):
        nodes.append("|" + "|".join(f"{edges[f'{j}<-{i}']}~{i}" for i in range(j)) + "|")
    return "+".join(nodes)


class NasBench201Space(SearchSpace):
    name = "nas-bench-201"
    Options = NasBench201Options

    def _build_decisions(self) -> list[Decision]:
        return [Decision(f"edges[{edge}]", OPERATIONS) for edge in EDGES]

    def canonical(self, tokens: Sequence[int]) -> dict[str, Any]:
        edges = {edge: OPERATIONS[t] for edge, t in zip(EDGES, tokens)}
        return {"edges": edges, "arch_str": arch_str(edges)}

    def _values_from_canonical(self, canonical: Mapping[str, Any]) -> dict[str, Any]:
        edges = canonical.get("edges")
        if edges is None and "arch_str" in canonical:
            match = _ARCH_STR.match(str(canonical["arch_str"]))
            if not match:
                raise ValueError(f"arch_str must look like |op~0|+|op~0|op~1|+|op~0|op~1|op~2| "
                                 f"(got {canonical['arch_str']!r})")
            edges = dict(zip(EDGES, match.groups()))
        if not isinstance(edges, Mapping):
            raise ValueError(f"edges must be an object with keys {', '.join(EDGES)} (got {edges!r})")
        unknown = sorted(set(edges) - set(EDGES))
        if unknown:
            raise ValueError(f"edges has unknown keys {', '.join(unknown)} "
                             f"(valid: {', '.join(EDGES)})")
        values = {f"edges[{edge}]": edges[edge] for edge in EDGES if edge in edges}
        if "arch_str" in canonical and "edges" in canonical and all(e in edges for e in EDGES):
            if canonical["arch_str"] != arch_str(edges):
                raise ValueError(f"arch_str {canonical['arch_str']!r} disagrees with edges "
                                 f"(expected {arch_str(edges)!r})")
        return values

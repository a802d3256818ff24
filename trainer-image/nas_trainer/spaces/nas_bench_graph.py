"""NAS-Bench-Graph's GNN space (Qin et al. 2022), through the `nas-bench-graph` package.

Four nodes; node i reads one earlier output (0 = the input features, k = node k-1) and
applies one operation. Equivalent graphs are folded by the package's own normalisation
(`Arch.valid_hash()`), so the hash is the key of the package's result tables.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from nas_bench_graph import Arch, gnn_list, gnn_list_proteins

from .base import Decision, SearchSpace, require_option

DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv",
            "proteins")
NODES = 4
# Distinct architectures (distinct valid_hash values over all token sequences), as in the
# paper and the package's tables; tests/unit/test_spaces.py recounts them.
DISTINCT_ARCHITECTURES = {"proteins": 2021}
DISTINCT_ARCHITECTURES_DEFAULT = 26206


@dataclass(frozen=True)
class NasBenchGraphOptions:
    dataset: str = "cora"

    def __post_init__(self) -> None:
        require_option(self.dataset in DATASETS, "dataset",
                       f"dataset must be one of {', '.join(DATASETS)} (got {self.dataset!r})")


def operations_for(dataset: str) -> tuple[str, ...]:
    return tuple(gnn_list_proteins if dataset == "proteins" else gnn_list)


def normalise(link: Sequence[int], ops: Sequence[str]) -> tuple[list[int], list[str], str]:
    """The package's representative of the equivalence class, and its hash."""
    arch = Arch(list(link), list(ops))
    representative = arch.regularize()
    representative.move_skip_op()
    representative.equalpart_sort()
    return list(representative.link), list(representative.ops), str(arch.valid_hash())


class NasBenchGraphSpace(SearchSpace):
    name = "nas-bench-graph"
    Options = NasBenchGraphOptions

    def _build_decisions(self) -> list[Decision]:
        ops = operations_for(self.parsed_options.dataset)
        decisions = [Decision("nodes[0].op", ops)]
        for i in range(1, NODES):
            decisions += [Decision(f"nodes[{i}].input", tuple(range(i + 1))),
                          Decision(f"nodes[{i}].op", ops)]
        return decisions

    def _link_and_ops(self, tokens: Sequence[int]) -> tuple[list[int], list[str]]:
        values = self.values(tokens)
        link = [0] + [values[f"nodes[{i}].input"] for i in range(1, NODES)]
        return link, [values[f"nodes[{i}].op"] for i in range(NODES)]

    def _check(self, tokens: tuple[int, ...]) -> None:
        _, ops = self._link_and_ops(tokens)
        if all(op == "skip" for op in ops):
            raise ValueError("nodes[*].op are all skip: the architecture has no GNN layer")

    def canonical(self, tokens: Sequence[int]) -> dict[str, Any]:
        link, ops, _ = normalise(*self._link_and_ops(tokens))
        return {"link": link, "ops": ops}

    def hash(self, canonical: Mapping[str, Any]) -> str:
        return normalise(canonical["link"], canonical["ops"])[2]

    def _values_from_canonical(self, canonical: Mapping[str, Any]) -> dict[str, Any]:
        link, ops = canonical.get("link"), canonical.get("ops")
        for key, value in (("link", link), ("ops", ops)):
            if not isinstance(value, list) or len(value) != NODES:
                raise ValueError(f"{key} must be a list of {NODES} (got {value!r})")
        if link[0] != 0:
            raise ValueError(f"link[0] must be 0: the first node reads the input (got {link[0]!r})")
        values: dict[str, Any] = {"nodes[0].op": ops[0]}
        for i in range(1, NODES):
            values[f"nodes[{i}].input"] = link[i]
            values[f"nodes[{i}].op"] = ops[i]
        return values

    def size(self) -> int:
        return DISTINCT_ARCHITECTURES.get(self.parsed_options.dataset,
                                          DISTINCT_ARCHITECTURES_DEFAULT)

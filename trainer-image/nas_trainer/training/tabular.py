"""nas-bench-graph trials need no training: the package's tables hold every
architecture's results (Qin et al. 2022). reward = valid_perf; test accuracy = perf."""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Mapping

from ..errors import ArchitectureError
from .result import TrialResult


@lru_cache(maxsize=None)
def table(dataset: str) -> dict:
    from nas_bench_graph import light_read

    return light_read(dataset)


def lookup_nas_bench_graph(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """{'reward', 'metrics', 'parameters'} of a nas-bench-graph architecture."""
    try:
        from nas_bench_graph import Arch
    except ImportError as err:
        raise RuntimeError("nas-bench-graph trials need the nas-bench-graph package") from err
    options = architecture.get("options") or {}
    canonical = architecture.get("canonical") or {}
    dataset = options.get("dataset", "cora")
    link, ops = canonical.get("link"), canonical.get("ops")
    if not isinstance(link, list) or not isinstance(ops, list) or len(link) != len(ops):
        raise ArchitectureError("nas-bench-graph canonical form needs 'link' and 'ops' lists "
                                "of the same length")
    try:
        key = Arch(list(link), list(ops)).valid_hash()
        entry = table(str(dataset))[key]
    except FileNotFoundError as err:
        raise ArchitectureError(f"nas-bench-graph has no table for dataset {dataset!r}") from err
    except (KeyError, IndexError, ValueError, TypeError) as err:
        raise ArchitectureError(f"architecture {canonical} is not in the nas-bench-graph "
                                f"table of {dataset}") from err
    return {"reward": float(entry["valid_perf"]),
            "metrics": {"val_accuracy": float(entry["valid_perf"]),
                        "test_accuracy": float(entry["perf"]),
                        "latency": float(entry["latency"])},
            "parameters": int(round(float(entry["para"]) * 1e6))}


def tabular_result(architecture: Mapping[str, Any], started: float) -> TrialResult:
    """The contract-3 result of a nas-bench-graph trial (torch is never imported)."""
    answer = lookup_nas_bench_graph(architecture)
    return TrialResult(reward=answer["reward"], metrics=answer["metrics"], epochs=0,
                       seconds=time.perf_counter() - started, parameters=answer["parameters"],
                       flops=0, device="none", execution="table",
                       hash=architecture.get("hash"))

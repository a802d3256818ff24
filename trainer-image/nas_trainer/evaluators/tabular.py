"""Tabular evaluators: a trial's result is looked up, not trained (NAS-Bench-Graph)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from ..search import TrialOutcome, TrialRequest


class TabularEvaluator:
    """Answers from a table hash -> {metric: value}. `metrics` maps the names reported in
    the result to the table's column names; `parameters` names a column in millions."""

    def __init__(self, table: Mapping[str, Mapping[str, Any]], reward: str,
                 metrics: Mapping[str, str], parameters_in_millions: str | None = None) -> None:
        self.table = table
        self.reward = reward
        self.metrics = dict(metrics)
        self.parameters_in_millions = parameters_in_millions

    def evaluate(self, request: TrialRequest) -> TrialOutcome:
        arch = request.architecture
        row = self.table.get(arch.hash)
        if row is None:
            raise ValueError(f"architecture {arch.hash} {dict(arch.canonical)} is not in the table")
        parameters = None
        if self.parameters_in_millions is not None:
            parameters = int(round(float(row[self.parameters_in_millions]) * 1e6))
        return TrialOutcome(request.index, succeeded=True, reward=float(row[self.reward]),
                            metrics={name: float(row[column]) for name, column in self.metrics.items()},
                            seconds=0.0, parameters=parameters)


@lru_cache(maxsize=None)
def _nas_bench_graph_rows(dataset: str) -> dict[str, dict[str, Any]]:
    from nas_bench_graph import light_read

    return {str(key): row for key, row in light_read(dataset).items()}


def nas_bench_graph_evaluator(dataset: str = "cora") -> TabularEvaluator:
    """reward = valid_perf (validation accuracy); metrics carry test accuracy (perf) and
    latency, in the names the built-in trainer reports for this space."""
    return TabularEvaluator(_nas_bench_graph_rows(dataset), reward="valid_perf",
                            metrics={"val_accuracy": "valid_perf", "test_accuracy": "perf",
                                     "latency": "latency"},
                            parameters_in_millions="para")


def nas_bench_graph_table(dataset: str = "cora", metric: str = "valid_perf") -> dict[str, float]:
    """hash -> one metric, the form `strategies.run_on_table` takes."""
    return {key: float(row[metric]) for key, row in _nas_bench_graph_rows(dataset).items()}

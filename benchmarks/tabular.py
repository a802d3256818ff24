"""Tabular benchmarks for `search_efficiency.py`: any table of architecture -> reward.

A `Table` pairs a search space with the validation reward (and optionally a test metric)
of architectures keyed by the space's hash, the key strategies' proposals carry. Sources:

- NAS-Bench-Graph, built in: `nas_bench_graph_table("cora")` (reward = `valid_perf`,
  test = `perf`, from the PyPI package `nas-bench-graph`);
- a JSON file (`load_table_json`), for any other tabular benchmark:

      {"name": "my-bench",                       # optional, defaults to the file name
       "space": "nas-bench-201",                 # a space name of nas_trainer.spaces
       "options": {},                            # the space's options (optional)
       "decisions": [{"name": .., "choices": [..]}, ..],   # only for space "custom"
       "architectures": [
          {"canonical": {...}, "reward": 0.912, "test": 0.905},   # test is optional
          {"tokens": [0, 3, 1, 4, 2, 0], "reward": 0.887},        # or tokens
          ...]}

  Each entry is parsed by the space (`from_canonical` / `from_tokens`) and keyed by its
  hash, so equivalent forms fold together (they must then agree on the reward). The
  table should cover every architecture of the space a strategy may propose; a proposal
  missing from it stops the run with an error naming the architecture.

`top_threshold` is the top-k rule every report uses: over the table's distinct
architectures, k = ceil(fraction x N), and every architecture whose reward is at least the
k-th best value counts as "top" (ties included), so the top set may hold more than k.
Rewards within `TIE_TOLERANCE` are ties (tables written as averages of repeated runs
carry float noise such as 0.8193333333333334 vs 0.8193333333333332).

Needs only the standard library and `nas_trainer` (PYTHONPATH=trainer-image); the
NAS-Bench-Graph source also needs the `nas-bench-graph` package.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from nas_trainer.spaces import get_space
from nas_trainer.spaces.base import SearchSpace

TIE_TOLERANCE = 1e-9
NAS_BENCH_GRAPH_DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo",
                            "computers", "arxiv", "proteins")


@dataclass
class Table:
    """Validation reward (and optional test metric) per architecture hash of `space`."""

    name: str
    space: SearchSpace
    reward: dict[str, float]
    test: dict[str, float] | None = None
    source: str = ""
    # How to rebuild this table in a worker process: ("nas-bench-graph", dataset) or
    # ("json", path).
    recipe: tuple[str, str] = field(default=("", ""))

    def __post_init__(self) -> None:
        if not self.reward:
            raise ValueError(f"table {self.name} is empty")
        if self.test is not None and set(self.test) != set(self.reward):
            raise ValueError(f"table {self.name}: test metric must be given for every "
                             f"architecture or for none")

    def __len__(self) -> int:
        return len(self.reward)

    def best(self) -> float:
        return max(self.reward.values())

    def check_coverage(self) -> str | None:
        """A warning when the table holds fewer architectures than the space."""
        size = self.space.size()
        if size is not None and len(self.reward) < size:
            return (f"table {self.name} holds {len(self.reward)} of the space's {size} "
                    f"architectures: a run that proposes a missing one stops with an error")
        return None


@dataclass(frozen=True)
class TopSet:
    """The architectures at or above the k-th best reward (ties included)."""

    fraction: float
    k: int              # ceil(fraction x N), at least 1
    threshold: float    # the k-th best reward
    count: int          # architectures scoring >= threshold (>= k with ties)

    def reached(self, reward: float) -> bool:
        return reward >= self.threshold - TIE_TOLERANCE


def top_threshold(rewards: Sequence[float] | Mapping[str, float], fraction: float) -> TopSet:
    """Top `fraction` of distinct architectures by reward, with ties (see module doc)."""
    values = list(rewards.values()) if isinstance(rewards, Mapping) else list(rewards)
    if not values:
        raise ValueError("no rewards")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1] (got {fraction})")
    ordered = sorted(values, reverse=True)
    # round() first: 0.01 * 26206 is 262.06000000000003 in floating point.
    k = max(1, math.ceil(round(fraction * len(ordered), 9)))
    threshold = ordered[k - 1]
    count = sum(1 for v in ordered if v >= threshold - TIE_TOLERANCE)
    return TopSet(fraction, k, threshold, count)


# --- sources ---------------------------------------------------------------------------
def nas_bench_graph_table(dataset: str) -> Table:
    """NAS-Bench-Graph on one dataset: reward valid_perf, test perf."""
    if dataset not in NAS_BENCH_GRAPH_DATASETS:
        raise ValueError(f"unknown NAS-Bench-Graph dataset {dataset!r} "
                         f"(valid: {', '.join(NAS_BENCH_GRAPH_DATASETS)})")
    from nas_bench_graph import light_read

    rows = light_read(dataset)
    reward = {str(key): float(row["valid_perf"]) for key, row in rows.items()}
    test = {str(key): float(row["perf"]) for key, row in rows.items()}
    space = get_space("nas-bench-graph", {"dataset": dataset})
    return Table(name=dataset, space=space, reward=reward, test=test,
                 source=f"NAS-Bench-Graph {dataset} (valid_perf; test = perf)",
                 recipe=("nas-bench-graph", dataset))


def table_from_document(doc: Mapping[str, Any], name: str = "table") -> Table:
    """Build a Table from the JSON form described in the module doc."""
    if not isinstance(doc, Mapping):
        raise ValueError("a table file must hold a JSON object")
    unknown = sorted(set(doc) - {"name", "space", "options", "decisions", "architectures",
                                 "description"})
    if unknown:
        raise ValueError(f"{unknown[0]} is not a field of a table file (valid: name, space, "
                         f"options, decisions, architectures, description)")
    if "space" not in doc or "architectures" not in doc:
        raise ValueError("a table file needs space and architectures")
    space = get_space(doc["space"], doc.get("options") or {}, doc.get("decisions"))
    entries = doc["architectures"]
    if not isinstance(entries, list) or not entries:
        raise ValueError("architectures must be a non-empty list")
    reward: dict[str, float] = {}
    test: dict[str, float] = {}
    with_test = 0
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "reward" not in entry:
            raise ValueError(f"architectures[{i}] must be an object with reward and "
                             f"canonical or tokens")
        try:
            if "canonical" in entry:
                arch = space.from_canonical(entry["canonical"])
            elif "tokens" in entry:
                arch = space.from_tokens(entry["tokens"])
            else:
                raise ValueError("needs canonical or tokens")
        except ValueError as error:
            raise ValueError(f"architectures[{i}]: {error}") from None
        value = float(entry["reward"])
        if not math.isfinite(value):
            raise ValueError(f"architectures[{i}].reward must be a finite number")
        if arch.hash in reward and abs(reward[arch.hash] - value) > TIE_TOLERANCE:
            raise ValueError(f"architectures[{i}] is the same architecture (hash {arch.hash}) "
                             f"as an earlier entry with a different reward")
        reward[arch.hash] = value
        if entry.get("test") is not None:
            test[arch.hash] = float(entry["test"])
            with_test += 1
    if with_test and set(test) != set(reward):
        raise ValueError("test must be given for every architecture or for none")
    return Table(name=str(doc.get("name") or name), space=space, reward=reward,
                 test=test or None, source=str(doc.get("description") or name))


def load_table_json(path: str | Path) -> Table:
    path = Path(path)
    with path.open() as handle:
        doc = json.load(handle)
    table = table_from_document(doc, name=path.stem)
    table.recipe = ("json", str(path.resolve()))
    table.source = table.source if table.source != path.stem else str(path)
    return table


def table_document(table: Table) -> dict[str, Any]:
    """The JSON form of a table (one entry per distinct architecture, with tokens and
    canonical form), e.g. to export NAS-Bench-Graph for another tool."""
    by_hash: dict[str, Any] = {}
    for tokens in _all_token_sequences(table.space):
        try:
            arch = table.space.from_tokens(tokens)
        except ValueError:
            continue
        if arch.hash in table.reward and arch.hash not in by_hash:
            by_hash[arch.hash] = arch
    entries = []
    for key, arch in by_hash.items():
        entry: dict[str, Any] = {"canonical": dict(arch.canonical), "reward": table.reward[key]}
        if table.test is not None:
            entry["test"] = table.test[key]
        entries.append(entry)
    doc: dict[str, Any] = {"name": table.name, "space": table.space.name,
                           "options": dict(table.space.options), "architectures": entries}
    if table.space.name == "custom":
        doc["decisions"] = [{"name": d.name, "choices": list(d.choices)}
                            for d in table.space.decisions]
    return doc


def _all_token_sequences(space: SearchSpace):
    import itertools

    return itertools.product(*(range(len(d.choices)) for d in space.decisions))


def make_table(spec: str) -> Table:
    """`nas-bench-graph:<dataset>`, a bare NAS-Bench-Graph dataset name, or a path to a
    table JSON file."""
    if spec.startswith("nas-bench-graph:"):
        return nas_bench_graph_table(spec.split(":", 1)[1])
    if spec in NAS_BENCH_GRAPH_DATASETS:
        return nas_bench_graph_table(spec)
    if spec.endswith(".json") or Path(spec).exists():
        return load_table_json(spec)
    raise ValueError(f"{spec!r} is neither a NAS-Bench-Graph dataset "
                     f"({', '.join(NAS_BENCH_GRAPH_DATASETS)}) nor a table JSON file")


def table_from_recipe(recipe: tuple[str, str]) -> Table:
    kind, value = recipe
    if kind == "nas-bench-graph":
        return nas_bench_graph_table(value)
    if kind == "json":
        return load_table_json(value)
    raise ValueError(f"table recipe {recipe!r} cannot be rebuilt")

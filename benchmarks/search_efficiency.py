"""Search efficiency: how fast each strategy finds good architectures on tabular benchmarks.

    PYTHONPATH=trainer-image python benchmarks/search_efficiency.py            # full run
    PYTHONPATH=trainer-image python benchmarks/search_efficiency.py --quick
    PYTHONPATH=trainer-image python benchmarks/search_efficiency.py --table my.json --seeds 50

The full run is 9 NAS-Bench-Graph datasets x 8 rows (the 5 strategies and the variants
below) x 100 seeds to 1,000 evaluations, tpe to 200. Before issue 11 (5 rows, reinforce and
ppo without their predictor and replay) it took about 5,800 CPU-seconds (352 s wall on 16
cores); with their tuned defaults reinforce and ppo cost about 8 and 19 CPU-ms per
evaluation over the first 200 on the 2-core development machine, so plan for several times
that. --quick: cora and proteins, 20 seeds to 200 evaluations, tpe 10 seeds to 100.

Every (table, strategy, seed) is one search run: a fresh strategy (`make_strategy(name,
space, seed, **settings)`) asks architectures and is told their table reward, as in the
product's search loop (`nas_trainer.search`): an architecture proposed again is answered
from the results, told again and not counted; evaluations = distinct architectures; a run
whose strategy proposes only known architectures `MAX_KNOWN_IN_A_ROW` times in a row is
stopped (the product ends the search with SpaceExhausted) and counted in `stopped`.
Its best-so-far reward is then held at its last value.

Per table and strategy, over the seeds:
- mean best-so-far validation reward after 25/50/100/200/500/1000 evaluations, with a 95 %
  confidence interval (Student t), and the mean test metric of the best-by-validation
  architecture at those points (the first found among equals, as the product's `best`);
- for the top 1 % and top 0.1 % of the table's distinct architectures by validation reward
  (ties included: everything scoring at least the k-th best value, k = ceil(f x N)): the
  fraction of runs that reach it within 100/200/1000 evaluations and the median number of
  evaluations to reach it (over all runs; ">B" when fewer than half reach it within B);
- against random search, measured in the same invocation: the difference of mean
  best-so-far (with a 95 % interval, Welch) and the ratio of median evaluations to top 1 %.

Every strategy runs with its defaults (`SETTINGS` is empty), one architecture asked at a
time; the rows reinforce-paper and ppo-paper are reinforce and ppo with `preset: paper`
(Zoph & Le's and NASNet's settings). reinforce's and ppo's default ("tuned") preset was
chosen with search_efficiency_tuning.py on cora, computers and proteins only
(benchmarks/results/search_efficiency-tuning-issue11.md); the other six tables are held
out. `--set strategy.name=value` overrides one setting (for tuning). TPE (Optuna) costs O(n^2) in the trials
told: the full run gives it fewer evaluations (`--tpe-budget`), says so in every table,
and leaves the later checkpoints empty rather than extrapolating.

Output: plain-text tables on stdout; markdown, JSON and a plot of the mean best-so-far
reward against evaluations (PNG, needs matplotlib; skipped with a warning without it) under
benchmarks/results/ (`--out`, `--tag`). Needs torch, numpy, optuna, nas_bench_graph and this repository on
PYTHONPATH (trainer-image); no network.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(HERE.parent / "trainer-image") not in sys.path:
    sys.path.insert(1, str(HERE.parent / "trainer-image"))

from tabular import (NAS_BENCH_GRAPH_DATASETS, Table, TopSet, make_table,  # noqa: E402
                     table_from_recipe, top_threshold)

STRATEGIES = ("reinforce", "ppo", "regularized-evolution", "tpe", "random")
REFERENCE = "random"
CHECKPOINTS = (25, 50, 100, 200, 500, 1000)
REACH_AT = (100, 200, 1000)
TOP_FRACTIONS = (0.01, 0.001)
MAX_KNOWN_IN_A_ROW = 50  # as nas_trainer.search.Budget.max_known_in_a_row

# Rows beyond the five strategies: (strategy, settings). Every row is a strategy with its
# defaults plus these settings (manifest names); `parallelism` (how many architectures are
# asked at once, 1 by default) is the benchmark's own setting, not the strategy's.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "reinforce-paper": ("reinforce", {"preset": "paper"}),
    "ppo-paper": ("ppo", {"preset": "paper"}),
    # the settings chosen on cora before (results/tuning-cora.md), the stronger evolution
    "regularized-evolution-p20": ("regularized-evolution", {"population": 20, "sampleSize": 5}),
}
ROWS = STRATEGIES + tuple(VARIANTS)
SETTINGS: dict[str, dict[str, Any]] = {
    **{name: {} for name in STRATEGIES},
    **{row: dict(settings) for row, (_, settings) in VARIANTS.items()},
}


def base_strategy(row: str) -> str:
    """The strategy a row runs (reinforce-paper -> reinforce)."""
    return VARIANTS[row][0] if row in VARIANTS else row


# Defaults of a full run, sized for 16 cores x 8 minutes (see `estimate_seconds`).
FULL_SEEDS = 100
FULL_BUDGET = 1000
FULL_TPE_SEEDS = 100
FULL_TPE_BUDGET = 200
# --quick: fits in < 2 minutes on 2 (shared) cores.
QUICK_DATASETS = ("cora", "proteins")
QUICK_SEEDS = 20
QUICK_BUDGET = 200
QUICK_TPE_SEEDS = 10
QUICK_TPE_BUDGET = 100

# CPU seconds per run on one core of a 16-core machine (the device host this was tuned
# on), NAS-Bench-Graph cora with SETTINGS: cost(B) = a * B + b * B^2 for a budget of B
# distinct evaluations (tpe: 0.85 s at 200, 9.9 s at 1000). reinforce, ppo and the -paper
# rows: measured on the shared 2-core development machine with their current defaults
# (their predictor-guided asks and replayed updates cost more than the old ones). Used
# for the ETA and to start the longest runs first.
COST_MODEL: dict[str, tuple[float, float]] = {
    "reinforce": (9.0e-3, 0.0),
    "ppo": (1.7e-2, 0.0),
    "reinforce-paper": (4.0e-3, 0.0),
    "ppo-paper": (8.0e-3, 0.0),
    "regularized-evolution-p20": (1.9e-4, 0.0),
    "regularized-evolution": (1.9e-4, 0.0),
    "tpe": (2.84e-3, 7.06e-6),
    "random": (8e-5, 0.0),
}


def estimate_seconds(strategy: str, budget: int) -> float:
    a, b = COST_MODEL.get(strategy, (5e-3, 0.0))
    return a * budget + b * budget * budget + 0.01


# --- one run ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    table: str                  # table name (the key of its recipe)
    recipe: tuple[str, str]
    strategy: str
    seed: int
    budget: int
    settings: tuple[tuple[str, Any], ...]
    thresholds: tuple[float, ...]  # reward thresholds of TOP_FRACTIONS
    label: str = ""                # free tag (tuning: the configuration)


@dataclass
class RunResult:
    table: str
    strategy: str
    seed: int
    budget: int
    evaluations: int
    stopped: str | None          # None | "known-in-a-row" | "space-exhausted"
    known_proposals: int
    seconds: float               # CPU seconds of the run (process time, 1 thread)
    best: list[float]            # best-so-far reward at each checkpoint <= budget
    test: list[float | None]     # test metric of the best-by-validation there
    reach: list[int | None]      # first evaluation reaching each threshold, or None
    final_best: float = math.nan
    curve: list[float] = field(default_factory=list)  # best-so-far after each evaluation
    error: str | None = None
    wall_seconds: float = math.nan
    label: str = ""


def checkpoints_for(budget: int) -> list[int]:
    points = [c for c in CHECKPOINTS if c <= budget]
    if not points or points[-1] != budget:
        points.append(budget)
    return points


class KnownOnly(Exception):
    pass


def search_run(strategy: Any, table: Table, budget: int, parallelism: int = 1,
               max_known_in_a_row: int = MAX_KNOWN_IN_A_ROW
               ) -> tuple[list[str], list[float], str | None, int]:
    """Ask/tell `strategy` against `table` until `budget` distinct architectures are
    evaluated. Returns (hashes, rewards) of the distinct evaluations in order, why the run
    stopped early (None, "known-in-a-row" or "space-exhausted") and the number of
    proposals answered from earlier results."""
    rewards_by_hash = table.reward
    size = table.space.size()
    hashes: list[str] = []
    rewards: list[float] = []
    seen: set[str] = set()
    known_in_a_row = known_proposals = 0
    while len(rewards) < budget:
        for arch in strategy.ask(min(parallelism, budget - len(rewards))):
            reward = rewards_by_hash.get(arch.hash)
            if reward is None:
                raise KeyError(f"{table.name}: architecture {arch.hash} "
                               f"{dict(arch.canonical)} is not in the table")
            if arch.hash in seen:
                known_in_a_row += 1
                known_proposals += 1
            else:
                known_in_a_row = 0
                seen.add(arch.hash)
                hashes.append(arch.hash)
                rewards.append(reward)
            strategy.tell(arch, reward)  # known ones too: the product tells them again
        if known_in_a_row >= max_known_in_a_row:
            return hashes, rewards, "known-in-a-row", known_proposals
        if size is not None and len(seen) >= size and len(rewards) < budget:
            return hashes, rewards, "space-exhausted", known_proposals
    return hashes, rewards, None, known_proposals


def summarise_run(hashes: Sequence[str], rewards: Sequence[float], table: Table, budget: int,
                  thresholds: Sequence[float]) -> tuple[list[float], list[float | None],
                                                        list[int | None]]:
    """Best-so-far and test-of-best at the checkpoints, first evaluation reaching each
    threshold (1-based)."""
    from tabular import TIE_TOLERANCE

    points = checkpoints_for(budget)
    best_values: list[float] = []
    tests: list[float | None] = []
    reach: list[int | None] = [None] * len(thresholds)
    best, best_hash = -math.inf, None
    point_index = 0
    for i, (key, reward) in enumerate(zip(hashes, rewards), start=1):
        if reward > best:  # strict: the first found among equals stays the best
            best, best_hash = reward, key
            for t, threshold in enumerate(thresholds):
                if reach[t] is None and best >= threshold - TIE_TOLERANCE:
                    reach[t] = i
        while point_index < len(points) and points[point_index] == i:
            best_values.append(best)
            tests.append(None if table.test is None else table.test[best_hash])
            point_index += 1
    while point_index < len(points):  # a run that stopped early keeps its last best
        best_values.append(best)
        tests.append(None if table.test is None or best_hash is None else table.test[best_hash])
        point_index += 1
    return best_values, tests, reach


_WORKER_TABLES: dict[str, Table] = {}


def _worker_init(strategies: Sequence[str] = STRATEGIES) -> None:
    """One thread per worker; import every strategy's module up front, so that no run's
    time includes importing torch or optuna."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if any(name in ("reinforce", "ppo") for name in strategies):
        import torch

        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set in this process
            pass
    from nas_trainer.strategies import strategy_class

    for name in strategies:
        strategy_class(base_strategy(name))


def _table_for(task: Task) -> Table:
    table = _WORKER_TABLES.get(task.table)
    if table is None:
        table = table_from_recipe(task.recipe)
        _WORKER_TABLES[task.table] = table
    return table


def run_task(task: Task) -> RunResult:
    from nas_trainer.strategies import make_strategy

    table = _table_for(task)
    settings = dict(task.settings)
    parallelism = int(settings.pop("parallelism", 1))
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        strategy = make_strategy(base_strategy(task.strategy), table.space, task.seed,
                                 **settings)
        hashes, rewards, stopped, known = search_run(strategy, table, task.budget, parallelism)
    except Exception as error:  # noqa: BLE001 - reported per run, never hidden
        return RunResult(task.table, task.strategy, task.seed, task.budget, 0, "error", 0,
                         time.process_time() - cpu_started, [], [], [], error=repr(error),
                         wall_seconds=time.perf_counter() - started, label=task.label)
    seconds = time.process_time() - cpu_started
    wall_seconds = time.perf_counter() - started
    best, tests, reach = summarise_run(hashes, rewards, table, task.budget, task.thresholds)
    return RunResult(task.table, task.strategy, task.seed, task.budget, len(rewards), stopped,
                     known, seconds, best, tests, reach,
                     final_best=max(rewards) if rewards else math.nan,
                     curve=best_so_far(rewards, task.budget), wall_seconds=wall_seconds,
                     label=task.label)


def best_so_far(rewards: Sequence[float], budget: int) -> list[float]:
    """Best reward after 1..budget evaluations (held after a run that stopped early)."""
    curve, best = [], -math.inf
    for reward in rewards:
        best = max(best, reward)
        curve.append(best)
    return curve + [best] * (budget - len(curve)) if curve else []


# --- statistics ------------------------------------------------------------------------
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
         16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}


def t975(df: float) -> float:
    """Two-sided 95 % quantile of Student's t with `df` degrees of freedom."""
    if df <= 0 or not math.isfinite(df):
        return 1.959964 if math.isinf(df) else math.nan
    if df < 30 and round(df) in _T975 and abs(df - round(df)) < 1e-9:
        return _T975[round(df)]
    if df < 3:
        df = max(df, 1.0)
        lo = math.floor(df)
        return _T975[lo] + (df - lo) * (_T975[min(lo + 1, 3)] - _T975[lo])
    # Cornish-Fisher expansion around the normal quantile; < 1e-3 off for df >= 3.
    z = 1.959964
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, half-width of the 95 % interval, standard error); half-width nan for n < 2."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    se = math.sqrt(variance / n)
    return mean, t975(n - 1) * se, se


def welch_diff(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """mean(a) - mean(b) and the half-width of its 95 % interval (Welch)."""
    ma, _, sa = mean_ci(a)
    mb, _, sb = mean_ci(b)
    if not (len(a) > 1 and len(b) > 1):
        return ma - mb, math.nan
    va, vb = sa ** 2, sb ** 2
    if va + vb == 0:
        return ma - mb, 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va * vb > 0 \
        else float(min(len(a), len(b)) - 1)
    return ma - mb, t975(df) * math.sqrt(va + vb)


def wilson(successes: int, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    z = 1.959964
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def censored_median(values: Sequence[int | None]) -> float:
    """Median with None as 'not reached' (+inf): inf when half or more did not reach."""
    ordered = sorted(math.inf if v is None else float(v) for v in values)
    n = len(ordered)
    if n == 0:
        return math.nan
    if n % 2:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


@dataclass
class Aggregate:
    table: str
    strategy: str
    runs: int
    budget: int
    seeds: list[int]
    checkpoints: list[int]
    best: list[tuple[float, float]]           # (mean, 95 % half-width) per checkpoint
    test: list[tuple[float, float] | None]
    reach_fraction: list[dict[int, float]]    # per threshold: {evaluations: fraction}
    reach_interval: list[dict[int, tuple[float, float]]]
    reach_median: list[float]                 # over all runs, inf if censored
    reach_median_reached: list[float]         # over the runs that reached it
    stopped: int
    errors: list[str]
    mean_evaluations: float
    known_proposals: float
    seconds_mean: float
    seconds_total: float
    best_values: list[list[float]] = field(repr=False, default_factory=list)
    mean_curve: list[float] = field(repr=False, default_factory=list)  # per evaluation


def aggregate(results: Sequence[RunResult], n_thresholds: int) -> Aggregate:
    ok = [r for r in results if r.error is None]
    first = results[0]
    budget = max(r.budget for r in results)
    points = checkpoints_for(budget)
    best_values = [[r.best[i] for r in ok] for i in range(len(points))]
    best = [mean_ci(values)[:2] for values in best_values]
    test: list[tuple[float, float] | None] = []
    for i in range(len(points)):
        values = [r.test[i] for r in ok if r.test and r.test[i] is not None]
        test.append(mean_ci(values)[:2] if values else None)
    fractions, intervals, medians, medians_reached = [], [], [], []
    for t in range(n_thresholds):
        reach = [r.reach[t] for r in ok]
        fraction, interval = {}, {}
        for limit in [x for x in REACH_AT if x <= budget] or [budget]:
            hits = sum(1 for v in reach if v is not None and v <= limit)
            fraction[limit] = hits / len(reach) if reach else math.nan
            interval[limit] = wilson(hits, len(reach))
        fractions.append(fraction)
        intervals.append(interval)
        medians.append(censored_median(reach))
        reached = [v for v in reach if v is not None]
        medians_reached.append(censored_median(reached) if reached else math.nan)
    return Aggregate(
        table=first.table, strategy=first.strategy, runs=len(ok), budget=budget,
        seeds=sorted(r.seed for r in ok), checkpoints=points, best=best, test=test,
        reach_fraction=fractions, reach_interval=intervals, reach_median=medians,
        reach_median_reached=medians_reached,
        stopped=sum(1 for r in ok if r.stopped is not None),
        errors=[f"seed {r.seed}: {r.error}" for r in results if r.error is not None],
        mean_evaluations=sum(r.evaluations for r in ok) / max(len(ok), 1),
        known_proposals=sum(r.known_proposals for r in ok) / max(len(ok), 1),
        seconds_mean=sum(r.seconds for r in results) / len(results),
        seconds_total=sum(r.seconds for r in results),
        best_values=best_values, mean_curve=mean_curve(ok))


def mean_curve(runs: Sequence[RunResult]) -> list[float]:
    """Mean best-so-far after each evaluation, over the runs that have a curve."""
    curves = [r.curve for r in runs if r.curve]
    if not curves:
        return []
    length = min(len(c) for c in curves)
    return [sum(c[i] for c in curves) / len(curves) for i in range(length)]


# --- reporting -------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _fmt_ci(pair: tuple[float, float] | None, digits: int = 4) -> str:
    if pair is None or math.isnan(pair[0]):
        return "-"
    mean, half = pair
    return f"{mean:.{digits}f}" + ("" if math.isnan(half) else f"±{half:.{digits}f}")


def _fmt_median(value: float, budget: int) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return f">{budget}"
    return f"{value:g}"


def _speedup(strategy_median: float, reference_median: float, strategy_budget: int,
             reference_budget: int) -> str:
    """reference / strategy median evaluations (>1: the strategy needs fewer)."""
    s, r = strategy_median, reference_median
    if math.isnan(s) or math.isnan(r):
        return "-"
    if math.isinf(s) and math.isinf(r):
        return "n/a"
    if math.isinf(s):
        return f"<{r / strategy_budget:.2f}x"
    if math.isinf(r):
        return f">{reference_budget / s:.2f}x"
    return f"{r / s:.2f}x"


def _render(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _markdown(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class TableInfo:
    name: str
    source: str
    size: int
    best: float
    tops: list[TopSet]
    test_of_best: float | None


def table_sections(info: TableInfo, aggregates: Mapping[str, Aggregate], budget: int
                   ) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the three tables of one benchmark table."""
    reference = aggregates.get(REFERENCE)
    points = checkpoints_for(budget)
    order = [s for s in ROWS if s in aggregates] + [
        s for s in aggregates if s not in ROWS]
    sections = []

    header = ["strategy", "runs", "budget"] + [f"@{p}" for p in points]
    rows = []
    for name in order:
        agg = aggregates[name]
        cells = [name, str(agg.runs), str(agg.budget)]
        for i, p in enumerate(points):
            cells.append(_fmt_ci(agg.best[agg.checkpoints.index(p)])
                         if p in agg.checkpoints else "-")
        rows.append(cells)
        if reference is not None and name != REFERENCE:
            cells = [f"  vs {REFERENCE}", "", ""]
            for p in points:
                if p in agg.checkpoints and p in reference.checkpoints:
                    d, h = welch_diff(agg.best_values[agg.checkpoints.index(p)],
                                      reference.best_values[reference.checkpoints.index(p)])
                    cells.append(f"{d:+.4f}±{h:.4f}" if not math.isnan(h) else f"{d:+.4f}")
                else:
                    cells.append("-")
            rows.append(cells)
    sections.append(("mean best-so-far validation reward ± 95 % CI, after N evaluations "
                     f"(best in table {info.best:.4f})", header, rows))

    if any(a.test[0] is not None for a in aggregates.values() if a.test):
        header = ["strategy"] + [f"@{p}" for p in points]
        rows = []
        for name in order:
            agg = aggregates[name]
            rows.append([name] + [_fmt_ci(agg.test[agg.checkpoints.index(p)])
                                  if p in agg.checkpoints else "-" for p in points])
        title = "mean test metric of the best-by-validation architecture ± 95 % CI"
        if info.test_of_best is not None:
            title += f" (test of the table's best-by-validation: {info.test_of_best:.4f})"
        sections.append((title, header, rows))

    header = ["strategy"]
    for top in info.tops:
        label = f"top {top.fraction * 100:g}%"
        header += [f"{label} <={n}" for n in REACH_AT if n <= budget] + [f"{label} median",
                                                                          "speed-up"]
    rows = []
    for name in order:
        agg = aggregates[name]
        cells = [name]
        for t, top in enumerate(info.tops):
            for n in [x for x in REACH_AT if x <= budget]:
                fraction = agg.reach_fraction[t].get(n)
                cells.append("-" if fraction is None else f"{fraction * 100:.0f}%")
            cells.append(_fmt_median(agg.reach_median[t], agg.budget))
            cells.append("(ref)" if name == REFERENCE or reference is None else _speedup(
                agg.reach_median[t], reference.reach_median[t], agg.budget, reference.budget))
        rows.append(cells)
    tops = "; ".join(f"top {t.fraction * 100:g}% = reward >= {t.threshold:.4f}: "
                     f"{t.count} archs (k={t.k})" for t in info.tops)
    sections.append(("runs reaching the top set within N evaluations; median evaluations "
                     f"to reach it (over all runs); speed-up = {REFERENCE}'s median / "
                     f"the strategy's [{tops}]", header, rows))
    return sections


def notes_for(aggregates: Mapping[str, Aggregate], budget: int) -> list[str]:
    notes = []
    for name, agg in aggregates.items():
        if agg.budget < budget:
            notes.append(f"{name}: run to {agg.budget} evaluations only (not {budget}): its "
                         f"cost grows with the square of the trials told; later columns are "
                         f"empty, not extrapolated")
        if agg.stopped:
            notes.append(f"{name}: {agg.stopped} of {agg.runs} runs stopped early (proposed "
                         f"only known architectures {MAX_KNOWN_IN_A_ROW} times in a row); "
                         f"mean distinct evaluations {agg.mean_evaluations:.0f}; their "
                         f"best is held")
        if agg.errors:
            notes.append(f"{name}: {len(agg.errors)} runs failed: {agg.errors[0]}")
    return notes


def summary_rows(infos: Sequence[TableInfo], results: Mapping[str, Mapping[str, Aggregate]]
                 ) -> tuple[list[str], list[list[str]]]:
    """Median evaluations to the top 1 % per table and strategy ('*' = fewer than random)."""
    strategies = [s for s in ROWS if any(s in results[i.name] for i in infos)]
    header = ["table"] + strategies
    rows = []
    for info in infos:
        aggs = results[info.name]
        reference = aggs.get(REFERENCE)
        cells = [info.name]
        for s in strategies:
            agg = aggs.get(s)
            if agg is None:
                cells.append("-")
                continue
            text = _fmt_median(agg.reach_median[0], agg.budget)
            if reference is not None and s != REFERENCE and \
                    agg.reach_median[0] < reference.reach_median[0]:
                text += "*"
            cells.append(text)
        rows.append(cells)
    return header, rows


def aims(infos: Sequence[TableInfo], results: Mapping[str, Mapping[str, Aggregate]]
         ) -> list[str]:
    """The issue's aims, checked on median evaluations to the top 1 %."""
    lines = []

    def median(table: str, strategy: str) -> float:
        agg = results[table].get(strategy)
        return math.nan if agg is None else agg.reach_median[0]

    for rl in ("reinforce", "ppo", "reinforce-paper", "ppo-paper"):
        if not all(rl in results[i.name] for i in infos):
            continue
        if all(REFERENCE in results[i.name] for i in infos):
            wins = [i.name for i in infos if median(i.name, rl) < median(i.name, REFERENCE)]
            lines.append(f"{rl} needs fewer evaluations than {REFERENCE} to reach the top 1 % "
                         f"(median) on {len(wins)}/{len(infos)} tables"
                         + (f": {', '.join(wins)}" if 0 < len(wins) < len(infos) else ""))
        # The targets: no more than regularized evolution, at most TPE's.
        for other in ("regularized-evolution", "regularized-evolution-p20", "tpe"):
            if not all(other in results[i.name] for i in infos):
                continue
            wins = [i.name for i in infos if median(i.name, rl) <= median(i.name, other)]
            losses = [f"{i.name} {_fmt_median(median(i.name, rl), results[i.name][rl].budget)}"
                      f" vs {_fmt_median(median(i.name, other), results[i.name][other].budget)}"
                      for i in infos if i.name not in wins]
            lines.append(f"{rl} needs no more evaluations than {other} to reach the top 1 % "
                         f"(median) on {len(wins)}/{len(infos)} tables"
                         + (f"; more on {', '.join(losses)}" if losses else ""))
    if all("tpe" in results[i.name] for i in infos):
        for info in infos:
            aggs = results[info.name]
            tpe = aggs["tpe"]
            others = {s: a for s, a in aggs.items() if s != "tpe"}
            if not others:
                continue
            by_median = min(others, key=lambda s: others[s].reach_median[0])
            mine, theirs = others[by_median].reach_median[0], tpe.reach_median[0]
            verdict = ("beats tpe" if mine < theirs else "ties with tpe" if mine == theirs
                       else "does not beat tpe")
            p = tpe.checkpoints[-1]
            at_p = {s: a.best[a.checkpoints.index(p)][0] for s, a in others.items()
                    if p in a.checkpoints}
            text = (f"{info.name}: the best non-TPE strategy by median evaluations to the top "
                    f"1 %, {by_median} ({_fmt_median(mine, others[by_median].budget)}), "
                    f"{verdict} ({_fmt_median(theirs, tpe.budget)})")
            if at_p:
                by_best = max(at_p, key=at_p.get)
                text += (f"; by mean best at {p} evaluations {by_best} {at_p[by_best]:.4f} vs "
                         f"tpe {tpe.best[-1][0]:.4f}")
            lines.append(text)
    return lines


def plot_curves(infos: Sequence[TableInfo], results: Mapping[str, Mapping[str, Aggregate]],
                path: Path) -> None:
    """Mean best-so-far validation reward against evaluations, one panel per table, with
    each table's top-1 % threshold as a dotted line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"warning: no matplotlib, {path} not written", file=sys.stderr)
        return
    columns = min(3, len(infos))
    rows = math.ceil(len(infos) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows),
                                squeeze=False)
    for axis, info in zip(axes.flat, infos):
        for row in [s for s in ROWS if s in results[info.name]]:
            curve = results[info.name][row].mean_curve
            if curve:
                axis.plot(range(1, len(curve) + 1), curve, label=row,
                          linestyle="--" if row in VARIANTS else "-")
        axis.axhline(info.tops[0].threshold, color="grey", linestyle=":", linewidth=1)
        axis.set_xscale("log")
        axis.set_title(f"{info.name} (dotted: top 1 %)")
        axis.set_xlabel("evaluations")
        axis.set_ylabel("mean best validation reward")
        low = min(results[info.name][s].mean_curve[min(9, len(results[info.name][s].mean_curve) - 1)]
                  for s in results[info.name] if results[info.name][s].mean_curve)
        axis.set_ylim(low, info.best + (info.best - low) * 0.05)
    for axis in list(axes.flat)[len(infos):]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}", file=sys.stderr)


# --- driver ----------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_settings(overrides: Sequence[str]) -> dict[str, dict[str, Any]]:
    settings = {name: dict(values) for name, values in SETTINGS.items()}
    for item in overrides:
        key, _, value = item.partition("=")
        strategy, _, name = key.partition(".")
        if strategy not in settings or not name or not _:
            raise SystemExit(f"--set takes strategy.name=value with strategy one of "
                             f"{', '.join(settings)} (got {item!r})")
        settings[strategy][name] = parse_value(value)
    return settings


def make_tasks(tables: Sequence[Table], strategies: Sequence[str], seeds: Sequence[int],
               budget: int, tpe_seeds: Sequence[int], tpe_budget: int,
               settings: Mapping[str, Mapping[str, Any]]) -> list[Task]:
    tasks = []
    for table in tables:
        thresholds = tuple(top_threshold(table.reward, f).threshold for f in TOP_FRACTIONS)
        for strategy in strategies:
            run_seeds, run_budget = (tpe_seeds, tpe_budget) if strategy == "tpe" else (
                seeds, budget)
            for seed in run_seeds:
                tasks.append(Task(table.name, table.recipe, strategy, seed, run_budget,
                                  tuple(sorted(settings[strategy].items())), thresholds))
    # Longest first, so that the last runs to finish are short ones.
    tasks.sort(key=lambda t: -estimate_seconds(t.strategy, t.budget))
    return tasks


def run_tasks(tasks: Sequence[Task], workers: int, progress: bool = True,
              on_result: Any = None) -> list[RunResult]:
    total_cost = sum(estimate_seconds(t.strategy, t.budget) for t in tasks)
    started = time.perf_counter()
    results: list[RunResult] = []
    done_cost = 0.0
    next_report = 0.1
    strategies = sorted({t.strategy for t in tasks})
    if workers <= 1:
        _worker_init(strategies)
        iterator: Iterable[RunResult] = map(run_task, tasks)
        pool = None
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        pool = context.Pool(workers, initializer=_worker_init, initargs=(strategies,))
        iterator = pool.imap_unordered(run_task, tasks, chunksize=1)
    try:
        for result in iterator:
            results.append(result)
            if on_result is not None:
                on_result(result)
            done_cost += estimate_seconds(result.strategy, result.budget)
            fraction = done_cost / total_cost
            if progress and (fraction >= next_report or len(results) == len(tasks)):
                elapsed = time.perf_counter() - started
                eta = elapsed / fraction * (1 - fraction) if fraction > 0 else math.nan
                print(f"  {len(results)}/{len(tasks)} runs, {elapsed:.0f}s elapsed, "
                      f"ETA {eta:.0f}s", file=sys.stderr, flush=True)
                next_report = min(1.0, fraction + 0.1)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return results


def cost_table(results: Sequence[RunResult]) -> tuple[list[str], list[list[str]]]:
    by: dict[str, list[RunResult]] = {}
    for r in results:
        by.setdefault(r.strategy, []).append(r)
    header = ["strategy", "runs", "budget", "cpu s/run", "cpu ms/eval", "max cpu s/run",
              "wall s/run", "known/run", "cpu-s total"]
    rows = []
    for name in [s for s in STRATEGIES if s in by] + [s for s in by if s not in STRATEGIES]:
        runs = by[name]
        evaluations = sum(r.evaluations for r in runs) or 1
        seconds = sum(r.seconds for r in runs)
        rows.append([name, str(len(runs)), str(max(r.budget for r in runs)),
                     f"{seconds / len(runs):.3f}", f"{1000 * seconds / evaluations:.3f}",
                     f"{max(r.seconds for r in runs):.2f}",
                     f"{sum(r.wall_seconds for r in runs) / len(runs):.3f}",
                     f"{sum(r.known_proposals for r in runs) / len(runs):.0f}",
                     f"{seconds:.0f}"])
    return header, rows


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def aggregate_json(agg: Aggregate) -> dict[str, Any]:
    return {
        "runs": agg.runs, "budget": agg.budget, "seeds": [agg.seeds[0], agg.seeds[-1]]
        if agg.seeds else [],
        "best_so_far": {str(p): {"mean": _json_number(m), "ci95": _json_number(h)}
                        for p, (m, h) in zip(agg.checkpoints, agg.best)},
        "test_of_best": {str(p): None if v is None else {"mean": _json_number(v[0]),
                                                         "ci95": _json_number(v[1])}
                         for p, v in zip(agg.checkpoints, agg.test)},
        "reach": [{"fraction_within": {str(n): _json_number(f) for n, f in fr.items()},
                   "wilson95": {str(n): [_json_number(lo), _json_number(hi)]
                                for n, (lo, hi) in iv.items()},
                   "median_evaluations": _json_number(md),
                   "median_evaluations_of_runs_reaching": _json_number(mr)}
                  for fr, iv, md, mr in zip(agg.reach_fraction, agg.reach_interval,
                                            agg.reach_median, agg.reach_median_reached)],
        "stopped_early": agg.stopped, "mean_evaluations": agg.mean_evaluations,
        "known_proposals_per_run": agg.known_proposals, "errors": agg.errors,
        "seconds_per_run": agg.seconds_mean,
        "mean_best_so_far_per_evaluation": [round(v, 6) for v in agg.mean_curve],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=None,
                        help="comma-separated NAS-Bench-Graph datasets (default: all nine)")
    parser.add_argument("--table", action="append", default=[],
                        help="a table JSON file (see benchmarks/tabular.py); repeatable; "
                             "replaces the NAS-Bench-Graph datasets unless --datasets is given")
    parser.add_argument("--strategies", default=",".join(ROWS),
                        help="comma-separated rows: strategies and variants "
                             f"(default: {','.join(ROWS)})")
    parser.add_argument("--seeds", type=int, default=None, help=f"runs per strategy and "
                        f"table (default {FULL_SEEDS}; seeds 0..N-1)")
    parser.add_argument("--seed-offset", type=int, default=0)
    parser.add_argument("--budget", type=int, default=None,
                        help=f"distinct evaluations per run (default {FULL_BUDGET})")
    parser.add_argument("--tpe-seeds", type=int, default=None,
                        help=f"runs of tpe (default {FULL_TPE_SEEDS}, or --seeds if smaller)")
    parser.add_argument("--tpe-budget", type=int, default=None,
                        help=f"evaluations per tpe run (default {FULL_TPE_BUDGET}, or "
                             f"--budget if smaller): tpe costs O(n^2)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true",
                        help=f"{', '.join(QUICK_DATASETS)}; {QUICK_SEEDS} seeds to "
                             f"{QUICK_BUDGET}; tpe {QUICK_TPE_SEEDS} seeds to {QUICK_TPE_BUDGET}")
    parser.add_argument("--set", action="append", default=[], metavar="STRATEGY.NAME=VALUE",
                        help="override a strategy setting (manifest name), e.g. "
                             "reinforce.learningRate=0.001; for tuning")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--tag", default=None,
                        help="output file suffix: search_efficiency[-TAG].{txt,md,json} "
                             "(default: none for a full run, 'quick' for --quick)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--export-table", metavar="PATH",
                        help="write the first table as a table JSON file and exit")
    args = parser.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for s in strategies:
        if s not in ROWS:
            parser.error(f"unknown strategy {s!r} (valid: {', '.join(ROWS)})")
    if args.quick:
        datasets = args.datasets.split(",") if args.datasets else list(QUICK_DATASETS)
        seeds_n = args.seeds or QUICK_SEEDS
        budget = args.budget or QUICK_BUDGET
        tpe_seeds_n = min(args.tpe_seeds or QUICK_TPE_SEEDS, seeds_n)
        tpe_budget = min(args.tpe_budget or QUICK_TPE_BUDGET, budget)
        tag = "quick" if args.tag is None else args.tag
    else:
        datasets = (args.datasets.split(",") if args.datasets else
                    ([] if args.table else list(NAS_BENCH_GRAPH_DATASETS)))
        seeds_n = args.seeds or FULL_SEEDS
        budget = args.budget or FULL_BUDGET
        tpe_seeds_n = min(args.tpe_seeds or FULL_TPE_SEEDS, seeds_n)
        tpe_budget = min(args.tpe_budget or FULL_TPE_BUDGET, budget)
        tag = args.tag
    settings = build_settings(args.set)
    seeds = list(range(args.seed_offset, args.seed_offset + seeds_n))
    tpe_seeds = list(range(args.seed_offset, args.seed_offset + tpe_seeds_n))

    tables = [make_table(d.strip()) for d in datasets if d.strip()]
    tables += [make_table(path) for path in args.table]
    if not tables:
        parser.error("no table: give --datasets or --table")
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        parser.error(f"two tables share a name: {names}")
    if args.export_table:
        from tabular import table_document

        Path(args.export_table).write_text(json.dumps(table_document(tables[0])))
        print(f"wrote {args.export_table}")
        return 0
    for table in tables:
        warning = table.check_coverage()
        if warning:
            print(f"warning: {warning}", file=sys.stderr)

    tasks = make_tasks(tables, strategies, seeds, budget, tpe_seeds, tpe_budget, settings)
    workers = max(1, min(args.workers, len(tasks)))
    cost = sum(estimate_seconds(t.strategy, t.budget) for t in tasks)
    longest = max(estimate_seconds(t.strategy, t.budget) for t in tasks)
    print(f"{len(tasks)} runs ({len(tables)} tables x {len(strategies)} strategies; "
          f"{seeds_n} seeds to {budget} evaluations"
          + (f"; tpe {tpe_seeds_n} seeds to {tpe_budget}" if "tpe" in strategies else "")
          + f") on {workers} workers: estimated {cost:.0f} core-seconds, ETA "
          f"{max(cost / workers, longest):.0f}s (per-run costs measured on the authors' "
          f"machine; progress below re-estimates)", file=sys.stderr, flush=True)

    started = time.perf_counter()
    results = run_tasks(tasks, workers)
    wall = time.perf_counter() - started

    infos: list[TableInfo] = []
    aggregated: dict[str, dict[str, Aggregate]] = {}
    for table in tables:
        best_hash = max(table.reward, key=table.reward.__getitem__)
        infos.append(TableInfo(table.name, table.source, len(table), table.best(),
                               [top_threshold(table.reward, f) for f in TOP_FRACTIONS],
                               None if table.test is None else table.test[best_hash]))
        aggregated[table.name] = {}
        for strategy in strategies:
            runs = sorted((r for r in results if r.table == table.name
                           and r.strategy == strategy), key=lambda r: r.seed)
            if runs:
                aggregated[table.name][strategy] = aggregate(runs, len(TOP_FRACTIONS))

    text, markdown = [], []
    title = (f"Search efficiency: {len(tasks)} runs in {wall:.0f}s on {workers} workers "
             f"({platform.node() or 'host'}, {os.cpu_count()} CPUs)")
    text.append(title)
    markdown.append(f"# {title}\n")
    settings_line = "; ".join(f"{s}: {json.dumps(settings[s], sort_keys=True)}"
                              for s in strategies)
    defaults_line = ("every strategy with its defaults, one ask at a time; reinforce/ppo's "
                     "default preset was tuned on cora, computers and proteins only "
                     "(search_efficiency-tuning-issue11.md)")
    text.append(f"{defaults_line}; settings beyond the defaults: {settings_line}")
    markdown.append(f"Settings: {defaults_line}. Beyond the defaults: `{settings_line}`\n")
    if "tpe" in strategies and (tpe_budget < budget or tpe_seeds_n < seeds_n):
        line = (f"NOTE: tpe runs {tpe_seeds_n} seeds to {tpe_budget} evaluations only "
                f"(others: {seeds_n} seeds to {budget}): Optuna's TPE costs O(n^2) in trials")
        text.append(line)
        markdown.append(f"**{line}**\n")
    for info in infos:
        aggs = aggregated[info.name]
        head = f"== {info.name}: {info.source}; {info.size} distinct architectures"
        text.append("\n" + head)
        markdown.append(f"\n## {info.name}\n\n{info.source}; {info.size} distinct "
                        f"architectures\n")
        for section_title, header, rows in table_sections(info, aggs, budget):
            text.append(f"\n{section_title}\n{_render(rows, header)}")
            markdown.append(f"\n{section_title}\n\n{_markdown(rows, header)}\n")
        for note in notes_for(aggs, budget):
            text.append(f"note: {note}")
            markdown.append(f"- note: {note}")
    header, rows = summary_rows(infos, aggregated)
    section = ("median evaluations to reach the top 1 % (over all runs; * = fewer than "
               "random)")
    text.append(f"\n== summary\n{section}\n{_render(rows, header)}")
    markdown.append(f"\n## Summary\n\n{section}\n\n{_markdown(rows, header)}\n")
    for line in aims(infos, aggregated):
        text.append(f"- {line}")
        markdown.append(f"- {line}")
    header, rows = cost_table(results)
    text.append(f"\nper-run cost (this machine, 1 thread per worker, {workers} workers)\n"
                f"{_render(rows, header)}")
    markdown.append(f"\n## Per-run cost\n\nThis machine, 1 thread per worker, {workers} "
                    f"workers.\n\n{_markdown(rows, header)}\n")
    report = "\n".join(text)
    print(report)

    if not args.no_write:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = "search_efficiency" + (f"-{tag}" if tag else "")
        (out / f"{stem}.txt").write_text(report + "\n")
        (out / f"{stem}.md").write_text("\n".join(markdown) + "\n")
        doc = {
            "schema": "nas.search-efficiency/v1",
            "wall_seconds": wall, "workers": workers, "host": platform.node(),
            "cpus": os.cpu_count(), "seeds": seeds_n, "budget": budget,
            "tpe": {"seeds": tpe_seeds_n, "budget": tpe_budget},
            "settings": settings, "max_known_in_a_row": MAX_KNOWN_IN_A_ROW,
            "checkpoints": list(CHECKPOINTS), "reach_at": list(REACH_AT),
            "top_fractions": list(TOP_FRACTIONS),
            "tables": {info.name: {
                "source": info.source, "architectures": info.size, "best": info.best,
                "test_of_best": info.test_of_best,
                "top": [{"fraction": t.fraction, "k": t.k, "threshold": t.threshold,
                         "count": t.count} for t in info.tops],
                "strategies": {s: aggregate_json(a) for s, a in aggregated[info.name].items()},
            } for info in infos},
            "aims": aims(infos, aggregated),
        }
        (out / f"{stem}.json").write_text(json.dumps(doc, indent=1, default=_json_number))
        print(f"\nwrote {out / stem}.{{txt,md,json}}", file=sys.stderr)
        plot_curves(infos, aggregated, out / f"{stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

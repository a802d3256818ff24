"""Early stopping: time to a target reward on a real-training search, with and without
spec.earlyStopping, every variant measured in the same run on the same machine.

    PYTHONPATH=trainer-image python benchmarks/early_stopping.py            # ~15 min on 2 cores
    PYTHONPATH=trainer-image python benchmarks/early_stopping.py --seeds 1 --trials 12   # quick

Workload: examples/early-stopping-digits.yaml (Zoph & Le's macro-cnn, 4 layers with strides
and skips, on scikit-learn's 8×8 digits, 2 trials side by side, each a `nas-train` process
as `nas run` runs them) with 24 epochs per child (`--epochs`). Variants:

  none      no early stopping: the reference
  asha      ASHA, gracePeriod 3, reductionFactor 3 (rungs at epochs 3 and 9), minTrials 3
  median    median stopping from epoch 3, minTrials 3

The strategy is `random` by default: it proposes the same architectures in the same order
whatever it is told, so the variants train the same children and differ only in what early
stopping cuts (`--strategy reinforce` lets what it learns from partial rewards count too).
Time to target: wall seconds from the search's start until a trial with a reward >= the
target has finished. The targets are validation accuracies (reward = accuracy³ over the
best of the last 3 epochs). Writes benchmarks/results/early_stopping.md.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "trainer-image"))

import yaml  # noqa: E402

from nas_trainer.evaluators import make_executor  # noqa: E402
from nas_trainer.manifest import parse_search  # noqa: E402
from nas_trainer.results import ResultsFolder, TrialRecord  # noqa: E402
from nas_trainer.search import Budget, SearchLoop  # noqa: E402

EXAMPLE = ROOT / "examples" / "early-stopping-digits.yaml"
VARIANTS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "asha": {"policy": "asha", "gracePeriod": 3, "reductionFactor": 3, "minTrials": 3},
    "median": {"policy": "median", "gracePeriod": 3, "minTrials": 3},
}
# Validation accuracies (the validation split holds 216 images: 0.99 is 214 right, 0.995 215).
TARGET_ACCURACIES = (0.98, 0.99, 0.995)


@dataclass
class Run:
    variant: str
    seed: int
    seconds: float = 0.0
    finished: list[tuple[float, float]] = field(default_factory=list)  # (elapsed, reward)
    epochs: int = 0
    stopped: int = 0
    trials: int = 0
    best: float = 0.0

    def time_to(self, target_reward: float) -> float | None:
        for elapsed, reward in self.finished:
            if reward >= target_reward:
                return elapsed
        return None


def manifest_for(variant: str, seed: int, trials: int, strategy: str, epochs: int
                 ) -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    spec = doc["spec"]
    spec["strategy"] = {"name": strategy, "seed": seed}
    spec["trials"]["max"] = trials
    spec["trainer"]["epochs"] = epochs
    if VARIANTS[variant] is None:
        spec.pop("earlyStopping", None)
    else:
        spec["earlyStopping"] = dict(VARIANTS[variant])
    doc["metadata"]["name"] = f"es-{variant}-{seed}"
    return doc


def run_search(variant: str, seed: int, trials: int, strategy: str, epochs: int,
               workdir: Path) -> Run:
    manifest = parse_search(manifest_for(variant, seed, trials, strategy, epochs))
    folder = ResultsFolder(workdir / manifest.name)
    space = manifest.space.build()
    executor = make_executor(manifest, folder)
    t = manifest.trials
    budget = Budget(max_trials=t.max, parallelism=t.parallelism, max_failed=t.max_failed)
    run = Run(variant, seed)
    started = time.monotonic()

    def on_trial(record: TrialRecord, loop: SearchLoop) -> None:
        if record.succeeded and record.reward is not None:
            run.finished.append((time.monotonic() - started, record.reward))

    loop = SearchLoop(space, manifest.strategy.build(space), executor, folder, budget,
                      on_trial=on_trial, wait_seconds=1.0)
    loop.run()
    run.seconds = time.monotonic() - started
    records = list(loop.records.values())
    run.trials = len(records)
    run.stopped = sum(1 for r in records if r.stopped_early)
    run.epochs = sum(int(r.epochs or 0) for r in records)
    run.best = max((r.reward for r in records if r.succeeded and r.reward is not None), default=0.0)
    return run


def fmt(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:.0f} s"


def table(runs: list[Run], seeds: list[int]) -> list[str]:
    targets = [(a, a ** 3) for a in TARGET_ACCURACIES]
    header = ("| variant | seed | trials (stopped) | epochs trained | wall s | best val acc | "
              + " | ".join(f"time to val acc ≥ {a:g}" for a, _ in targets) + " |")
    lines = [header, "|" + " --- |" * (6 + len(targets))]
    for run in runs:
        lines.append(f"| {run.variant} | {run.seed} | {run.trials} ({run.stopped}) | {run.epochs} | "
                     f"{run.seconds:.0f} | {run.best ** (1 / 3):.4f} | "
                     + " | ".join(fmt(run.time_to(r)) for _, r in targets) + " |")
    lines += ["", "Summed over seeds (a target not reached counts as the search's whole wall "
              "time, marked +):", "",
              "| variant | epochs trained | wall s | ratio to none | "
              + " | ".join(f"to ≥ {a:g}" for a, _ in targets) + " |",
              "|" + " --- |" * (4 + len(targets))]
    reference = sum(r.seconds for r in runs if r.variant == "none")
    for variant in VARIANTS:
        mine = [r for r in runs if r.variant == variant]
        if not mine:
            continue
        wall = sum(r.seconds for r in mine)
        cells = []
        for _, reward in targets:
            times = [r.time_to(reward) for r in mine]
            total = sum(t if t is not None else r.seconds for t, r in zip(times, mine))
            cells.append(f"{total:.0f} s" + ("+" if None in times else ""))
        lines.append(f"| {variant} | {sum(r.epochs for r in mine)} | {wall:.0f} | "
                     f"{wall / reference:.2f} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default=str(HERE / "results" / "early_stopping.md"))
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="nas-es-bench-") as workdir:
        for seed in seeds:
            for variant in args.variants.split(","):  # interleaved: load drifts hit all alike
                run = run_search(variant, seed, args.trials, args.strategy, args.epochs,
                                 Path(workdir))
                print(f"{variant} seed {seed}: {run.seconds:.0f} s, {run.trials} trials, "
                      f"{run.stopped} stopped, {run.epochs} epochs, best {run.best:.4f}",
                      flush=True)
                runs.append(run)
    lines = table(runs, seeds)
    print("\n".join(lines))
    doc = ["# Early stopping: time to target on a real-training search (CPU)", "",
           f"`PYTHONPATH=trainer-image python benchmarks/early_stopping.py --seeds {args.seeds} "
           f"--trials {args.trials} --strategy {args.strategy} --epochs {args.epochs}`, "
           f"{time.strftime('%Y-%m-%d', time.gmtime())}, {platform.machine()} CPU, "
           f"{os.cpu_count()} cores shared with other work, no GPU.", "",
           f"Workload: `{EXAMPLE.relative_to(ROOT)}` (macro-cnn on digits, 2 trials side by "
           f"side) with {args.epochs} epochs per child, strategy `{args.strategy}`, {args.trials} trials per search; "
           "the reference (no early stopping) ran in the same run, interleaved with the others. "
           "Variants: " + "; ".join(f"{k}: {json.dumps(v) if v else 'off'}"
                                     for k, v in VARIANTS.items()) + ".", "",
           *lines, ""]
    Path(args.out).write_text("\n".join(doc))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

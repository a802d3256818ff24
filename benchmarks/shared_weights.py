"""Weight sharing (ENAS) against per-trial training on the same data: children per hour and
the best stand-alone accuracy, both searches run by `nas run` in this run on this machine.

    python benchmarks/shared_weights.py              # ~5 min on 2 cores
    python benchmarks/shared_weights.py --children 30 --trials 8   # quicker
    python benchmarks/shared_weights.py --space nasnet --trials 6 --children 60

  per-trial (reference)  examples/digits-macro-cnn.yaml: REINFORCE, every child trained from
                         scratch for 8 epochs (--trials children, 2 side by side)
  shared weights         examples/enas-digits-macro-cnn.yaml: the same controller and space,
                         --children children scored on one supernet (30 steps each), then
                         the best 3 retrained from scratch for 8 epochs

"best stand-alone": the best validation accuracy of a child trained alone (every trial of
the per-trial search, the retrained children of the shared-weights one) and that child's
test accuracy. Wall time
includes everything `nas run` does. Writes benchmarks/results/shared_weights.md.

--space nasnet compares on the NASNet cell space instead: the shared-weights search is
examples/enas-digits-nasnet.yaml (ENAS micro search), the reference the same manifest
without sharedWeights (every child trained from scratch for its trainer.epochs, 2 side by
side). Writes benchmarks/results/shared_weights-nasnet.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NAS = Path(sys.executable).parent / "nas"


@dataclass
class Outcome:
    name: str
    children: int
    trained_alone: int
    seconds: float
    best_val: float
    best_test: float

    @property
    def per_hour(self) -> float:
        return self.children / self.seconds * 3600


def run_search(manifest: dict, folder: Path) -> float:
    path = folder / "search.yaml"
    path.write_text(yaml.safe_dump(manifest))
    started = time.perf_counter()
    subprocess.run([str(NAS), "run", str(path), "--out", str(folder / "run")], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "200"})
    return time.perf_counter() - started


# space -> (per-trial reference manifest, shared-weights manifest)
MANIFESTS = {"macro-cnn": ("digits-macro-cnn.yaml", "enas-digits-macro-cnn.yaml"),
             "nasnet": (None, "enas-digits-nasnet.yaml")}


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "examples" / name).read_text())


def reference_manifest(space: str) -> dict:
    reference, enas = MANIFESTS[space]
    if reference is not None:
        return load(reference)
    # no per-trial example of this space: the ENAS one with every child trained alone
    manifest = load(enas)
    del manifest["spec"]["trainer"]["sharedWeights"]
    manifest["spec"]["trials"]["parallelism"] = 2
    return manifest


def per_trial(trials: int, scratch: Path, space: str) -> Outcome:
    manifest = reference_manifest(space)
    manifest["spec"]["trials"]["max"] = trials
    seconds = run_search(manifest, scratch)
    records = [json.loads(line) for line in (scratch / "run" / "trials.jsonl").open()]
    done = [r for r in records if r["status"] == "Succeeded"]
    best = max(done, key=lambda r: r["metrics"]["val_accuracy"])
    return Outcome("per-trial (reference)", len(records), len(done), seconds,
                   best["metrics"]["val_accuracy"], best["metrics"]["test_accuracy"])


def shared(children: int, scratch: Path, space: str) -> Outcome:
    manifest = load(MANIFESTS[space][1])
    manifest["spec"]["trials"]["max"] = children
    seconds = run_search(manifest, scratch)
    records = [json.loads(line) for line in (scratch / "run" / "trials.jsonl").open()]
    retrained = json.loads((scratch / "run" / "retrained.json").read_text())
    alone = [r for r in retrained if r["reward"] is not None]
    best = max(alone, key=lambda r: r["val_accuracy"])
    return Outcome("shared weights (ENAS)", len(records), len(alone), seconds,
                   best["val_accuracy"], best["test_accuracy"])


def table(rows: list[Outcome]) -> str:
    lines = ["| search | children | trained alone | wall s | children/hour | "
             "best stand-alone val_accuracy | that child's test_accuracy |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.children} | {r.trained_alone} | {r.seconds:.0f} | "
                     f"{r.per_hour:.0f} | {r.best_val:.4f} | {r.best_test:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=28, help="per-trial search's children")
    parser.add_argument("--children", type=int, default=60, help="shared-weights children")
    parser.add_argument("--space", choices=sorted(MANIFESTS), default="macro-cnn",
                        help="the search space both searches explore")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nas-bench-sw-") as scratch:
        (Path(scratch) / "ref").mkdir()
        (Path(scratch) / "enas").mkdir()
        rows = [per_trial(args.trials, Path(scratch) / "ref", args.space),
                shared(args.children, Path(scratch) / "enas", args.space)]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}"
    text = table(rows)
    print(text)
    flag = "" if args.space == "macro-cnn" else f" --space {args.space}"
    report = (f"# Shared weights (ENAS) vs per-trial training, {args.space}\n\n"
              f"Measured by `python benchmarks/shared_weights.py{flag} --trials {args.trials} "
              f"--children {args.children}` on {machine}, CPU only, both searches in one run."
              f"\n\n{text}\n")
    suffix = "" if args.space == "macro-cnn" else f"-{args.space}"
    (HERE / "results" / f"shared_weights{suffix}.md").write_text(report)


if __name__ == "__main__":
    main()

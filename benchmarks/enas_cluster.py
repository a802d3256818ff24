"""ENAS on a cluster: a trial pod per child (spec.trials.mode Job, the reference) against
one warm worker that holds the supernet between children (mode WarmPool), both measured in
this run on the test control plane with the real operator, controller and trainer.

    .venv/bin/python benchmarks/enas_cluster.py                 # ~4 min on 2 cores
    .venv/bin/python benchmarks/enas_cluster.py --children 40

The manifest is examples/enas-digits-macro-cnn.yaml with --children children of
--steps supernet steps each; the two searches run one after the other, each in its own
namespace, on one cluster and one operator. Measured: apply -> the last child scored
(the final from-scratch training is the same in both and is left out: finalTraining is
off), children per hour, the mean seconds a child's Trial spends from created to scored,
and the supernet work inside it (its result's timings: load, score, train). Writes
benchmarks/results/enas_cluster.md.

Needs `make binaries` (and the images are not needed: the test node agent runs each pod's
command as a local process).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
for folder in (REPO_ROOT, REPO_ROOT / "tests" / "e2e", REPO_ROOT / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from nas_operator.search_status import parse_time  # noqa: E402
from nas_trainer.oneshot.estimator import HELD_SUPERNET, supernet_source  # noqa: E402
from operator_scale import create_namespace  # noqa: E402
from test_operator_fixtures import apply, apply_crds, kube  # noqa: E402
from test_search_e2e_helpers import (  # noqa: E402
    search_object, start_search_operator, trials_of, volume_of)
from tests.cluster.controlplane import ControlPlane  # noqa: E402
from tests.cluster.waiting import wait_for  # noqa: E402

EXAMPLE = REPO_ROOT / "examples" / "enas-digits-macro-cnn.yaml"
NAME = "enas"
OUT = REPO_ROOT / "benchmarks" / "results" / "enas_cluster.md"


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def manifest(namespace: str, mode: str, children: int, steps: int) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] = {"name": NAME, "namespace": namespace}
    spec = doc["spec"]
    spec["trials"].update(max=children, mode=mode)
    spec["trainer"]["image"] = "nas-trainer:test"
    spec["trainer"]["sharedWeights"]["stepsPerChild"] = steps
    spec.pop("finalTraining", None)  # the same in both: not what is compared
    return doc


def run_search(cluster, namespace: str, mode: str, args) -> dict[str, Any]:
    create_namespace(kube(cluster), namespace)
    started = time.monotonic()
    apply(cluster, manifest(namespace, mode, args.children, args.steps))

    def scored() -> int:
        counts = (search_object(cluster, namespace, NAME).get("status") or {}).get("trials") or {}
        return (counts.get("succeeded") or 0) + (counts.get("failed") or 0)

    wait_for(lambda: scored() >= args.children, f"{args.children} children scored ({mode})",
             timeout=args.timeout, interval=0.5)
    wall = time.monotonic() - started
    trials = trials_of(cluster, namespace, NAME)
    volume = volume_of(cluster, namespace, NAME)
    per_trial, work, sources = [], [], []
    for trial in trials:
        meta, status = trial["metadata"], trial.get("status") or {}
        if status.get("phase") != "Succeeded" or not status.get("completionTime"):
            continue
        per_trial.append((parse_time(status["completionTime"])
                          - parse_time(meta["creationTimestamp"])).total_seconds())
        result = json.loads((volume / "trials" / f"{trial['spec']['index']:05d}"
                             / "result.json").read_text())
        work.append(sum(result.get("timings", {}).get(k, 0.0)
                        for k in ("load", "score", "train")))
        sources.append(supernet_source(result["execution"]))
    best = (search_object(cluster, namespace, NAME).get("status") or {}).get("best") or {}
    log(f"{mode}: {len(per_trial)} children scored in {wall:.1f}s")
    return {"mode": mode, "wall": wall, "children": len(per_trial),
            "per_trial": statistics.mean(per_trial), "work": statistics.mean(work),
            "held": sum(s == HELD_SUPERNET for s in sources),
            "best": best.get("reward")}


def table(rows: list[dict[str, Any]], args) -> str:
    reference = rows[0]
    lines = [
        "# ENAS on a cluster: a trial pod per child against one warm worker",
        "",
        f"`benchmarks/enas_cluster.py --children {args.children} --steps {args.steps}`, "
        f"{time.strftime('%Y-%m-%d')}, on {platform.machine()}, {os.cpu_count()} CPUs, no GPU; "
        "the test control plane, operator, controller and trainers share those CPUs. "
        "examples/enas-digits-macro-cnn.yaml, finalTraining off; apply -> the last child "
        "scored.",
        "",
        "| mode | children | wall s | children/hour | s per child, Trial created -> scored "
        "| supernet work s per child (load + score + train) | children on the held supernet "
        "| best estimate | vs Job |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['children']} | {r['wall']:.1f} | "
            f"{3600 * r['children'] / r['wall']:,.0f} | {r['per_trial']:.2f} | {r['work']:.2f} | "
            f"{r['held']} | {r['best'] if r['best'] is None else round(r['best'], 4)} | "
            f"{reference['wall'] / r['wall']:.2f}x |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--children", type=int, default=20)
    parser.add_argument("--steps", type=int, default=30, help="supernet steps per child")
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    started: list = []
    try:
        plane = ControlPlane.start()
        started.append(plane)
        cluster = plane.cluster
        log(f"test cluster up; logs in {cluster.run_dir}")
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        apply_crds(cluster)
        namespaces = {"Job": "enas-job", "WarmPool": "enas-warm"}
        operator = start_search_operator(cluster, list(namespaces.values()))
        started.append(operator.process)
        rows = [run_search(cluster, namespaces[mode], mode, args) for mode in namespaces]
    finally:
        for thing in reversed(started):
            thing.stop()
    text = table(rows, args)
    print(text)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Warm worker against a fresh trial process: what each trial pays besides its training,
and what a warm worker's packs train per second.

    PYTHONPATH=trainer-image python benchmarks/warm_worker.py --device cpu   # this machine
    PYTHONPATH=trainer-image python benchmarks/warm_worker.py --device cuda --images 45000 \
        --epochs 2 --packs 2,4,8                                           # a GPU machine

Workload: `--trials` macro-cnn children sampled from the space with a fixed seed, each
trained `--epochs` on the same synthetic CIFAR-shaped set (`--images`, 32x32x3, 10
classes), the same trainer config, three ways, one after another on the same machine:

  fresh    every trial a new `python -m nas_trainer.train_cli` process, as a trial pod of
           spec.trials.mode Job runs it (without the container and pod start): Python
           and torch imported, the dataset made, the first CUDA work, then the training
  warm     one process (a warm worker) trains the trials one after another through the
           worker's own code path (`nas_trainer.worker.train`), the dataset kept between
           trials as the worker keeps it; the process's start-up is counted once
  pack-K   the same warm process trains them K at a time (`worker_packs.train_together`,
           spec.trials.packing: maxPerWorker K); pack-auto at the size the worker picks
           (`worker_packs.pack_size`: on a GPU from one measured step of the largest child)

"fixed cost" is a trial's wall time less the time its own result JSON says went to
training and evaluation (`timings.train` + `timings.eval`): the start-up, data, build and
graph capture that a warm worker exists to pay once. The reference is `fresh`, measured
in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TRAINER = HERE.parent / "trainer-image"
sys.path.insert(0, str(TRAINER))


def children(count: int, layers: int, seed: int) -> list[dict[str, Any]]:
    """`count` distinct macro-cnn children (contract 2 documents), sampled with `seed`."""
    from nas_trainer.spaces import get_space

    space = get_space("macro-cnn", {"layers": layers, "strides": True, "skips": True})
    rng, found = random.Random(seed), {}
    while len(found) < count:
        arch = space.random(rng)
        found.setdefault(arch.hash, arch.to_json())
    return list(found.values())


def trainer_config(args: argparse.Namespace) -> dict[str, Any]:
    return {"dataset": "synthetic",
            "datasetOptions": {"images": args.images, "testImages": args.test_images},
            "epochs": args.epochs, "batchSize": args.batch, "learningRate": 0.05,
            "device": args.device, "seed": 0}


def training_seconds(doc: dict[str, Any]) -> float:
    timings = doc.get("timings") or {}
    return float(timings.get("train", 0.0)) + float(timings.get("eval", 0.0))


def run_fresh(architectures: list[dict[str, Any]], config: dict[str, Any],
              folder: Path) -> dict[str, Any]:
    """Each trial its own process, timed from spawn to exit."""
    (folder / "config.json").write_text(json.dumps(config))
    walls, docs = [], []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(TRAINER), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    for index, architecture in enumerate(architectures):
        path = folder / f"arch-{index}.json"
        path.write_text(json.dumps(architecture))
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "nas_trainer.train_cli", "-a", str(path),
                               "-c", str(folder / "config.json"), "--quiet",
                               "--termination-log", ""],
                              capture_output=True, text=True, env=env, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"nas-train failed ({done.returncode}): {done.stderr[-2000:]}")
        docs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"walls": walls, "docs": docs, "shares": [1] * len(walls)}


def run_in_one_process(variant: str, architectures: list[dict[str, Any]],
                       config: dict[str, Any]) -> dict[str, Any]:
    """The warm worker's code path in this (fresh) process; its start-up is measured by
    the parent as the time until the process says it is ready."""
    from nas_trainer import worker, worker_packs
    import nas_trainer.training  # noqa: F401  (torch: a worker imports it once)

    assignments = [{"trial": f"t{i}", "attempt": 0, "architecture": a, "config": config}
                   for i, a in enumerate(architectures)]
    cache: dict[Any, Any] = {}
    walls, docs, shares = [], [], []
    if variant == "warm":
        for assignment in assignments:
            started = time.perf_counter()
            evaluation = worker.train(assignment, cache)
            walls.append(time.perf_counter() - started)
            if evaluation.code != 0:
                raise RuntimeError(f"trial failed: {evaluation.doc}")
            docs.append(evaluation.doc)
        return {"walls": walls, "docs": docs, "shares": [1] * len(walls)}
    wanted = variant.split("-", 1)[1]
    # auto: the size the worker itself picks (choose_pack_size from a measured step on a
    # GPU; all of them on the CPU)
    size = worker_packs.pack_size(assignments, cache) if wanted == "auto" else int(wanted)
    for chunk in worker_packs.chunks(assignments, size):
        started = time.perf_counter()
        evaluations = worker_packs.train_together(chunk, cache, lambda _: None)
        wall = time.perf_counter() - started
        walls.extend([wall / len(chunk)] * len(chunk))  # a chunk's trials share its wall
        shares.extend([len(chunk)] * len(chunk))
        docs.extend(e.doc for e in evaluations)
    return {"walls": walls, "docs": docs, "shares": shares, "size": size}


def spawn(variant: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Run a one-process variant in a fresh interpreter: its start-up (imports, first
    CUDA work) is timed too, as the worker pod pays it once."""
    out = folder / f"{variant}.json"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--variant", variant, "--result", str(out),
                           *sys.argv[1:]], capture_output=True, text=True, check=False)
    total = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(out.read_text())
    result["startup"] = max(0.0, total - sum(result["walls"]))
    return result


def images_per_trial(config: dict[str, Any]) -> int:
    """Training images one trial goes through: its training split, every epoch."""
    from nas_trainer.training import TrainerConfig
    from nas_trainer.training.run import load_data

    data = load_data(TrainerConfig.from_dict(config), "macro-cnn")
    return len(data.train_x) * int(config["epochs"])


def summarise(name: str, result: dict[str, Any], images: int) -> dict[str, Any]:
    walls, docs = result["walls"], result["docs"]
    startup = result.get("startup", 0.0)
    # A pack's result reports the whole pack's training time: each trial's share of it.
    trained = [training_seconds(d) / share for d, share in zip(docs, result["shares"])]
    total = sum(walls) + startup
    fixed = [w - t for w, t in zip(walls, trained)]
    return {"variant": name, "trials": len(walls), "total": total, "startup": startup,
            "fixed_each": statistics.mean(fixed),
            "fixed": statistics.mean(fixed) + startup / len(walls),
            "training": statistics.mean(trained), "images_per_s": images * len(walls) / total}


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    reference = rows[0]
    lines = [f"{args.trials} macro-cnn children ({args.layers} layers), {args.epochs} epoch(s) "
             f"x {args.images} synthetic 32x32x3 images, batch {args.batch}, device "
             f"{args.device}", "",
             "| variant | trials | wall s | process start-up s | fixed s per trial | "
             "fixed s per trial, start-up included | training s per trial | images/s | "
             "vs fresh |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        startup = f"{r['startup']:.2f}" if r["startup"] else "in each trial"
        lines.append(f"| {r['variant']} | {r['trials']} | {r['total']:.1f} | {startup} | "
                     f"{r['fixed_each']:.2f} | {r['fixed']:.2f} | {r['training']:.2f} | "
                     f"{r['images_per_s']:,.0f} | {reference['total'] / r['total']:.2f}x |")
    lines += ["", "fixed cost: a trial's wall time less its result's timings.train + "
              "timings.eval (start-up of the process, data, build, graph capture); a warm process's "
              "start-up (Python, torch, first CUDA work) is paid once, and spread over its "
              "trials in the next column. In a pack "
              "the trials share one wall time, so its training column is each child's share "
              "of the pack's training time as its result JSON reports it."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=2000, help="training + validation")
    parser.add_argument("--test-images", type=int, default=500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    parser.add_argument("--packs", default="3,auto",
                        help="pack sizes K to measure, e.g. 2,4,8; auto: the worker's choice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: one variant
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    architectures = children(args.trials, args.layers, args.seed)
    config = trainer_config(args)
    if args.variant:
        Path(args.result).write_text(json.dumps(
            run_in_one_process(args.variant, architectures, config)))
        return
    packs = [f"pack-{k}" for k in args.packs.split(",") if k.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {"fresh": run_fresh(architectures, config, folder)}
        for variant in ["warm", *packs]:
            results[variant] = spawn(variant, args, folder)
    images = images_per_trial(config)
    rows = [summarise(f"{name} (K={r['size']})" if name == "pack-auto" else name, r, images)
            for name, r in results.items()]
    text = table(rows, args)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

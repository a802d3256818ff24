"""Trainer throughput: how long the trainer takes to train one child, everything counted,
against the same network trained by hand-written PyTorch measured in the same run.

    PYTHONPATH=trainer-image python benchmarks/trainer_throughput.py            # GPU, full
    PYTHONPATH=trainer-image python benchmarks/trainer_throughput.py --quick --device cpu

Workload: the ResNet-20-sized macro-cnn child of benchmarks/fixed_architecture.json,
10 epochs over 45,000 synthetic CIFAR-shaped images (32×32×3, 10 classes), batch 512,
validation (5,000 images) after every epoch, the test set (10,000) at the end.
Each variant runs in a fresh subprocess (its own cuDNN autotuning, no warm caches from
another variant), after a generic CUDA warm-up; its time runs from model build to the
final evaluation, data already in host memory:

  trainer        nas_trainer.training.train_architecture (build, capture, train, eval)
  graph          the same network hand-written: bf16, channels-last, data on the GPU,
                 the whole step (forward, backward, optimizer) captured as a CUDA graph
  eager          the same hand-written loop, eager
  resnet20-*     the two hand-written loops on a true ResNet-20, to check against the
                 published H100 numbers (eager 13.9 s, CUDA graph 4.4 s, torch.compile 42 s)
  pack-K         K copies of the child trained at once (nas_trainer.training.packing),
                 aggregate images/s; the K that packing.choose_pack_size picks is shown

Needs only torch and this repository (no network, no datasets on disk).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "trainer-image"))
import nas_trainer  # noqa: E402,F401  (first: its OpenMP settings apply to every variant)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from nas_trainer.data.builtin import load_synthetic  # noqa: E402
from nas_trainer.data.splits import ImageData  # noqa: E402

ARCHITECTURE = HERE / "fixed_architecture.json"
PUBLISHED_RESNET20_H100 = {"eager": 13.9, "graph": 4.4, "torch.compile": 42.0}


# ---------------------------------------------------------------------------------------
# Hand-written networks (plain PyTorch, independent of nas_trainer.models)

class HandMacroCNN(nn.Module):
    """The macro-cnn child written out by hand: conv-BN-ReLU layers over the depth
    concatenation of their inputs, unused outputs pooled into a linear classifier."""

    def __init__(self, layers: list[dict[str, Any]], num_classes: int = 10) -> None:
        super().__init__()
        self.inputs = [layer["inputs"] for layer in layers]
        width, convs = [], []
        for layer in layers:
            c_in = sum(width[j] for j in layer["inputs"]) if layer["inputs"] else 3
            kh, kw = layer["filter_height"], layer["filter_width"]
            convs.append(nn.Sequential(
                nn.Conv2d(c_in, layer["filters"], (kh, kw), layer["stride"], (kh // 2, kw // 2),
                          bias=False),
                nn.BatchNorm2d(layer["filters"]), nn.ReLU(inplace=True)))
            width.append(layer["filters"])
        self.convs = nn.ModuleList(convs)
        used = {j for inputs in self.inputs for j in inputs}
        self.last = [i for i in range(len(layers)) if i not in used]
        self.fc = nn.Linear(sum(width[i] for i in self.last), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: list[torch.Tensor] = []
        for conv, inputs in zip(self.convs, self.inputs):
            outs.append(conv(torch.cat([outs[j] for j in inputs], 1) if inputs else x))
        return self.fc(torch.cat([outs[i] for i in self.last], 1).mean((2, 3)))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.pad = (c_out - c_in) // 2 if stride != 1 or c_in != c_out else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        # Option A shortcut (He et al. 2016, CIFAR): subsample and zero-pad channels.
        shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad)) if self.pad else x
        return F.relu(out + shortcut)


class ResNet20(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU(inplace=True))
        blocks, c = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for i in range(3):
                blocks.append(BasicBlock(c, width, 2 if stage > 0 and i == 0 else 1))
                c = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


# ---------------------------------------------------------------------------------------
# The hand-written training loop: the fastest plain-PyTorch form

def hand_train(make_model: Callable[[], nn.Module], data: ImageData, *, epochs: int,
               batch: int, lr: float, weight_decay: float, device: torch.device,
               graph: bool) -> dict[str, Any]:
    """Train like an expert would by hand; returns seconds from model build to the end
    of the final test evaluation."""
    # Autotuned convolutions, as the trainer has them (NAS_CUDNN_BENCHMARK=0: off for both).
    torch.backends.cudnn.benchmark = os.environ.get("NAS_CUDNN_BENCHMARK", "1") != "0"
    sync(device)
    start = time.perf_counter()
    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    layout = torch.channels_last if cuda else torch.contiguous_format
    model = make_model().to(device, memory_format=layout)

    x_train = data.train_x.to(device)                                   # (N, H, W, C) uint8
    n, h, w, c = x_train.shape
    mean = x_train.reshape(-1, c).float().mean(0).view(1, c, 1, 1).to(dtype)
    std = x_train.reshape(-1, c).float().std(0).view(1, c, 1, 1).to(dtype)
    padded = F.pad(x_train, (0, 0, 4, 4, 4, 4))
    y_train = data.train_y.to(device)
    val = (data.val_x.to(device), data.val_y.to(device))
    test = (data.test_x.to(device), data.test_y.to(device))

    def normalise(x: torch.Tensor) -> torch.Tensor:
        return (x.permute(0, 3, 1, 2).to(dtype, memory_format=layout) - mean) / std

    steps = n // batch
    total = steps * epochs
    warm = max(1, round(0.03 * total))
    schedule = [lr * (s + 1) / warm if s < warm else
                lr * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))
                for s in range(total)]
    lr_t = torch.tensor(schedule[0], device=device)
    opt = torch.optim.SGD(model.parameters(), lr=lr_t, momentum=0.9, nesterov=True,
                          weight_decay=weight_decay, fused=cuda or None)
    static_x = torch.zeros(batch, c, h, w, dtype=dtype, device=device).to(memory_format=layout)
    static_y = torch.zeros(batch, dtype=torch.long, device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda, cache_enabled=False):
            loss = F.cross_entropy(model(static_x), static_y)
        loss.backward()
        opt.step()

    g = None
    if graph and cuda:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step()

    @torch.no_grad()
    def accuracy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        model.eval()
        correct = torch.zeros((), device=device)
        for i in range(0, len(y), batch):  # the training batch: cuDNN's tuned shapes
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                correct += (model(normalise(x[i:i + batch])).argmax(1) == y[i:i + batch]).sum()
        model.train()
        return correct / len(y)

    rows, cols = torch.arange(h, device=device), torch.arange(w, device=device)
    val_acc = []
    for epoch in range(epochs):
        # The epoch's augmentation in one go: a shuffled, randomly cropped and flipped copy.
        perm = torch.randperm(n, device=device)
        dy = torch.randint(0, 9, (n, 1), device=device)
        dx = torch.randint(0, 9, (n, 1), device=device)
        flip = torch.rand(n, 1, device=device) < 0.5
        col = torch.where(flip, dx + (w - 1) - cols, dx + cols)
        epoch_x = padded[perm[:, None, None], (dy + rows)[:, :, None], col[:, None, :]]
        epoch_y = y_train[perm]
        for s in range(steps):
            static_x.copy_(normalise(epoch_x[s * batch:(s + 1) * batch]))
            static_y.copy_(epoch_y[s * batch:(s + 1) * batch])
            lr_t.fill_(schedule[epoch * steps + s])
            g.replay() if g is not None else step()
        val_acc.append(accuracy(*val))
    test_acc = accuracy(*test)
    sync(device)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": total * batch, "val_accuracy": float(val_acc[-1]),
            "test_accuracy": float(test_acc),
            "parameters": sum(p.numel() for p in model.parameters())}


# ---------------------------------------------------------------------------------------
# One variant per subprocess

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_up(device: torch.device) -> None:
    """Pay the process's one-time costs outside the timed region: importing
    torch._dynamo (which constructing any torch.optim optimizer does, 3–8 s: the
    hand-written loops use torch.optim, the trainer does not) and the CUDA context,
    cuBLAS and cuDNN handles (on shapes no variant uses)."""
    import torch._dynamo  # noqa: F401

    if device.type != "cuda":
        return
    conv = nn.Conv2d(5, 7, 3).to(device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        conv(torch.randn(3, 5, 9, 9, device=device)).sum().backward()
    torch.randn(17, 19, device=device) @ torch.randn(19, 23, device=device)
    sync(device)


def trainer_config(args: argparse.Namespace) -> dict[str, Any]:
    return {"dataset": "synthetic", "epochs": args.epochs, "batchSize": args.batch,
            "learningRate": args.lr, "weightDecay": args.weight_decay,
            "device": args.device}


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    data = load_synthetic(images=args.images + args.val_images, test_images=args.test_images,
                          validation=args.val_images, image_size=32, channels=3, classes=10)
    architecture = json.loads(ARCHITECTURE.read_text())
    warm_up(device)
    variant = args.variant
    common = dict(epochs=args.epochs, batch=args.batch, lr=args.lr,
                  weight_decay=args.weight_decay, device=device)
    if variant == "trainer":
        from nas_trainer.training import TrainerConfig, train_architecture

        config = TrainerConfig.from_dict(trainer_config(args))
        start = time.perf_counter()
        outcome = train_architecture(architecture, config, data=data, log=lambda _: None,
                                     started=start)
        r = outcome.result
        steps = (len(data.train_y) // args.batch) * args.epochs
        return {"seconds": r.seconds, "images": steps * args.batch,
                "val_accuracy": r.metrics["val_accuracy"],
                "test_accuracy": r.metrics.get("test_accuracy"), "parameters": r.parameters,
                "execution": r.execution, "timings": r.timings, "flops": r.flops}
    if variant.startswith("pack-"):
        from nas_trainer.training import TrainerConfig
        from nas_trainer.training.packing import train_packed

        k = int(variant.split("-")[1])
        config = TrainerConfig.from_dict(trainer_config(args))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        start = time.perf_counter()
        outcomes = train_packed([architecture] * k, config, data=data, log=lambda _: None,
                                started=start)
        seconds = time.perf_counter() - start
        steps = (len(data.train_y) // args.batch) * args.epochs
        result = {"seconds": seconds, "images": k * steps * args.batch, "k": k,
                  "val_accuracy": min(o.result.metrics["val_accuracy"] for o in outcomes),
                  "execution": outcomes[0].result.execution, "flops": outcomes[0].result.flops}
        if device.type == "cuda":
            result["peak_bytes"] = torch.cuda.max_memory_allocated(device) - base
            result["free_bytes"] = torch.cuda.mem_get_info(device)[0]
        return result
    network, mode = variant.split("-") if "-" in variant else ("macro", variant)
    layers = architecture["canonical"]["layers"]
    make = (lambda: HandMacroCNN(layers)) if network == "macro" else ResNet20
    return hand_train(make, data, graph=(mode == "graph"), **common)


def spawn(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--variant", variant, "--device", args.device,
           "--epochs", str(args.epochs), "--images", str(args.images),
           "--val-images", str(args.val_images), "--test-images", str(args.test_images),
           "--batch", str(args.batch), "--lr", str(args.lr),
           "--weight-decay", str(args.weight_decay)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(HERE.parent / "trainer-image"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        return {"error": f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# The table

def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    def throughput(r: dict[str, Any]) -> float | None:
        return r["images"] / r["seconds"] if "seconds" in r else None

    ref = results.get("graph", {}).get("seconds")
    ref_resnet = results.get("resnet20-graph", {}).get("seconds")
    print(f"\ndevice {args.device_name}; {args.images} images × {args.epochs} epochs, "
          f"batch {args.batch}; times from model build to the final test evaluation\n")
    if not args.device.startswith("cuda"):
        print("(no CUDA graphs off the GPU: `graph` runs the hand-written loop eagerly, the "
              "fastest plain-PyTorch form there, and both use the same CPU threads)\n")
    header = f"{'variant':<18}{'network':<22}{'seconds':>9}{'images/s':>11}{'vs graph':>10}" \
             f"{'val acc':>9}  notes"
    print(header)
    print("-" * len(header))
    rows = [("trainer", "macro-cnn (fixed)", ref), ("graph", "macro-cnn hand-written", ref),
            ("eager", "macro-cnn hand-written", ref),
            ("resnet20-graph", "ResNet-20", ref_resnet),
            ("resnet20-eager", "ResNet-20", ref_resnet)]
    for name, network, reference in rows:
        r = results.get(name)
        if r is None:
            continue
        if "error" in r:
            print(f"{name:<18}{network:<22}  failed: {r['error']}")
            continue
        ratio = r["seconds"] / reference if reference else None
        notes = r.get("execution", "")
        if name == "trainer" and r.get("timings"):
            notes += " " + " ".join(f"{k} {v:.2f}s" for k, v in r["timings"].items())
        if name.startswith("resnet20") and args.device_name.startswith("NVIDIA H100"):
            key = name.split("-")[1]
            notes += f"published H100 {PUBLISHED_RESNET20_H100[key]} s"
        print(f"{name:<18}{network:<22}{r['seconds']:>9.2f}{fmt(throughput(r), ',.0f'):>11}"
              f"{fmt(ratio, '.2f'):>10}{fmt(r.get('val_accuracy'), '.3f'):>9}  {notes}")
    packs = sorted((r for k, r in results.items() if k.startswith("pack-") and "error" not in r),
                   key=lambda r: r["k"])
    if packs:
        single = packs[0]["images"] / packs[0]["seconds"]
        print(f"\n{'pack K':<8}{'seconds':>9}{'aggregate images/s':>20}{'vs K=1':>9}")
        for r in packs:
            agg = r["images"] / r["seconds"]
            print(f"{r['k']:<8}{r['seconds']:>9.2f}{agg:>20,.0f}{agg / single:>9.2f}")
        best = max(packs, key=lambda r: r["images"] / r["seconds"])
        first = packs[0]
        if "peak_bytes" in first:  # the rule is for GPUs
            from nas_trainer.training.packing import choose_pack_size

            step_flops = 3 * first["flops"] * args.batch
            chosen = choose_pack_size(step_flops, first["peak_bytes"], first["free_bytes"])
            print(f"best measured K = {best['k']}; packing.choose_pack_size picks K = "
                  f"{chosen} (step {step_flops / 1e9:.0f} GFLOP, child "
                  f"{first['peak_bytes'] / 2**30:.2f} GiB)")
    if ref and "trainer" in results and "seconds" in results["trainer"]:
        reference = "CUDA-graph" if args.device.startswith("cuda") else "reference"
        print(f"\ntrainer / hand-written {reference} loop: "
              f"{results['trainer']['seconds'] / ref:.2f}× (target ≤ 1.10× on an H100)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--images", type=int, default=45_000, help="training images")
    parser.add_argument("--val-images", type=int, default=5_000)
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=0.4)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--packs", default="1,2,4,8", help="K values for packing")
    parser.add_argument("--only", help="comma-separated variants to run")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings (CPU-friendly smoke run)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the variants in this process (default with --quick): "
                             "faster, but later variants find warm caches")
    parser.add_argument("--json", help="also write all results to this file")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    if args.quick:
        args.epochs, args.images, args.val_images, args.test_images = 1, 256, 64, 64
        args.batch, args.packs, args.in_process = 32, "1,2", True
    args.device_name = (torch.cuda.get_device_name(torch.device(args.device))
                        if args.device.startswith("cuda") else "cpu")
    variants = ["graph", "trainer", "eager", "resnet20-graph", "resnet20-eager"] + \
        [f"pack-{k}" for k in args.packs.split(",") if k]
    if args.only:
        variants = [v for v in variants if v in args.only.split(",")]
    results = {}
    for variant in variants:
        print(f"running {variant} ...", file=sys.stderr, flush=True)
        if args.in_process:
            results[variant] = run_variant(argparse.Namespace(**{**vars(args),
                                                                 "variant": variant}))
        else:
            results[variant] = spawn(args, variant)
        print(f"  {json.dumps(results[variant])}", file=sys.stderr, flush=True)
    report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {k: v for k, v in vars(args).items()},
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()

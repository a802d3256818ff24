"""Load a trained child network back from a search's results.

A trial that may write to the search volume leaves `trials/<index:05d>/model.pt`
(contract 5): the weights, the architecture JSON (contract 2) and the arguments the
network was built with. Load it:

    from nas_trainer.export import load_trained_model
    model = load_trained_model("runs/digits", trial_index=17)     # eval mode, on the CPU
    logits = model(images)   # images normalised as checkpoint["normalization"] says

A search on a cluster whose trial pods did not mount the volume trains its best
architecture once more at the end and leaves `best/model.pt` (status.final.weights);
with the volume copied to `./cora-data`:

    from nas_trainer.export import load_final_model
    model = load_final_model("cora-data")

Or rebuild any architecture in your own code, trained or not, from its JSON alone
(from `best.json`, `trials.jsonl` or a Trial's `spec.architecture`):

    import json, torch
    from nas_trainer.models import build_model

    architecture = json.load(open("runs/digits/best.json"))["architecture"]
    model = build_model(architecture, num_classes=10, input_shape=(3, 32, 32))
    # then train it longer, wider data, ... — or load weights saved by a trial:
    checkpoint = torch.load("runs/digits/trials/00017/model.pt", weights_only=True)
    model = build_model(checkpoint["architecture"], checkpoint["build"]["num_classes"],
                        tuple(checkpoint["build"]["input_shape"]),
                        **checkpoint["build"]["options"])
    model.load_state_dict(checkpoint["state_dict"])

Image models expect (N, C, H, W) float input normalised per channel with
`checkpoint["normalization"]` (mean and std on the 0–255 scale); language models take
token ids of `checkpoint["vocab"]` and return (logits, state).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .models import build_model
from .results import MODEL_FILE, ResultsFolder
from .training.result import MODEL_SCHEMA


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The contents of a trial's model.pt (tensors on the CPU)."""
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("schema") != MODEL_SCHEMA:
        raise ValueError(f"{path} is not a nas-train model file ({MODEL_SCHEMA})")
    return checkpoint


def load_model(path: str | Path) -> nn.Module:
    """Rebuild the network saved in a model.pt and load its weights; in eval mode."""
    checkpoint = read_checkpoint(path)
    build = checkpoint["build"]
    model = build_model(checkpoint["architecture"], build["num_classes"],
                        tuple(build["input_shape"]), **build.get("options", {}))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def trial_model_path(results_dir: str | Path, trial_index: int) -> Path:
    """Where contract 5 puts a trial's weights."""
    return ResultsFolder(results_dir).trial_dir(trial_index) / MODEL_FILE


def final_model_path(results_dir: str | Path) -> Path:
    """Where contract 5 puts the weights of the final training (the best architecture)."""
    return ResultsFolder(results_dir).final_dir / MODEL_FILE


def load_trained_model(results_dir: str | Path, trial_index: int) -> nn.Module:
    """The trained network of trial `trial_index` of the search whose volume (or
    `nas run --out` folder) is `results_dir`."""
    path = trial_model_path(results_dir, trial_index)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the trial's pod did not mount the "
                                "search volume, or the trial has not finished")
    return load_model(path)


def load_final_model(results_dir: str | Path) -> nn.Module:
    """The best architecture as trained by the search's final training (`best/model.pt`
    of the search volume `results_dir`), in eval mode on the CPU."""
    path = final_model_path(results_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the final training has not succeeded "
                                "(see status.final of the search), or the trial pods kept "
                                "their own weights (status.final.weights)")
    return load_model(path)

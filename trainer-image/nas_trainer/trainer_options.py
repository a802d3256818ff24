"""The built-in trainer's options by name, torch-free: its datasets and their options,
the reward transforms and the augmentation. The manifest's parser (``nas validate``),
the trainer's configuration and the data loaders all read them here; the CRD states the
same lists (tests/unit/test_manifest_crd_agreement.py compares it with these)."""
from __future__ import annotations

from dataclasses import dataclass

IMAGE_DATASETS = ("digits", "synthetic", "cifar10", "cifar100", "mnist", "fashion-mnist",
                  "image-folder")
TEXT_DATASETS = ("ptb",)
DATASETS = IMAGE_DATASETS + TEXT_DATASETS

# Options each dataset takes (camelCase, as in the manifest's trainer.datasetOptions).
DATASET_OPTIONS = {
    "synthetic": {"images": "images", "imageSize": "image_size", "channels": "channels",
                  "classes": "classes", "testImages": "test_images", "seed": "seed"},
    "image-folder": {"imageSize": "image_size", "grayscale": "grayscale"},
}

REWARD_TRANSFORMS = ("identity", "square", "cube", "inverse", "inverse-square")


@dataclass(frozen=True)
class Augment:
    """Training augmentation: random crop after zero-padding by `pad`, horizontal flips."""
    pad: int = 0
    flip: bool = False


# The spaces whose children it trains (nas-bench-graph is answered from its table), and
# the keyword options each model builder takes besides the architecture (spec.trainer.model).
IMAGE_SPACES = ("macro-cnn", "nasnet", "nas-bench-201")
LANGUAGE_SPACES = ("rnn-cell",)
TRAINED_SPACES = IMAGE_SPACES + LANGUAGE_SPACES
BUILD_OPTIONS: dict[str, tuple[str, ...]] = {
    "macro-cnn": (),
    "nasnet": ("auxiliary", "drop_path"),
    "nas-bench-201": ("channels", "cells_per_stage"),
    "rnn-cell": ("embedding_size", "hidden_size", "dropout", "tie_weights"),
}

# What a reward can be made of (spec.trainer.reward.metric), per kind of space.
IMAGE_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
LANGUAGE_METRICS = ("train_loss", "val_loss", "val_perplexity")

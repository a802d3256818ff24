"""Section 5: the layout of the search volume (and of ``nas run --out DIR``)."""

from __future__ import annotations

MOUNT_PATH = "/data"  # where the controller (and a trial pod that mounts it) sees it

MANIFEST_FILE = "search.yaml"
TRIALS_FILE = "trials.jsonl"  # one line per finished trial: the source of truth
BEST_FILE = "best.json"
CHECKPOINT_DIR = "checkpoint"
TRIALS_DIR = "trials"
FINAL_DIR = "best"  # the final training of a search on a cluster
MODEL_FILE = "model.pt"
RESULT_FILE = "result.json"


def trial_dir(index: int) -> str:
    """A trial's folder, relative to the volume's root: ``trials/<index:05d>``."""
    return f"{TRIALS_DIR}/{index:05d}"


def trial_output_dir(index: int) -> str:
    """A trial's folder as a pod that mounts the volume sees it (``NAS_OUTPUT_DIR``)."""
    return f"{MOUNT_PATH}/{trial_dir(index)}"

"""Section 4: the Trial object's name, labels and phases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABEL_SEARCH = "archsearch.io/search"
LABEL_TRIAL_INDEX = "archsearch.io/trial-index"

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
FINISHED_PHASES = (SUCCEEDED, FAILED)


def trial_name(search: str, index: int) -> str:
    """``<search>-<index:05d>``: the name fixes the index, so a create answered 409 means
    this index was already written."""
    return f"{search}-{index:05d}"


def trial_index(obj: Mapping[str, Any]) -> int:
    """A Trial's index: its spec, else its label (both are written with it)."""
    spec_index = (obj.get("spec") or {}).get("index")
    if spec_index is not None:
        return int(spec_index)
    return int(obj["metadata"]["labels"][LABEL_TRIAL_INDEX])


def trial_labels(search: str, index: int) -> dict[str, str]:
    return {LABEL_SEARCH: search, LABEL_TRIAL_INDEX: str(index)}

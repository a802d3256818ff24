"""Section 2: the architecture JSON (``nas.architecture/v1``) a Trial carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCHEMA = "nas.architecture/v1"
# the keys of the document; a Trial's spec.architecture holds these and nothing else
KEYS = ("schema", "space", "options", "tokens", "canonical", "hash")


def trial_architecture(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` as a Trial's spec.architecture: the contract's keys only."""
    return {key: doc[key] for key in KEYS if key in doc}

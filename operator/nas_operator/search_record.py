"""The operator's typed view of an ArchitectureSearch: the fields its passes decide on,
read once from the object with the CRD's defaults applied (the API server applies them
too; an object written before a default existed, or a test's dict, may lack them).

Code that decides on a search reads ``SearchRecord.of(search)`` instead of raw dicts
(``spec.suspend``, ``spec.trials.mode``, ``parallelism or 1``, ``generation or 1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas_contracts.cluster import MODE_JOB, MODE_WARM_POOL

# the CRD's defaults (crds/archsearch.io_architecturesearches.yaml)
DEFAULT_MAX_TRIALS = 100
DEFAULT_PARALLELISM = 1
DEFAULT_RETRIES = 2
DEFAULT_TIMEOUT_SECONDS = 3600


def _integer(section: Mapping[str, Any], key: str, default: int) -> int:
    value = section.get(key)
    return default if value is None else int(value)


@dataclass(frozen=True)
class TrialsSpec:
    """``spec.trials``."""

    max: int = DEFAULT_MAX_TRIALS
    parallelism: int = DEFAULT_PARALLELISM
    retries: int = DEFAULT_RETRIES
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    mode: str = MODE_JOB

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None) -> "TrialsSpec":
        trials = (spec or {}).get("trials") or {}
        return cls(
            max=_integer(trials, "max", DEFAULT_MAX_TRIALS),
            parallelism=_integer(trials, "parallelism", DEFAULT_PARALLELISM) or 1,
            retries=_integer(trials, "retries", DEFAULT_RETRIES),
            timeout_seconds=_integer(trials, "timeoutSeconds", DEFAULT_TIMEOUT_SECONDS),
            mode=str(trials.get("mode") or MODE_JOB),
        )

    @property
    def warm_pool(self) -> bool:
        return self.mode == MODE_WARM_POOL


@dataclass(frozen=True)
class SearchRecord:
    namespace: str
    name: str
    generation: int  # metadata.generation: 1 until the server sets one
    suspend: bool  # spec.suspend
    trials: TrialsSpec
    claim_name: str  # spec.storage.claimName: "" when the operator makes the claim
    phase: str | None  # status.phase, as last written
    deleting: bool

    @classmethod
    def of(cls, search: Mapping[str, Any]) -> "SearchRecord":
        meta = search.get("metadata") or {}
        spec = search.get("spec") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            generation=int(meta.get("generation") or 1),
            suspend=bool(spec.get("suspend")),
            trials=TrialsSpec.of(spec),
            claim_name=str((spec.get("storage") or {}).get("claimName") or ""),
            phase=(search.get("status") or {}).get("phase"),
            deleting=bool(meta.get("deletionTimestamp")),
        )

    @property
    def warm_pool(self) -> bool:
        """spec.trials.mode is WarmPool: warm worker pods run its Trials, not Jobs."""
        return self.trials.warm_pool


def trial_generation(trial: Mapping[str, Any]) -> int:
    """A Trial's spec.searchGeneration: which trainer snapshot runs it."""
    return int((trial.get("spec") or {}).get("searchGeneration") or 1)

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
DEFAULT_STORAGE_SIZE = "1Gi"
DEFAULT_ACCESS_MODES = ("ReadWriteOnce",)
DEFAULT_RETENTION_POLICY = "Retain"


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
    # spec.trials.packing.maxPerWorker: Trials one warm worker holds at once (1: no packs)
    max_per_worker: int = 1

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None) -> "TrialsSpec":
        trials = (spec or {}).get("trials") or {}
        return cls(
            max=_integer(trials, "max", DEFAULT_MAX_TRIALS),
            parallelism=_integer(trials, "parallelism", DEFAULT_PARALLELISM) or 1,
            retries=_integer(trials, "retries", DEFAULT_RETRIES),
            timeout_seconds=_integer(trials, "timeoutSeconds", DEFAULT_TIMEOUT_SECONDS),
            mode=str(trials.get("mode") or MODE_JOB),
            max_per_worker=_integer(trials.get("packing") or {}, "maxPerWorker", 1) or 1,
        )

    @property
    def warm_pool(self) -> bool:
        return self.mode == MODE_WARM_POOL


@dataclass(frozen=True)
class StorageSpec:
    """``spec.storage``: an existing claim (``claim_name``), or the claim to make."""

    claim_name: str = ""  # "" when the operator makes the claim
    size: str = DEFAULT_STORAGE_SIZE
    access_modes: tuple[str, ...] = DEFAULT_ACCESS_MODES
    storage_class_name: str = ""
    retention_policy: str = DEFAULT_RETENTION_POLICY

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None) -> "StorageSpec":
        storage = (spec or {}).get("storage") or {}
        return cls(
            claim_name=str(storage.get("claimName") or ""),
            size=str(storage.get("size") or DEFAULT_STORAGE_SIZE),
            access_modes=tuple(storage.get("accessModes") or DEFAULT_ACCESS_MODES),
            storage_class_name=str(storage.get("storageClassName") or ""),
            retention_policy=str(storage.get("retentionPolicy") or DEFAULT_RETENTION_POLICY),
        )


@dataclass(frozen=True)
class SearchRecord:
    namespace: str
    name: str
    generation: int  # metadata.generation: 1 until the server sets one
    suspend: bool  # spec.suspend
    trials: TrialsSpec
    storage: StorageSpec
    final_training: bool  # spec.finalTraining.enabled
    final_epochs: int | None  # spec.finalTraining.epochs: None for the trainer's own
    phase: str | None  # status.phase, as last written
    deleting: bool

    @classmethod
    def of(cls, search: Mapping[str, Any]) -> "SearchRecord":
        meta = search.get("metadata") or {}
        spec = search.get("spec") or {}
        final = spec.get("finalTraining") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            generation=int(meta.get("generation") or 1),
            suspend=bool(spec.get("suspend")),
            trials=TrialsSpec.of(spec),
            storage=StorageSpec.of(spec),
            final_training=final.get("enabled") is not False,
            final_epochs=int(final["epochs"]) if final.get("epochs") else None,
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

"""The ArchitectureSearch manifest (contract 1), parsed once at the edge into typed,
defaulted dataclasses. Torch-free.

    manifest = load_search("examples/nas-bench-graph-cora.yaml")
    space = manifest.space.build(); strategy = manifest.strategy.build(space)

Errors are ManifestError with the field's path and what to fix, e.g.
"spec.trials.parallelism must be <= spec.trials.max (got 8 > 4)".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .spaces import SPACE_NAMES, SearchSpace, get_space
from .spaces.base import OptionError
from .strategies.hyperparameters import STRATEGY_NAMES, hyperparameter_arguments

API_VERSION = "archsearch.io/v1alpha1"
KIND = "ArchitectureSearch"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# spec.trainer keys that shape the pod, not the training (never passed to the trainer).
POD_KEYS = ("image", "command", "args", "resources", "nodeSelector", "tolerations", "affinity",
            "priorityClassName", "env", "volumes", "volumeMounts", "mountSearchVolume")
RETENTION_POLICIES = ("Retain", "Delete")


class ManifestError(ValueError):
    """A manifest field is wrong; the message names it and says what to fix."""


class _Section:
    """Reads the fields of one mapping, checking types; `finish` rejects unknown keys."""

    def __init__(self, value: Any, path: str) -> None:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ManifestError(f"{path} must be a mapping (got {type(value).__name__})")
        self.values = dict(value)
        self.path = path
        self.known: list[str] = []

    def field(self, key: str) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return self.values.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        self.known.append(key)
        value = self.values.get(key)
        return default if value is None else value

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()
               ) -> str | None:
        value = self.raw(key, default)
        if value is not None and not isinstance(value, str):
            raise ManifestError(f"{self.field(key)} must be a string (got {value!r})")
        if choices and value not in choices:
            raise ManifestError(f"{self.field(key)} must be one of {', '.join(choices)} "
                                f"(got {value!r})")
        return value

    def integer(self, key: str, default: int | None = None, minimum: int | None = None
                ) -> int | None:
        value = self.raw(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ManifestError(f"{self.field(key)} must be an integer (got {value!r})")
        if minimum is not None and value < minimum:
            raise ManifestError(f"{self.field(key)} must be >= {minimum} (got {value})")
        return value

    def number(self, key: str, default: float | None = None, positive: bool = False
               ) -> float | None:
        value = self.raw(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ManifestError(f"{self.field(key)} must be a number (got {value!r})")
        if positive and value <= 0:
            raise ManifestError(f"{self.field(key)} must be > 0 (got {value})")
        return float(value)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise ManifestError(f"{self.field(key)} must be true or false (got {value!r})")
        return value

    def string_list(self, key: str) -> tuple[str, ...] | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ManifestError(f"{self.field(key)} must be a list of strings (got {value!r})")
        return tuple(value)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.raw(key, {})
        if not isinstance(value, Mapping):
            raise ManifestError(f"{self.field(key)} must be a mapping (got {value!r})")
        return dict(value)

    def sequence(self, key: str) -> list[Any]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise ManifestError(f"{self.field(key)} must be a list (got {value!r})")
        return list(value)

    def finish(self, open_keys: bool = False) -> None:
        unknown = [key for key in self.values if key not in self.known]
        if unknown and not open_keys:
            raise ManifestError(f"{self.field(unknown[0])} is not a field "
                                f"(valid: {', '.join(self.known)})")


@dataclass(frozen=True)
class SpaceSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    decisions: tuple[dict[str, Any], ...] | None = None

    def build(self) -> SearchSpace:
        return get_space(self.name, self.options,
                         list(self.decisions) if self.decisions is not None else None)


@dataclass(frozen=True)
class StrategySpec:
    name: str = "reinforce"
    seed: int = 0
    # Manifest (camelCase) names, as make_strategy takes them; only those given.
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def build(self, space: SearchSpace):  # -> Strategy (imported lazily: torch)
        from .strategies import make_strategy
        return make_strategy(self.name, space, self.seed, **self.hyperparameters)


@dataclass(frozen=True)
class TrialsSpec:
    max: int = 100
    parallelism: int = 1
    max_failed: int = 10
    retries: int = 2
    timeout_seconds: int = 3600
    goal: float | None = None


@dataclass(frozen=True)
class TrainerSpec:
    image: str | None = None
    command: tuple[str, ...] | None = None   # None: the built-in `nas-train`
    args: tuple[str, ...] = ()
    dataset: str | None = None
    data_path: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    reward: dict[str, Any] | None = None
    deterministic: bool = False
    resources: dict[str, Any] = field(default_factory=dict)
    node_selector: dict[str, Any] = field(default_factory=dict)
    tolerations: tuple[Any, ...] = ()
    affinity: dict[str, Any] = field(default_factory=dict)
    priority_class_name: str = ""
    env: tuple[Any, ...] = ()
    volumes: tuple[Any, ...] = ()
    volume_mounts: tuple[Any, ...] = ()
    mount_search_volume: bool = False
    # The spec.trainer mapping as written, for the trainer configuration.
    document: dict[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """The trainer's configuration (nas-train --config, NAS_TRAINER_CONFIG): spec.trainer
        without the pod fields, keys as in the manifest (contract 7)."""
        return {k: v for k, v in self.document.items() if k not in POD_KEYS}


@dataclass(frozen=True)
class StorageSpec:
    claim_name: str = ""
    size: str = "1Gi"
    storage_class_name: str = ""
    access_modes: tuple[str, ...] = ("ReadWriteOnce",)
    retention_policy: str = "Retain"


@dataclass(frozen=True)
class SearchManifest:
    name: str
    namespace: str | None
    space: SpaceSpec
    strategy: StrategySpec
    trials: TrialsSpec
    trainer: TrainerSpec
    storage: StorageSpec
    suspend: bool
    document: dict[str, Any]   # the manifest as given

    @property
    def uses_builtin_trainer(self) -> bool:
        return self.trainer.command is None


def parse_search(doc: Any) -> SearchManifest:
    """Parse and check an ArchitectureSearch document (a mapping, e.g. from YAML)."""
    if not isinstance(doc, Mapping):
        raise ManifestError(f"an ArchitectureSearch must be a mapping (got {type(doc).__name__})")
    if doc.get("apiVersion") != API_VERSION:
        raise ManifestError(f"apiVersion must be {API_VERSION} (got {doc.get('apiVersion')!r})")
    if doc.get("kind") != KIND:
        raise ManifestError(f"kind must be {KIND} (got {doc.get('kind')!r})")
    unknown = sorted(set(doc) - {"apiVersion", "kind", "metadata", "spec", "status"})
    if unknown:
        raise ManifestError(f"{unknown[0]} is not a field "
                            f"(valid: apiVersion, kind, metadata, spec)")
    metadata = _Section(doc.get("metadata"), "metadata")
    name = metadata.string("name")
    if not name or len(name) > 63 or not DNS_LABEL.match(name):
        raise ManifestError(f"metadata.name must be a DNS label: lowercase letters, digits and "
                            f"'-', at most 63 characters (got {name!r})")
    namespace = metadata.string("namespace")
    metadata.finish(open_keys=True)  # labels, annotations, ...: Kubernetes' business

    spec = _Section(doc.get("spec"), "spec")
    space = _parse_space(_Section(spec.raw("searchSpace"), "spec.searchSpace"))
    strategy = _parse_strategy(_Section(spec.raw("strategy"), "spec.strategy"))
    trials = _parse_trials(_Section(spec.raw("trials"), "spec.trials"))
    trainer = _parse_trainer(_Section(spec.raw("trainer"), "spec.trainer"))
    storage = _parse_storage(_Section(spec.raw("storage"), "spec.storage"))
    suspend = spec.boolean("suspend", False)
    spec.finish()
    return SearchManifest(name=name, namespace=namespace, space=space, strategy=strategy,
                          trials=trials, trainer=trainer, storage=storage, suspend=suspend,
                          document=dict(doc))


def load_search(path: str | Path) -> SearchManifest:
    """Read and parse a manifest file (YAML)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ManifestError(f"{path}: cannot read it ({err.strerror})") from err
    except yaml.YAMLError as err:
        raise ManifestError(f"{path}: not valid YAML: {err}") from err
    return parse_search(doc)


def _parse_space(section: _Section) -> SpaceSpec:
    name = section.string("name", None)
    if name not in SPACE_NAMES:
        raise ManifestError(f"spec.searchSpace.name must be one of {', '.join(SPACE_NAMES)} "
                            f"(got {name!r})")
    options = section.mapping("options")
    decisions = section.raw("decisions")
    section.finish()
    if name == "custom" and decisions is None:
        raise ManifestError("spec.searchSpace.decisions is required for the custom space "
                            "(a list of {name, choices})")
    if name != "custom" and decisions is not None:
        raise ManifestError(f"spec.searchSpace.decisions is only for the custom space "
                            f"(got it with {name})")
    spec = SpaceSpec(name=name, options=options,
                     decisions=tuple(decisions) if decisions is not None else None)
    try:
        spec.build()  # checks options and decisions now, not when the search starts
    except OptionError as err:
        raise ManifestError(f"spec.searchSpace.options.{err}") from err
    except ValueError as err:
        raise ManifestError(f"spec.searchSpace.{err}") from err
    return spec


def _parse_strategy(section: _Section) -> StrategySpec:
    name = section.string("name", "reinforce")
    if name not in STRATEGY_NAMES:
        raise ManifestError(f"spec.strategy.name must be one of {', '.join(STRATEGY_NAMES)} "
                            f"(got {name!r})")
    seed = section.integer("seed", 0, minimum=0)
    hyperparameters = {k: v for k, v in section.values.items() if k not in ("name", "seed")}
    try:
        hyperparameter_arguments(name, hyperparameters)
    except ValueError as err:
        raise ManifestError(f"spec.strategy.{err}") from err
    return StrategySpec(name=name, seed=seed, hyperparameters=hyperparameters)


def _parse_trials(section: _Section) -> TrialsSpec:
    defaults = TrialsSpec()
    trials = TrialsSpec(
        max=section.integer("max", defaults.max, minimum=1),
        parallelism=section.integer("parallelism", defaults.parallelism, minimum=1),
        max_failed=section.integer("maxFailed", defaults.max_failed, minimum=0),
        retries=section.integer("retries", defaults.retries, minimum=0),
        timeout_seconds=section.integer("timeoutSeconds", defaults.timeout_seconds, minimum=1),
        goal=section.number("goal", None),
    )
    section.finish()
    if trials.parallelism > trials.max:
        raise ManifestError(f"spec.trials.parallelism must be <= spec.trials.max "
                            f"(got {trials.parallelism} > {trials.max})")
    return trials


def _parse_trainer(section: _Section) -> TrainerSpec:
    reward = section.raw("reward")
    if reward is not None:
        reward_section = _Section(reward, "spec.trainer.reward")
        reward_section.string("metric")
        reward_section.string("transform")  # the trainer knows its transforms
        reward_section.integer("lastEpochs", minimum=1)
        reward_section.number("c", positive=True)
        reward_section.finish()
    command = section.string_list("command")
    if command is not None and not command:
        raise ManifestError("spec.trainer.command must not be empty (leave it out to run "
                            "the built-in nas-train)")
    trainer = TrainerSpec(
        image=section.string("image"),
        command=command,
        args=section.string_list("args") or (),
        dataset=section.string("dataset"),
        data_path=section.string("dataPath"),
        epochs=section.integer("epochs", minimum=1),
        batch_size=section.integer("batchSize", minimum=1),
        learning_rate=section.number("learningRate", positive=True),
        reward=dict(reward) if reward is not None else None,
        deterministic=section.boolean("deterministic", False),
        resources=section.mapping("resources"),
        node_selector=section.mapping("nodeSelector"),
        tolerations=tuple(section.sequence("tolerations")),
        affinity=section.mapping("affinity"),
        priority_class_name=section.string("priorityClassName", "") or "",
        env=tuple(section.sequence("env")),
        volumes=tuple(section.sequence("volumes")),
        volume_mounts=tuple(section.sequence("volumeMounts")),
        mount_search_volume=section.boolean("mountSearchVolume", False),
        document=dict(section.values),
    )
    # Further keys configure the trainer itself (the built-in one documents its own, a
    # user's trainer may take any): passed through in config(), checked by the trainer.
    section.finish(open_keys=True)
    if trainer.dataset == "image-folder" and not trainer.data_path:
        raise ManifestError("spec.trainer.dataPath is required for dataset image-folder")
    return trainer


def _parse_storage(section: _Section) -> StorageSpec:
    defaults = StorageSpec()
    size = section.raw("size", defaults.size)
    if not isinstance(size, (str, int)) or isinstance(size, bool):
        raise ManifestError(f"spec.storage.size must be a quantity such as 1Gi (got {size!r})")
    access_modes = section.string_list("accessModes") or defaults.access_modes
    storage = StorageSpec(
        claim_name=section.string("claimName", "") or "",
        size=str(size),
        storage_class_name=section.string("storageClassName", "") or "",
        access_modes=access_modes,
        retention_policy=section.string("retentionPolicy", "Retain", RETENTION_POLICIES),
    )
    section.finish()
    return storage

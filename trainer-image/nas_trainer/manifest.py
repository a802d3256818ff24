"""The ArchitectureSearch manifest (contract 1), parsed once at the edge into typed,
defaulted dataclasses. Torch-free.

    manifest = load_search("examples/nas-bench-graph-cora.yaml")
    space = manifest.space.build(); strategy = manifest.strategy.build(space)

Errors are ManifestError with the field's path and what to fix, e.g.
"spec.trials.parallelism must be <= spec.trials.max (got 8 > 4)".
"""
from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import pod_fields
from .manifest_errors import ManifestError
from .early_stopping.spec import EarlyStoppingSpec, parse_early_stopping
from .nodes_check import MAX_NODES, check_nodes
from .packing_check import MAX_PACK, check_packing
from .oneshot.manifest_check import check_shared_weights
from .spaces import SPACE_NAMES, SearchSpace, get_space
from .spaces.base import OptionError
from .strategies.hyperparameters import STRATEGY_NAMES, hyperparameter_arguments

from nas_contracts.api import API_VERSION
from nas_contracts.api import SEARCH_KIND as KIND
from nas_contracts.cluster import TRAINER_POD_FIELDS as POD_KEYS

from .trainer_options import (DATASETS, LANGUAGE_SPACES, REWARD_TRANSFORMS, TEXT_DATASETS,
                              TRAINED_SPACES)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Trial Jobs are named <search>-<index:05d> and Job names must fit in 63 characters.
MAX_NAME_LENGTH = 50
# POD_KEYS: spec.trainer keys that shape the pod, never passed to the trainer (contract 7).
# (securityContext is no field: the operator sets a restricted one; the CRD and this parser
# refuse it with that reason.)
RETENTION_POLICIES = ("Retain", "Delete")
ACCESS_MODES = ("ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod")
IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
CUDA_GRAPH_MODES = ("auto", "on", "off")
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")
# The custom space's decisions, as the CRD bounds them.
DECISION_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_DECISIONS = 64
MAX_CHOICES = 256
MAX_CHOICE_LENGTH = 63
# The built-in trainer's model and dataset options, with their types (the CRD's explicit
# schemas; nas_trainer.preflight checks which space or dataset takes which).
# (type, minimum, maximum): floats are fractions in [0, 1).
MODEL_OPTION_TYPES = {"auxiliary": (bool,), "drop_path": (float,), "channels": (int, 1, 4096),
                      "cells_per_stage": (int, 1, 64), "embedding_size": (int, 1, 65536),
                      "hidden_size": (int, 1, 65536), "dropout": (float,),
                      "tie_weights": (bool,)}
DATASET_OPTION_TYPES = {"images": (int, 1, 10_000_000), "imageSize": (int, 1, 4096),
                        "channels": (int, 1, 64), "classes": (int, 2, 100_000),
                        "testImages": (int, 0, 10_000_000), "seed": (int, 0, None),
                        "grayscale": (bool,)}
# Deeper nesting than this anywhere in a manifest is refused before it is parsed: the CRD has
# no deeper field (the affinity's are at 10), and a recursive reader must not be the limit.
MAX_DEPTH = 24


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

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] = (),
               nonempty: str | None = None) -> str | None:
        """`nonempty`: the message's advice when the string may not be "" (e.g. what
        leaving the field out does)."""
        value = self.raw(key, default)
        if value is not None and not isinstance(value, str):
            raise ManifestError(f"{self.field(key)} must be a string (got {value!r})")
        if choices and value is not None and value not in choices:
            raise ManifestError(f"{self.field(key)} must be one of {', '.join(choices)} "
                                f"(got {value!r})")
        if nonempty is not None and value == "":
            raise ManifestError(f"{self.field(key)} must not be empty ({nonempty})")
        return value

    def integer(self, key: str, default: int | None = None, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        value = self.raw(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ManifestError(f"{self.field(key)} must be an integer (got {value!r})")
        if minimum is not None and value < minimum:
            raise ManifestError(f"{self.field(key)} must be >= {minimum} (got {value})")
        if maximum is not None and value > maximum:
            raise ManifestError(f"{self.field(key)} must be <= {maximum} (got {value})")
        return value

    def number(self, key: str, default: float | None = None, minimum: float | None = None,
               maximum: float | None = None, exclusive_minimum: bool = False,
               exclusive_maximum: bool = False) -> float | None:
        """A number; bounds as the CRD's (OpenAPI v3.0: exclusiveMinimum is a flag)."""
        value = self.raw(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ManifestError(f"{self.field(key)} must be a number (got {value!r})")
        if not math.isfinite(value):
            raise ManifestError(f"{self.field(key)} must be a finite number (got {value!r})")
        below = minimum is not None and (value <= minimum if exclusive_minimum
                                         else value < minimum)
        above = maximum is not None and (value >= maximum if exclusive_maximum
                                         else value > maximum)
        if below or above:
            if minimum is not None and maximum is not None:
                rule = (f"in {'(' if exclusive_minimum else '['}{minimum:g}, {maximum:g}"
                        f"{')' if exclusive_maximum else ']'}")
            elif minimum is not None:
                rule = f"{'>' if exclusive_minimum else '>='} {minimum:g}"
            else:
                rule = f"{'<' if exclusive_maximum else '<='} {maximum:g}"
            raise ManifestError(f"{self.field(key)} must be {rule} (got {value})")
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

    def sequence(self, key: str, required: tuple[str, ...] = ()) -> list[Any]:
        """A list of mappings (core/v1 objects), each with the `required` string fields;
        "name", when required, must not be empty."""
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise ManifestError(f"{self.field(key)} must be a list (got {value!r})")
        for i, item in enumerate(value):
            where = f"{self.field(key)}[{i}]"
            if not isinstance(item, Mapping):
                raise ManifestError(f"{where} must be a mapping (got {item!r})")
            for name in required:
                if not isinstance(item.get(name), str) or (name == "name" and not item[name]):
                    raise ManifestError(f"{where}.{name} is required: a non-empty string "
                                        f"(got {item.get(name)!r})")
        return list(value)

    def text(self, key: str, most: int, default: str | None = None, nonempty: str | None = None
             ) -> str | None:
        """A string of at most `most` characters (the CRD's maxLength)."""
        value = self.string(key, default, nonempty=nonempty)
        if value is not None and len(value) > most:
            raise ManifestError(f"{self.field(key)} must be at most {most} characters "
                                f"(got {len(value)})")
        return value

    def finish(self, open_keys: bool = False) -> None:
        unknown = [key for key in self.values if key not in self.known]
        if unknown and not open_keys:
            raise ManifestError(f"{self.field(unknown[0])} is not a field "
                                f"(valid: {', '.join(self.known)})")


def check_depth(text: str, source: str = "the manifest") -> None:
    """Refuse YAML nested deeper than MAX_DEPTH, naming where, before a recursive reader
    (PyYAML's composer, json) meets it. Reads the event stream, which does not recurse."""
    path: list[Any] = []   # per open collection: its key (mapping) or index (sequence)
    kinds: list[str] = []
    expect_key: list[bool] = []

    def where() -> str:
        out = ""
        for kind, part in zip(kinds, path):
            out += f"[{part}]" if kind == "seq" else f".{part}"
        return out.lstrip(".") or "the document"

    def advance() -> None:   # one value done in the innermost collection
        if kinds and kinds[-1] == "seq":
            path[-1] += 1
        elif kinds:
            expect_key[-1] = True

    try:
        for event in yaml.parse(text):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(kinds) >= MAX_DEPTH:
                    raise ManifestError(f"{source}: {where()} nests deeper than {MAX_DEPTH} "
                                        f"levels: no field of an ArchitectureSearch does")
                if kinds and kinds[-1] == "map":
                    expect_key[-1] = True
                is_map = isinstance(event, yaml.MappingStartEvent)
                kinds.append("map" if is_map else "seq")
                path.append(None if is_map else 0)
                expect_key.append(True)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                kinds.pop(), path.pop(), expect_key.pop()
                if kinds and kinds[-1] == "seq":
                    path[-1] += 1
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                if kinds and kinds[-1] == "map" and expect_key[-1]:
                    path[-1] = getattr(event, "value", "*")
                    expect_key[-1] = False
                else:
                    advance()
    except yaml.YAMLError:
        return  # the loader reports it with its position


def read_manifest(text: str, source: str) -> Any:
    """The YAML document of a manifest file; errors name `source` and what is wrong."""
    check_depth(text, source)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ManifestError(f"{source}: not valid YAML: {err}") from err
    except RecursionError as err:  # an alias bomb or the like: never a traceback
        raise ManifestError(f"{source}: nests too deeply to read") from err


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


TRIAL_MODES = ("Job", "WarmPool")
WARM_POOL_COMMAND_MESSAGE = (
    "spec.trials.mode WarmPool runs the built-in trainer (`nas-worker`): remove "
    "spec.trainer.command, or use spec.trials.mode Job to run your own trainer")


@dataclass(frozen=True)
class TrialsSpec:
    max: int = 100
    parallelism: int = 1
    max_failed: int = 10
    retries: int = 2
    timeout_seconds: int = 3600
    goal: float | None = None
    mode: str = "Job"   # on a cluster: a Job per Trial, or WarmPool workers; `nas run` ignores it
    # spec.trials.packing.maxPerWorker (None: absent, one Trial per worker); WarmPool only
    max_per_worker: int | None = None

    @property
    def in_flight(self) -> int:
        """Trials the controller keeps running or waiting at once: with packing each of
        the parallelism workers holds up to maxPerWorker of them."""
        if self.mode == "WarmPool" and self.max_per_worker:
            return self.parallelism * self.max_per_worker
        return self.parallelism


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

    def reached_by_trials(self, trainer: "TrainerSpec") -> bool:
        """Whether trial pods mount the search volume: asked (trainer.mountSearchVolume),
        or a ReadWriteMany volume the operator makes (its trial Jobs mount that one)."""
        operator_rwx = not self.claim_name and "ReadWriteMany" in self.access_modes
        return trainer.mount_search_volume or operator_rwx


@dataclass(frozen=True)
class FinalTrainingSpec:
    """On a cluster, the best architecture trained once more with the search volume mounted,
    so its weights are kept. `nas run` keeps every trial's weights and ignores it."""
    enabled: bool = True
    epochs: int | None = None   # None: spec.trainer.epochs


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
    final_training: FinalTrainingSpec = field(default_factory=FinalTrainingSpec)
    early_stopping: EarlyStoppingSpec | None = None   # spec.earlyStopping (nas_trainer.early_stopping)

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
    if not name or len(name) > MAX_NAME_LENGTH or not DNS_LABEL.match(name):
        raise ManifestError(f"metadata.name must be a DNS label: lowercase letters, digits and "
                            f"'-', at most {MAX_NAME_LENGTH} characters (trial Jobs are named "
                            f"<search>-<index:05d>) (got {name!r})")
    namespace = metadata.string("namespace")
    metadata.finish(open_keys=True)  # labels, annotations, ...: Kubernetes' business

    spec = _Section(doc.get("spec"), "spec")
    space = _parse_space(_Section(spec.raw("searchSpace"), "spec.searchSpace"))
    strategy = _parse_strategy(_Section(spec.raw("strategy"), "spec.strategy"))
    trials = _parse_trials(_Section(spec.raw("trials"), "spec.trials"))
    trainer = _parse_trainer(_Section(spec.raw("trainer"), "spec.trainer"), name)
    storage = _parse_storage(_Section(spec.raw("storage"), "spec.storage"))
    final_training = _parse_final_training(_Section(spec.raw("finalTraining"),
                                                    "spec.finalTraining"))
    suspend = spec.boolean("suspend", False)
    early_stopping = parse_early_stopping(spec.raw("earlyStopping"), space, trainer, storage)
    spec.finish()
    check_shared_weights((spec.raw("trainer") or {}).get("sharedWeights"), space, trials,
                         trainer, storage, early_stopping)
    _check_trainer_fits_space(space, trainer)
    _check_goal(trials, space, trainer)
    if trials.mode == "WarmPool" and trainer.command is not None:
        raise ManifestError(WARM_POOL_COMMAND_MESSAGE)
    check_nodes(spec.raw("trainer") or {}, trials.mode, space.name)
    check_packing(trials.max_per_worker, trials.mode, spec.raw("trainer") or {},
                  early_stopping)
    return SearchManifest(name=name, namespace=namespace, space=space, strategy=strategy,
                          trials=trials, trainer=trainer, storage=storage, suspend=suspend,
                          document=dict(doc), final_training=final_training,
                          early_stopping=early_stopping)


def load_search(path: str | Path) -> SearchManifest:
    """Read and parse a manifest file (YAML)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: cannot read it ({getattr(err, 'strerror', err)})") from err
    return parse_search(read_manifest(text, str(path)))


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
    if decisions is not None:
        _check_decision_bounds(decisions)
    spec = SpaceSpec(name=name, options=options,
                     decisions=tuple(decisions) if decisions is not None else None)
    try:
        spec.build()  # checks options and decisions now, not when the search starts
    except OptionError as err:
        raise ManifestError(f"spec.searchSpace.options.{err}") from err
    except ValueError as err:
        raise ManifestError(f"spec.searchSpace.{err}") from err
    return spec


def _check_trainer_fits_space(space: SpaceSpec, trainer: TrainerSpec) -> None:
    """What the built-in trainer can never train, refused here (and by the CRD's CEL)
    rather than by every trial failing the same way."""
    if trainer.command is not None:
        return  # the user's own trainer: any dataset, any space
    if space.name == "custom":
        raise ManifestError("spec.trainer.command is required for the custom space: the "
                            "built-in trainer cannot build a custom architecture (see "
                            "examples/custom-digits-mlp.yaml)")
    if trainer.dataset is None or space.name not in TRAINED_SPACES:
        return
    if space.name in LANGUAGE_SPACES and trainer.dataset not in TEXT_DATASETS:
        raise ManifestError(f"spec.trainer.dataset must be a text corpus "
                            f"({', '.join(TEXT_DATASETS)}) for space {space.name} "
                            f"(got {trainer.dataset!r})")
    if space.name not in LANGUAGE_SPACES and trainer.dataset in TEXT_DATASETS:
        raise ManifestError(f"spec.trainer.dataset {trainer.dataset!r} is a text corpus, for "
                            f"rnn-cell; space {space.name} needs an image dataset "
                            f"({', '.join(d for d in DATASETS if d not in TEXT_DATASETS)})")


def _check_goal(trials: TrialsSpec, space: SpaceSpec, trainer: TrainerSpec) -> None:
    """The built-in trainer's rewards are >= 0, and <= 1 unless an inverse transform or a
    metric that is not an accuracy makes them larger (the CRD's CEL rule, in the same
    words). Your own trainer may report any finite reward."""
    goal = trials.goal
    if goal is None or trainer.command is not None:
        return
    reward = trainer.reward or {}
    unbounded = space.name in LANGUAGE_SPACES or str(reward.get("transform", "")).startswith(
        "inverse") or ("metric" in reward and not str(reward["metric"]).endswith("accuracy"))
    if goal < 0 or (goal > 1 and not unbounded):
        raise ManifestError(f"spec.trials.goal must be in [0, 1]: the built-in trainer's rewards "
                            f"are an accuracy, its square or cube; only an inverse reward "
                            f"transform (spec.trainer.reward.transform) or a metric that is not "
                            f"an accuracy makes larger rewards, and none is below 0 (got {goal})")


def _check_decision_bounds(decisions: Any) -> None:
    """What the CRD bounds and the custom space itself does not: sizes and name spelling
    (the space checks the rest: mappings, duplicates, scalar choices)."""
    if not isinstance(decisions, list):
        raise ManifestError("spec.searchSpace.decisions must be a list of {name, choices} "
                            f"(got {type(decisions).__name__} {reprlib.repr(decisions)})")
    if len(decisions) > MAX_DECISIONS:
        raise ManifestError(f"spec.searchSpace.decisions must have at most {MAX_DECISIONS} "
                            f"entries (got {len(decisions)})")
    for i, entry in enumerate(decisions):
        if not isinstance(entry, Mapping):
            continue
        name, choices = entry.get("name"), entry.get("choices")
        if isinstance(name, str) and name and (len(name) > 63 or not DECISION_NAME.match(name)):
            raise ManifestError(f"spec.searchSpace.decisions[{i}].name must be letters, digits, "
                                f"'_', '-' or '.', at most 63 (got {name!r})")
        if isinstance(choices, list) and len(choices) > MAX_CHOICES:
            raise ManifestError(f"spec.searchSpace.decisions[{i}].choices must have at most "
                                f"{MAX_CHOICES} values (got {len(choices)})")
        for j, choice in enumerate(choices if isinstance(choices, list) else ()):
            if isinstance(choice, str) and len(choice) > MAX_CHOICE_LENGTH:
                raise ManifestError(f"spec.searchSpace.decisions[{i}].choices[{j}] must be at "
                                    f"most {MAX_CHOICE_LENGTH} characters (got {len(choice)})")


def _parse_strategy(section: _Section) -> StrategySpec:
    name = section.string("name", "reinforce")
    if name not in STRATEGY_NAMES:
        raise ManifestError(f"spec.strategy.name must be one of {', '.join(STRATEGY_NAMES)} "
                            f"(got {name!r})")
    seed = section.integer("seed", 0, minimum=0)
    hyperparameters = {k: v for k, v in section.values.items()
                       if k not in ("name", "seed") and v is not None}
    try:
        hyperparameter_arguments(name, hyperparameters)
    except ValueError as err:
        raise ManifestError(f"spec.strategy.{err}") from err
    return StrategySpec(name=name, seed=seed, hyperparameters=hyperparameters)


def _parse_trials(section: _Section) -> TrialsSpec:
    defaults = TrialsSpec()
    trials = TrialsSpec(
        max=section.integer("max", defaults.max, minimum=1, maximum=1_000_000),
        parallelism=section.integer("parallelism", defaults.parallelism, minimum=1,
                                    maximum=10_000),
        max_failed=section.integer("maxFailed", defaults.max_failed, minimum=0),
        retries=section.integer("retries", defaults.retries, minimum=0, maximum=100),
        timeout_seconds=section.integer("timeoutSeconds", defaults.timeout_seconds, minimum=1,
                                        maximum=31_536_000),
        goal=section.number("goal", None),
        mode=section.string("mode", defaults.mode, choices=TRIAL_MODES),
        max_per_worker=_parse_packing(section.raw("packing"), section.has("packing")),
    )
    section.finish()
    if trials.parallelism > trials.max:
        raise ManifestError(f"spec.trials.parallelism must be <= spec.trials.max "
                            f"(got {trials.parallelism} > {trials.max})")
    if section.has("maxFailed") and trials.max_failed > trials.max:
        raise ManifestError(f"spec.trials.maxFailed must be <= spec.trials.max (a search cannot "
                            f"fail more trials than it runs) (got {trials.max_failed} > "
                            f"{trials.max})")
    return trials


def _parse_packing(value: Any, given: bool) -> int | None:
    """spec.trials.packing.maxPerWorker, None when packing is absent."""
    if not given:
        return None
    section = _Section(value, "spec.trials.packing")
    if not section.has("maxPerWorker"):
        raise ManifestError("spec.trials.packing.maxPerWorker is required (1 to "
                            f"{MAX_PACK}: Trials one warm worker holds at once)")
    count = section.integer("maxPerWorker", minimum=1, maximum=MAX_PACK)
    section.finish()
    return count


def _parse_reward(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    section = _Section(value, "spec.trainer.reward")
    section.text("metric", 253, nonempty="leave it out for the space's default metric")
    section.string("transform", choices=REWARD_TRANSFORMS)
    section.integer("lastEpochs", minimum=1)
    section.number("c", minimum=0, exclusive_minimum=True)
    section.finish()
    return dict(section.values)


def _words(section: _Section, key: str, most: int, longest: int) -> tuple[str, ...] | None:
    words = section.string_list(key)
    if words is not None and len(words) > most:
        raise ManifestError(f"{section.field(key)} must have at most {most} items "
                            f"(got {len(words)})")
    for i, word in enumerate(words or ()):
        if len(word) > longest:
            raise ManifestError(f"{section.field(key)}[{i}] must be at most {longest} "
                                f"characters (got {len(word)})")
    return words


def _typed_options(section: _Section, key: str, types: dict[str, tuple]) -> None:
    """spec.trainer.model / datasetOptions: the CRD's explicit fields and types (which space
    or dataset takes which: nas_trainer.preflight, and the CRD's CEL)."""
    options = section.mapping(key)
    for name, value in options.items():
        path = f"{section.field(key)}.{name}"
        if name not in types:
            raise ManifestError(f"{path} is not a field (valid: {', '.join(types)})")
        kind = types[name][0]
        if kind is bool and not isinstance(value, bool):
            raise ManifestError(f"{path} must be true or false (got {value!r})")
        if kind is int:
            low, high = types[name][1:]
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (
                    high is not None and value > high):
                raise ManifestError(f"{path} must be an integer in [{low}, {high or 'inf'}] "
                                    f"(got {value!r})")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not 0 <= value < 1):
            raise ManifestError(f"{path} must be a number in [0, 1) (got {value!r})")


def _parse_trainer(section: _Section, search_name: str | None = None) -> TrainerSpec:
    pod_fields.check_pod_fields(section.values, search_name, section.has)
    command = _words(section, "command", 64, 32768)
    if command is not None and not command:
        raise ManifestError("spec.trainer.command must not be empty (leave it out to run "
                            "the built-in nas-train)")
    dataset = section.text("dataset", 253)
    if command is None and dataset is not None and dataset not in DATASETS:
        raise ManifestError(f"spec.trainer.dataset must be one of {', '.join(DATASETS)} "
                            f"(got {dataset!r}), or set spec.trainer.command to run your own "
                            f"trainer")
    node_selector = section.mapping("nodeSelector")
    for key, value in node_selector.items():
        if not isinstance(value, str):
            raise ManifestError(f"spec.trainer.nodeSelector.{key} must be a string, quoted if "
                                f"it looks like a number or boolean (got {value!r})")
    trainer = TrainerSpec(
        image=section.text("image", 512, nonempty="leave it out for the operator's trainer image"),
        command=command,
        args=_words(section, "args", 256, 32768) or (),
        dataset=dataset,
        data_path=section.text("dataPath", 4096,
                               nonempty="leave it out for the dataset's default"),
        epochs=section.integer("epochs", minimum=1),
        batch_size=section.integer("batchSize", minimum=1),
        learning_rate=section.number("learningRate", minimum=0, exclusive_minimum=True),
        reward=_parse_reward(section.raw("reward")),
        deterministic=section.boolean("deterministic", False),
        resources=section.mapping("resources"),
        node_selector=node_selector,
        tolerations=tuple(section.sequence("tolerations")),
        affinity=section.mapping("affinity"),
        priority_class_name=section.string("priorityClassName", "") or "",
        env=tuple(section.sequence("env", required=("name",))),
        volumes=tuple(section.sequence("volumes", required=("name",))),
        volume_mounts=tuple(section.sequence("volumeMounts", required=("name", "mountPath"))),
        mount_search_volume=section.boolean("mountSearchVolume", False),
        document=dict(section.values),
    )
    section.string("imagePullPolicy", choices=IMAGE_PULL_POLICIES)
    section.string("runtimeClassName")
    section.string("serviceAccountName")
    section.raw("imagePullSecrets")
    # The built-in trainer's own settings (nas_trainer.training.config.TrainerConfig),
    # checked as the CRD and the trainer check them: the same manifest that kubectl
    # accepts runs in the trial pod.
    _typed_options(section, "datasetOptions", DATASET_OPTION_TYPES)
    section.boolean("download", True)
    section.number("validation", minimum=0, exclusive_minimum=True)
    section.integer("splitSeed")
    section.number("momentum", minimum=0)
    section.boolean("nesterov")
    section.number("weightDecay", minimum=0)
    section.number("labelSmoothing", minimum=0, maximum=1, exclusive_maximum=True)
    section.number("gradClip", minimum=0)
    section.number("warmupFraction", minimum=0, maximum=1, exclusive_maximum=True)
    _check_augment(section.raw("augment"))
    section.number("dropPath", minimum=0, maximum=1, exclusive_maximum=True)
    section.number("auxWeight", minimum=0)
    _typed_options(section, "model", MODEL_OPTION_TYPES)
    section.integer("bptt", minimum=1)
    section.integer("seed")
    device = section.string("device", "auto")
    if not DEVICE.match(device):
        raise ManifestError(f"spec.trainer.device must be auto, cpu, mps, cuda or cuda:N "
                            f"(got {device})")
    section.string("cudaGraph", choices=CUDA_GRAPH_MODES)
    section.integer("cpuThreads", minimum=1)
    section.integer("processes", minimum=1, maximum=pod_fields.MAX_PROCESSES)
    section.integer("nodes", minimum=1, maximum=MAX_NODES)  # pods of one trial (nodes_check)
    section.raw("sharedWeights")  # checked with the space and trials (oneshot/manifest_check)
    # The CRD has no other fields: an unknown key (a typo) is refused here as kubectl's
    # strict field validation refuses it, not ignored by the trainer.
    section.finish()
    if trainer.dataset == "image-folder" and not trainer.data_path:
        raise ManifestError("spec.trainer.dataPath is required for dataset image-folder")
    return trainer


def _check_augment(value: Any) -> None:
    if value is None or isinstance(value, bool):
        return
    section = _Section(value, "spec.trainer.augment") if isinstance(value, Mapping) else None
    if section is None:
        raise ManifestError(f"spec.trainer.augment must be true, false or {{pad, flip}} "
                            f"(got {value!r})")
    section.integer("pad", minimum=0, maximum=64)
    section.boolean("flip")
    section.finish()


def _parse_final_training(section: _Section) -> FinalTrainingSpec:
    defaults = FinalTrainingSpec()
    final = FinalTrainingSpec(enabled=section.boolean("enabled", defaults.enabled),
                              epochs=section.integer("epochs", minimum=1))
    section.finish()
    return final


def _parse_storage(section: _Section) -> StorageSpec:
    defaults = StorageSpec()
    size = section.raw("size", defaults.size)
    pod_fields.check_size(size, "spec.storage.size")
    access_modes = section.string_list("accessModes")
    if access_modes is not None:
        if not access_modes:
            raise ManifestError("spec.storage.accessModes must not be empty (leave it out for "
                                "ReadWriteOnce)")
        for mode in access_modes:
            if mode not in ACCESS_MODES:
                raise ManifestError(f"spec.storage.accessModes must be among "
                                    f"{', '.join(ACCESS_MODES)} (got {mode!r})")
        if len(set(access_modes)) != len(access_modes):
            raise ManifestError(f"spec.storage.accessModes lists a mode twice "
                                f"(got {list(access_modes)})")
    claim_name = section.string("claimName", "") or ""
    if claim_name and (len(claim_name) > 253 or not pod_fields.DNS_SUBDOMAIN.match(claim_name)):
        raise ManifestError(f"spec.storage.claimName {claim_name} is not a valid claim name: a "
                            f"DNS subdomain (lowercase letters, digits, '-' and '.', starting and "
                            f"ending with a letter or digit)")
    storage_class = section.string("storageClassName", "") or ""
    if storage_class and (len(storage_class) > 253 or
                          not pod_fields.DNS_SUBDOMAIN.match(storage_class)):
        raise ManifestError(f"spec.storage.storageClassName {storage_class} is not a valid "
                            f"StorageClass name: a DNS subdomain (lowercase letters, digits, '-' "
                            f"and '.')")
    storage = StorageSpec(
        claim_name=claim_name,
        size=str(size),
        storage_class_name=storage_class,
        access_modes=access_modes or defaults.access_modes,
        retention_policy=section.string("retentionPolicy", "Retain", RETENTION_POLICIES),
    )
    section.finish()
    if storage.claim_name and storage.retention_policy == "Delete":
        raise ManifestError("spec.storage.retentionPolicy Delete applies only to a volume the "
                            "operator makes; remove claimName or use Retain")
    return storage

"""The trainer's configuration: the manifest's `spec.trainer` block (contract 1), parsed
once into typed values. Keys are camelCase as in the manifest; pod-level keys (image,
resources, ...) belong to the operator and are ignored here."""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from nas_contracts.cluster import TRAINER_POD_FIELDS as POD_KEYS

from ..trainer_options import DATASETS, REWARD_TRANSFORMS, Augment
from ..oneshot.settings import SharedWeights
from ..pod_fields import MAX_PROCESSES


class ConfigError(ValueError):
    """The trainer configuration is invalid: a permanent failure (exit code 3)."""


# Earlier spellings, still read (a trial created before the rename carries its config).
REWARD_TRANSFORM_ALIASES = {"inverse_square": "inverse-square"}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class RewardConfig:
    """reward = transform(best `metric` over the last `last_epochs` epochs); best is the
    maximum for accuracies, the minimum for losses and perplexities. `c` scales the
    inverse transforms (c / x, c / x²)."""
    metric: str = "val_accuracy"
    transform: str = "cube"
    last_epochs: int = 5
    c: float = 80.0

    @classmethod
    def default_for(cls, language: bool) -> "RewardConfig":
        # Zoph & Le: accuracy³ for images, c / perplexity² (c = 80) for language models.
        return cls("val_perplexity", "inverse-square") if language else cls()

    @classmethod
    def parse(cls, doc: Mapping[str, Any], language: bool) -> "RewardConfig":
        base = cls.default_for(language)
        unknown = sorted(set(doc) - {"metric", "transform", "lastEpochs", "c"})
        if unknown:
            raise ConfigError(f"trainer.reward has unknown keys {unknown} "
                              "(known: metric, transform, lastEpochs, c)")
        metric = doc.get("metric", base.metric)
        transform = doc.get("transform", base.transform)
        # A metric given without a transform keeps the default transform only where it
        # fits: perplexities default to c / x², everything else to the identity.
        if "metric" in doc and "transform" not in doc and metric != base.metric:
            transform = "inverse-square" if "perplexity" in metric else "identity"
        transform = REWARD_TRANSFORM_ALIASES.get(transform, transform)
        reward = cls(str(metric), str(transform), int(doc.get("lastEpochs", base.last_epochs)),
                     float(doc.get("c", base.c)))
        if reward.transform not in REWARD_TRANSFORMS:
            raise ConfigError(f"trainer.reward.transform must be one of "
                              f"{list(REWARD_TRANSFORMS)} (got {reward.transform!r})")
        if reward.last_epochs < 1:
            raise ConfigError(f"trainer.reward.lastEpochs must be >= 1 "
                              f"(got {reward.last_epochs})")
        return reward


@dataclass(frozen=True)
class TrainerConfig:
    dataset: str | None = None
    data_path: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    download: bool = True
    validation: float | int | None = None      # hold-out: fraction or count
    split_seed: int = 0                          # the search's: same validation set for all
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float | None = None           # None: per-kind default, scaled by batch
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None            # None: the space's default
    label_smoothing: float = 0.0
    grad_clip: float | None = None               # None: 0.25 for language models, off else
    warmup_fraction: float = 0.03
    augment: Augment | None = None               # None: the dataset's default
    drop_path: float = 0.0                       # nasnet: final ScheduledDropPath prob
    aux_weight: float = 0.0                      # nasnet: auxiliary head loss weight (0: none)
    model: dict[str, Any] = field(default_factory=dict)  # builder options (snake_case)
    bptt: int = 35                               # language models: unrolled steps
    reward: RewardConfig | None = None           # None: the papers' default for the space
    deterministic: bool = False
    seed: int = 0
    device: str = "auto"
    cuda_graph: str = "auto"                     # auto | on | off
    cpu_threads: int | None = None               # None: $OMP_NUM_THREADS, else usable cores
    processes: int | None = None                 # data-parallel; None: one per visible GPU
    shared_weights: SharedWeights | None = None  # ENAS: scored on a supernet (oneshot/)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None, warn: bool = True) -> "TrainerConfig":
        doc = dict(doc or {})
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in doc.items():
            if key in POD_KEYS:
                continue
            name = snake(key)
            if name not in names:
                if warn:
                    print(f"warning: ignoring unknown trainer key {key!r}", file=sys.stderr)
                continue
            values[name] = value
        try:
            if "augment" in values:
                values["augment"] = parse_augment(values["augment"])
            if "model" in values:
                values["model"] = {snake(k): v for k, v in dict(values["model"]).items()}
            if "dataset_options" in values:
                values["dataset_options"] = dict(values["dataset_options"])
            if "shared_weights" in values:
                values["shared_weights"] = SharedWeights.from_dict(values["shared_weights"])
            if "reward" in values:
                values["reward"] = dict(values["reward"])  # parsed once the space is known
            for name in ("epochs", "batch_size", "seed", "split_seed", "bptt"):
                if name in values:
                    values[name] = as_int(values[name], name)
            for name in ("cpu_threads", "processes"):
                if values.get(name) is not None:
                    values[name] = as_int(values[name], name)
            for name in ("learning_rate", "momentum", "weight_decay", "label_smoothing",
                         "grad_clip", "warmup_fraction", "drop_path", "aux_weight"):
                if values.get(name) is not None:
                    values[name] = float(values[name])
            if isinstance(values.get("cuda_graph"), bool):
                values["cuda_graph"] = "on" if values["cuda_graph"] else "off"
        except (TypeError, ValueError) as err:
            raise ConfigError(f"trainer configuration: {err}") from err
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(self.dataset is None or self.dataset in DATASETS,
             f"trainer.dataset must be one of {list(DATASETS)} (got {self.dataset!r})")
        need(self.epochs >= 1, f"trainer.epochs must be >= 1 (got {self.epochs})")
        need(self.batch_size >= 1, f"trainer.batchSize must be >= 1 (got {self.batch_size})")
        need(self.learning_rate is None or self.learning_rate > 0,
             f"trainer.learningRate must be > 0 (got {self.learning_rate})")
        need(0 <= self.label_smoothing < 1,
             f"trainer.labelSmoothing must be in [0, 1) (got {self.label_smoothing})")
        need(0 <= self.drop_path < 1, f"trainer.dropPath must be in [0, 1) (got {self.drop_path})")
        need(self.aux_weight >= 0, f"trainer.auxWeight must be >= 0 (got {self.aux_weight})")
        need(0 <= self.warmup_fraction < 1,
             f"trainer.warmupFraction must be in [0, 1) (got {self.warmup_fraction})")
        need(self.bptt >= 1, f"trainer.bptt must be >= 1 (got {self.bptt})")
        need(self.cpu_threads is None or self.cpu_threads >= 1,
             f"trainer.cpuThreads must be >= 1 (got {self.cpu_threads})")
        need(self.processes is None or 1 <= self.processes <= MAX_PROCESSES,
             f"trainer.processes must be between 1 and {MAX_PROCESSES} (got {self.processes})")
        need(self.cuda_graph in ("auto", "on", "off"),
             f"trainer.cudaGraph must be auto, on or off (got {self.cuda_graph!r})")
        need(self.device == "auto" or re.fullmatch(r"cpu|cuda(:\d+)?|mps", self.device) is not None,
             f"trainer.device must be auto, cpu or cuda[:N] (got {self.device!r})")
        need(self.validation is None or (isinstance(self.validation, (int, float))
                                         and self.validation > 0),
             "trainer.validation must be a fraction in (0, 1) or a count "
             f"(got {self.validation!r})")

    def reward_for(self, language: bool) -> RewardConfig:
        if isinstance(self.reward, RewardConfig):
            return self.reward
        return RewardConfig.parse(self.reward or {}, language)


def as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{name} must be an integer (got {value!r})")
    return int(value)


def parse_augment(value: Any) -> Augment:
    """`augment: false` (none), `true` (the dataset default is kept: returns None upstream),
    or `{pad: 4, flip: true}`."""
    if value is False:
        return Augment(0, False)
    if value is True or value is None:
        return None  # type: ignore[return-value]
    if isinstance(value, Mapping):
        unknown = set(value) - {"pad", "flip"}
        if unknown:
            raise ValueError(f"augment takes pad and flip (got {sorted(unknown)})")
        return Augment(pad=as_int(value.get("pad", 0), "augment.pad"),
                       flip=bool(value.get("flip", False)))
    raise ValueError(f"augment must be true, false or {{pad, flip}} (got {value!r})")


# Defaults that depend on the space: (weight decay, momentum, nesterov, base lr at batch 128).
SPACE_DEFAULTS: dict[str, tuple[float, float, bool, float]] = {
    "macro-cnn": (1e-4, 0.9, True, 0.1),       # Zoph & Le
    "nasnet": (3e-4, 0.9, True, 0.1),
    "nas-bench-201": (5e-4, 0.9, True, 0.1),   # Dong & Yang
    "rnn-cell": (0.0, 0.0, False, 20.0),       # plain SGD with clipping, as word-LM baselines
}


@dataclass(frozen=True)
class Optimization:
    """The optimizer settings a trial actually uses, defaults resolved."""
    learning_rate: float
    momentum: float
    nesterov: bool
    weight_decay: float
    grad_clip: float | None


def resolve_optimization(config: TrainerConfig, space: str) -> Optimization:
    weight_decay, momentum, nesterov, base_lr = SPACE_DEFAULTS.get(
        space, SPACE_DEFAULTS["macro-cnn"])
    language = space == "rnn-cell"
    if config.learning_rate is not None:
        lr = config.learning_rate
    elif language:
        lr = base_lr
    else:
        lr = base_lr * config.batch_size / 128  # linear scaling rule (Goyal et al. 2017)
    momentum = config.momentum if config.momentum is not None else momentum
    nesterov = (config.nesterov if config.nesterov is not None else nesterov) and momentum > 0
    clip = config.grad_clip if config.grad_clip is not None else (0.25 if language else None)
    return Optimization(lr, momentum, nesterov,
                        config.weight_decay if config.weight_decay is not None else weight_decay,
                        clip if clip and clip > 0 else None)

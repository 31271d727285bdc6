"""Config schema and validation: every knob a user may turn, checked when the config loads.

The YAML files under ``conf/`` are the interface; the dataclasses below say which keys exist
and their types, and :func:`validate` turns any mistake into one ConfigError that names the
key and the allowed values, before data is read or a model built.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, InterpolationResolutionError, OmegaConfBaseException

from deepmars.errors import ConfigError


def sample_root(name: str) -> str:
    """Folder of an embedded sample data set (``${deepmars_sample:hirise}`` in YAML)."""
    root = Path(str(resources.files("deepmars") / "sample_data" / name))
    if not root.is_dir():
        raise ConfigError(f"no embedded sample named {name!r} (have: hirise, msl)")
    return str(root)


if not OmegaConf.has_resolver("deepmars_sample"):
    OmegaConf.register_new_resolver("deepmars_sample", sample_root)


@dataclass
class DownloadConfig:
    url: Optional[str] = None
    archive: Optional[str] = None
    size: Optional[int] = None
    known_hash: Optional[str] = None
    record_api: Optional[str] = None


@dataclass
class ClassesConfig:
    file: Optional[str] = None
    format: str = "indexed"
    names: Optional[List[str]] = None


@dataclass
class MetadataConfig:
    pattern: Optional[str] = None
    types: Dict[str, str] = field(default_factory=dict)


@dataclass
class DatasetConfig:
    name: str = MISSING
    version: str = ""
    doi: Optional[str] = None
    license: Optional[str] = None
    root: Optional[str] = None
    download: Optional[DownloadConfig] = None
    image_dir: str = "."
    labels: Dict[str, str] = MISSING
    classes: ClassesConfig = field(default_factory=ClassesConfig)
    drop_empty_classes: bool = True
    metadata: MetadataConfig = field(default_factory=MetadataConfig)
    # Keep only images whose file-name metadata match, e.g. {instrument: [ML]} (MSLNet-inst).
    where: Dict[str, List[str]] = field(default_factory=dict)


@dataclass
class SplitConfig:
    name: str = MISSING
    sol_range: Optional[Dict[str, List[int]]] = None
    field: str = "source_image"
    fractions: Optional[Dict[str, float]] = None
    tolerance: float = 0.02
    candidates: int = 200
    seed: int = 0


@dataclass
class ModelConfig:
    source: str = MISSING
    name: str = MISSING
    pretrained: str = "none"
    img_size: Optional[int] = None
    resize: Optional[int] = None
    drop_rate: Optional[float] = None
    head: Optional[str] = None


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    lr_mult: Dict[str, float] = field(default_factory=dict)
    bias_lr_mult: float = 1.0
    bias_decay: bool = True


@dataclass
class ScheduleConfig:
    policy: str = "step"
    stepsize: int = 500
    gamma: float = 0.1
    milestones: List[int] = field(default_factory=list)
    min_lr_ratio: float = 0.0
    warmup_iters: int = 0
    warmup_start_ratio: float = 0.1


@dataclass
class AugmentConfig:
    random_crop: bool = True
    mirror: bool = True
    vflip: bool = False
    rot90: bool = False


@dataclass
class TrainerConfig:
    max_iters: Optional[int] = None
    epochs: Optional[int] = None
    batch_size: int = 50
    eval_every: int = 250
    checkpoint_every: int = 250
    log_every: int = 10
    cache: str = "memory"
    num_workers: int = 0
    threads: Optional[int] = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    class_balance: str = "none"
    label_smoothing: float = 0.0
    head_init: str = "random"
    probe_c: float = 1.0
    resume: Optional[str] = None
    checkpoint_dir: str = "checkpoints"
    progress: str = "auto"
    eval_splits: List[str] = field(default_factory=lambda: ["train", "val", "test"])
    eval_batch_size: int = 100


@dataclass
class TrackingConfig:
    uri: Optional[str] = None
    artifact_location: Optional[str] = None
    experiment: str = "deepmars"
    run_name: Optional[str] = None
    log_model: bool = True
    # Set by MSLNet-inst (per_group) for its per-instrument runs; rarely set by hand.
    parent_run_id: Optional[str] = None


@dataclass
class PerGroupConfig:
    """One model per value of a file-name field, combined by routing (the paper's MSLNet-inst)."""

    groups: List[str] = field(default_factory=list)
    field: str = "instrument"  # after ``groups``: this name shadows dataclasses.field below it
    # A single model (run id, runs:/..., models:/..., or bundle file) to report beside the routed one.
    compare_model: Optional[str] = None


@dataclass
class TrainConfig:
    seed: int = 0
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    per_group: Optional[PerGroupConfig] = None


CHOICES: dict[str, tuple[str, ...]] = {
    "split.name": ("sol", "files", "source_image", "random", "all"),
    "model.source": ("timm", "torchvision"),
    "optim.name": ("sgd", "adamw"),
    "schedule.policy": ("step", "multistep", "cosine", "constant"),
    "trainer.cache": ("memory", "none"),
    "trainer.class_balance": ("none", "sampler", "loss"),
    "trainer.head_init": ("random", "linear_probe"),
    "trainer.progress": ("auto", "bar", "log"),
    "dataset.classes.format": ("indexed", "csv"),
}
POSITIVE = ("trainer.batch_size", "trainer.eval_every", "trainer.checkpoint_every",
            "trainer.log_every", "trainer.eval_batch_size", "optim.lr")


def _check_values(cfg: DictConfig) -> None:
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {list(allowed)}")
    for key in POSITIVE:
        value = OmegaConf.select(cfg, key)
        if value is None or value <= 0:
            raise ConfigError(f"{key}: must be > 0, got {value!r}")
    t = cfg.trainer
    if (t.max_iters is None) == (t.epochs is None):
        raise ConfigError("trainer.max_iters / trainer.epochs: set exactly one (the other null), "
                          f"got max_iters={t.max_iters}, epochs={t.epochs}")
    if (t.max_iters or t.epochs or 1) <= 0:
        raise ConfigError("trainer.max_iters / trainer.epochs must be > 0")
    bad = [s for s in t.eval_splits if s not in ("train", "val", "test")]
    if bad:
        raise ConfigError(f"trainer.eval_splits: {bad} not in ['train', 'val', 'test']")
    if t.num_workers < 0:
        raise ConfigError(f"trainer.num_workers: must be >= 0, got {t.num_workers}")


def _touch_all(node: DictConfig | ListConfig) -> None:
    """Read every set value, so an interpolation that cannot resolve fails with its full key."""
    for k in (node.keys() if isinstance(node, DictConfig) else range(len(node))):
        if not OmegaConf.is_missing(node, k):
            child = node[k]
            if isinstance(child, (DictConfig, ListConfig)):
                _touch_all(child)


def _allowed_keys(key: str) -> str:
    """'; allowed keys: [...]' for an unknown ``key``, from the schema node that would hold it."""
    parent = key.rpartition(".")[0]
    schema = OmegaConf.structured(TrainConfig)
    node = OmegaConf.select(schema, parent) if parent else schema
    if not isinstance(node, DictConfig) or OmegaConf.get_type(node) in (dict, None):
        return ""
    return f"; allowed keys: {sorted(str(k) for k in node.keys())}"


def validate(cfg: DictConfig) -> DictConfig:
    """Merge ``cfg`` into the schema (types, unknown keys) and check allowed values."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
        try:
            OmegaConf.resolve(merged)
        except InterpolationResolutionError:
            _touch_all(merged)  # raises the same error, now naming its key (resolve's does not)
            raise
        for key in ("dataset.name", "dataset.labels", "model.source", "model.name", "split.name"):
            parent, _, leaf = key.rpartition(".")  # is_missing takes one key, not a dotted path
            if OmegaConf.is_missing(OmegaConf.select(merged, parent), leaf):
                raise ConfigError(f"{key} is required (missing value '???')")
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        msg = str(exc).splitlines()[0]
        if isinstance(exc, ConfigKeyError) and key:
            msg += _allowed_keys(key)
        raise ConfigError(f"{key}: {msg}" if key else msg) from None
    _check_values(merged)
    return merged


# Keys that do not change what is trained: they may differ when resuming.
RUN_ONLY_KEYS = ("per_group", "trainer.resume", "trainer.progress", "trainer.threads", "trainer.num_workers",
                 "trainer.checkpoint_dir", "tracking", "trainer.cache", "dataset.root")


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"a.b.c": value}; lists stay values."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def training_identity(cfg: DictConfig) -> dict[str, Any]:
    """The flattened config minus run-only keys: what must match for an exact resume."""
    return {k: v for k, v in flatten(cfg).items()
            if not any(k == r or k.startswith(r + ".") for r in RUN_ONLY_KEYS)}


def config_hash(cfg: DictConfig) -> str:
    blob = json.dumps(training_identity(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def diff_identity(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Readable ``key: old -> new`` lines for every key that differs."""
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]

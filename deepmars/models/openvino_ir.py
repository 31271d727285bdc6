"""The exported ONNX graph as OpenVINO IR (model.xml + model.bin), and its int8 quantization.

The IR is converted from the checked ONNX file, so both runtimes run one exported graph. Weights
stay float32 (``compress_to_fp16=False``: OpenVINO's default would round every weight to fp16 and
make the "exact" runtime inexact). The bundle's metadata goes into the IR's ``rt_info`` under
``deepmars``, so the IR alone can classify too.

int8: post-training static quantization with NNCF, calibrated on decoded training images (the
activations' ranges come from real data, not from random inputs). The first convolution (it sees
the normalised pixels) and the final layer (it writes the logits) stay float32: on the MSL Lite0
model that raised top-1 agreement with fp32 on the test split from 90.5% to 93.3% at the same
speed; leaving the depthwise convolutions float32 too reached 95.6% but lost half of int8's speed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

RT_INFO_KEY = "deepmars"


def convert_onnx(onnx_path: Path, xml_path: Path, metadata: Mapping[str, str]) -> Path:
    """ONNX file -> OpenVINO IR at ``xml_path`` (weights kept float32), metadata in rt_info."""
    import openvino as ov

    # read by the runtime's ONNX frontend, not ov.convert_model: that one also starts OpenVINO's usage
    # telemetry (network requests unless the user opted out; a forked process was seen hanging in its
    # DNS lookup)
    model = ov.Core().read_model(str(onnx_path))
    save(model, xml_path, metadata)
    return xml_path


def save(model, xml_path: Path, metadata: Mapping[str, str]) -> None:
    import openvino as ov

    for key, value in metadata.items():
        model.set_rt_info(str(value), [RT_INFO_KEY, key])
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml_path), compress_to_fp16=False)


def read_metadata(xml_path: Path) -> dict[str, str]:
    import openvino as ov

    model = ov.Core().read_model(str(xml_path))
    info = model.get_rt_info()
    if RT_INFO_KEY not in info:
        return {}
    return {key: value.astype(str) for key, value in info[RT_INFO_KEY].items()}


def quantize_int8(xml_path: Path, out_path: Path, calibration: Iterable[np.ndarray], subset_size: int,
                  metadata: Mapping[str, str]) -> Path:
    """NNCF post-training quantization of the fp32 IR, calibrated on ``calibration`` (uint8 NHWC batches).

    ``subset_size`` images are used for the activation statistics (NNCF's default is 300).
    """
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(xml_path))
    dataset = nncf.Dataset(list(calibration))
    layers = [op for op in model.get_ordered_ops() if op.get_type_name() in ("Convolution", "MatMul")]
    kept_float = nncf.IgnoredScope(names=[layers[0].get_friendly_name(), layers[-1].get_friendly_name()])
    quantized = nncf.quantize(model, dataset, subset_size=subset_size, ignored_scope=kept_float)
    save(quantized, out_path, {**metadata, "precision": "int8"})
    return out_path

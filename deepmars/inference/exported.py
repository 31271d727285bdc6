"""Classifiers that run an exported graph: ONNX Runtime (CPU provider) and OpenVINO (CPU plugin).

Both are fed the decode workers' uint8 arrays as they are (the graph crops, normalises and makes
the test-time views), with the run's ``threads`` as their intra-op thread count (None: the
runtime's default, all cores); the views' logits are combined here in float32, as eager does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepmars.inference.classifier import Classifier
from deepmars.models.bundle import ModelBundle
from deepmars.models.onnx_graph import INPUT_NAME, OUTPUT_NAME
from deepmars.models.tta import combine_views


class OnnxRuntimeClassifier(Classifier):
    runtime = "onnxruntime"

    def __init__(self, bundle: ModelBundle, onnx_path: Path, threads: int | None):
        import onnxruntime as ort

        super().__init__(bundle, "fp32")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def _logits(self, pixels: np.ndarray) -> np.ndarray:
        out = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(pixels)})[0]
        return combine_views(out, len(self.bundle.tta))


class OpenVinoClassifier(Classifier):
    """fp32 and int8 run with float32 for every float op; bf16 with OpenVINO's bf16 inference precision.

    int8 keeps f32 for the ops NNCF did not quantize, so its answers do not depend on whether the
    CPU has bf16.
    """

    runtime = "openvino"

    def __init__(self, bundle: ModelBundle, xml_path: Path, precision: str, threads: int | None):
        import openvino as ov

        super().__init__(bundle, precision)
        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                  "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(xml_path)), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def _logits(self, pixels: np.ndarray) -> np.ndarray:
        result = self.request.infer({0: np.ascontiguousarray(pixels)})
        # The request reuses its output buffer for the next batch: copy.
        return combine_views(np.array(result[0], dtype=np.float32, copy=True), len(self.bundle.tta))

"""The one interface every run classifies through: calibrated probabilities for decoded uint8 images.

predict.py, ``landmarks.py classify`` and evaluate.py hold a ``Classifier`` and never ask which
runtime is behind it. Each runtime implements ``_logits`` for a batch of decoded images
(uint8 NHWC at the bundle's ``resize``, as the decode workers produce them); calibration, the
catalog's model id and record, and the check on the first batch are shared here.

The torch classifier runs the bundle's own network and is the reference. An exported runtime
(``exported.py``) runs the ONNX graph or its OpenVINO IR, which hold the same preprocessing.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch

from deepmars.catalog.rows import ModelInfo
from deepmars.devices import model_device
from deepmars.inference.agreement import calibrated
from deepmars.models.bundle import ModelBundle
from deepmars.models.exported import Export
from deepmars.models.tta import combine_views, expand_views

FirstBatchHook = Callable[[np.ndarray, np.ndarray], None]


class Classifier(ABC):
    """A bundle behind one runtime at one precision."""

    runtime: str = ""

    def __init__(self, bundle: ModelBundle, precision: str):
        self.bundle = bundle
        self.precision = precision
        # Reduced precision can change classes, so its rows go under their own model id (e.g.
        # runs:/<id>+openvino-bf16); fp32 rows are interchangeable with eager's and share its id.
        self.variant = ""
        self.details: dict = {}  # export, checks: what runs.config records about this classifier
        self.on_first_batch: FirstBatchHook | None = None
        self.export: Export | None = None  # the exported files an exported runtime runs (None: eager)
        self._cleanup: list[Callable[[], None]] = []
        # One batch at a time: predict infers the next batch in a thread while the main thread may
        # classify a single image (content that vanished from the catalog), and an exported runtime's
        # infer requests serve one call at a time.
        self._busy = threading.Lock()

    @abstractmethod
    def _logits(self, pixels: np.ndarray) -> np.ndarray:
        """Raw float32 logits (N, classes) of decoded uint8 images (N, resize, resize, channels)."""

    @property
    def class_names(self) -> list[str]:
        return self.bundle.class_names

    @property
    def model_id(self) -> str:
        return f"{self.bundle.model_id}+{self.variant}" if self.variant else self.bundle.model_id

    @property
    def label(self) -> str:
        return f"{self.runtime} {self.precision}"

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        with self._busy:
            out = self._logits(pixels)
            if self.on_first_batch is not None:
                hook, self.on_first_batch = self.on_first_batch, None
                hook(pixels, out)
        return out

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, classes): softmax(logits / the bundle's temperature)."""
        return calibrated(self.logits(pixels), self.bundle.temperature)

    def info(self) -> ModelInfo:
        """The catalog's models row for the rows this classifier writes."""
        b = self.bundle
        model_cfg = dict(b.model_cfg)
        if self.variant:
            model_cfg["inference"] = {"runtime": self.runtime, "precision": self.precision,
                                      "reference_model_id": b.model_id, **self.details}
        return ModelInfo(model_id=self.model_id, class_names=list(b.class_names), dataset=b.dataset.get("name"),
                         temperature=b.temperature, preprocess=b.preprocess.to_dict(), model_cfg=model_cfg)

    def record(self) -> dict:
        """Which runtime and precision produced a run's rows (the catalog's runs.config)."""
        return {"runtime": self.runtime, "precision": self.precision, "model_id": self.model_id, **self.details}

    def add_cleanup(self, fn: Callable[[], None]) -> None:
        self._cleanup.append(fn)

    def close(self) -> None:
        while self._cleanup:
            self._cleanup.pop()()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TorchClassifier(Classifier):
    """The bundle's network in eager PyTorch, with its test-time views, on ``device`` (default: where its
    weights are; the model is moved there): fp32 (on the CPU, the reference every runtime is checked
    against) or bf16 autocast on the device's type."""

    runtime = "torch"

    def __init__(self, bundle: ModelBundle, precision: str, device: torch.device | None = None):
        super().__init__(bundle, precision)
        self.device = device or model_device(bundle.model)
        if model_device(bundle.model) != self.device:
            bundle.model.to(self.device)

    @property
    def label(self) -> str:
        return super().label + ("" if self.device.type == "cpu" else f" on {self.device}")

    def _logits(self, pixels: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # Arrays unpickled from a worker are read-only; preprocessing only reads them: no copy.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            batch = self.bundle.preprocess.eval_batch(pixels, self.device)
        autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.precision == "bf16"
                    else contextlib.nullcontext())
        views = self.bundle.tta
        with torch.inference_mode(), autocast:
            return combine_views(self.bundle.model(expand_views(batch, views)).float(), len(views)).cpu().numpy()

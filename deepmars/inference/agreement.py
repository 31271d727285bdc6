"""How close a runtime's answers are to eager fp32 PyTorch's, and when an fp32 runtime counts as exact.

The tolerance is on what the catalog stores and users filter on, the calibrated probabilities:
an fp32 runtime is exact when every probability is within ``PROBABILITY_TOLERANCE`` (1e-4) of
eager's on the checked images. Why 1e-4:

- float32 runtimes sum convolutions in other orders (and fuse ops), so they differ from eager by
  rounding: measured on tf_efficientnet_lite0 at most ~4e-5 in logits, and a logit difference d
  moves a probability of ``softmax(logits / T)`` by at most d / (2T); 1e-4 leaves headroom for
  that and for larger networks;
- it is 1/100 of the coarsest step users set thresholds in (0.01), and an exported model that is
  wrong (a missing op, wrong preprocessing, wrong weights) is off by far more (0.01-1).

The top-1 class then differs only where eager's two best classes are within 2e-4: a tie that float
rounding breaks either way (eager PyTorch itself does so between batch sizes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

PROBABILITY_TOLERANCE = 1e-4


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities, computed exactly as ``ModelBundle.predict_proba`` does, whatever the runtime."""
    return torch.softmax(torch.from_numpy(np.asarray(logits, dtype=np.float32)) / temperature, dim=1).numpy()


@dataclass(frozen=True)
class Agreement:
    """A runtime/precision against eager fp32 on the same images (``on`` says which)."""

    on: str
    images: int
    max_abs_logit: float
    max_abs_probability: float
    top1_agreement: float  # fraction of images with the same predicted class
    accuracy: float | None = None  # of this runtime, when the images are labeled
    reference_accuracy: float | None = None  # of eager fp32 on the same images

    @property
    def exact(self) -> bool:
        return self.max_abs_probability <= PROBABILITY_TOLERANCE

    def summary(self) -> str:
        text = (f"top-1 agreement with eager fp32 {100 * self.top1_agreement:.2f}% "
                f"({round(self.top1_agreement * self.images)}/{self.images}), "
                f"max |diff| logits {self.max_abs_logit:.2g}, "
                f"probabilities {self.max_abs_probability:.2g}")
        if self.accuracy is not None and self.reference_accuracy is not None:
            text += f"; accuracy {100 * self.accuracy:.2f}% (eager fp32 {100 * self.reference_accuracy:.2f}%)"
        return f"{text} on {self.on}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict) -> Agreement:
        """From a manifest's check (which may hold more, e.g. the measured img/s)."""
        return cls(**{f.name: record[f.name] for f in fields(cls) if f.name in record})


def measure(reference_logits: np.ndarray, logits: np.ndarray, temperature: float, on: str,
            targets: np.ndarray | None = None) -> Agreement:
    """Compare ``logits`` with eager fp32's ``reference_logits`` for the same images."""
    reference_logits = np.asarray(reference_logits, dtype=np.float32)
    logits = np.asarray(logits, dtype=np.float32)
    if reference_logits.shape != logits.shape:
        raise ValueError(f"logits of shape {logits.shape} against reference {reference_logits.shape}")
    n = len(logits)
    if n == 0:
        return Agreement(on, 0, 0.0, 0.0, 1.0)
    probs, ref_probs = calibrated(logits, temperature), calibrated(reference_logits, temperature)
    predicted, reference = probs.argmax(1), ref_probs.argmax(1)
    accuracy = reference_accuracy = None
    if targets is not None:
        accuracy = float((predicted == targets).mean())
        reference_accuracy = float((reference == targets).mean())
    return Agreement(on=on, images=n, max_abs_logit=float(np.abs(logits - reference_logits).max()),
                     max_abs_probability=float(np.abs(probs - ref_probs).max()),
                     top1_agreement=float((predicted == reference).mean()),
                     accuracy=accuracy, reference_accuracy=reference_accuracy)

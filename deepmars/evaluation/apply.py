"""Running a trained model bundle over labeled images, for re-evaluation and MSLNet-inst."""

from __future__ import annotations

import numpy as np

from deepmars.data.cache import DecodedImages, decode_samples
from deepmars.data.dataset import Sample
from deepmars.evaluation.predictions import SplitPredictions
from deepmars.inference.classifier import Classifier
from deepmars.inference.logits import predict_logits
from deepmars.models.bundle import ModelBundle


def predictions_for(data: DecodedImages, logits: np.ndarray | None = None,
                    probs: np.ndarray | None = None) -> SplitPredictions:
    """SplitPredictions with each image's sol and instrument when its file name carries them."""
    sols = [s.meta.get("sol") for s in data.samples]
    groups = [s.meta.get("instrument") for s in data.samples]
    has = bool(data.samples)
    return SplitPredictions(
        targets=data.targets, logits=logits, probs=probs,
        sols=np.array(sols) if has and all(v is not None for v in sols) else None,
        groups=np.array(groups) if has and all(v is not None for v in groups) else None)


def bundle_logits(bundle: ModelBundle, data: DecodedImages, batch_size: int = 100) -> np.ndarray:
    """Logits (before the bundle's temperature; with its test-time views combined) of decoded images."""
    out = predict_logits(bundle.model, data.images, bundle.preprocess, batch_size, bundle.tta).numpy()
    return out.reshape(len(data), len(bundle.class_names))


def classifier_logits(model: Classifier, data: DecodedImages, batch_size: int = 100) -> np.ndarray:
    """Raw logits of decoded images through any runtime (``inference.Classifier``), in batches."""
    out = [np.zeros((0, len(model.class_names)), dtype=np.float32)]
    out += [model.logits(data.images[i:i + batch_size]) for i in range(0, len(data), batch_size)]
    return np.concatenate(out)


def decode_for(bundle: ModelBundle, samples: list[Sample], workers: int = 0, desc: str = "decode") -> DecodedImages:
    return decode_samples(samples, bundle.preprocess, workers, desc)

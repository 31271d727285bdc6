"""Split predictions with each source image's class prior re-estimated (``model.source_prior_strength``).

Training reports the adapted figures (the bundle adapts the same way in landmarks.py, predict.py
and evaluate.py); ``<split>_acc_each_image_alone`` keeps the accuracy of the same model
classifying every image by itself, to show what the source prior adds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from deepmars.data.dataset import Sample
from deepmars.errors import ConfigError
from deepmars.evaluation.predictions import SplitPredictions
from deepmars.models.source_prior import adapted_logits

SOURCE_FIELD = "source_image"  # the file-name field naming an image's source (HiRISE product id)


def sources_of(samples: Sequence[Sample]) -> list[str]:
    """Each image's source image, from its file name; a clear error for the first image without one."""
    out = []
    for s in samples:
        source = s.meta.get(SOURCE_FIELD)
        if not source:
            raise ConfigError(f"model.source_prior_strength: image {s.name!r} has no {SOURCE_FIELD} in its file "
                              "name (dataset.metadata.pattern); set model.source_prior_strength=null for this data set")
        out.append(str(source))
    return out


def adapt_splits(preds: dict[str, SplitPredictions], samples: dict[str, Sequence[Sample]], prior: np.ndarray,
                 strength: float) -> tuple[dict[str, SplitPredictions], dict[str, float]]:
    """(adapted predictions of every split, each split's accuracy with every image alone)."""
    out, alone = {}, {}
    for name, p in preds.items():
        alone[f"{name}_acc_each_image_alone"] = float((p.probs.argmax(1) == p.targets).mean()) if p.n else math.nan
        logits = adapted_logits(p.calibration_logits(), sources_of(samples[name]), prior, strength)
        out[name] = replace(p, logits=logits, probs=None)
    return out, alone

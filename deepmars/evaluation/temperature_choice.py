"""Whether to scale by a temperature fitted on val, or keep the model's own confidence.

A temperature fitted on val is the best one for val; under drift (MSL test lies in the rover's
future, HiRISE test in other source images) it can over-sharpen or over-soften the test split.
``choose_temperature`` asks val itself which holds up: val is cut into two contiguous halves in
file-name order (by sol for MSL, by source image for HiRISE), a temperature is fitted on each half
and scored (ECE) on the other, against no temperature scored on the same halves. The fitted
temperature (on the whole of val) is kept only if it wins.
"""

from __future__ import annotations

import numpy as np

from deepmars.errors import ConfigError
from deepmars.evaluation.calibration import expected_calibration_error, fit_temperature, softmax

MODES = ("val", "none", "val_halves")


def choose_temperature(mode: str, logits: np.ndarray, targets: np.ndarray) -> tuple[float, dict[str, float]]:
    """(temperature, metrics to log) for ``trainer.calibration`` = val | none | val_halves."""
    if mode not in MODES:
        raise ConfigError(f"trainer.calibration: {mode!r} is not one of {list(MODES)}")
    if mode == "none" or len(targets) == 0:
        return 1.0, {}
    fitted = fit_temperature(logits, targets)
    if mode == "val" or len(targets) < 4:
        return fitted, {}
    half = len(targets) // 2
    parts = [(slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))]
    ece_fitted = np.mean([expected_calibration_error(softmax(logits[b], fit_temperature(logits[a], targets[a])),
                                                     targets[b])
                          for a, b in parts])
    ece_none = np.mean([expected_calibration_error(softmax(logits[b]), targets[b]) for _, b in parts])
    keep = ece_fitted < ece_none
    return (fitted if keep else 1.0), {"calibration_val_halves_ece_fitted": float(ece_fitted),
                                       "calibration_val_halves_ece_none": float(ece_none),
                                       "calibration_temperature_kept": float(keep)}

"""Choosing between a temperature fitted on val and the model's own confidence, by val alone."""

from __future__ import annotations

import numpy as np
import pytest

from deepmars.errors import ConfigError
from deepmars.evaluation.calibration import fit_temperature
from deepmars.evaluation.temperature_choice import choose_temperature


def sample(rng, n, sharpness, accuracy):
    """Logits whose top class is right with probability ``accuracy``, with the given margin."""
    targets = rng.integers(0, 3, n)
    top = np.where(rng.random(n) < accuracy, targets, (targets + 1) % 3)
    logits = np.zeros((n, 3))
    logits[np.arange(n), top] = sharpness
    return logits, targets


def test_a_val_wide_overconfidence_keeps_the_fitted_temperature():
    rng = np.random.default_rng(0)
    logits, targets = sample(rng, 2000, sharpness=8.0, accuracy=0.7)  # the same over-confidence throughout
    t, metrics = choose_temperature("val_halves", logits, targets)
    assert t == pytest.approx(fit_temperature(logits, targets)) and t > 2
    assert metrics["calibration_temperature_kept"] == 1.0
    assert metrics["calibration_val_halves_ece_fitted"] < metrics["calibration_val_halves_ece_none"]


def test_a_temperature_that_does_not_carry_across_val_halves_is_dropped():
    rng = np.random.default_rng(0)
    early, y_early = sample(rng, 1000, sharpness=1.5, accuracy=0.95)  # under-confident: wants T < 1
    late, y_late = sample(rng, 1000, sharpness=4.0, accuracy=0.6)     # over-confident: wants T > 1
    logits, targets = np.concatenate([early, late]), np.concatenate([y_early, y_late])
    t, metrics = choose_temperature("val_halves", logits, targets)
    assert t == 1.0 and metrics["calibration_temperature_kept"] == 0.0


def test_fixed_modes_and_a_bad_mode():
    logits, targets = sample(np.random.default_rng(1), 100, 5.0, 0.6)
    assert choose_temperature("none", logits, targets) == (1.0, {})
    assert choose_temperature("val", logits, targets)[0] == pytest.approx(fit_temperature(logits, targets))
    with pytest.raises(ConfigError, match="trainer.calibration: 'test' is not one of"):
        choose_temperature("test", logits, targets)

"""ECE computed by hand, and temperature scaling recovering a known temperature."""

import math

import numpy as np
import pytest

from deepmars.errors import DataError
from deepmars.evaluation import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    logits_from_probs,
    negative_log_likelihood,
    reliability_bins,
    softmax,
)
from deepmars.evaluation.calibration import T_MIN

# confidence, correct?  Bins are ((m-1)/15, m/15].
#   0.94 right, 0.96 wrong -> bin 14: accuracy 0.5, mean confidence 0.95, gap 0.45, weight 2/5
#   0.55 right             -> bin 8:  gap 0.45, weight 1/5
#   0.70 wrong             -> bin 10: gap 0.70, weight 1/5
#   0.45 right             -> bin 6:  gap 0.55, weight 1/5
# ECE = 0.4 * 0.45 + 0.2 * 0.45 + 0.2 * 0.70 + 0.2 * 0.55 = 0.52
PROBS = np.array([
    [0.94, 0.06, 0.00],
    [0.96, 0.04, 0.00],
    [0.55, 0.45, 0.00],
    [0.70, 0.20, 0.10],
    [0.45, 0.35, 0.20],
])
TARGETS = np.array([0, 1, 0, 2, 0])


def test_ece_by_hand():
    assert expected_calibration_error(PROBS, TARGETS) == pytest.approx(0.52)


def test_reliability_bins_by_hand():
    bins = reliability_bins(PROBS, TARGETS)
    assert len(bins.count) == 15 and bins.count.sum() == 5
    assert {int(i): int(c) for i, c in enumerate(bins.count) if c} == {6: 1, 8: 1, 10: 1, 14: 2}
    assert bins.accuracy[14] == 0.5 and bins.confidence[14] == pytest.approx(0.95)
    assert np.isnan(bins.accuracy[0])  # empty bin


def test_ece_zero_when_confident_and_right_and_nan_when_empty():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(probs, np.array([0, 1])) == 0.0
    assert math.isnan(expected_calibration_error(np.zeros((0, 2)), np.zeros(0, dtype=int)))


def _synthetic(true_t: float, n: int = 20000, c: int = 6, seed: int = 0):
    """Labels drawn from softmax(true_logits); the model reports true_logits * T (overconfident for T > 1)."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0.0, 2.0, size=(n, c))
    p = softmax(true_logits)
    targets = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return true_logits * true_t, targets


@pytest.mark.parametrize("true_t", [0.6, 2.5])
def test_temperature_scaling_recovers_known_temperature(true_t):
    logits, targets = _synthetic(true_t)
    fitted = fit_temperature(logits, targets)
    assert fitted == pytest.approx(true_t, rel=0.02)
    assert fit_temperature(logits, targets) == fitted  # deterministic
    nll = negative_log_likelihood(logits, targets, fitted)
    assert nll < negative_log_likelihood(logits, targets, fitted * 1.05)
    assert nll < negative_log_likelihood(logits, targets, fitted / 1.05)


def test_calibration_lowers_ece_on_held_out_data_and_keeps_predictions():
    val_logits, val_targets = _synthetic(2.5, seed=1)
    test_logits, test_targets = _synthetic(2.5, seed=2)
    t = fit_temperature(val_logits, val_targets)
    before = expected_calibration_error(softmax(test_logits), test_targets)
    calibrated = apply_temperature(test_logits, t)
    after = expected_calibration_error(calibrated, test_targets)
    assert before > 0.1 and after < 0.02
    np.testing.assert_array_equal(calibrated.argmax(1), test_logits.argmax(1))


def test_log_probabilities_work_as_logits():
    logits, targets = _synthetic(2.0, n=5000)
    from_probs = logits_from_probs(softmax(logits))
    assert fit_temperature(from_probs, targets) == pytest.approx(fit_temperature(logits, targets), rel=1e-6)


def test_separable_logits_clamp_to_smallest_temperature_and_empty_is_refused():
    logits = np.array([[5.0, 0.0], [0.0, 5.0]])
    assert fit_temperature(logits, np.array([0, 1])) == T_MIN
    with pytest.raises(DataError, match="empty split"):
        fit_temperature(np.zeros((0, 2)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(logits, 0.0)

"""Accuracy on kept images and fraction abstained at given thresholds, on a fixed prediction matrix."""

import math

import numpy as np
import pytest

from deepmars.evaluation import DEFAULT_THRESHOLDS, threshold_curve, write_threshold_csv

# top probabilities 0.95, 0.9, 0.85, 0.6, 0.4; right, wrong, right, right, wrong
PROBS = np.array([
    [0.95, 0.05, 0.00],
    [0.90, 0.10, 0.00],
    [0.10, 0.85, 0.05],
    [0.20, 0.20, 0.60],
    [0.40, 0.30, 0.30],
])
TARGETS = np.array([0, 1, 1, 2, 2])


def test_grid_is_0_to_0_99_in_steps_of_0_01():
    assert len(DEFAULT_THRESHOLDS) == 100
    assert DEFAULT_THRESHOLDS[0] == 0.0 and DEFAULT_THRESHOLDS[-1] == 0.99
    assert 0.9 in DEFAULT_THRESHOLDS  # the paper's operating point is on the grid exactly


@pytest.mark.parametrize(
    ("threshold", "acc", "abstained", "kept"),
    [
        (0.0, 3 / 5, 0.0, 5),
        (0.4, 3 / 5, 0.0, 5),   # kept means max prob >= threshold: 0.4 is kept at 0.4
        (0.41, 3 / 4, 0.2, 4),
        (0.85, 2 / 3, 0.4, 3),
        (0.86, 1 / 2, 0.6, 2),
        (0.9, 1 / 2, 0.6, 2),
        (0.95, 1.0, 0.8, 1),
    ],
)
def test_curve_values(threshold, acc, abstained, kept):
    curve = threshold_curve(PROBS, TARGETS)
    got_acc, got_abstained = curve.at(threshold)
    assert got_acc == pytest.approx(acc)
    assert got_abstained == pytest.approx(abstained)
    assert curve.kept[curve.index(threshold)] == kept


def test_nothing_kept_gives_undefined_accuracy_and_full_abstention():
    acc, abstained = threshold_curve(PROBS, TARGETS).at(0.99)
    assert math.isnan(acc) and abstained == 1.0


def test_threshold_off_the_grid_is_refused():
    with pytest.raises(ValueError, match="not on this curve's grid"):
        threshold_curve(PROBS, TARGETS).at(0.905)


def test_empty_split_curve_is_undefined():
    curve = threshold_curve(np.zeros((0, 3)), np.zeros(0, dtype=int))
    assert curve.total == 0 and np.isnan(curve.accuracy).all() and np.isnan(curve.abstained).all()


def test_csv_has_one_row_per_threshold_and_curve(tmp_path):
    curve = threshold_curve(PROBS, TARGETS)
    lines = write_threshold_csv({"val": curve, "test": curve}, tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "curve,threshold,accuracy,abstained,kept,total"
    assert len(lines) == 1 + 200
    assert "val,0.9,0.5,0.6,2,5" in lines
    assert "test,0.99,,1,0,5" in lines  # undefined accuracy is an empty cell

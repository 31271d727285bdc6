"""Accuracy, baselines, per-class scores and confusion matrix on a fixed prediction matrix with known answers."""

import math

import numpy as np
import pytest

from deepmars.errors import DataError
from deepmars.evaluation import (
    accuracy,
    check_class_names,
    confusion_counts,
    macro_f1,
    majority_baseline_accuracy,
    majority_class,
    most_confused_pairs,
    per_class_scores,
    random_baseline_accuracy,
    row_normalise,
    write_confusion_csv,
    write_per_class_csv,
)

NAMES = ["ground", "rock", "sky", "wheel"]  # "wheel" never occurs in the split below
# Predictions: 0, 0, 1, 1, 2, 2; targets: 0, 0, 0, 1, 1, 2 -> 4 of 6 right.
PROBS = np.array([
    [0.70, 0.20, 0.10, 0.0],
    [0.50, 0.40, 0.10, 0.0],
    [0.20, 0.60, 0.20, 0.0],
    [0.10, 0.80, 0.10, 0.0],
    [0.30, 0.30, 0.40, 0.0],
    [0.05, 0.05, 0.90, 0.0],
])
TARGETS = np.array([0, 0, 0, 1, 1, 2])
EMPTY_PROBS = np.zeros((0, 4))
EMPTY_TARGETS = np.zeros(0, dtype=int)


def test_accuracy_exact():
    assert accuracy(PROBS, TARGETS) == pytest.approx(4 / 6)


def test_accuracy_of_empty_split_is_nan():
    assert math.isnan(accuracy(EMPTY_PROBS, EMPTY_TARGETS))


def test_baselines():
    assert random_baseline_accuracy(4) == 0.25
    train = np.array([2, 0, 1, 0, 0])
    assert majority_class(train, 4) == 0
    assert majority_baseline_accuracy(TARGETS, 0) == pytest.approx(3 / 6)
    assert majority_baseline_accuracy(TARGETS, 3) == 0.0
    # a tie goes to the lower index; an empty training set has no majority class
    assert majority_class(np.array([1, 1, 0, 0]), 4) == 0
    assert majority_class(EMPTY_TARGETS, 4) is None
    assert math.isnan(majority_baseline_accuracy(TARGETS, None))
    assert math.isnan(majority_baseline_accuracy(EMPTY_TARGETS, 0))


def test_confusion_counts_and_row_normalised():
    counts = confusion_counts(PROBS, TARGETS, 4)
    expected = np.array([[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(counts, expected)
    norm = row_normalise(counts)
    np.testing.assert_allclose(norm[0], [2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(norm[1], [0, 0.5, 0.5, 0])
    assert np.isnan(norm[3]).all()  # absent class: no row to normalise


def test_per_class_scores_with_absent_class():
    scores = {s.name: s for s in per_class_scores(PROBS, TARGETS, NAMES)}
    assert [s for s in scores] == NAMES
    g, r, s, w = scores["ground"], scores["rock"], scores["sky"], scores["wheel"]
    assert (g.precision, g.recall, g.f1, g.support, g.predicted) == pytest.approx((1.0, 2 / 3, 0.8, 3, 2))
    assert (r.precision, r.recall, r.f1, r.support) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert (s.precision, s.recall, s.f1, s.support) == pytest.approx((0.5, 1.0, 2 / 3, 1))
    assert w.absent and w.support == 0 and w.predicted == 0
    assert math.isnan(w.precision) and math.isnan(w.recall) and math.isnan(w.f1)
    assert not g.absent
    assert macro_f1(list(scores.values())) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_absent_class_that_is_predicted_has_precision_zero_and_no_recall():
    probs = np.array([[0.1, 0.9], [0.2, 0.8]])
    scores = per_class_scores(probs, np.array([0, 0]), ["a", "b"])
    b = scores[1]
    assert b.absent and b.predicted == 2 and b.precision == 0.0
    assert math.isnan(b.recall) and math.isnan(b.f1)
    # present but never predicted: recall 0, F1 0, precision undefined
    a = scores[0]
    assert a.recall == 0.0 and a.f1 == 0.0 and math.isnan(a.precision)


def test_empty_split_scores_and_confusion():
    scores = per_class_scores(EMPTY_PROBS, EMPTY_TARGETS, NAMES)
    assert all(s.absent and math.isnan(s.f1) for s in scores)
    assert math.isnan(macro_f1(scores))
    assert confusion_counts(EMPTY_PROBS, EMPTY_TARGETS, 4).sum() == 0
    assert most_confused_pairs(np.zeros((4, 4), dtype=int), NAMES) == []


def test_most_confused_pairs_order_and_rate():
    counts = np.array([[5, 3, 1], [3, 4, 0], [0, 1, 2]])
    pairs = most_confused_pairs(counts, ["a", "b", "c"], k=3)
    # ties on count broken by true class, then predicted class
    assert [(p.true, p.predicted, p.count) for p in pairs] == [("a", "b", 3), ("b", "a", 3), ("a", "c", 1)]
    assert pairs[0].rate == pytest.approx(3 / 9) and pairs[1].rate == pytest.approx(3 / 7)


def test_csv_writers_carry_class_names(tmp_path):
    counts = confusion_counts(PROBS, TARGETS, 4)
    lines = write_confusion_csv(counts, NAMES, tmp_path / "cm.csv").read_text().splitlines()
    assert lines[0] == "true \\ predicted,ground,rock,sky,wheel"
    assert lines[1] == "ground,2,1,0,0"
    lines = write_per_class_csv(per_class_scores(PROBS, TARGETS, NAMES), tmp_path / "pc.csv").read_text().splitlines()
    assert lines[0] == "class,precision,recall,f1,support,predicted,absent"
    assert lines[4] == "wheel,,,,0,0,true"


def test_class_name_mismatch_lists_the_difference():
    check_class_names(NAMES, list(NAMES))
    with pytest.raises(DataError, match=r"only in the model: \['wheel'\].*only in the data set: \['tyre'\]"):
        check_class_names(NAMES, ["ground", "rock", "sky", "tyre"])
    with pytest.raises(DataError, match="different order: index 0 is 'ground' in the model but 'rock'"):
        check_class_names(NAMES, ["rock", "ground", "sky", "wheel"])
    with pytest.raises(DataError, match=r"repeated in the data set: \['sky'\]"):
        check_class_names(["ground", "sky"], ["ground", "sky", "sky"])


def test_bad_arrays_are_data_errors():
    with pytest.raises(DataError, match="6 rows of probabilities but 5 targets"):
        accuracy(PROBS, TARGETS[:5])
    with pytest.raises(DataError, match="outside 0..3"):
        accuracy(PROBS, np.array([0, 0, 0, 1, 1, 4]))
    with pytest.raises(DataError, match="4 columns but there are 3 classes"):
        confusion_counts(PROBS, TARGETS, 3)

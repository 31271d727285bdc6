"""Accuracy by sol window with known windows and counts."""

import numpy as np
import pytest

from deepmars.errors import ConfigError, DataError
from deepmars.evaluation import accuracy_by_sol_window, write_drift_csv

# right, right, wrong, right, wrong, wrong
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6]])
TARGETS = np.array([0, 1, 1, 0, 0, 0])
SOLS = np.array([3, 10, 49, 50, 120, 130])


def test_windows_of_50_sols():
    windows = accuracy_by_sol_window(PROBS, TARGETS, SOLS, width=50)
    assert [(w.start, w.end, w.n, w.correct) for w in windows] == [(0, 49, 3, 2), (50, 99, 1, 1), (100, 149, 2, 0)]
    assert windows[0].accuracy == pytest.approx(2 / 3)


def test_windows_of_100_sols_and_unsorted_sols():
    order = np.array([5, 0, 3, 1, 4, 2])
    windows = accuracy_by_sol_window(PROBS[order], TARGETS[order], SOLS[order], width=100)
    assert [(w.start, w.end, w.n, w.correct) for w in windows] == [(0, 99, 4, 3), (100, 199, 2, 0)]


def test_empty_split_has_no_windows():
    assert accuracy_by_sol_window(np.zeros((0, 2)), np.zeros(0, dtype=int), np.zeros(0, dtype=int)) == []


def test_bad_width_and_bad_sols():
    with pytest.raises(ConfigError, match="positive integer"):
        accuracy_by_sol_window(PROBS, TARGETS, SOLS, width=0)
    with pytest.raises(DataError, match="whole numbers"):
        accuracy_by_sol_window(PROBS, TARGETS, SOLS + 0.5)
    with pytest.raises(DataError, match="one value per sample"):
        accuracy_by_sol_window(PROBS, TARGETS, SOLS[:3])


def test_csv(tmp_path):
    windows = accuracy_by_sol_window(PROBS, TARGETS, SOLS, width=50)
    lines = write_drift_csv({"test": windows}, tmp_path / "d.csv").read_text().splitlines()
    assert lines == ["split,sol_start,sol_end,n,correct,accuracy", "test,0,49,3,2,0.666667",
                     "test,50,99,1,1,1", "test,100,149,2,0,0"]

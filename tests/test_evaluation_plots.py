"""Every figure is written as a PNG that PIL opens, with a real size, and no figure is left open."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from deepmars.evaluation import (
    accuracy_by_sol_window,
    confusion_counts,
    plot_confusion_matrix,
    plot_drift,
    plot_reliability_diagram,
    plot_threshold_curves,
    reliability_bins,
    row_normalise,
    threshold_curve,
)

RNG = np.random.default_rng(0)
C = 24
NAMES = [f"class name {i}" for i in range(C)]
TARGETS = RNG.integers(0, C - 1, 300)  # the last class is absent: its normalised row is NaN
PROBS = RNG.dirichlet(np.ones(C) * 0.3, 300)
SOLS = RNG.integers(0, 400, 300)


def _opens(path):
    assert path.exists() and path.stat().st_size > 0
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG" and img.width > 200 and img.height > 200
    assert plt.get_fignums() == []


@pytest.mark.slow
@pytest.mark.parametrize("normalised", [False, True])
def test_confusion_matrix_24_classes(tmp_path, normalised):
    counts = confusion_counts(PROBS, TARGETS, C)
    matrix = row_normalise(counts) if normalised else counts
    _opens(plot_confusion_matrix(matrix, NAMES, tmp_path / "cm.png", normalised=normalised))


def test_threshold_curves(tmp_path):
    curve = threshold_curve(PROBS, TARGETS)
    _opens(plot_threshold_curves({"val": curve, "test": curve}, tmp_path / "t.png"))


def test_reliability_diagram(tmp_path):
    bins = reliability_bins(PROBS, TARGETS)
    _opens(plot_reliability_diagram({"before": bins, "after": bins}, tmp_path / "r.png"))


def test_drift(tmp_path):
    windows = accuracy_by_sol_window(PROBS, TARGETS, SOLS, width=50)
    _opens(plot_drift({"val": windows, "test": []}, tmp_path / "sub" / "d.png"))

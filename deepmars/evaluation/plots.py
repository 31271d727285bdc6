"""The report's figures: confusion matrix, threshold curve, reliability diagram, drift by sol.

Drawn with matplotlib's non-interactive Agg backend (set here, before pyplot is imported, so
evaluation works on a headless machine), saved as PNG and closed so long sweeps do not leak figures.
Each function takes results computed elsewhere and returns the path it wrote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from deepmars.evaluation.calibration import ReliabilityBins  # noqa: E402
from deepmars.evaluation.drift import SolWindow  # noqa: E402
from deepmars.evaluation.thresholds import PAPER_THRESHOLD, ThresholdCurve  # noqa: E402

DPI = 120


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path, normalised: bool = False, title: str = ""
) -> Path:
    """Heat map, true class down the side, predicted class along the bottom, every cell annotated.

    Sized by the number of classes so 24 names stay readable; counts are shown as integers and
    row-normalised values as percentages, zeros left blank; rows of absent classes (NaN) are grey.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    c = len(class_names)
    side = max(4.0, 0.42 * c + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    shown = np.ma.masked_invalid(matrix)
    cmap = plt.get_cmap("Blues").with_extremes(bad="#dddddd")
    vmax = 1.0 if normalised else max(1.0, float(np.nanmax(matrix)) if matrix.size else 1.0)
    image = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class" if normalised else "images")
    fontsize = 9 if c <= 10 else 7 if c <= 20 else 6
    for i in range(c):
        for j in range(c):
            v = matrix[i, j]
            if math.isnan(v) or v == 0:
                continue
            text = f"{100 * v:.0f}" if normalised else f"{int(v)}"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if v > 0.6 * vmax else "black")
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(class_names, rotation=90, fontsize=fontsize + 1)
    ax.set_yticklabels(class_names, fontsize=fontsize + 1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("confusion matrix (row-normalised, %)" if normalised else "confusion matrix (counts)"))
    return _save(fig, path)


def plot_threshold_curves(
    curves: Mapping[str, ThresholdCurve], path: str | Path, mark: float = PAPER_THRESHOLD, title: str = ""
) -> Path:
    """Accuracy on kept images (solid) and fraction abstained (dashed) vs threshold, one colour per curve."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, curve) in enumerate(curves.items()):
        colour = colours[k % len(colours)]
        ax.plot(curve.thresholds, curve.accuracy, color=colour, label=f"{label}: accuracy on kept")
        ax.plot(curve.thresholds, curve.abstained, color=colour, linestyle="--", label=f"{label}: abstained")
    ax.axvline(mark, color="grey", linestyle=":", label=f"threshold {mark:g}")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("confidence threshold (keep image if top probability >= threshold)")
    ax.set_ylabel("fraction")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    ax.set_title(title or "accuracy and abstention vs confidence threshold")
    return _save(fig, path)


def plot_reliability_diagram(bins: Mapping[str, ReliabilityBins], path: str | Path, title: str = "") -> Path:
    """One panel per entry (e.g. before / after temperature scaling): accuracy per confidence bin
    against the diagonal of perfect calibration, with the ECE in the panel title and counts below."""
    panels = list(bins.items()) or [("no data", None)]
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 5.5), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    for k, (label, b) in enumerate(panels):
        top, bottom = axes[0, k], axes[1, k]
        top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
        if b is not None:
            centres = 0.5 * (b.edges[:-1] + b.edges[1:])
            width = np.diff(b.edges)
            acc = np.nan_to_num(b.accuracy)
            top.bar(centres, acc, width=width, edgecolor="black", alpha=0.8, label="accuracy")
            conf = np.where(b.count > 0, b.confidence, np.nan)
            top.plot(centres, conf, "o", color="tab:red", markersize=3, label="mean confidence")
            bottom.bar(centres, b.count, width=width, color="tab:grey", edgecolor="black")
            ece = b.ece
            top.set_title(f"{label}\nECE = {ece:.3f}" if not math.isnan(ece) else f"{label}\nECE = n/a", fontsize=9)
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("accuracy")
        bottom.set_xlabel("confidence (top probability)")
        bottom.set_ylabel("images")
        top.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_drift(windows_by_split: Mapping[str, Sequence[SolWindow]], path: str | Path, title: str = "") -> Path:
    """Accuracy per sol window (points at window centres, labelled with image counts), one line per split."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for split, windows in windows_by_split.items():
        if not windows:
            continue
        x = [0.5 * (w.start + w.end) for w in windows]
        y = [w.accuracy for w in windows]
        line, = ax.plot(x, y, marker="o", label=split)
        for xi, yi, w in zip(x, y, windows, strict=True):
            ax.annotate(str(w.n), (xi, yi), textcoords="offset points", xytext=(0, 5),
                        ha="center", fontsize=7, color=line.get_color())
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("sol (window centre; labels: images in window)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    ax.set_title(title or "accuracy by sol window")
    return _save(fig, path)

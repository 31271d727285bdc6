"""The simulation's figure: test accuracy against labels added, random order against active learning."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deepmars.retraining.simulation import Result  # noqa: E402

STYLE = {"random": ("black", "o"), "least_confident": ("tab:blue", "s"), "margin": ("tab:orange", "^"),
         "entropy": ("tab:green", "D")}


def summary(results: list[Result]) -> dict[str, dict[int, list[float]]]:
    """order -> N -> test accuracies (one per seed); N=0 (the parent) under every order."""
    base = [r.test_acc for r in results if r.n_labels == 0]
    table: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if r.n_labels:
            table[r.order][r.n_labels].append(r.test_acc)
    for order in table:
        table[order][0] = base
    return {o: dict(sorted(v.items())) for o, v in table.items()}


def plot_results(results: list[Result], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for order, by_n in summary(results).items():
        color, marker = STYLE.get(order, ("grey", "x"))
        ns = list(by_n)
        means = [100 * sum(v) / len(v) for v in by_n.values()]
        ax.plot(ns, means, color=color, marker=marker, label=order.replace("_", " "))
        if any(len(v) > 1 for v in by_n.values()):
            ax.fill_between(ns, [100 * min(v) for v in by_n.values()], [100 * max(v) for v in by_n.values()],
                            color=color, alpha=0.15, label=f"{order} (min-max over seeds)")
    ax.set_xlabel("delivery images labeled (N)")
    ax.set_ylabel("test accuracy (%), sols 565-1060")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

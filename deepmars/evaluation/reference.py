"""The Deep Mars paper's published numbers, as data, for the report's comparison columns.

Source: Wagstaff et al., "Deep Mars: CNN Classification of Mars Imagery for the PDS Imaging Atlas",
IAAI 2018. All values are fractions (0.667 = 66.7%). Keys are the data set names used in deepmars
configs ("msl", "hirise"); a data set not listed here simply gets no paper column.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PaperResults:
    """One data set's published results: accuracy, majority baseline, and the confidence-0.9 point."""

    model: str
    accuracy: dict[str, float]
    majority_class: str
    majority_accuracy: dict[str, float]
    # split -> (accuracy on kept images, fraction abstained) at confidence >= 0.9
    at_0_9: dict[str, tuple[float, float]]
    # other published models on the same splits: name -> split -> accuracy
    variants: dict[str, dict[str, float]] = field(default_factory=dict)


PAPER_RESULTS: dict[str, PaperResults] = {
    "msl": PaperResults(
        model="MSLNet",
        accuracy={"train": 0.987, "val": 0.728, "test": 0.667},
        majority_class="ground",
        majority_accuracy={"train": 0.625, "val": 0.053, "test": 0.195},
        at_0_9={"val": (0.943, 0.41), "test": (0.840, 0.52)},
        variants={"MSLNet-inst": {"val": 0.837, "test": 0.502}},
    ),
    "hirise": PaperResults(
        model="HiRISENet",
        accuracy={"train": 0.991, "val": 0.881, "test": 0.906},
        majority_class="other",
        majority_accuracy={"train": 0.518, "val": 0.562, "test": 0.544},
        at_0_9={"val": (0.903, 0.11), "test": (0.945, 0.13)},
    ),
}


def paper_results(dataset: str | None) -> PaperResults | None:
    """The paper's results for data set `dataset` (case-insensitive), or None if it is not one of them."""
    if dataset is None:
        return None
    return PAPER_RESULTS.get(dataset.lower())

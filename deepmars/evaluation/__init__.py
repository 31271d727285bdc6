"""Evaluation of a classifier the way the Deep Mars paper judges one, plus calibration and drift.

Pure functions over arrays (probs: N x C, targets: N class indices), figures, and a report writer:

- metrics: accuracy, the random and majority baselines, per-class scores, confusion matrix
- thresholds: accuracy vs abstention as the confidence threshold rises
- calibration: expected calibration error, reliability bins, temperature scaling
- drift: accuracy by sol window; groups: per-group accuracy and MSLNet-inst routing
- plots: the figures; reference: the paper's numbers; report: everything in one folder
"""

from deepmars.evaluation.calibration import (
    ECE_BINS,
    ReliabilityBins,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    logits_from_probs,
    negative_log_likelihood,
    reliability_bins,
    softmax,
)
from deepmars.evaluation.drift import SolWindow, accuracy_by_sol_window, write_drift_csv
from deepmars.evaluation.groups import GroupAccuracy, accuracy_by_group, route_by_group, write_group_csv
from deepmars.evaluation.inputs import check_class_names
from deepmars.evaluation.metrics import (
    ClassScores,
    ConfusedPair,
    accuracy,
    confusion_counts,
    macro_f1,
    majority_baseline_accuracy,
    majority_class,
    most_confused_pairs,
    per_class_scores,
    predicted_classes,
    random_baseline_accuracy,
    row_normalise,
    write_confused_pairs_csv,
    write_confusion_csv,
    write_per_class_csv,
)
from deepmars.evaluation.plots import (
    plot_confusion_matrix,
    plot_drift,
    plot_reliability_diagram,
    plot_threshold_curves,
)
from deepmars.evaluation.predictions import SplitPredictions
from deepmars.evaluation.reference import PAPER_RESULTS, PaperResults, paper_results
from deepmars.evaluation.report import REPORT_FILE, write_report
from deepmars.evaluation.results import SplitResult, evaluate_split
from deepmars.evaluation.thresholds import (
    DEFAULT_THRESHOLDS,
    REPORT_THRESHOLDS,
    ThresholdCurve,
    threshold_curve,
    write_threshold_csv,
)

__all__ = [
    "DEFAULT_THRESHOLDS", "ECE_BINS", "PAPER_RESULTS", "REPORT_FILE", "REPORT_THRESHOLDS",
    "ClassScores", "ConfusedPair", "GroupAccuracy", "PaperResults", "ReliabilityBins", "SolWindow",
    "SplitPredictions", "SplitResult", "ThresholdCurve",
    "accuracy", "accuracy_by_group", "accuracy_by_sol_window", "apply_temperature", "check_class_names",
    "confusion_counts", "evaluate_split", "expected_calibration_error", "fit_temperature",
    "logits_from_probs", "macro_f1", "majority_baseline_accuracy", "majority_class", "most_confused_pairs",
    "negative_log_likelihood", "paper_results", "per_class_scores", "plot_confusion_matrix", "plot_drift",
    "plot_reliability_diagram", "plot_threshold_curves", "predicted_classes", "random_baseline_accuracy",
    "reliability_bins", "route_by_group", "row_normalise", "softmax", "threshold_curve",
    "write_confused_pairs_csv", "write_confusion_csv", "write_drift_csv", "write_group_csv",
    "write_per_class_csv", "write_report", "write_threshold_csv",
]

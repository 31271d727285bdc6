"""One run's evaluation as a single Markdown report plus the CSVs and PNGs behind it.

`write_report` takes each split's predictions, computes everything the Deep Mars paper reports
(accuracy against two baselines, the confidence-threshold trade-off, per-class scores, confusions)
plus calibration and the sol drift view, writes it all into one folder, and returns the scalar
metrics for the caller to log:

    metrics = write_report(splits, class_names, out_dir, dataset="msl")
    mlflow.log_metrics(metrics)
    mlflow.log_artifacts(out_dir, "evaluation")

Metrics that are undefined (an empty split, no image kept at a threshold) are left out of the
returned dict rather than logged as NaN; the report shows them as "n/a".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from deepmars.errors import DataError
from deepmars.evaluation import plots
from deepmars.evaluation.calibration import fit_temperature
from deepmars.evaluation.drift import check_window_width, write_drift_csv
from deepmars.evaluation.groups import write_group_csv
from deepmars.evaluation.markdown import render_markdown
from deepmars.evaluation.metrics import (
    majority_class,
    random_baseline_accuracy,
    row_normalise,
    write_confused_pairs_csv,
    write_confusion_csv,
    write_per_class_csv,
)
from deepmars.evaluation.predictions import SplitPredictions
from deepmars.evaluation.reference import paper_results
from deepmars.evaluation.results import SplitResult, evaluate_split
from deepmars.evaluation.tables import is_defined, slug, write_csv
from deepmars.evaluation.thresholds import (
    PAPER_THRESHOLD,
    REPORT_THRESHOLDS,
    ThresholdCurve,
    write_threshold_csv,
)

REPORT_FILE = "report.md"


def _conform(splits: Mapping[str, SplitPredictions], num_classes: int, who: str) -> dict[str, SplitPredictions]:
    """Each split checked against the number of class names; errors name the model and split."""
    out = {}
    for name, split in splits.items():
        try:
            out[name] = split.for_classes(num_classes)
        except DataError as e:
            raise DataError(f"{who}, split {name!r}: {e.reason}") from e
    return out


def _metric(metrics: dict[str, float], name: str, value: float | None) -> None:
    if is_defined(value):
        metrics[name] = float(value)


def write_report(
    splits: Mapping[str, SplitPredictions],
    class_names: Sequence[str],
    out_dir: str | Path,
    *,
    dataset: str | None = None,
    model_name: str = "model",
    title: str | None = None,
    train_split: str = "train",
    calibration_split: str = "val",
    sol_window: int = 50,
    group_label: str = "instrument",
    compare: Mapping[str, Mapping[str, SplitPredictions]] | None = None,
    top_confused: int = 10,
    temperature: float | None = None,
    majority: int | None = None,
) -> dict[str, float]:
    """Evaluate one run's splits, write `out_dir/report.md` with its CSVs and PNGs, return scalar metrics.

    splits: split name -> predictions, in the order the report should list them (e.g. train, val,
    test). The majority baseline uses `train_split`'s most common class; the temperature is fitted on
    `calibration_split`. Threshold, calibration, drift, group and per-class sections cover every
    split except the training split (all splits if only that one is given). `compare` adds other
    models (name -> split -> predictions, e.g. {"MSLNet-inst": ...}) to a comparison table.
    `dataset` is the data set's name, shown in the report; for "msl" and "hirise" the paper's
    numbers are added. `temperature`, when given,
    is used as is (e.g. the one saved with a model being re-evaluated) instead of being fitted;
    `majority` likewise gives the training set's most common class when the training split itself
    is not evaluated.
    """
    class_names = [str(c) for c in class_names]
    repeated = sorted({n for n in class_names if class_names.count(n) > 1})
    if repeated:
        raise DataError(f"class names repeated: {repeated}; each class needs its own name")
    c = len(class_names)
    sol_window = check_window_width(sol_window)
    splits = _conform(splits, c, model_name)
    compare = {m: _conform(s, c, m) for m, s in (compare or {}).items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paper = paper_results(dataset)

    train = splits.get(train_split)
    if train is not None:
        majority = majority_class(train.targets, c)
    analysed = [s for s in splits if s != train_split] or list(splits)

    cal = splits.get(calibration_split)
    if temperature is None and cal is not None and cal.n:
        temperature = fit_temperature(cal.calibration_logits(), cal.targets)

    def evaluate(name: str, sp: SplitPredictions, t: float | None) -> SplitResult:
        return evaluate_split(name, sp, class_names, majority=majority, temperature=t,
                              analyse=name in analysed, sol_window=sol_window, top_confused=top_confused)

    results = {name: evaluate(name, sp, temperature) for name, sp in splits.items()}
    # Compared models are scored as given: no temperature of theirs is fitted here.
    compared = {model: {name: evaluate(name, sp, None) for name, sp in sps.items()} for model, sps in compare.items()}

    metrics = _collect_metrics(results, c, temperature, group_label, compared)
    files = _write_files(out, results, class_names, analysed, compared, metrics, model_name)
    text = render_markdown(
        results, class_names, analysed, compared, files, temperature=temperature,
        majority=None if majority is None else class_names[majority], paper=paper, dataset=dataset,
        model_name=model_name, title=title, calibration_split=calibration_split, sol_window=sol_window,
        group_label=group_label,
    )
    (out / REPORT_FILE).write_text(text, encoding="utf-8")
    return metrics


def _at(curve: ThresholdCurve | None, t: float) -> tuple[float, float]:
    return curve.at(t) if curve is not None else (math.nan, math.nan)


def _collect_metrics(
    results: Mapping[str, SplitResult], c: int, temperature: float | None, group_label: str,
    compared: Mapping[str, Mapping[str, SplitResult]],
) -> dict[str, float]:
    """The scalar metrics, named for MLflow; undefined values are left out."""
    m: dict[str, float] = {}
    for r in results.values():
        name = slug(r.name)  # split names go into metric keys: keep them to [a-z0-9_]
        m[f"{name}_n"] = float(r.n)
        _metric(m, f"{name}_acc", r.acc)
        if r.n:
            _metric(m, f"baseline_random_{name}_acc", random_baseline_accuracy(c))
        _metric(m, f"baseline_majority_{name}_acc", r.majority_acc)
        _metric(m, f"{name}_macro_f1", r.macro_f1)
        for t in REPORT_THRESHOLDS:
            for suffix, curve in (("", r.curve), ("_calibrated", r.curve_calibrated)):
                acc, abstained = _at(curve, t)
                _metric(m, f"{name}_acc_at_{t:g}{suffix}", acc)
                _metric(m, f"{name}_abstain_at_{t:g}{suffix}", abstained)
        _metric(m, f"{name}_ece", r.bins.ece if r.bins else None)
        _metric(m, f"{name}_ece_calibrated", r.bins_calibrated.ece if r.bins_calibrated else None)
        for g in r.groups or []:
            _metric(m, f"{name}_acc_{slug(group_label)}_{slug(g.group)}", g.accuracy)
    _metric(m, "temperature", temperature)
    for model, rs in compared.items():
        for r in rs.values():
            name = slug(r.name)
            _metric(m, f"{slug(model)}_{name}_acc", r.acc)
            acc, abstained = _at(r.curve, PAPER_THRESHOLD)
            _metric(m, f"{slug(model)}_{name}_acc_at_{PAPER_THRESHOLD:g}", acc)
            _metric(m, f"{slug(model)}_{name}_abstain_at_{PAPER_THRESHOLD:g}", abstained)
    return m


def _write_files(
    out: Path, results: Mapping[str, SplitResult], class_names: Sequence[str], analysed: Sequence[str],
    compared: Mapping[str, Mapping[str, SplitResult]], metrics: Mapping[str, float], model_name: str,
) -> dict[str, str]:
    """Write every CSV and PNG; returns a key -> file name map the report links to."""
    files: dict[str, str] = {}
    write_csv(out / "metrics.csv", ["metric", "value"], sorted(metrics.items()))
    files["metrics"] = "metrics.csv"
    write_csv(out / "accuracy.csv", ["split", "n", "accuracy", "baseline_random", "baseline_majority"],
              [(r.name, r.n, r.acc, random_baseline_accuracy(len(class_names)) if r.n else None, r.majority_acc)
               for r in results.values()])
    files["accuracy"] = "accuracy.csv"
    curves = {}
    for name in analysed:
        r = results[name]
        curves[name] = r.curve
        if r.curve_calibrated is not None:
            curves[f"{name}_calibrated"] = r.curve_calibrated
    if curves:
        write_threshold_csv(curves, out / "thresholds.csv")
        plots.plot_threshold_curves({n: results[n].curve for n in analysed if results[n].n}, out / "thresholds.png")
        files["thresholds_csv"] = "thresholds.csv"
        files["thresholds_png"] = "thresholds.png"
    bins = {}
    for name in (n for n in analysed if results[n].n):  # an empty split has no bars to draw
        r = results[name]
        bins[f"{name}, before"] = r.bins
        if r.bins_calibrated is not None:
            bins[f"{name}, after temperature scaling"] = r.bins_calibrated
    if bins:
        plots.plot_reliability_diagram(bins, out / "reliability.png")
        files["reliability_png"] = "reliability.png"
    write_csv(out / "calibration.csv", ["split", "n", "ece", "ece_calibrated", "temperature"],
              [(n, results[n].n, results[n].bins.ece, results[n].bins_calibrated.ece if results[n].bins_calibrated
                else None, metrics.get("temperature")) for n in analysed])
    files["calibration_csv"] = "calibration.csv"
    for name in analysed:
        r = results[name]
        base = slug(name)
        write_per_class_csv(r.scores, out / f"per_class_{base}.csv")
        write_confusion_csv(r.counts, class_names, out / f"confusion_{base}_counts.csv")
        write_confusion_csv(row_normalise(r.counts), class_names, out / f"confusion_{base}_normalised.csv")
        write_confused_pairs_csv(r.pairs, out / f"confused_pairs_{base}.csv")
        for key in ("per_class", "confused_pairs"):
            files[f"{key}_{name}"] = f"{key}_{base}.csv"
        files[f"confusion_csv_{name}"] = f"confusion_{base}_counts.csv"
        files[f"confusion_norm_csv_{name}"] = f"confusion_{base}_normalised.csv"
        if r.n:
            plots.plot_confusion_matrix(r.counts, class_names, out / f"confusion_{base}_counts.png",
                                        title=f"{name}: confusion matrix (counts)")
            plots.plot_confusion_matrix(row_normalise(r.counts), class_names,
                                        out / f"confusion_{base}_normalised.png", normalised=True,
                                        title=f"{name}: confusion matrix (% of true class)")
            files[f"confusion_png_{name}"] = f"confusion_{base}_counts.png"
            files[f"confusion_norm_png_{name}"] = f"confusion_{base}_normalised.png"
    windows = {n: results[n].windows for n in analysed if results[n].windows is not None}
    if windows:
        write_drift_csv(windows, out / "drift.csv")
        plots.plot_drift(windows, out / "drift.png")
        files["drift_csv"] = "drift.csv"
        files["drift_png"] = "drift.png"
    groups = {n: results[n].groups for n in analysed if results[n].groups is not None}
    if groups:
        write_group_csv(groups, out / "groups.csv")
        files["groups_csv"] = "groups.csv"
    if compared:
        rows = []
        for model, rs in {model_name: results, **compared}.items():
            for r in rs.values():
                acc, abstained = _at(r.curve, PAPER_THRESHOLD)
                rows.append((model, r.name, r.n, r.acc, acc, abstained))
        write_csv(out / "comparison.csv", ["model", "split", "n", "accuracy", f"accuracy_at_{PAPER_THRESHOLD:g}",
                                           f"abstained_at_{PAPER_THRESHOLD:g}"], rows)
        files["comparison_csv"] = "comparison.csv"
    return files

"""The evaluation report's text: one Markdown page, sections in the order the paper tells its story.

Accuracy against the baselines first, then the confidence slider, calibration, per-class detail
and confusions for each split, the drift by sol, per-group accuracy and the model comparison.
Numbers come from the `SplitResult`s already computed; nothing is recomputed here. Undefined
values print as "n/a".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deepmars.evaluation.calibration import ECE_BINS
from deepmars.evaluation.metrics import random_baseline_accuracy
from deepmars.evaluation.reference import PaperResults
from deepmars.evaluation.results import SplitResult
from deepmars.evaluation.tables import is_defined, markdown_table, num, pct
from deepmars.evaluation.thresholds import PAPER_THRESHOLD, REPORT_THRESHOLDS, ThresholdCurve

ECE_DEFINITION = (
    f"ECE: each image's confidence is its top probability; confidences are cut into {ECE_BINS} "
    f"equal-width bins ((0, 1/{ECE_BINS}], ..., (1 - 1/{ECE_BINS}, 1]) and ECE = sum over bins of "
    "(images in bin / all images) x |accuracy in bin - mean confidence in bin| (Guo et al., 2017)."
)


def _image(files: Mapping[str, str], key: str, alt: str) -> list[str]:
    return [f"![{alt}]({files[key]})", ""] if key in files else []


def _acc_at(curve: ThresholdCurve | None, t: float) -> str:
    if curve is None:
        return "n/a"
    acc, abstained = curve.at(t)
    if not is_defined(abstained):
        return "n/a"
    return f"{pct(acc)} @ {pct(abstained, 0)} abstained"


def _accuracy_section(results: Mapping[str, SplitResult], c: int, majority: str | None,
                      paper: PaperResults | None) -> list[str]:
    header = ["split", "images", "accuracy", f"random (1/{c})",
              f'majority ("{majority}")' if majority else "majority (no training split)", "macro F1"]
    if paper:
        header += [f"paper {paper.model}", f'paper majority ("{paper.majority_class}")']
    rows = []
    for r in results.values():
        row = [r.name, r.n, pct(r.acc), pct(random_baseline_accuracy(c)) if r.n else "n/a",
               pct(r.majority_acc), num(r.macro_f1)]
        if paper:
            row += [pct(paper.accuracy.get(r.name)), pct(paper.majority_accuracy.get(r.name))]
        rows.append(row)
    notes = ("Random: expected accuracy of guessing uniformly among the classes. Majority: always answering "
             "the training split's most common class, scored on each split. Macro F1 averages the classes "
             "present in the split.")
    return ["## Accuracy and baselines", "", markdown_table(header, rows), "", notes, ""]


def _threshold_section(results: Mapping[str, SplitResult], analysed: Sequence[str], calibrated: bool,
                       paper: PaperResults | None, files: Mapping[str, str]) -> list[str]:
    header = ["split", "threshold", "accuracy on kept", "abstained", "kept"]
    if calibrated:
        header += ["calibrated: accuracy on kept", "calibrated: abstained"]
    rows = []
    for name in analysed:
        r = results[name]
        for t in REPORT_THRESHOLDS:
            acc, abstained = r.curve.at(t)
            row = [name, f"{t:g}", pct(acc), pct(abstained), int(r.curve.kept[r.curve.index(t)])]
            if calibrated:
                c_acc, c_abs = r.curve_calibrated.at(t)
                row += [pct(c_acc), pct(c_abs)]
            rows.append(row)
    lines = ["## Confidence threshold: accuracy vs abstention", "",
             "An image is kept when its top probability is >= the threshold; accuracy is over kept images, "
             "abstained is the fraction not kept. Calibrated columns use the temperature-scaled probabilities "
             "(same predictions, rescaled confidences).", "", markdown_table(header, rows), ""]
    if paper:
        quoted = "; ".join(f"{s} {pct(a)} at {pct(b, 0)} abstained" for s, (a, b) in paper.at_0_9.items())
        lines += [f"Paper ({paper.model}) at confidence >= {PAPER_THRESHOLD:g}: {quoted}.", ""]
    lines += _image(files, "thresholds_png", "accuracy and abstention vs threshold")
    if "thresholds_csv" in files:
        lines += [f"Full curve (thresholds 0.00-0.99): `{files['thresholds_csv']}`.", ""]
    return lines


def _calibration_section(results: Mapping[str, SplitResult], analysed: Sequence[str], temperature: float | None,
                         calibration_split: str, files: Mapping[str, str]) -> list[str]:
    lines = ["## Calibration", "", ECE_DEFINITION, ""]
    if temperature is None:
        lines += [f"No temperature fitted: split {calibration_split!r} is missing or empty.", ""]
    else:
        lines += [f"Temperature scaling: T = {temperature:.4f}, fitted on {calibration_split} logits by "
                  "minimising negative log-likelihood; calibrated probabilities are softmax(logits / T).", ""]
    rows = []
    for name in analysed:
        note = "T fitted on this split (optimistic)" if temperature is not None and name == calibration_split else ""
        r = results[name]
        rows.append([name, r.n, num(r.bins.ece if r.bins else None),
                     num(r.bins_calibrated.ece if r.bins_calibrated else None), note])
    lines += [markdown_table(["split", "images", "ECE before", "ECE after", "note"], rows), ""]
    lines += _image(files, "reliability_png", "reliability diagram")
    return lines


def _split_section(r: SplitResult, files: Mapping[str, str]) -> list[str]:
    lines = [f"## {r.name}: per-class scores and confusions", ""]
    if r.n == 0:
        lines += [f"Split {r.name!r} is empty: no images, so every score below is n/a.", ""]
    elif r.absent:
        lines += [f"Classes absent from {r.name} (no images; recall and F1 undefined): "
                  + ", ".join(r.absent) + ".", ""]
    rows = [[s.name, num(s.precision), num(s.recall), num(s.f1), s.support, s.predicted,
             "absent" if s.absent else ("never predicted" if s.predicted == 0 else "")]
            for s in r.scores]
    lines += [markdown_table(["class", "precision", "recall", "F1", "support", "predicted", "note"], rows), ""]
    lines += [f"Most-confused pairs ({r.name}):", ""]
    if r.pairs:
        lines += [markdown_table(["true class", "predicted as", "images", "share of true class"],
                                 [[p.true, p.predicted, p.count, pct(p.rate)] for p in r.pairs]), ""]
    else:
        lines += ["None: no image was misclassified." if r.n else "None: the split is empty.", ""]
    lines += _image(files, f"confusion_png_{r.name}", f"{r.name} confusion matrix (counts)")
    lines += _image(files, f"confusion_norm_png_{r.name}", f"{r.name} confusion matrix (row-normalised)")
    return lines


def _drift_section(results: Mapping[str, SplitResult], analysed: Sequence[str], width: int,
                   files: Mapping[str, str]) -> list[str]:
    rows = [[name, f"{w.start}-{w.end}", w.n, pct(w.accuracy)]
            for name in analysed for w in (results[name].windows or [])]
    if not any(results[name].windows is not None for name in analysed):
        return []
    lines = [f"## Drift: accuracy by sol window ({width} sols)", "",
             "Windows are aligned to multiples of the width; only windows with images are listed.", ""]
    lines += [markdown_table(["split", "sols", "images", "accuracy"], rows), ""] if rows else ["No images.", ""]
    lines += _image(files, "drift_png", "accuracy by sol window")
    return lines


def _group_section(results: Mapping[str, SplitResult], analysed: Sequence[str], label: str) -> list[str]:
    if not any(results[name].groups is not None for name in analysed):
        return []
    rows = [[name, g.group, g.n, pct(g.accuracy)] for name in analysed for g in (results[name].groups or [])]
    return [f"## Accuracy by {label}", "", markdown_table(["split", label, "images", "accuracy"], rows), ""]


def _comparison_section(results: Mapping[str, SplitResult], model_name: str,
                        compared: Mapping[str, Mapping[str, SplitResult]], paper: PaperResults | None) -> list[str]:
    if not compared:
        return []
    models = {model_name: results, **compared}
    split_names = list(dict.fromkeys(s for rs in models.values() for s in rs))
    at_splits = [s for s in split_names if any(s in rs and rs[s].curve is not None for rs in models.values())]
    header = ["model", *split_names, *(f"{s} @ conf >= {PAPER_THRESHOLD:g}" for s in at_splits)]
    rows = [[model, *(pct(rs[s].acc) if s in rs else "n/a" for s in split_names),
             *(_acc_at(rs[s].curve if s in rs else None, PAPER_THRESHOLD) for s in at_splits)]
            for model, rs in models.items()]
    if paper:
        published = {paper.model: paper.accuracy, **paper.variants}
        for name, accs in published.items():
            at = [f"{pct(paper.at_0_9[s][0])} @ {pct(paper.at_0_9[s][1], 0)} abstained"
                  if name == paper.model and s in paper.at_0_9 else "n/a" for s in at_splits]
            rows.append([f"paper {name}", *(pct(accs.get(s)) for s in split_names), *at])
    return ["## Model comparison", "", markdown_table(header, rows), "",
            "Cells after the accuracies: accuracy on images kept at the threshold, and the fraction abstained.", ""]


def render_markdown(
    results: Mapping[str, SplitResult],
    class_names: Sequence[str],
    analysed: Sequence[str],
    compared: Mapping[str, Mapping[str, SplitResult]],
    files: Mapping[str, str],
    *,
    temperature: float | None,
    majority: str | None,
    paper: PaperResults | None,
    dataset: str | None,
    model_name: str,
    title: str | None,
    calibration_split: str,
    sol_window: int,
    group_label: str,
) -> str:
    """The whole report as Markdown; image links and file names are relative to the report's folder."""
    c = len(class_names)
    sizes = ", ".join(f"{r.name} {r.n}" for r in results.values())
    lines = [f"# Evaluation report: {title or model_name}", "",
             f"Model: **{model_name}**. Data set: **{dataset or 'unnamed'}**, {c} classes. Images per split: {sizes}.",
             ""]
    if paper:
        lines += [f"Paper columns: Wagstaff et al., Deep Mars (IAAI 2018), {paper.model}.", ""]
    lines += _accuracy_section(results, c, majority, paper)
    if any(results[n].curve is not None for n in analysed):
        calibrated = temperature is not None
        lines += _threshold_section(results, analysed, calibrated, paper, files)
        lines += _calibration_section(results, analysed, temperature, calibration_split, files)
    for name in analysed:
        lines += _split_section(results[name], files)
    lines += _drift_section(results, analysed, sol_window, files)
    lines += _group_section(results, analysed, group_label)
    lines += _comparison_section(results, model_name, compared, paper)
    lines += ["## Files", "", "All in this folder: " + ", ".join(f"`{f}`" for f in files.values()) + ".", ""]
    return "\n".join(lines)

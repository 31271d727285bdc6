"""The report: exact metrics from small fixed splits, the files it writes, and bad or thin input."""

import numpy as np
import pytest
from PIL import Image

from deepmars.errors import DataError
from deepmars.evaluation import REPORT_FILE, SplitPredictions, fit_temperature, write_report

NAMES = ["ground", "rock", "sky"]
# train: majority class "ground" (3 of 5)
TRAIN = SplitPredictions(
    targets=np.array([0, 0, 0, 1, 2]),
    probs=np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]),
)
# val: 3 of 4 right; confidences 0.95 (right), 0.6 (right), 0.92 (wrong), 0.5 (right)
VAL = SplitPredictions(
    targets=np.array([0, 1, 2, 2]),
    logits=np.log(np.array([[0.95, 0.03, 0.02], [0.3, 0.6, 0.1], [0.92, 0.05, 0.03], [0.25, 0.25, 0.5]])),
    sols=np.array([10, 60, 70, 160]),
    groups=np.array(["ML", "MR", "ML", "MH"]),
)
# test: "sky" absent; 2 of 3 right; confidences 0.97 (right), 0.91 (wrong), 0.55 (right)
TEST = SplitPredictions(
    targets=np.array([0, 1, 1]),
    probs=np.array([[0.97, 0.02, 0.01], [0.91, 0.05, 0.04], [0.3, 0.55, 0.15]]),
    sols=np.array([200, 210, 320]),
    groups=np.array(["ML", "ML", "MR"]),
)


@pytest.mark.slow
def test_full_report_metrics_and_files(tmp_path):
    routed = SplitPredictions(targets=TEST.targets, probs=np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05],
                                                                     [0.2, 0.7, 0.1]]))
    m = write_report({"train": TRAIN, "val": VAL, "test": TEST}, NAMES, tmp_path, dataset="msl",
                     model_name="MSLNet", compare={"MSLNet-inst": {"test": routed}}, sol_window=100)
    assert m["train_acc"] == 1.0 and m["val_acc"] == 0.75 and m["test_acc"] == pytest.approx(2 / 3)
    assert m["baseline_random_test_acc"] == pytest.approx(1 / 3)
    assert m["baseline_majority_train_acc"] == 0.6
    assert m["baseline_majority_val_acc"] == 0.25
    assert m["baseline_majority_test_acc"] == pytest.approx(1 / 3)
    assert m["test_acc_at_0.9"] == 0.5 and m["test_abstain_at_0.9"] == pytest.approx(1 / 3)
    assert m["val_acc_at_0.9"] == 0.5 and m["val_abstain_at_0.9"] == 0.5
    assert m["test_acc_at_0.95"] == 1.0 and m["test_abstain_at_0.95"] == pytest.approx(2 / 3)
    # test ECE by hand: bin 14 holds 0.97 (right) and 0.91 is in bin 13 (wrong), 0.55 in bin 8 (right)
    assert m["test_ece"] == pytest.approx((0.03 + 0.91 + 0.45) / 3)
    assert m["temperature"] == pytest.approx(fit_temperature(VAL.logits, VAL.targets))
    assert "test_ece_calibrated" in m and "test_abstain_at_0.9_calibrated" in m
    assert m["test_acc_instrument_ml"] == 0.5 and m["val_acc_instrument_mh"] == 1.0
    assert m["mslnet_inst_test_acc"] == 1.0
    assert m["mslnet_inst_test_acc_at_0.9"] == 1.0 and m["mslnet_inst_test_abstain_at_0.9"] == pytest.approx(2 / 3)
    assert "train_acc_at_0.9" not in m  # the training split gets no threshold analysis
    assert all(isinstance(v, float) and np.isfinite(v) for v in m.values())

    for name in ["metrics.csv", "accuracy.csv", "thresholds.csv", "calibration.csv", "drift.csv", "groups.csv",
                 "comparison.csv", "per_class_test.csv", "confusion_test_counts.csv", "confused_pairs_val.csv"]:
        assert (tmp_path / name).stat().st_size > 0, name
    for name in ["thresholds.png", "reliability.png", "drift.png", "confusion_val_counts.png",
                 "confusion_test_normalised.png"]:
        with Image.open(tmp_path / name) as img:
            assert img.width > 0 and img.height > 0
    assert "test,200,299,2,1,0.5" in (tmp_path / "drift.csv").read_text().splitlines()

    report = (tmp_path / REPORT_FILE).read_text()
    for section in ["## Accuracy and baselines", "## Confidence threshold", "## Calibration",
                    "## test: per-class scores", "## Drift: accuracy by sol window (100 sols)",
                    "## Accuracy by instrument", "## Model comparison"]:
        assert section in report, section
    assert '| test | 3 | 66.7% | 33.3% | 33.3% |' in report
    assert "Classes absent from test (no images; recall and F1 undefined): sky." in report
    assert "| sky | n/a | n/a | n/a | 0 | 0 | absent |" in report
    assert "| paper MSLNet-inst |" in report and "66.7%" in report and "val 94.3% at 41% abstained" in report
    assert "equal-width bins" in report  # the ECE definition is stated


@pytest.mark.slow
def test_empty_split_and_no_training_split_still_report(tmp_path):
    empty = SplitPredictions(targets=np.zeros(0, dtype=int), probs=np.zeros((0,)))
    m = write_report({"val": VAL, "test": empty}, NAMES, tmp_path, dataset="hirise")
    assert m["test_n"] == 0.0 and "test_acc" not in m and "test_ece" not in m
    assert "baseline_majority_val_acc" not in m  # no training split, no majority class
    assert m["val_acc"] == 0.75
    report = (tmp_path / REPORT_FILE).read_text()
    assert "Split 'test' is empty" in report
    assert "| ground | n/a | n/a | n/a | 0 | 0 | absent |" in report
    assert "majority (no training split)" in report and 'paper majority ("other")' in report
    assert (tmp_path / "per_class_test.csv").exists()


@pytest.mark.slow
def test_no_calibration_split_no_dataset(tmp_path):
    m = write_report({"test": TEST}, NAMES, tmp_path)
    assert "temperature" not in m and "test_ece_calibrated" not in m and "test_ece" in m
    report = (tmp_path / REPORT_FILE).read_text()
    assert "No temperature fitted" in report and "paper" not in report


def test_class_count_mismatch_is_an_error(tmp_path):
    with pytest.raises(DataError, match="model, split 'test'.*3 columns but there are 2 classes"):
        write_report({"test": TEST}, ["ground", "rock"], tmp_path)
    with pytest.raises(DataError, match="repeated"):
        write_report({"test": TEST}, ["ground", "rock", "rock"], tmp_path)

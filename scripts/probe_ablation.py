"""Ablation of the frozen-feature recipe: which features, which views, which calibration.

Each row fits the recipe's logistic-regression head exactly as ``trainer.fine_tune=false`` does
(C chosen on val among the grid, views averaged, temperature by the val rule) and scores it on:

- HiRISE: grouped 5-fold cross-validation (split=source_image_cv, seed 0): mean +- sd over folds;
- MSL: the paper's sol split.

Test never chooses anything. Features come from deepmars' feature cache (``trainer.feature_cache``;
computed here when missing: EfficientNet-Lite0, 224 px, bfloat16, final features plus pooled
blocks 3-5, so one cache serves every row). Usage, from the repository root:

    DEEPMARS_DATA=/path/to/data python scripts/probe_ablation.py --cache /path/to/feature_cache [--only hirise|msl]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepmars.config import ModelConfig  # noqa: E402
from deepmars.data.cache import decode_samples  # noqa: E402
from deepmars.data.dataset import load_dataset  # noqa: E402
from deepmars.data.root import resolve_root  # noqa: E402
from deepmars.evaluation.calibration import expected_calibration_error, fit_temperature, softmax  # noqa: E402
from deepmars.evaluation.temperature_choice import choose_temperature  # noqa: E402
from deepmars.models.factory import build_model  # noqa: E402
from deepmars.schema import load  # noqa: E402
from deepmars.splits import make_splits  # noqa: E402
from deepmars.training.features import features_for  # noqa: E402
from deepmars.training.frozen import view_logits  # noqa: E402
from deepmars.training.head_init import fit_probe  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
FINAL = 1280  # Lite0's final feature width; the cached vectors continue with blocks 3-5 (80 + 112 + 192)
MODEL = {**OmegaConf.to_container(OmegaConf.load(CONF / "model" / "efficientnet_lite0.yaml")),
         "feature_blocks": [3, 4, 5], "tta": "none"}
ROWS = {  # name -> (use mid-level blocks, views)
    "hirise": [("final features, 1 view (the probe)", False, ("identity",)),
               ("+ blocks 3-5, 1 view", True, ("identity",)),
               ("final features, 4 views", False, ("identity", "rot90", "rot180", "hflip")),
               ("+ blocks 3-5, 2 views", True, ("identity", "rot180")),
               ("+ blocks 3-5, 4 views (hirise_lite0_frozen)", True, ("identity", "rot90", "rot180", "hflip"))],
    "msl": [("final features, 1 view (the probe)", False, ("identity",)),
            ("final features, 2 views (mirror)", False, ("identity", "hflip")),
            ("+ blocks 3-5, 1 view", True, ("identity",)),
            ("+ blocks 3-5, 2 views (msl_lite0_frozen)", True, ("identity", "hflip"))],
}


def all_features(name: str, views: tuple[str, ...], cache: str) -> tuple[list, np.ndarray]:
    cfg = OmegaConf.load(CONF / "dataset" / f"{name}.yaml")
    ds = load_dataset(cfg, resolve_root(cfg, download=False))
    model, pre = build_model(load(ModelConfig, MODEL, prefix="model"), len(ds.class_names))
    data = decode_samples(sorted(ds.samples, key=lambda s: s.name), pre, 0, "decode", progress=False)
    feats = features_for(model, model.classifier, data.images, [s.path for s in data.samples], pre, views,
                         model_cfg=MODEL, cache_dir=cache, dtype="bfloat16")
    return ds, data, feats


def score(feats: np.ndarray, targets: np.ndarray, idx: dict, n_classes: int) -> dict:
    best = None
    for c in C_GRID:
        w, b, _ = fit_probe(feats[idx["train"]].mean(1), targets[idx["train"]], n_classes, c)
        val = view_logits(feats[idx["val"]], w, b)
        acc = float((val.argmax(1) == targets[idx["val"]]).mean())
        if best is None or acc > best[0]:
            best = (acc, c, w, b, val)
    val_acc, c, w, b, val = best
    test, y = view_logits(feats[idx["test"]], w, b), targets[idx["test"]]
    t_rule, _ = choose_temperature("val_halves", val, targets[idx["val"]])
    p = softmax(test, t_rule)
    keep = p.max(1) >= 0.9
    return {"val": val_acc, "C": c, "test": float((test.argmax(1) == y).mean()),
            "acc90": float((p.argmax(1)[keep] == y[keep]).mean()) if keep.any() else float("nan"),
            "abstain90": float(1 - keep.mean()), "T": t_rule,
            "ece_none": expected_calibration_error(softmax(test), y),
            "ece_val_T": expected_calibration_error(softmax(test, fit_temperature(val, targets[idx["val"]])), y),
            "ece_rule": expected_calibration_error(p, y)}


def split_indices(ds, data, split_cfg: dict) -> dict:
    pos = {s.name: i for i, s in enumerate(data.samples)}
    return {k: np.array([pos[s.name] for s in v]) for k, v in make_splits(ds, split_cfg).items()}


def run(name: str, cache: str) -> None:
    all_views = tuple(dict.fromkeys(v for _, _, views in ROWS[name] for v in views))
    ds, data, feats = all_features(name, all_views, cache)
    if name == "hirise":
        splits = [split_indices(ds, data, {"name": "source_image_cv", "folds": 5, "fold": f, "val_fraction": 0.15,
                                           "seed": 0}) for f in range(5)]
    else:
        splits = [split_indices(ds, data, OmegaConf.to_container(OmegaConf.load(CONF / "split" / "sol.yaml")))]
    keys = ("val", "test", "acc90", "abstain90", "ece_none", "ece_val_T", "ece_rule")
    print(f"\n{name}: " + ("grouped 5-fold CV, mean +- sd over folds" if name == "hirise" else "sol split"))
    print("| features, views | " + " | ".join(keys) + " | C per fold | T kept per fold |")
    print("|---|" + "---|" * (len(keys) + 2))
    for label, mid, views in ROWS[name]:
        cols = [all_views.index(v) for v in views]
        f = feats[:, cols] if mid else feats[:, cols, :FINAL]
        rs = [score(f, data.targets, idx, len(ds.class_names)) for idx in splits]
        cells = [f"{np.mean([r[k] for r in rs]):.3f}"
                 + (f" +- {np.std([r[k] for r in rs], ddof=1):.3f}" if len(rs) > 1 else "")
                 for k in keys]
        cs = ",".join(f"{r['C']:g}" for r in rs)
        ts = ",".join(f"{r['T']:.2f}" for r in rs)
        print(f"| {label} | " + " | ".join(cells) + f" | {cs} | {ts} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="feature cache folder (trainer.feature_cache)")
    ap.add_argument("--only", choices=("hirise", "msl"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in ("hirise", "msl"):
        if args.only in (None, name):
            run(name, args.cache)


if __name__ == "__main__":
    main()

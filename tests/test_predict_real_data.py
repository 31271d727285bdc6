"""The 46 unlabeled MSL images (in calibrated/, in no split file) as a real "new batch".

With the tiny untrained network this proves the run on real files (names, sizes, modes, the
data set's own metadata rule); the README gives the trained model's summary of this batch.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from PIL import Image
from support import ROOT, TINY, options

from deepmars.catalog import Catalog
from deepmars.config import ModelConfig
from deepmars.models.bundle import ModelBundle
from deepmars.models.factory import build_model
from deepmars.models.loading import load_bundle
from deepmars.prediction.runner import run_predict
from deepmars.schema import load

SPLITS = ("train-calibrated-shuffled.txt", "val-calibrated-shuffled.txt", "test-calibrated-shuffled.txt")


@pytest.fixture(scope="module")
def msl() -> Path:
    value = os.environ.get("DEEPMARS_DATA")
    if not value:
        pytest.skip("DEEPMARS_DATA is not set: the real MSL data set is needed (e.g. DEEPMARS_DATA=~/data holding msl/)")
    root = Path(value) / "msl"
    if not (root / "calibrated").is_dir():
        pytest.skip(f"{root}/calibrated not found: DEEPMARS_DATA must hold msl/ as published (Zenodo 1049137)")
    return root


def unlabeled(root: Path) -> list[Path]:
    labeled = {line.split()[0] for name in SPLITS for line in (root / name).read_text().splitlines() if line.strip()}
    return sorted(p for p in (root / "calibrated").iterdir() if f"calibrated/{p.name}" not in labeled)


@pytest.mark.real_data
def test_unlabeled_msl_images_as_a_new_batch(msl, tmp_path):
    batch = unlabeled(msl)
    assert len(batch) == 46
    listing = tmp_path / "new_batch.txt"
    listing.write_text("".join(f"{p}\n" for p in batch))
    spec = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "dataset" / "msl.yaml"))["metadata"]
    classes = [line.split(None, 1)[1].strip() for line in (msl / "msl_synset_words-indexed.txt").read_text().splitlines()]
    model, preprocess = build_model(load(ModelConfig, TINY), len(classes), load_pretrained=False)
    ModelBundle(model=model, model_cfg=TINY, class_names=classes, preprocess=preprocess,
                dataset={"name": "msl", "metadata": spec}).save(tmp_path / "tiny.pt")

    summary = run_predict(options(listing, tmp_path / "tiny.pt", tmp_path / "c.sqlite", num_workers=1),
                          load_bundle(str(tmp_path / "tiny.pt")), out=io.StringIO(), progress=False)
    assert (summary.classified, summary.failed, summary.exit_code) == (46, 0, 0)
    with Catalog.open(tmp_path / "c.sqlite", create=False) as cat:
        rows = cat.conn.execute("SELECT path, sol, instrument, width, height FROM predictions").fetchall()
    assert sorted(r[0] for r in rows) == [str(p) for p in batch]
    for path, sol, instrument, width, height in rows:
        name = Path(path).name
        assert (sol, instrument) == (int(name[:4]), name[4:6]) and instrument in ("ML", "MR", "MH")
        with Image.open(path) as img:
            assert (width, height) == img.size  # the original size, not the network input's

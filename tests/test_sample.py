"""The embedded sample (deepmars/sample_data): real, in the published layouts, cited, and decodable."""

from __future__ import annotations

import filecmp
import importlib.util
from collections import Counter

import pytest
from conftest import CONF, REPO
from hydra import compose, initialize_config_dir
from PIL import Image

from deepmars.config import validate
from deepmars.data.dataset import LabeledDataset, load_dataset
from deepmars.data.images import load_image
from deepmars.data.root import resolve_root

SAMPLE = REPO / "deepmars" / "sample_data"


def load_sample(name: str) -> LabeledDataset:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = validate(compose("config", overrides=[f"dataset={name}", "trainer.checkpoint_dir=unused"]))
    root = resolve_root(cfg.dataset, download=False)
    assert root == SAMPLE / name.removeprefix("sample_")
    return load_dataset(cfg.dataset, root)


@pytest.fixture(scope="module")
def hirise() -> LabeledDataset:
    return load_sample("sample_hirise")


@pytest.fixture(scope="module")
def msl() -> LabeledDataset:
    return load_sample("sample_msl")


def test_hirise_sample_loads_through_its_config(hirise):
    assert len(hirise.samples) == 144
    assert dict(Counter(s.class_id for s in hirise.samples)) == {c: 24 for c in (0, 1, 2, 3, 4, 6)}
    assert hirise.dropped_classes == {5: "impact ejecta"}
    assert len({s.meta["source_image"] for s in hirise.samples}) == 64


def test_msl_sample_loads_through_its_config(msl):
    assert len(msl.samples) == 156 and len(msl.class_names) == 24 and msl.dropped_classes == {22: "sun"}
    assert dict(Counter(s.origin for s in msl.samples)) == {"train": 72, "val": 40, "test": 44}
    per_class = Counter((s.origin, s.class_id) for s in msl.samples)
    assert {k: v for k, v in per_class.items() if v > {"train": 3, "val": 2, "test": 2}[k[0]]} == {}
    assert {s.meta["instrument"] for s in msl.samples} == {"ML", "MR", "MH"}


def test_published_layout_and_nothing_else():
    assert sorted(p.name for p in (SAMPLE / "hirise").iterdir()) == ["labels-map-proj.txt", "map-proj"]
    assert sorted(p.name for p in (SAMPLE / "msl").iterdir()) == [
        "README.txt", "calibrated", "msl_synset_words-indexed.txt", "test-calibrated-shuffled.txt",
        "train-calibrated-shuffled.txt", "val-calibrated-shuffled.txt"]
    crops = {p.name for p in (SAMPLE / "hirise" / "map-proj").iterdir()}
    labeled = {line.split()[0] for line in (SAMPLE / "hirise" / "labels-map-proj.txt").read_text().splitlines()}
    assert crops == labeled and all(n.endswith(".jpg") for n in crops)
    images = {f"calibrated/{p.name}" for p in (SAMPLE / "msl" / "calibrated").iterdir()}
    split_lines = [line for f in ("train", "val", "test")
                   for line in (SAMPLE / "msl" / f"{f}-calibrated-shuffled.txt").read_text().splitlines()]
    assert images == {line.split()[0] for line in split_lines} and all(n.endswith("_DRCL.JPG") for n in images)
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 5_000_000, size


def test_readme_cites_the_data_sets():
    text = " ".join((SAMPLE / "README.md").read_text().split())  # line breaks as spaces
    for needed in ("10.5281/zenodo.1049137", "10.5281/zenodo.1048301", "CC BY-SA 4.0", "Wagstaff",
                   "Deep Mars: CNN Classification of Mars Imagery for the PDS Imaging Atlas", "IAAI", "2018",
                   "scripts/make_sample.py", "144", "156", "64 source images"):
        assert needed in text, needed
    assert "Alice Stanboli and Kiri L. Wagstaff" in (SAMPLE / "msl" / "README.txt").read_text()


def test_every_sample_image_decodes(hirise, msl):
    for s in hirise.samples:
        with Image.open(s.path) as raw:
            assert (raw.format, raw.mode, raw.size) == ("JPEG", "L", (227, 227)), s.name
        assert load_image(s.path, "L").size == (227, 227)
    for s in msl.samples:
        img = load_image(s.path)
        assert img.mode == "RGB" and 192 <= max(img.size) <= 256, (s.name, img.size)


@pytest.mark.real_data
def test_sample_is_what_make_sample_copies_from_the_real_data(real_data, tmp_path):
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "scripts" / "make_sample.py")
    make_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_sample)
    make_sample.make_hirise(real_data / "hirise", tmp_path / "hirise")
    make_sample.make_msl(real_data / "msl", tmp_path / "msl")
    for name in ("hirise", "msl"):
        made = sorted(p.relative_to(tmp_path / name) for p in (tmp_path / name).rglob("*") if p.is_file())
        shipped = sorted(p.relative_to(SAMPLE / name) for p in (SAMPLE / name).rglob("*") if p.is_file())
        assert made == shipped, name
        _, mismatch, errors = filecmp.cmpfiles(tmp_path / name, SAMPLE / name, [str(p) for p in made], shallow=False)
        assert (mismatch, errors) == ([], []), name
        for p in shipped:  # byte for byte the published files
            if p.name not in ("labels-map-proj.txt",) and not p.name.endswith("-shuffled.txt"):
                assert filecmp.cmp(SAMPLE / name / p, real_data / name / p, shallow=False), p

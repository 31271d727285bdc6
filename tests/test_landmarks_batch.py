"""The batch and its entry point: HiRISE v1 layout out, bad files reported while the batch goes on."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from deepmars.data.labels import read_label_file
from deepmars.errors import ConfigError, DataError
from deepmars.landmarks import cli
from deepmars.landmarks.batch import find_images, run_from_config
from deepmars.landmarks.synthetic import disc_scene

ROOT = Path(__file__).resolve().parents[1]
DISCS = [(150, 128, 24, 200), (360, 380, 18, 40)]


def config(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="landmarks", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """One good scene and one of each kind of bad input."""
    folder = tmp_path / "images"
    folder.mkdir()
    scene = disc_scene(512, 512, DISCS)
    Image.fromarray(scene).save(folder / "ESP_000001_1000_RED.browse.png")
    Image.fromarray(scene.astype(np.uint16) * 257).save(folder / "wide16.png")
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(folder / "black.png")
    Image.fromarray(scene[:40, :60]).save(folder / "tiny.png")
    (folder / "notes.jpg").write_text("this is not an image")
    Image.fromarray(scene).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 3])
    return folder


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_batch_writes_hirise_layout_and_reports_every_image(batch, tmp_path):
    out = tmp_path / "out"
    summary = run_from_config(config(f"input={batch}", f"output_dir={out}"))
    assert (summary.images, summary.failed, summary.landmarks) == (6, 2, 4)  # 2 discs, in 8 and 16 bit

    images = {row["source"]: row for row in read_csv(out / "images.csv")}
    assert images["ESP_000001_1000_RED"]["status"] == "ok" and images["ESP_000001_1000_RED"]["landmarks"] == "2"
    assert images["wide16"]["landmarks"] == "2"
    assert images["black"]["status"] == "ok" and "no-data" in images["black"]["message"]
    assert images["tiny"]["landmarks"] == "0" and "smaller than" in images["tiny"]["message"]
    assert images["notes"]["status"] == "error" and "notes.jpg" in images["notes"]["message"]
    assert images["cut"]["status"] == "error" and "truncated" in images["cut"]["message"]

    rows = read_csv(out / "landmarks.csv")
    crops = sorted((out / "map-proj").iterdir())
    assert [c.name for c in crops] == sorted(r["file"] for r in rows)
    assert (rows[0]["file"], rows[0]["source"], rows[0]["id"]) == ("ESP_000001_1000_RED-0001.jpg",
                                                                   "ESP_000001_1000_RED", "1")
    for row in rows:
        w, h = int(row["w"]), int(row["h"])
        assert int(row["crop_side"]) == max(w, h) + 60
        assert int(row["crop_x"]) == int(row["x"]) - (max(w, h) - w) // 2 - 30
        with Image.open(out / "map-proj" / row["file"]) as img:
            assert (img.size, img.mode, img.format) == ((227, 227), "L", "JPEG")
    assert (out / "overlays" / "ESP_000001_1000_RED.png").is_file()
    assert "placeholder -1" in (out / "LABELING.txt").read_text()


def test_labels_template_is_refused_until_labeled_then_loads(batch, tmp_path):
    out = tmp_path / "out"
    run_from_config(config(f"input={batch}", f"output_dir={out}"))
    labels = out / "labels-map-proj.txt"
    classes = {int(line.split(",")[0]) for line in (out / "landmarks_mp_classmap.csv").read_text().splitlines()}
    assert classes == set(range(7))
    with pytest.raises(DataError, match="labels-map-proj.txt:1: class id -1"):
        read_label_file(labels, classes)
    labels.write_text(labels.read_text().replace(" -1\n", " 1\n"))
    lines = read_label_file(labels, classes)
    assert len(lines) == 4 and all((out / "map-proj" / ln.name).is_file() for ln in lines)


@pytest.mark.parametrize(("override", "key"), [
    ("detect.window=16", "detect.window"),
    ("detect.threshold_quantile=1.5", "detect.threshold_quantile"),
    ("detect.scales=[]", "detect.scales"),
    ("detect.max_region=5", "detect.max_region"),
    ("read.working_scale=huge", "read.working_scale"),
    ("read.working_scale=0", "read.working_scale"),
    ("crops.margin=-1", "crops.margin"),
    ("detect.nodata_mask=maybe", "detect.nodata_mask"),
])
def test_config_values_are_validated_before_any_image_is_read(override, key, tmp_path):
    cfg = config(f"input={tmp_path / 'nothing'}", f"output_dir={tmp_path / 'out'}", override)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        run_from_config(cfg)
    assert not (tmp_path / "out").exists()


def test_find_images_folder_glob_and_list(batch):
    assert [p.name for p in find_images(str(batch))][:2] == ["ESP_000001_1000_RED.browse.png", "black.png"]
    assert [p.name for p in find_images(str(batch / "*.jpg"))] == ["cut.jpg", "notes.jpg"]
    assert len(find_images([str(batch / "black.png"), str(batch / "missing.png")])) == 2
    with pytest.raises(ConfigError, match="input"):
        find_images(str(batch / "*.tif"))


def test_detect_exits_3_when_some_images_failed(batch, tmp_path):
    good, bad = batch / "black.png", batch / "notes.jpg"
    assert cli.main(config(f"input=['{good}']", f"output_dir={tmp_path / 'ok'}")) == cli.EXIT_OK == 0
    assert cli.main(config(f"input=['{good}','{bad}']", f"output_dir={tmp_path / 'some'}")) == cli.EXIT_SOME_FAILED == 3
    assert "not an image" in (tmp_path / "some" / "images.csv").read_text()


@pytest.mark.slow
def test_entry_point_runs_and_reports_config_errors(batch, tmp_path):
    ok = subprocess.run([sys.executable, "landmarks.py", f"input={batch / 'black.png'}",
                         f"output_dir={tmp_path / 'o'}",
                         f"hydra.run.dir={tmp_path / 'h1'}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "0 landmarks from 1 of 1 images" in ok.stdout
    bad = subprocess.run([sys.executable, "landmarks.py", f"input={batch}", "detect.window=4",
                          f"hydra.run.dir={tmp_path / 'h2'}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "detect.window: got 4" in bad.stderr

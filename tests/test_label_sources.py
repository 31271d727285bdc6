"""Several label files per split: a new batch added to a data set by config, images where they lie."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONF, dataset_cfg, msl_name, write_jpeg
from hydra import compose, initialize_config_dir

from deepmars.config import validate
from deepmars.data.dataset import load_dataset
from deepmars.data.root import required_paths, resolve_root
from deepmars.errors import ConfigError, DataError
from deepmars.splits import make_splits


def new_batch(folder: Path, entries=((300, "ML", 1), (310, "MR", 3))) -> tuple[Path, list[str]]:
    """A delivery elsewhere on disk: images/<name> and a labels file naming them relative to images/."""
    names = [msl_name(sol, inst, 900 + i) for i, (sol, inst, _) in enumerate(entries)]
    for i, name in enumerate(names):
        write_jpeg(folder / "images" / name, shade=200 + i)
    labels = folder / "new-batch.txt"
    labels.write_text("".join(f"{n} {c}\n" for n, (_, _, c) in zip(names, entries, strict=True)))
    return labels, names


def test_a_second_train_file_inside_the_data_set(msl_root):
    write_jpeg(msl_root / "calibrated" / "0042ML0000000000100000E01_DRCL.JPG")
    (msl_root / "extra.txt").write_text("calibrated/0042ML0000000000100000E01_DRCL.JPG 1\n")
    cfg = dataset_cfg("msl", msl_root)
    cfg["labels"]["train"] = ["train-calibrated-shuffled.txt", "extra.txt"]
    ds = load_dataset(cfg, msl_root)
    train = [s for s in ds.samples if s.origin == "train"]
    assert len(train) == 5 and train[-1].name == "calibrated/0042ML0000000000100000E01_DRCL.JPG"
    assert train[-1].meta == {"sol": 42, "instrument": "ML"}
    before = load_dataset(dataset_cfg("msl", msl_root), msl_root).labels_sha256
    assert ds.labels_sha256 != before  # the extra file is part of what was trained on


def test_a_batch_outside_the_data_set_is_read_where_it_lies(msl_root, tmp_path):
    labels, names = new_batch(tmp_path / "delivery")
    cfg = dataset_cfg("msl", msl_root)
    cfg["labels"]["train"] = ["train-calibrated-shuffled.txt",
                              {"file": str(labels), "image_dir": str(tmp_path / "delivery" / "images")}]
    ds = load_dataset(cfg, msl_root)
    extra = [s for s in ds.samples if s.name in names]
    assert [s.path for s in extra] == [tmp_path / "delivery" / "images" / n for n in names]
    assert [s.origin for s in extra] == ["train", "train"] and extra[0].meta["sol"] == 300
    assert not list((msl_root / "calibrated").glob(f"{names[0]}"))  # nothing copied
    splits = make_splits(ds, {"name": "files"})
    assert {s.name for s in splits["train"]} >= set(names)


def test_errors_in_the_new_batch_name_its_file_and_line(msl_root, tmp_path):
    labels, names = new_batch(tmp_path / "delivery")
    labels.write_text(f"{names[0]} 1\n{names[1]} 9\n")
    cfg = dataset_cfg("msl", msl_root)
    image_dir = str(tmp_path / "delivery" / "images")
    cfg["labels"]["train"] = ["train-calibrated-shuffled.txt", {"file": str(labels), "image_dir": image_dir}]
    with pytest.raises(DataError, match=rf"{labels}:2: class id 9 is not in the class list"):
        load_dataset(cfg, msl_root)
    labels.write_text(f"{names[0]} 1\nmissing.JPG 1\n")
    with pytest.raises(DataError, match=rf"{labels}:2: image 'missing.JPG' not found"):
        load_dataset(cfg, msl_root)
    labels.write_text(f"{names[0]} 1\n{names[0]} 2\n")
    with pytest.raises(DataError, match=rf"{labels}:2: duplicate entry"):
        load_dataset(cfg, msl_root)


def test_an_image_listed_in_two_sources_is_a_duplicate(msl_root, tmp_path):
    val_line = (msl_root / "val-calibrated-shuffled.txt").read_text().splitlines()[0]
    (tmp_path / "again.txt").write_text(val_line + "\n")
    cfg = dataset_cfg("msl", msl_root)
    cfg["labels"]["train"] = ["train-calibrated-shuffled.txt", str(tmp_path / "again.txt")]
    with pytest.raises(DataError, match=r"val-calibrated-shuffled.txt:1: duplicate entry .* first at .*again.txt:1"):
        load_dataset(cfg, msl_root)


@pytest.mark.parametrize("entry", [7, {"file": "x.txt", "images": "y"}, {"image_dir": "y"}, ""])
def test_a_bad_label_source_names_its_key(msl_root, entry):
    cfg = dataset_cfg("msl", msl_root)
    cfg["labels"]["train"] = ["train-calibrated-shuffled.txt", entry]
    with pytest.raises(ConfigError, match=r"dataset.labels.train\[1\]: .* is not a label file"):
        load_dataset(cfg, msl_root)


def test_a_missing_extra_file_is_named_before_loading(msl_root, tmp_path):
    cfg = dataset_cfg("msl", msl_root)
    cfg["labels"]["train"] = ["train-calibrated-shuffled.txt", str(tmp_path / "gone.txt")]
    assert str(tmp_path / "gone.txt") in required_paths(cfg)
    with pytest.raises(DataError, match="gone.txt"):
        resolve_root(cfg, download=False)


def test_the_command_line_adds_a_batch_to_msl(msl_root, tmp_path):
    labels, names = new_batch(tmp_path / "delivery")
    rel = Path("calibrated")
    for name in names:  # a batch whose images lie in the data set's own image folder
        write_jpeg(msl_root / rel / name)
    labels.write_text("".join(f"{rel / n} 1\n" for n in names))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[
            "dataset=msl", f"dataset.root={msl_root}", "split=sol", "model=tiny",
            f"trainer.checkpoint_dir={tmp_path / 'ck'}",
            f"dataset.labels.train=[train-calibrated-shuffled.txt,{labels}]"])
    cfg = validate(cfg)
    ds = load_dataset(cfg.dataset, resolve_root(cfg.dataset, download=False))
    assert {str(rel / n) for n in names} <= {s.name for s in ds.samples}

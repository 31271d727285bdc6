"""deepmars.data.dataset (and .metadata): data sets of the Deep Mars family read from their YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONF, HIRISE_CLASSES, dataset_cfg, msl_name, write_jpeg
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from deepmars.config import validate
from deepmars.data.dataset import load_dataset
from deepmars.data.metadata import check_metadata_spec, parse_metadata
from deepmars.data.root import resolve_root
from deepmars.errors import ConfigError, DataError
from deepmars.splits import make_splits

MSL_PATTERN = dataset_cfg("msl")["metadata"]
HIRISE_PATTERN = dataset_cfg("hirise")["metadata"]


# --- the two published layouts -----------------------------------------------------------------------

def test_msl_layout_loads_with_ids_targets_origins_and_metadata(msl_root):
    ds = load_dataset(dataset_cfg("msl"), msl_root)
    assert (ds.name, ds.version, ds.root) == ("msl", "v1", msl_root)
    assert ds.class_ids == [0, 1, 3] and ds.class_names == ["apxs", "drill", "wheel"]
    assert ds.dropped_classes == {2: "sun"}
    rows = [(s.name, s.class_id, s.target, s.origin, s.meta) for s in ds.samples]
    assert rows[0] == (f"calibrated/{msl_name(3, 'ML', 0)}", 0, 0, "train", {"sol": 3, "instrument": "ML"})
    assert rows[3] == (f"calibrated/{msl_name(181, 'MH', 3)}", 3, 2, "train", {"sol": 181, "instrument": "MH"})
    assert rows[-1] == (f"calibrated/{msl_name(1060, 'MR', 9)}", 1, 1, "test", {"sol": 1060, "instrument": "MR"})
    assert [s.origin for s in ds.samples].count("val") == 3 and len(ds.samples) == 10  # unlabeled image left out
    assert all(s.path == msl_root / s.name and s.path.is_file() for s in ds.samples)
    assert dict(ds.counts()) == {0: 3, 1: 3, 2: 4}
    assert ds.describe()["class_names"] == ["apxs", "drill", "wheel"] and ds.describe()["num_samples"] == 10


def test_drop_empty_classes_false_keeps_every_listed_class(msl_root):
    ds = load_dataset(dataset_cfg("msl", drop_empty_classes=False), msl_root)
    assert ds.class_ids == [0, 1, 2, 3] and ds.class_names == ["apxs", "drill", "sun", "wheel"]
    assert ds.dropped_classes == {}
    assert {s.class_id: s.target for s in ds.samples} == {0: 0, 1: 1, 3: 3}


def test_hirise_layout_with_names_from_config(hirise_root):
    ds = load_dataset(dataset_cfg("hirise"), hirise_root)
    assert ds.class_ids == [0, 1, 2, 3, 4, 6]
    assert ds.class_names == ["other", "crater", "dark dune", "slope streak", "bright dune", "edge"]
    assert ds.dropped_classes == {5: "impact ejecta"}
    assert len(ds.samples) == 42 and {s.origin for s in ds.samples} == {"all"}
    edge = [s for s in ds.samples if s.class_id == 6]
    assert len(edge) == 6 and {s.target for s in edge} == {5}
    first = ds.samples[0]
    assert first.name == "ESP_011000_2000_RED-0001.jpg" and first.path == hirise_root / "map-proj" / first.name
    assert first.meta == {"source_image": "ESP_011000_2000_RED"}
    assert len({s.meta["source_image"] for s in ds.samples}) == 12


def test_labels_digest_identifies_the_label_and_class_files(msl_root):
    cfg = dataset_cfg("msl")
    before = load_dataset(cfg, msl_root).labels_sha256
    assert load_dataset(cfg, msl_root).labels_sha256 == before and len(before) == 64
    path = msl_root / "val-calibrated-shuffled.txt"
    path.write_text(path.read_text().replace(" 3\n", " 0\n"))
    assert load_dataset(cfg, msl_root).labels_sha256 != before


# --- bad input, through the loader -------------------------------------------------------------------

def test_missing_root_names_what_is_missing(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(dataset_cfg("msl"), tmp_path / "nope")
    assert info.value.path == tmp_path / "nope" / "msl_synset_words-indexed.txt"
    assert "class-name file not found" in str(info.value)
    with pytest.raises(DataError) as info:
        load_dataset(dataset_cfg("hirise"), tmp_path / "nope")
    assert info.value.path == tmp_path / "nope" / "map-proj" and "image folder not found" in str(info.value)
    with pytest.raises(DataError) as info:
        resolve_root(dataset_cfg("msl", tmp_path / "nope"), download=False)
    assert info.value.path == tmp_path / "nope"
    assert "the data set folder does not exist (from dataset.root)" in str(info.value)


def add_line(path: Path, line: str) -> int:
    """Append ``line``; its line number."""
    text = path.read_text() + line + "\n"
    path.write_text(text)
    return text.count("\n")


@pytest.mark.parametrize(("line", "fragment"), [
    ("calibrated/x.JPG", "(2 fields), got 1"),
    ("calibrated/x.JPG 0 extra", "(2 fields), got 3"),
    ("calibrated/x.JPG zero", "class id 'zero' is not an integer"),
    ("calibrated/x.JPG 24", "class id 24 is not in the class list [0, 1, 2, 3]"),
    ("../../etc/passwd 0", "leaves the data set folder"),
    ("/etc/passwd 0", "absolute path '/etc/passwd' refused"),
    ("calibrated/missing.JPG 1", "image 'calibrated/missing.JPG' not found"),
])
def test_bad_label_line_in_val_file(msl_root, line, fragment):
    val = msl_root / "val-calibrated-shuffled.txt"
    n = add_line(val, line)
    with pytest.raises(DataError) as info:
        load_dataset(dataset_cfg("msl"), msl_root)
    assert (info.value.path, info.value.line) == (val, n) and n == 4
    assert str(info.value).startswith(f"{val}:4: ") and fragment in str(info.value)


def test_duplicate_across_split_files(msl_root):
    train, test = msl_root / "train-calibrated-shuffled.txt", msl_root / "test-calibrated-shuffled.txt"
    first = train.read_text().splitlines()[1]
    n = add_line(test, first.replace(" 1", " 0"))
    with pytest.raises(DataError) as info:
        load_dataset(dataset_cfg("msl"), msl_root)
    assert (info.value.path, info.value.line) == (test, n)
    assert f"duplicate entry '{first.split()[0]}', first at {train}:2" in str(info.value)


def test_hirise_label_for_missing_crop(hirise_root):
    labels = hirise_root / "labels-map-proj.txt"
    (hirise_root / "map-proj" / "ESP_011003_2003_RED-0002.jpg").unlink()
    with pytest.raises(DataError) as info:
        load_dataset(dataset_cfg("hirise"), hirise_root)
    n = labels.read_text().splitlines().index("ESP_011003_2003_RED-0002.jpg 4") + 1
    assert (info.value.path, info.value.line) == (labels, n)
    assert f"image 'ESP_011003_2003_RED-0002.jpg' not found in {hirise_root / 'map-proj'}" in str(info.value)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"classes": {"file": "msl_synset_words-indexed.txt", "format": "tsv"}},
     "dataset.classes.format: 'tsv' is not one of ['csv', 'indexed']"),
    ({"classes": {"file": None, "names": None}}, "set dataset.classes.file or dataset.classes.names"),
    ({"classes": {"file": None, "names": ["a", "b", "a", "c", "b", "d"]}},
     "dataset.classes.names: ['a', 'b'] listed more than once"),
    ({"labels": {}}, "dataset.labels names no label file"),
    ({"metadata": {"pattern": "(?P<sol>[0-9]{4}", "types": {}}},
     "dataset.metadata.pattern '(?P<sol>[0-9]{4}' is not a valid regex: missing ), unterminated subpattern"),
    ({"metadata": {"pattern": "(?P<sol>\\d{4})", "types": {"sol": "integer"}}},
     "dataset.metadata.types.sol: 'integer' is not one of ['float', 'int', 'str']"),
    ({"metadata": {"pattern": "(?P<sol>\\d{4})", "types": {"instrument": "str"}}},
     "dataset.metadata.types.instrument: the pattern has no group named 'instrument'"),
])
def test_bad_dataset_config(msl_root, overrides, message):
    with pytest.raises(ConfigError) as info:
        load_dataset(dataset_cfg("msl", **overrides), msl_root)
    assert message in str(info.value)


# --- a third data set of the family, configured only in YAML -------------------------------------------

V21_YAML = """\
# A data set of the Deep Mars family in the later (v2.1-like) layout: image folder, one label
# file per split with '<file> <id>' lines, class names as an 'id,name' CSV.
name: msl_v21
version: v2.1-like
root: null
download: null
image_dir: images
labels:
  train: train-set-v2.1.txt
  val: val-set-v2.1.txt
  test: test-set-v2.1.txt
classes:
  file: class_map.csv
  format: csv
metadata:
  pattern: '^(?P<sol>\\d{4})(?P<instrument>M[LRH])'
  types: {sol: int}
"""


def make_v21(root: Path) -> dict[str, list[str]]:
    files = {"train": [(5, "ML", 0), (90, "MR", 2)], "val": [(200, "MH", 1)], "test": [(600, "ML", 2), (601, "MR", 0)]}
    out = {}
    for split, entries in files.items():
        names = [msl_name(sol, inst, 100 + i) for i, (sol, inst, _) in enumerate(entries)]
        for name in names:
            write_jpeg(root / "images" / name)
        (root / f"{split}-set-v2.1.txt").write_text(
            "".join(f"{n} {c}\n" for n, (_, _, c) in zip(names, entries, strict=True)))
        out[split] = names
    (root / "class_map.csv").write_text("0,apxs\n1,apxs cal target\n2,chemcam cal target\n3,unused\n")
    return out


def test_generic_dataset_from_yaml_only(tmp_path):
    conf = tmp_path / "myconf"
    (conf / "dataset").mkdir(parents=True)
    (conf / "dataset" / "msl_v21.yaml").write_text(V21_YAML)
    data = tmp_path / "data" / "msl_v21"
    names = make_v21(data)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[
            f"hydra.searchpath=[file://{conf}]", "dataset=msl_v21", f"dataset.root={data}",
            "split=files", "model=tiny", f"trainer.checkpoint_dir={tmp_path / 'ck'}"])
    cfg = validate(cfg)
    ds = load_dataset(cfg.dataset, resolve_root(cfg.dataset, download=False))
    assert ds.class_names == ["apxs", "apxs cal target", "chemcam cal target"] and ds.dropped_classes == {3: "unused"}
    splits = make_splits(ds, cfg.split)
    assert {k: [s.name for s in v] for k, v in splits.items()} == {k: sorted(v) for k, v in names.items()}
    assert splits["val"][0].meta == {"sol": 200, "instrument": "MH"} and splits["val"][0].target == 1
    assert {k: len(v) for k, v in make_splits(ds, {"name": "sol", "sol_range": cfg_ranges()}).items()} == \
        {"train": 2, "val": 1, "test": 2}


def test_class_csv_with_a_header_and_other_columns_is_read_by_config(tmp_path):
    """A class map saved by a spreadsheet (header row, more columns, names first) needs only config."""
    conf = tmp_path / "myconf"
    (conf / "dataset").mkdir(parents=True)
    (conf / "dataset" / "msl_v21.yaml").write_text(V21_YAML)
    data = tmp_path / "data" / "msl_v21"
    make_v21(data)
    (data / "class_map.csv").write_text("class_name,notes,class_id\napxs,,0\napxs cal target,,1\n"
                                         "chemcam cal target,x,2\nunused,,3\n")
    overrides = [f"hydra.searchpath=[file://{conf}]", "dataset=msl_v21", f"dataset.root={data}", "split=files",
                 "model=tiny", f"trainer.checkpoint_dir={tmp_path / 'ck'}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        plain = validate(compose("config", overrides=overrides))
        cfg = validate(compose("config", overrides=[*overrides, "dataset.classes.header=true",
                                                    "dataset.classes.columns.id=class_id",
                                                    "dataset.classes.columns.name=class_name"]))
    with pytest.raises(DataError, match=r"class_map.csv:1: expected '<id>,<name>' \(dataset.classes.header and"):
        load_dataset(plain.dataset, data)
    ds = load_dataset(cfg.dataset, data)
    assert ds.class_names == ["apxs", "apxs cal target", "chemcam cal target"] and ds.dropped_classes == {3: "unused"}


def cfg_ranges() -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF / "split" / "sol.yaml"))["sol_range"]


def test_hirise_with_the_published_csv_class_map(hirise_root):
    (hirise_root / "landmarks_mp_classmap.csv").write_text("".join(f"{i},{n}\n" for i, n in enumerate(HIRISE_CLASSES)))
    by_names = load_dataset(dataset_cfg("hirise"), hirise_root)
    by_csv = load_dataset(dataset_cfg("hirise", classes={"file": "landmarks_mp_classmap.csv", "format": "csv"}),
                          hirise_root)
    assert (by_csv.class_ids, by_csv.class_names) == (by_names.class_ids, by_names.class_names)
    assert [s.target for s in by_csv.samples] == [s.target for s in by_names.samples]


# --- metadata from file names ------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "meta"), [
    ("calibrated/0003ML0000000110100031E01_DRCL.JPG", {"sol": 3, "instrument": "ML"}),
    ("0565MR0023280040300745E01_DRCL.JPG", {"sol": 565, "instrument": "MR"}),
    ("1060MH0004670010401366C00_DRCL.JPG", {"sol": 1060, "instrument": "MH"}),
    ("0003MX0000000110100031E01_DRCL.JPG", {}),  # not one of the three instruments
    ("sub/x0003ML.JPG", {}),  # anchored at the start of the base name
])
def test_msl_sol_and_instrument(name, meta):
    assert parse_metadata(name, MSL_PATTERN) == meta


@pytest.mark.parametrize(("name", "source"), [
    ("ESP_011623_2100_RED-0069.jpg", "ESP_011623_2100_RED"),
    ("PSP_001414_1780_RED-0001.jpg", "PSP_001414_1780_RED"),
    ("thresh-1-ESP_0-0012.jpg", "thresh-1-ESP_0"),  # the source is what precedes the last dash
])
def test_hirise_source_image(name, source):
    assert parse_metadata(name, HIRISE_PATTERN) == {"source_image": source}


def test_metadata_without_pattern_or_match():
    assert parse_metadata("a.jpg", None) == {} and parse_metadata("a.jpg", {"pattern": None}) == {}
    assert parse_metadata("no_dash.jpg", HIRISE_PATTERN) == {}
    check_metadata_spec(None)
    check_metadata_spec(MSL_PATTERN)
    assert parse_metadata("1.5x.jpg", {"pattern": r"^(?P<v>[\d.]+)x", "types": {"v": "float"}}) == {"v": 1.5}

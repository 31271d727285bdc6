"""deepmars.splits: the paper's splits (exact, on the real data) and their rules (on generated sets)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import CONF, MSL_ENTRIES, dataset_cfg, hirise_entries, make_hirise, make_msl, msl_name
from omegaconf import OmegaConf

from deepmars.data.dataset import LabeledDataset, load_dataset
from deepmars.data.labels import read_label_file
from deepmars.errors import ConfigError, DataError
from deepmars.splits import (
    SPLITS,
    check_splits,
    copy_group,
    group_counts,
    make_splits,
    save_split_lists,
    split_table,
)


def split_cfg(name: str, **overrides) -> dict:
    cfg = OmegaConf.load(CONF / "split" / f"{name}.yaml")
    cfg.seed = 0  # `${seed}` comes from the root config
    return {**OmegaConf.to_container(cfg, resolve=True), **overrides}


def names(splits) -> dict[str, list[str]]:
    return {k: [s.name for s in v] for k, v in splits.items()}


def sizes(splits) -> dict[str, int]:
    return {k: len(v) for k, v in splits.items()}


@pytest.fixture
def msl(msl_root) -> LabeledDataset:
    return load_dataset(dataset_cfg("msl"), msl_root)


@pytest.fixture
def hirise(tmp_path) -> LabeledDataset:
    """40 source images of 1..6 crops each (136 crops)."""
    return load_dataset(dataset_cfg("hirise"), make_hirise(tmp_path / "hirise", hirise_entries(40)))


# --- sol ----------------------------------------------------------------------------------------------

def test_sol_ranges_are_inclusive_and_match_the_split_files(msl):
    splits = make_splits(msl, split_cfg("sol"))
    sols = {k: [s.meta["sol"] for s in v] for k, v in splits.items()}
    assert sols == {"train": [3, 50, 100, 181], "val": [182, 300, 564], "test": [565, 700, 1060]}
    assert names(splits) == names(make_splits(msl, split_cfg("files")))
    check_splits(splits)


def test_images_outside_every_range_are_left_out(tmp_path):
    entries = MSL_ENTRIES + [("train", 2, "ML", 0), ("test", 1061, "MR", 1), ("val", 181, "MR", 1)]
    ds = load_dataset(dataset_cfg("msl"), make_msl(tmp_path / "msl", entries))
    splits = make_splits(ds, split_cfg("sol"))
    assert sizes(splits) == {"train": 5, "val": 3, "test": 3}
    kept = {s.name for v in splits.values() for s in v}
    assert {s.name for s in ds.samples} - kept == {
        f"calibrated/{msl_name(2, 'ML', 10)}", f"calibrated/{msl_name(1061, 'MR', 11)}"}
    # split files and sol ranges now disagree: the sol-181 image listed under val is train by sol
    assert f"calibrated/{msl_name(181, 'MR', 12)}" in names(splits)["train"]


def test_empty_split_is_an_error_before_training(msl):
    splits = make_splits(msl, split_cfg("sol", sol_range={"train": [3, 181], "val": [182, 564], "test": [2000, 3000]}))
    assert sizes(splits) == {"train": 4, "val": 3, "test": 0}
    with pytest.raises(DataError) as info:
        check_splits(splits)
    assert str(info.value) == "split(s) ['test'] have no images: check the split config (e.g. split.sol_range)"
    check_splits(splits, required=("train", "val"))


@pytest.mark.parametrize("sol_range", [
    {"train": [3, 181], "val": [564, 182], "test": [565, 1060]},
    {"train": [3, 181], "test": [565, 1060]},
    {"train": [3], "val": [182, 564], "test": [565, 1060]},
])
def test_bad_sol_range(msl, sol_range):
    with pytest.raises(ConfigError, match=r"split\.sol_range\.(val|train) must be \[first_sol, last_sol\]"):
        make_splits(msl, split_cfg("sol", sol_range=sol_range))


def test_sol_split_needs_a_sol_in_the_file_name(hirise):
    with pytest.raises(DataError) as info:
        make_splits(hirise, split_cfg("sol"))
    assert info.value.path == hirise.samples[0].path
    assert "no sol in file name 'ESP_011000_2000_RED-0001.jpg' (dataset.metadata.pattern)" in str(info.value)


# --- files --------------------------------------------------------------------------------------------

def test_files_split_needs_train_val_test_label_files(hirise):
    with pytest.raises(ConfigError) as info:
        make_splits(hirise, split_cfg("files"))
    assert "split=files needs label files named ['train', 'val', 'test']" in str(info.value)
    assert "data set 'hirise' has ['all']" in str(info.value)


def test_files_split_keeps_each_file(msl):
    splits = make_splits(msl, split_cfg("files"))
    assert sizes(splits) == {"train": 4, "val": 3, "test": 3}
    assert all(s.origin == k for k, v in splits.items() for s in v)
    assert all(v == sorted(v) for v in names(splits).values())


# --- source_image -------------------------------------------------------------------------------------

def partition(splits) -> dict[str, frozenset[str]]:
    return {k: frozenset(s.meta["source_image"] for s in v) for k, v in splits.items()}


def test_source_image_split_never_shares_a_source_image(hirise):
    for seed in range(5):
        splits = make_splits(hirise, split_cfg("source_image", seed=seed))
        groups = partition(splits)
        assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
        assert sorted(s.name for v in splits.values() for s in v) == sorted(s.name for s in hirise.samples)
        # targets 19.43 (val) and 19.23 (test): filled with whole groups, never past target + 2%
        assert sizes(splits) == {"train": 98, "val": 19, "test": 19}


@pytest.mark.slow
def test_source_image_split_is_deterministic_per_seed_and_differs_across_seeds(hirise):
    runs = [partition(make_splits(hirise, split_cfg("source_image", seed=seed))) for seed in range(5)]
    assert runs[0] == partition(make_splits(hirise, split_cfg("source_image", seed=0)))
    assert names(make_splits(hirise, split_cfg("source_image", seed=3))) == \
        names(make_splits(hirise, split_cfg("source_image", seed=3)))
    assert len({tuple(sorted(r["test"])) for r in runs}) == 5


def test_source_image_split_needs_the_field(msl):
    with pytest.raises(DataError, match="no 'source_image' in file name 'calibrated/0003ML"):
        make_splits(msl, split_cfg("source_image"))
    by_instrument = make_splits(msl, split_cfg("source_image", field="instrument", seed=1))
    groups = {k: {s.meta["instrument"] for s in v} for k, v in by_instrument.items()}
    assert sum(len(g) for g in groups.values()) == len(set().union(*groups.values())) == 3


# --- random -------------------------------------------------------------------------------------------

def test_random_split_is_stratified_and_seeded(hirise):
    splits = make_splits(hirise, split_cfg("random", seed=7))
    per_class = Counter(s.target for s in hirise.samples)
    assert dict(per_class) == {0: 26, 1: 19, 2: 26, 3: 20, 4: 26, 5: 19}
    for name, fraction in (("test", 0.15), ("val", 0.15)):
        assert dict(Counter(s.target for s in splits[name])) == {t: round(fraction * n) for t, n in per_class.items()}
    assert sizes(splits) == {"train": 94, "val": 21, "test": 21}
    assert names(splits) == names(make_splits(hirise, split_cfg("random", seed=7)))
    assert names(splits)["test"] != names(make_splits(hirise, split_cfg("random", seed=8)))["test"]
    assert sorted(n for v in names(splits).values() for n in v) == sorted(s.name for s in hirise.samples)


COPIES = ("", "-fh", "-fv", "-r90", "-r180")  # MSL v2.1 ships these augmented copies next to each image


def test_random_split_keeps_augmented_copies_of_an_image_together(tmp_path):
    bases = [(f"{sol:04d}MR{sol:016d}E01_DRCL", sol % 3) for sol in range(1, 41)]
    entries = [(f"{base}{suffix}.jpg", cid) for base, cid in bases for suffix in COPIES]
    ds = load_dataset(dataset_cfg("hirise"), make_hirise(tmp_path / "v21", entries, unlabeled=()))
    splits = make_splits(ds, split_cfg("random"))
    where = {s.name: name for name, samples in splits.items() for s in samples}
    for base, _ in bases:
        assert len({where[f"{base}{suffix}.jpg"] for suffix in COPIES}) == 1, base
    assert sizes(splits) == {"train": 140, "val": 30, "test": 30}  # 6 of 40 images each, 5 copies apiece
    assert all(Counter(s.target for s in splits[n]) == {0: 10, 1: 10, 2: 10} for n in ("val", "test"))
    # Without the pattern every file is on its own and copies land on both sides of the split.
    apart = make_splits(ds, split_cfg("random", group_pattern=None))
    where = {s.name: name for name, samples in apart.items() for s in samples}
    assert any(len({where[f"{base}{suffix}.jpg"] for suffix in COPIES}) > 1 for base, _ in bases)


def test_group_pattern_named_group_or_whole_match_within_the_folder():
    rx = re.compile(r"^(?P<group>.+?)(?:-(?:fh|fv|brt|r90|r180|r270))*\.[^.]+$")
    assert copy_group("images/X-fh-r90.jpg", rx) == copy_group("images/X.jpg", rx) == "images/X"
    assert copy_group("other/X.jpg", rx) == "other/X"
    assert copy_group("ESP_011623_2100_RED-0069.jpg", rx) == "ESP_011623_2100_RED-0069"
    assert copy_group("a_b_001.png", re.compile(r"^[a-z]+_[a-z]+")) == "a_b"  # no named group: the match
    assert copy_group("README", rx) == "README"  # no match: the file is its own group


@pytest.mark.parametrize(("fractions", "message"), [
    ({"train": 0.7, "val": 0.3}, r"split\.fractions must give exactly \['train', 'val', 'test'\], got \['train', 'val'\]"),
    ({"train": 0.7, "val": 0.2, "test": 0.2}, r"split\.fractions must be >= 0 and sum to 1"),
    ({"train": 1.2, "val": -0.1, "test": -0.1}, r"split\.fractions must be >= 0 and sum to 1"),
])
def test_bad_fractions(hirise, fractions, message):
    for method in ("random", "source_image"):
        with pytest.raises(ConfigError, match=message):
            make_splits(hirise, split_cfg(method, fractions=fractions))


def test_unknown_method(msl):
    with pytest.raises(ConfigError, match=r"split\.name: 'bogus' is not one of \['sol', 'files', 'source_image', 'source_image_cv', 'random', 'all'\]"):
        make_splits(msl, {"name": "bogus"})


# --- reports and saved lists --------------------------------------------------------------------------

def test_split_table_and_group_counts(msl):
    splits = make_splits(msl, split_cfg("sol"))
    assert split_table(msl, splits).splitlines() == [
        "class         train    val   test",
        "apxs              1      1      1",
        "drill             1      1      1",
        "wheel             2      1      1",
        "total             4      3      3",
    ]
    assert group_counts(splits, "instrument") == {
        "train": {"MH": 1, "ML": 2, "MR": 1}, "val": {"MH": 1, "ML": 1, "MR": 1}, "test": {"MH": 1, "ML": 1, "MR": 1}}


def test_saved_split_lists_use_the_label_format_and_read_back(msl, tmp_path):
    splits = make_splits(msl, split_cfg("sol"))
    paths = save_split_lists(msl, splits, tmp_path / "run" / "splits")
    assert [p.name for p in paths] == ["train.txt", "val.txt", "test.txt"]
    assert paths[1].read_text() == "".join(
        f"calibrated/{msl_name(sol, inst, i)} {cid}\n" for i, (sol, inst, cid) in
        [(4, (182, "MR", 0)), (5, (300, "MH", 1)), (6, (564, "ML", 3))])
    for path, name in zip(paths, SPLITS, strict=True):
        back = read_label_file(path, set(msl.class_ids))
        assert [(ln.name, ln.class_id) for ln in back] == [(s.name, s.class_id) for s in splits[name]]


# --- the real data sets (exact numbers from the paper and the data sets' own READMEs) --------------------

@pytest.fixture(scope="module")
def real_msl(real_data: Path) -> LabeledDataset:
    return load_dataset(dataset_cfg("msl"), real_data / "msl")


@pytest.fixture(scope="module")
def real_hirise(real_data: Path) -> LabeledDataset:
    return load_dataset(dataset_cfg("hirise"), real_data / "hirise")


@pytest.mark.real_data
def test_real_msl_class_counts(real_msl, real_data):
    assert len(real_msl.samples) == 6691
    assert len(real_msl.class_ids) == 24 and real_msl.dropped_classes == {22: "sun"}
    assert real_msl.class_ids == [i for i in range(25) if i != 22]
    on_disk = {p.name for p in (real_data / "msl" / "calibrated").iterdir()}
    assert len(on_disk - {Path(s.name).name for s in real_msl.samples}) == 46  # unlabeled


@pytest.mark.real_data
def test_real_msl_sol_split_reproduces_the_paper(real_msl):
    splits = make_splits(real_msl, split_cfg("sol"))
    assert sizes(splits) == {"train": 3746, "val": 1640, "test": 1305}
    assert group_counts(splits, "instrument") == {  # Table 1
        "train": {"MH": 320, "ML": 1491, "MR": 1935},
        "val": {"MH": 1357, "ML": 189, "MR": 94},
        "test": {"MH": 730, "ML": 202, "MR": 373},
    }
    files = make_splits(real_msl, split_cfg("files"))
    for name in SPLITS:
        assert {s.name for s in splits[name]} == {s.name for s in files[name]}, name
    check_splits(splits)


@pytest.mark.real_data
def test_real_hirise_class_counts(real_hirise, real_data):
    assert len(real_hirise.samples) == 3820
    assert real_hirise.dropped_classes == {5: "impact ejecta"} and len(real_hirise.class_names) == 6
    by_id = Counter(s.class_id for s in real_hirise.samples)
    assert dict(by_id) == {0: 2018, 1: 369, 2: 408, 3: 37, 4: 156, 6: 832}
    assert len({s.meta["source_image"] for s in real_hirise.samples}) == 161
    on_disk = {p.name for p in (real_data / "hirise" / "map-proj").iterdir()}
    assert len(on_disk - {s.name for s in real_hirise.samples}) == 3


@pytest.mark.real_data
@pytest.mark.parametrize("seed", range(5))
def test_real_hirise_source_image_split(real_hirise, seed):
    splits = make_splits(real_hirise, split_cfg("source_image", seed=seed))
    groups = partition(splits)
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
    assert sum(sizes(splits).values()) == 3820
    for name, paper in (("train", 2734), ("val", 546), ("test", 540)):
        assert abs(len(splits[name]) - paper) <= 0.02 * paper, (name, len(splits[name]))
    check_splits(splits)


# --- grouped cross-validation -----------------------------------------------------------------------------


def cv_splits(ds, folds=5, seed=0, **overrides):
    return [make_splits(ds, split_cfg("source_image_cv", folds=folds, fold=f, seed=seed, **overrides))
            for f in range(folds)]


def test_source_image_cv_tests_every_group_exactly_once_and_never_shares_one(hirise):
    all_groups = {s.meta["source_image"] for s in hirise.samples}
    seen: list[str] = []
    for splits in cv_splits(hirise):
        groups = partition(splits)
        assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
        assert groups["train"] | groups["val"] | groups["test"] == all_groups
        assert all(splits[n] for n in SPLITS)
        seen += groups["test"]
    assert sorted(seen) == sorted(all_groups)  # each source image in exactly one test fold


def test_source_image_cv_folds_are_balanced_deterministic_and_seeded(hirise):
    runs = cv_splits(hirise)
    test_sizes = [len(s["test"]) for s in runs]
    assert sum(test_sizes) == len(hirise.samples) == 136
    assert max(test_sizes) - min(test_sizes) <= 6  # greedy fill: within one group (<= 6 crops)
    for splits in runs:  # val: 15% of the training folds' crops, whole groups, never past target + 2%
        target = 0.15 * (136 - len(splits["test"]))
        assert target - 6 <= len(splits["val"]) <= target * 1.02
    assert [names(s) for s in runs] == [names(s) for s in cv_splits(hirise)]
    other = cv_splits(hirise, seed=1)
    assert [partition(s)["test"] for s in other] != [partition(s)["test"] for s in runs]


@pytest.mark.parametrize("overrides, message", [
    ({"fold": 5}, r"split.fold: must be in 0..4"),
    ({"fold": -1}, r"split.fold: must be in 0..4"),
    ({"folds": 1, "fold": 0}, r"split.folds: must be >= 2"),
    ({"folds": 41}, r"split.folds: 41 folds need at least 41 groups"),
    ({"val_fraction": 0.0}, r"split.val_fraction: must be in \(0, 1\)"),
])
def test_source_image_cv_bad_config(hirise, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_splits(hirise, split_cfg("source_image_cv", **overrides))


@pytest.mark.real_data
def test_real_hirise_source_image_cv(real_hirise):
    seen = []
    for splits in cv_splits(real_hirise):
        groups = partition(splits)
        assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
        assert 700 <= len(splits["test"]) <= 830 and 400 <= len(splits["val"]) <= 500
        seen += groups["test"]
    assert len(seen) == len(set(seen)) == 161

"""A queue's class list from a data set YAML (read as the data set loader reads it) or a class file."""

from __future__ import annotations

import pytest
from conftest import HIRISE_CLASSES, make_msl

from deepmars.errors import ConfigError, DataError
from deepmars.labeling.classes import load_class_list


def test_a_data_set_by_name_or_path_and_one_with_a_defaults_list():
    by_name = load_class_list("hirise")
    assert by_name.names == HIRISE_CLASSES and by_name.ids == list(range(7))
    assert load_class_list("conf/dataset/hirise.yaml").entries == by_name.entries
    assert load_class_list("sample_hirise").entries == by_name.entries  # defaults: [hirise, _self_]


def test_a_data_set_yaml_with_a_csv_class_file_layout(tmp_path):
    root = make_msl(tmp_path / "data")
    (root / "classes.csv").write_text("label,code\nwheel,7\nsky,3\n")
    yaml = tmp_path / "batch.yaml"
    yaml.write_text(f"name: batch\nroot: {root}\nimage_dir: .\nlabels: {{train: train-calibrated-shuffled.txt}}\n"
                    "classes: {file: classes.csv, format: csv, header: true, columns: {id: code, name: label}}\n")
    classes = load_class_list(str(yaml))
    assert classes.entries == ((3, "sky"), (7, "wheel")) and classes.source == str(yaml.resolve())


def test_class_files(tmp_path):
    (tmp_path / "c.txt").write_text("0 other\n1 crater\n")
    (tmp_path / "c.csv").write_text("0,other\n1,crater\n")
    assert load_class_list(str(tmp_path / "c.txt")).entries == load_class_list(str(tmp_path / "c.csv")).entries
    (tmp_path / "bad.csv").write_text("0,other\nx,crater\n")
    with pytest.raises(DataError, match=r"bad.csv:2: class id 'x' is not an integer"):
        load_class_list(str(tmp_path / "bad.csv"))
    with pytest.raises(ConfigError, match="neither a data set YAML"):
        load_class_list(str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="not found"):
        load_class_list(str(tmp_path / "missing.yaml"))

"""deepmars.data.labels: every malformed label or class line is refused, naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepmars.data.labels import (
    CSV_LAYOUT,
    LabelLine,
    check_duplicates,
    check_images_exist,
    read_class_file,
    read_label_file,
)
from deepmars.errors import DataError

IDS = {0, 1, 3}


def labels(tmp_path: Path, text: str, name: str = "train-calibrated-shuffled.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(path: Path, line: int | None, *fragments: str, class_ids=IDS) -> DataError:
    with pytest.raises(DataError) as info:
        read_label_file(path, class_ids)
    exc = info.value
    assert exc.path == path and exc.line == line
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert str(exc).startswith(where), str(exc)
    for fragment in fragments:
        assert fragment in str(exc), str(exc)
    return exc


# --- label files ---------------------------------------------------------------------------------

def test_good_lines_keep_name_id_file_and_line(tmp_path):
    path = labels(tmp_path, "calibrated/a.JPG 0\n\n  \ncalibrated/b.JPG 3\r\nc.jpg\t1")
    assert read_label_file(path, IDS) == [
        LabelLine("calibrated/a.JPG", 0, path, 1),
        LabelLine("calibrated/b.JPG", 3, path, 4),
        LabelLine("c.jpg", 1, path, 5),
    ]


@pytest.mark.parametrize(("line", "fragment"), [
    ("calibrated/a.JPG", "expected '<image> <class id>' (2 fields), got 1: 'calibrated/a.JPG'"),
    ("calibrated/a.JPG 1 2", "expected '<image> <class id>' (2 fields), got 3: 'calibrated/a.JPG 1 2'"),
    ("calibrated/a.JPG one", "class id 'one' is not an integer"),
    ("calibrated/a.JPG 1.0", "class id '1.0' is not an integer"),
    ("calibrated/a.JPG 2", "class id 2 is not in the class list [0, 1, 3]"),
    ("calibrated/a.JPG 25", "class id 25 is not in the class list [0, 1, 3]"),
    ("calibrated/a.JPG -1", "class id -1 is not in the class list [0, 1, 3]"),
    ("../../etc/passwd 0", "path '../../etc/passwd' leaves the data set folder ('..'): refused"),
    ("calibrated/../../x.JPG 0", "leaves the data set folder"),
    ("..\\..\\x.JPG 0", "leaves the data set folder"),
    ("/etc/passwd 0", "absolute path '/etc/passwd' refused"),
    ("\\\\server\\share\\x.JPG 0", "absolute path"),
    ("C:\\data\\x.JPG 0", "absolute path 'C:\\\\data\\\\x.JPG' refused"),
])
def test_bad_line_names_file_line_and_reason(tmp_path, line, fragment):
    path = labels(tmp_path, f"calibrated/ok.JPG 0\n\n{line}\ncalibrated/ok2.JPG 1\n")
    exc = refused(path, 3, fragment)
    assert exc.reason == fragment or fragment in exc.reason
    assert "problems" not in str(exc)  # exactly one bad line


def test_every_bad_line_is_listed_in_one_error(tmp_path):
    path = labels(tmp_path, "a.JPG 0\nb.JPG x\nc.JPG 0 0\nd.JPG 0\n../e.JPG 1\n")
    exc = refused(path, 2, "class id 'x' is not an integer", "(3 problems in train-calibrated-shuffled.txt)")
    assert f"\n  {path}:3: expected" in str(exc) and f"\n  {path}:5: path '../e.JPG'" in str(exc)


def test_more_than_ten_problems_are_counted_not_listed(tmp_path):
    path = labels(tmp_path, "".join(f"img{i}.JPG bad\n" for i in range(25)))
    exc = refused(path, 1, "(25 problems in", "... and 15 more")
    assert f"{path}:10:" in str(exc) and f"{path}:11:" not in str(exc)


def test_missing_label_file(tmp_path):
    refused(tmp_path / "val-calibrated-shuffled.txt", None, "label file not found")


def test_empty_label_file_is_an_error(tmp_path):
    refused(labels(tmp_path, "\n  \n"), None, "label file lists no labeled images")


def test_binary_file_given_as_labels(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"a.JPG 0\n\xff\xd8\xff\xe0 JFIF\n")
    refused(path, 2, "not UTF-8 text", "is this the right file?")


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffa.JPG 0\n".encode())
    assert [ln.name for ln in read_label_file(path, IDS)] == ["a.JPG"]


# --- duplicates and missing images -----------------------------------------------------------------

def test_duplicate_within_one_file(tmp_path):
    path = labels(tmp_path, "calibrated/a.JPG 0\ncalibrated/b.JPG 1\ncalibrated/a.JPG 1\n")
    with pytest.raises(DataError) as info:
        check_duplicates(read_label_file(path, IDS))
    assert (info.value.path, info.value.line) == (path, 3)
    assert str(info.value) == f"{path}:3: duplicate entry 'calibrated/a.JPG', first at {path}:1"


def test_duplicate_across_files_even_when_spelled_differently(tmp_path):
    train = labels(tmp_path, "calibrated/a.JPG 0\n", "train.txt")
    test = labels(tmp_path, "calibrated/b.JPG 1\n./calibrated//a.JPG 0\n", "test.txt")
    with pytest.raises(DataError) as info:
        check_duplicates(read_label_file(train, IDS) + read_label_file(test, IDS))
    assert (info.value.path, info.value.line) == (test, 2)
    assert f"first at {train}:1" in str(info.value)


def test_no_duplicates_passes(tmp_path):
    check_duplicates(read_label_file(labels(tmp_path, "a.JPG 0\nb.JPG 0\nsub/a.JPG 0\n"), IDS))


def test_label_pointing_to_missing_image(tmp_path):
    (tmp_path / "calibrated").mkdir()
    (tmp_path / "calibrated" / "a.JPG").write_bytes(b"x")
    (tmp_path / "calibrated" / "sub.JPG").mkdir()  # a folder is not an image
    path = labels(tmp_path, "calibrated/a.JPG 0\ncalibrated/gone.JPG 1\ncalibrated/sub.JPG 0\nnowhere/x.JPG 0\n")
    with pytest.raises(DataError) as info:
        check_images_exist(read_label_file(path, IDS), tmp_path)
    exc = info.value
    assert (exc.path, exc.line) == (path, 2)
    assert str(exc).startswith(f"{path}:2: image 'calibrated/gone.JPG' not found in {tmp_path} (3 problems")
    assert f"{path}:3: image 'calibrated/sub.JPG'" in str(exc) and f"{path}:4: image 'nowhere/x.JPG'" in str(exc)


def test_images_present_passes(tmp_path):
    (tmp_path / "a.JPG").write_bytes(b"x")
    check_images_exist(read_label_file(labels(tmp_path, "a.JPG 0\n"), IDS), tmp_path)


# --- class files -----------------------------------------------------------------------------------

def classes(tmp_path: Path, text: str, name: str = "msl_synset_words-indexed.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_indexed_class_file_with_tabs_and_spaces(tmp_path):
    path = classes(tmp_path, "0\tapxs\n1       apxs cal target\n\n2 drill  \n")
    assert read_class_file(path) == {0: "apxs", 1: "apxs cal target", 2: "drill"}


def test_csv_class_file(tmp_path):
    path = classes(tmp_path, "\ufeff0,other\r\n1, crater\n\n6,edge\n", "classmap.csv")
    assert read_class_file(path, "csv") == {0: "other", 1: "crater", 6: "edge"}


@pytest.mark.parametrize(("fmt", "text", "line", "fragment"), [
    ("indexed", "0 apxs\n1\n", 2, "expected '<id> <name>', got ['1']"),
    ("indexed", "0 apxs\nx drill\n", 2, "class id 'x' is not an integer"),
    ("indexed", "0 apxs\n\n0 drill\n", 3, "class id 0 listed twice"),
    ("indexed", "0 apxs\n1 drill\n2 apxs\n", 3, "class name 'apxs' listed twice, first at line 1"),
    ("csv", "0,other\n1,crater,extra\n", 2, f"expected {CSV_LAYOUT}, got ['1', 'crater', 'extra']"),
    ("csv", "0,other\n1,\n", 2, f"expected {CSV_LAYOUT}, got ['1', '']"),
    ("csv", "id,name\n0,other\n", 1, "class id 'id' is not an integer (a header row? set dataset.classes.header: true)"),
])
def test_bad_class_file_names_file_and_line(tmp_path, fmt, text, line, fragment):
    path = classes(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_class_file(path, fmt)
    assert (info.value.path, info.value.line) == (path, line)
    assert str(info.value) == f"{path}:{line}: {fragment}"


def test_csv_class_file_with_a_header_and_columns_by_name(tmp_path):
    path = classes(tmp_path, "name,description,class_id\nother,not a landmark,0\ncrater,\"round, rimmed\",1\n\n",
                   "classmap.csv")
    got = read_class_file(path, "csv", header=True, columns=("class_id", "name"))
    assert got == {0: "other", 1: "crater"}
    assert read_class_file(path, "csv", header=True, columns=(2, 0)) == got


def test_csv_class_file_without_a_header_in_another_column_order(tmp_path):
    path = classes(tmp_path, "other,0,x\ncrater,1,y\n", "classmap.csv")
    assert read_class_file(path, "csv", columns=(1, 0)) == {0: "other", 1: "crater"}


@pytest.mark.parametrize(("text", "columns", "line", "fragment"), [
    ("name,id\nother,0\n", ("class_id", "name"), 1,
     "the header row has no column 'class_id' (dataset.classes.columns.id); its columns: name, id"),
    ("name,id\nother,0\ncrater\n", ("id", "name"), 3,
     "expected the class id in column 1 and its name in column 0, got ['crater']"),
    ("name,id\nother,zero\n", ("id", "name"), 2, "class id 'zero' is not an integer"),
])
def test_bad_csv_with_a_header_names_file_and_line(tmp_path, text, columns, line, fragment):
    path = classes(tmp_path, text, "classmap.csv")
    with pytest.raises(DataError) as info:
        read_class_file(path, "csv", header=True, columns=columns)
    assert str(info.value) == f"{path}:{line}: {fragment}"


def test_missing_and_empty_class_files(tmp_path):
    with pytest.raises(DataError) as info:
        read_class_file(tmp_path / "nope.txt")
    assert str(info.value) == f"{tmp_path / 'nope.txt'}: class-name file not found"
    path = classes(tmp_path, "\n\n")
    with pytest.raises(DataError) as info:
        read_class_file(path)
    assert (info.value.path, info.value.line) == (path, None)
    assert str(info.value) == f"{path}: class-name file lists no classes"

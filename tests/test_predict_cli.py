"""predict.py commands: query output, export files, exit codes, Hydra usage errors."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest
from support import BUNDLE_CLASSES, error_row, prediction_row

from deepmars.catalog import Catalog, ModelInfo
from deepmars.errors import ConfigError
from deepmars.prediction import cli, options

ROWS = [  # path, class, confidence, sol, instrument
    ("/m/a.JPG", "wheel", 0.97, 100, "ML"), ("/m/b.JPG", "wheel", 0.91, 200, "MH"),
    ("/m/c.JPG", "wheel", 0.60, 100, "ML"), ("/m/d.JPG", "drill", 0.95, 300, "MR"),
    ("/m/e.JPG", "ground", 0.30, 100, "ML"), ("/m/f.JPG", "mahli cal target", 0.99, 150, "MH"),
]


@pytest.fixture(autouse=True)
def _no_repo_mlflow_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default tracking URI is relative: never read the repo's store


@pytest.fixture()
def catalog(tmp_path, write_batch):
    path = tmp_path / "catalog.sqlite"
    with Catalog.open(path) as cat:
        for model in ("runs:/b", "runs:/a"):  # runs:/a ran last
            cat.register_model(ModelInfo(model, BUNDLE_CLASSES, "msl", 1.0, {}, {}))
            cat.start_run(model, "/m", None, {})
        write_batch(cat, [prediction_row(p, cls=c, conf=x, sol=s, instrument=i) for p, c, x, s, i in ROWS]
                        + [prediction_row("/m/a.JPG", model="runs:/b", cls="drill", conf=0.99, at="t0")],
                        [error_row("/m/bad.JPG")])
    return path


@pytest.fixture
def run(predict_config):
    """``run(capsys, *overrides) -> (exit code, output lines, error text)``: predict.py's main."""

    def run_predict_main(capsys, *overrides: str) -> tuple[int, list[str], str]:
        code = cli.main(predict_config(*overrides))
        captured = capsys.readouterr()
        return code, captured.out.splitlines(), captured.err

    return run_predict_main


def test_query_lists_matches_best_first_and_counts_per_class(catalog, capsys, run):
    code, lines, _ = run(capsys, "command=query", "class=wheel", "min_confidence=0.9", f"catalog={catalog}")
    assert code == 0
    assert lines[0] == ("model runs:/a (latest run's of 2 models; model=... picks another)  "
                        "filters: class=wheel, confidence >= 0.9")
    assert lines[1:5] == ["path\tclass\tconfidence", "/m/a.JPG\twheel\t0.9700", "/m/b.JPG\twheel\t0.9100",
                          "2 images match"]
    assert lines[5:] == ["images per class (confidence >= 0.9):", "  wheel                    2  <- class",
                         "  drill                    1", "  mahli cal target         1"]


def test_query_filters_limit_and_model_choice(catalog, capsys, run):
    code, lines, err = run(capsys, "command=query", "min_confidence=0", "limit=2", "sol=[100,150]", "instrument=ML",
                           f"catalog={catalog}", "model=runs:/a")
    assert code == 0, err
    assert lines[2:5] == ["/m/a.JPG\twheel\t0.9700", "/m/c.JPG\twheel\t0.6000",
                          "... 1 more (3 match; limit=0 lists all, or export output=FILE.csv)"]
    _, lines, _ = run(capsys, "command=query", f"catalog={catalog}", "model=runs:/b")
    assert lines[2] == "/m/a.JPG\tdrill\t0.9900" and lines[3] == "1 images match"


@pytest.mark.parametrize("overrides, code, message", [
    (("class=wheelz",), 2, "class: 'wheelz' is not a class of this catalog's model; classes: drill, "),
    (("model=runs:/zzz",), 2, "model: 'runs:/zzz' has no rows in this catalog; its models: runs:/a, runs:/b"),
    (("min_confidence=2",), 2, "min_confidence: got 2.0, allowed: a number in [0, 1]"),
    (("sol=abc",), 2, "sol: got 'abc', allowed: a sol (sol=120) or an inclusive range (sol=[100,200])"),
    (("limit=-1",), 2, "limit: got -1, allowed: an integer >= 0"),
    (("table=predictionz",), 2, "table: got 'predictionz', allowed: one of predictions, errors, runs"),
    (("catalog=/nonexistent/x.sqlite",), 4, "no such catalog"),
])
def test_query_errors_name_the_key(catalog, capsys, overrides, code, message, run):
    got, _, err = run(capsys, "command=query", f"catalog={catalog}", *overrides)
    assert got == code and message in err and "Traceback" not in err


@pytest.mark.parametrize("overrides, message", [
    (("model=m.pt",), "input: got None, allowed: a folder, a glob such as 'images/**/*.JPG', or a list file"),
    (("input=x",), "model: got None, allowed: a bundle file (model.pt), runs:/<run_id>, a run id, "),
    (("command=export", "output=rows.txt"), "output: got 'rows.txt', allowed: a file ending in .csv or .parquet"),
    (("command=merge",), "input: got None, allowed: the shard catalogs, as a glob"),
    (("input=x", "model=m.pt", "threads=0"), "threads: got 0, allowed: an integer >= 1 or null"),
    (("input=x", "model=m.pt", "force=maybe"), "force: got 'maybe', allowed: true or false"),
    (("input=x", "model=m.pt", "command=train"), "command: got 'train', allowed: one of predict, query, export, merge"),
    (("input=x", "model=m.pt", "+bogus=1"), "bogus: unknown key; allowed keys: batch_size, catalog, class, command, "),
])
def test_config_errors_name_the_key_and_what_it_allows(overrides, message, predict_config):
    with pytest.raises(ConfigError) as info:
        options.command_of(predict_config(*overrides))
    assert str(info.value).startswith(message), str(info.value)


def test_export_csv_and_parquet_with_the_query_filters(catalog, tmp_path, capsys, run):
    code, lines, err = run(capsys, "command=export", f"catalog={catalog}", "class=wheel", f"output={tmp_path}/w.csv",
                           "model=runs:/a")
    assert code == 0, err
    assert lines == [f"exported 3 rows of predictions (class=wheel, confidence >= 0.5; "
                                   f"min_confidence=0 exports all) to {tmp_path}/w.csv"]
    with open(tmp_path / "w.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], r["predicted_class"], float(r["confidence"])) for r in rows] == [
        ("/m/a.JPG", "wheel", 0.97), ("/m/b.JPG", "wheel", 0.91), ("/m/c.JPG", "wheel", 0.6)]
    run(capsys, "command=export", f"catalog={catalog}", "min_confidence=0", f"output={tmp_path}/all.parquet")
    table = pq.read_table(tmp_path / "all.parquet")
    assert table.num_rows == 7 and table.schema.field("sol").type == "int64"
    run(capsys, "command=export", f"catalog={catalog}", "table=errors", f"output={tmp_path}/errors.csv")
    assert (tmp_path / "errors.csv").read_text().splitlines()[1].startswith("runs:/a,/m/bad.JPG,,0,1,empty file")


@pytest.mark.slow
def test_predict_exit_codes(tmp_path, capsys, tiny_bundle, write_images, write_files, run):
    images, model = tmp_path / "in", tiny_bundle(tmp_path / "m.pt")
    write_images(images, 3)
    base = (f"input={images}", f"model={model}", f"catalog={tmp_path}/c.sqlite", "num_workers=0", "threads=1")
    assert run(capsys, *base)[0] == cli.EXIT_OK == 0
    write_files(images, {"broken.jpg": b""})
    assert run(capsys, *base)[0] == cli.EXIT_SOME_FAILED == 3
    assert run(capsys, *base[1:], f"input={tmp_path}/missing")[0] == cli.EXIT_USAGE == 2
    assert run(capsys, *base, "batch_size=0")[0] == 2
    assert run(capsys, *base, "shard=5/2")[0] == 2
    assert run(capsys, *base, "command=train")[0] == 2
    code, _, err = run(capsys, *base, f"model={tmp_path}/gone.pt")
    assert code == cli.EXIT_CANNOT_RUN == 4 and "gone.pt not found" in err


@pytest.mark.slow
def test_entry_point_positional_command_and_hydra_usage_errors(catalog, tmp_path, run_predict_py):
    done = run_predict_py("query", "class=drill", "min_confidence=0.9", f"catalog={catalog}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "/m/d.JPG\tdrill\t0.9500" in done.stdout
    bad = run_predict_py("query", "no_such_key=1", cwd=tmp_path)
    assert bad.returncode == 2 and "no_such_key" in bad.stderr
    assert not (tmp_path / "outputs").exists() and not (tmp_path / ".hydra").exists()  # no Hydra output dirs

"""landmarks.py classify/query: landmark rows, counts per class and image, overlays, in predict's catalog.

Most tests use a stand-in model with known posteriors (a crop brighter at its centre is a crater
at p = 0.95, a darker one a dark dune at p = 0.8) on generated disc scenes, so every count is known
in advance; the entry point and the real browse image run with a tiny timm bundle.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import BRIGHT, DARK, DISC_SCENES, LANDMARK_CLASSES, ROOT, A, B, prediction_row

from deepmars.catalog import SCHEMA_VERSION, Catalog
from deepmars.catalog import schema as catalog_module
from deepmars.catalog.schema import SCHEMA
from deepmars.errors import ConfigError
from deepmars.landmarks import cli
from deepmars.landmarks.classify import crop_input, overlay_dir
from deepmars.landmarks.config import DetectSettings, LandmarkSettings, settings_from_config
from deepmars.landmarks.options import CountQueryOptions
from deepmars.landmarks.overlay import PALETTE
from deepmars.landmarks.pipeline import process_image
from deepmars.landmarks.query import IMAGES_SQL, run_query
from deepmars.prediction.options import QueryOptions
from deepmars.prediction.queries import run_query as run_predict_query

# The documented "images with at least 5 craters" query, with its numbers as parameters.
README_SQL = ("SELECT source_image, n FROM landmark_counts WHERE class = ? AND count_confidence = ? AND n >= ? "
              "ORDER BY n DESC, source_image")


@pytest.fixture
def scenes(tmp_path: Path, write_scene) -> Path:
    folder = tmp_path / "images"
    for name in DISC_SCENES:
        write_scene(folder, name)
    return folder


def query(catalog: Path, **kw) -> list[str]:
    out = io.StringIO()
    run_query(CountQueryOptions(catalog=catalog, **kw), out)
    return out.getvalue().splitlines()


def colour_at(path: Path, x: int, y: int) -> tuple[int, int, int]:
    with Image.open(path) as img:
        return img.convert("RGB").getpixel((x, y))


# ------------------------------------------------------------------------------------------ rows and counts
def test_rows_are_the_detectors_landmarks_with_known_classes_and_counts(scenes, tmp_path, classify, sql):
    catalog = tmp_path / "c.sqlite"
    summary = classify(scenes, catalog)
    assert (summary.images, summary.classified, summary.failed, summary.exit_code) == (2, 2, 0, 0)
    assert (summary.landmarks, summary.counted["crater"], summary.images_with["crater"]) == (7, 4, 2)

    for path in sorted(scenes.iterdir()):
        detected = process_image(path, LandmarkSettings()).landmarks
        source = detected[0].source
        rows = sql(catalog, "SELECT landmark_id, x, y, w, h, src_x, src_y, src_w, src_h, area, predicted_class, "
                            "confidence, abstained, crop_file FROM landmarks WHERE source_image = ? ORDER BY 1",
                   (source,))
        assert [r[:10] for r in rows] == [(lm.index, lm.x, lm.y, lm.w, lm.h, lm.src_x, lm.src_y, lm.src_w,
                                           lm.src_h, lm.area) for lm in detected]
        greys = [_disc_grey(source, lm) for lm in detected]
        assert [(r[10], r[11], r[12], r[13]) for r in rows] == [
            ("crater", 0.95, 0, None) if g == BRIGHT else ("dark dune", 0.8, 0, None) for g in greys]

    # The counts table is the rows counted at count_confidence, with a zero row for every other class.
    counted = sql(catalog, "SELECT source_image, class, n FROM landmark_counts WHERE count_confidence = 0.9")
    from_rows = sql(catalog, "SELECT source_image, predicted_class, count(*) FROM landmarks WHERE confidence >= 0.9 "
                             "GROUP BY 1, 2")
    assert {(s, c): n for s, c, n in counted if n} == {(s, c): n for s, c, n in from_rows} == {(A, "crater"): 3,
                                                                                                 (B, "crater"): 1}
    assert len(counted) == 2 * len(LANDMARK_CLASSES)
    assert sql(catalog, "SELECT source_image, landmarks, source_width, working_width, notes FROM landmark_images "
                        "ORDER BY 1") == [(A, 4, 512, 512, ""), (B, 3, 512, 512, "")]


def test_a_model_with_a_source_prior_adapts_each_images_landmarks_together(scenes, tmp_path, classify, sql,
                                                                            known_bundle):
    from deepmars.models.source_prior import adapt_prior

    bundle = known_bundle()
    prior = np.full(len(LANDMARK_CLASSES), 1 / len(LANDMARK_CLASSES))
    bundle.class_prior, bundle.source_prior_strength = tuple(prior), 1.0
    catalog = tmp_path / "c.sqlite"
    classify(scenes, catalog, bundle)
    known = {BRIGHT: [0.01, 0.95, 0.01, 0.01, 0.01, 0.01], DARK: [0.04, 0.04, 0.8, 0.04, 0.04, 0.04]}
    moved = []
    for path in sorted(scenes.iterdir()):
        detected = process_image(path, LandmarkSettings()).landmarks
        source = detected[0].source
        probs = np.array([known[_disc_grey(source, lm)] for lm in detected])
        expected = adapt_prior(probs / probs.sum(1, keepdims=True), prior, 1.0)  # the image's crops together
        rows = sql(catalog, "SELECT predicted_class, confidence FROM landmarks WHERE source_image = ? ORDER BY "
                            "landmark_id", (source,))
        assert [r[0] for r in rows] == [LANDMARK_CLASSES[i] for i in expected.argmax(1)]
        assert [r[1] for r in rows] == pytest.approx(expected.max(1), abs=1e-4)
        moved.append(max(abs(r[1] - p.max()) for r, p in zip(rows, probs, strict=True)))
    assert min(moved) > 0.01  # each image's own class mix moved its landmarks' confidences


def _disc_grey(source: str, lm) -> int:
    """Grey level of the scene's disc whose centre lies in the landmark's box."""
    return next(g for r, c, _, g in DISC_SCENES[source] if lm.x <= c < lm.x + lm.w and lm.y <= r < lm.y + lm.h)


def test_images_with_at_least_n_of_a_class(scenes, tmp_path, classify, sql):
    catalog = tmp_path / "c.sqlite"
    classify(scenes, catalog)
    lines = query(catalog, class_name="crater", min_count=3)
    assert lines[1:] == ["source_image\tn\tpath", f"{A}\t3\t{scenes / (A + '.browse.png')}",
                         "1 images with at least 3 crater"]
    assert query(catalog, class_name="crater", min_count=1)[-1] == "2 images with at least 1 crater"
    assert query(catalog, class_name="dark dune", min_count=1)[-1] == "0 images with at least 1 dark dune"
    assert sql(catalog, README_SQL, ("crater", 0.9, 3)) == [(A, 3)]  # the documented SQL agrees
    with sqlite3.connect(catalog) as conn:
        params = {"model": "test:centre-brightness", "class": "crater", "count_confidence": 0.9, "min_count": 1}
        assert [r[:2] for r in conn.execute(IMAGES_SQL, params)] == [(A, 3), (B, 1)]
    per_class = query(catalog, min_count=1)
    assert per_class[2].split() == ["crater", "2", "4"] and per_class[3].split()[-2:] == ["0", "0"]

    with pytest.raises(ConfigError, match="'craters' is not a class .* classes: other, crater"):
        query(catalog, class_name="craters")
    with pytest.raises(ConfigError, match=r"no counts at 0.75 .*\(counted at: 0.9\)"):
        query(catalog, class_name="dark dune", count_confidence=0.75)
    rerun = classify(scenes, catalog, count_confidence=0.75)  # adds counts at 0.75, detects nothing again
    assert (rerun.classified, rerun.skipped, rerun.counted["dark dune"]) == (0, 2, 3)
    assert query(catalog, class_name="dark dune", min_count=2, count_confidence=0.75)[2].startswith(f"{B}\t2\t")
    csv_path = tmp_path / "q" / "craters.csv"
    query(catalog, class_name="crater", min_count=1, csv_path=csv_path, limit=1)
    assert csv_path.read_text().splitlines()[0] == "source_image,n,path" and len(csv_path.read_text().splitlines()) == 3


def test_overlay_boxes_take_class_colours_and_sit_next_to_the_catalog(scenes, tmp_path, classify, sql):
    catalog = tmp_path / "c.sqlite"
    classify(scenes, catalog)
    folder = overlay_dir(catalog, "test:centre-brightness")
    assert folder.parent == tmp_path / "c_overlays"
    stored = sql(catalog, "SELECT source_image, overlay FROM landmark_images ORDER BY 1")
    assert stored == [(s, f"c_overlays/{folder.name}/{s}.png") for s in (A, B)]
    png = tmp_path / stored[0][1]
    with Image.open(png) as img:
        assert img.size == (512, 512)
    lms = process_image(scenes / f"{A}.browse.png", LandmarkSettings()).landmarks
    crater = next(lm for lm in lms if _disc_grey(A, lm) == BRIGHT)
    dark = next(lm for lm in lms if _disc_grey(A, lm) == DARK)
    assert colour_at(png, crater.x, crater.y + crater.h // 2) == PALETTE[LANDMARK_CLASSES.index("crater")]
    assert colour_at(png, dark.x, dark.y + dark.h // 2) == (255, 255, 255)  # dark dune at 0.8 < 0.9: white


# ------------------------------------------------------------------------------------ incremental and crashes
@pytest.mark.slow
def test_rerun_skips_done_images_force_redoes_and_copies_are_not_counted_twice(scenes, tmp_path, classify, table_rows,
                                                                               sql):
    catalog = tmp_path / "c.sqlite"
    classify(scenes, catalog)
    before = {t: table_rows(catalog, t) for t in ("landmark_images", "landmarks", "landmark_counts")}
    times = sql(catalog, "SELECT classified_at FROM landmark_images ORDER BY 1")

    again = classify(scenes, catalog)
    assert (again.classified, again.skipped, again.landmarks, again.counted["crater"]) == (0, 2, 7, 4)
    assert sql(catalog, "SELECT classified_at FROM landmark_images ORDER BY 1") == times

    (scenes / "copy_of_A.png").write_bytes((scenes / f"{A}.browse.png").read_bytes())
    copied = classify(scenes, catalog)  # same content under another name: skipped by hash, not counted twice
    assert (copied.classified, copied.skipped) == (0, 3)
    assert {t: table_rows(catalog, t) for t in before} == before

    forced = classify(scenes, catalog, force=True)
    assert (forced.classified, forced.skipped) == (2, 1)  # the copy's content was done in this very run
    assert {t: table_rows(catalog, t) for t in before} == before
    assert sql(catalog, "SELECT classified_at FROM landmark_images ORDER BY 1") != times

    other = LandmarkSettings(detect=DetectSettings(threshold_quantile=0.9))
    changed = classify(scenes, catalog, settings=other)  # other detector settings: done again
    assert changed.classified == 2
    assert sql(catalog, "SELECT count(*) FROM landmark_images") == [(2,)]


@pytest.mark.slow
def test_changed_file_replaces_its_rows_and_a_name_clash_is_refused(scenes, tmp_path, classify, write_scene, sql):
    catalog = tmp_path / "c.sqlite"
    classify(scenes, catalog)
    write_scene(scenes, A, discs=DISC_SCENES[A][:1])  # the same path, new content: its rows are replaced
    redone = classify(scenes, catalog)
    assert (redone.classified, redone.skipped) == (1, 1)
    assert sql(catalog, "SELECT n FROM landmark_counts WHERE source_image = ? AND class = 'crater'", (A,)) == [(1,)]
    assert sql(catalog, "SELECT count(*) FROM landmarks WHERE source_image = ?", (A,)) == [(1,)]

    elsewhere = write_scene(tmp_path / "other", B, discs=DISC_SCENES[A])  # another file claiming B's name
    clash = classify(elsewhere, catalog)
    assert clash.failed == 1 and "already classified by this model from" in clash.failures.listed[0][1]
    assert sql(catalog, "SELECT path FROM landmark_images WHERE source_image = ?", (B,)) == [
        (str(scenes / f"{B}.browse.png"),)]
    assert classify(elsewhere, catalog, force=True).classified == 1  # force: this file replaces it
    assert sql(catalog, "SELECT path FROM landmark_images WHERE source_image = ?", (B,)) == [(str(elsewhere),)]
    assert sql(catalog, "SELECT count(*) FROM errors") == [(0,)]


class _InterruptCounts:
    """A connection stand-in that is interrupted while writing the second image's counts."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn, self._calls = conn, 0

    def executemany(self, statement: str, rows):
        if statement.startswith("INSERT INTO landmark_counts"):
            self._calls += 1
            if self._calls == 2:
                raise KeyboardInterrupt  # inside the transaction: the image's landmark rows are already in
        return self._conn.executemany(statement, rows)

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


@pytest.mark.slow
def test_interrupted_run_then_rerun_gives_the_uninterrupted_catalog(scenes, tmp_path, monkeypatch, known_bundle,
                                                                    landmark_config, sql, table_rows):
    (tmp_path / "bad.png").write_text("not an image")
    inputs = [str(scenes / f"{A}.browse.png"), str(tmp_path / "bad.png"), str(scenes / f"{B}.browse.png")]
    monkeypatch.setattr("deepmars.models.loading.load_bundle", lambda *a, **k: known_bundle())
    listed = f"input=[{','.join(inputs)}]"
    reference = tmp_path / "ref" / "c.sqlite"
    assert cli.main(landmark_config("command=classify", listed, "model=unused", f"catalog={reference}")) == 3

    from deepmars.catalog import landmarks as store

    original = store.LandmarkStore.__init__

    def interrupted(self, catalog, model_id):
        original(self, catalog, model_id)
        self.catalog.conn = self.conn = _InterruptCounts(self.conn)

    monkeypatch.setattr(store.LandmarkStore, "__init__", interrupted)
    killed = tmp_path / "run" / "c.sqlite"
    cfg = landmark_config("command=classify", listed, "model=unused", f"catalog={killed}")
    assert cli.main(cfg) == 130  # Ctrl-C: exit 130, the first image and the error row committed
    assert sql(killed, "SELECT source_image FROM landmark_images") == [(A,)]
    assert sql(killed, "SELECT count(*) FROM landmarks WHERE source_image = ?", (B,)) == [(0,)]
    assert sql(killed, "SELECT count(*) FROM runs WHERE finished_at IS NULL") == [(1,)]

    monkeypatch.setattr(store.LandmarkStore, "__init__", original)
    assert cli.main(cfg) == 3  # the bad file fails again
    for table in ("landmark_images", "landmarks", "landmark_counts", "errors", "models"):
        assert table_rows(killed, table) == table_rows(reference, table), table


class _TerminateCounts(_InterruptCounts):
    """As _InterruptCounts, but the interruption is a real SIGTERM sent to this process."""

    def executemany(self, statement: str, rows):
        if statement.startswith("INSERT INTO landmark_counts"):
            self._calls += 1
            if self._calls == 2:
                os.kill(os.getpid(), signal.SIGTERM)
        return self._conn.executemany(statement, rows)


class _StraySigterm(Exception):
    pass


def test_sigterm_stops_classify_as_ctrl_c_does_with_exit_143(scenes, tmp_path, monkeypatch, known_bundle,
                                                             landmark_config, sql):
    monkeypatch.setattr("deepmars.models.loading.load_bundle", lambda *a, **k: known_bundle())
    from deepmars.catalog import landmarks as store

    original = store.LandmarkStore.__init__

    def terminated(self, catalog, model_id):
        original(self, catalog, model_id)
        self.catalog.conn = self.conn = _TerminateCounts(self.conn)

    monkeypatch.setattr(store.LandmarkStore, "__init__", terminated)

    def stray(signum, frame):  # where SIGTERM lands unless classify handles it (not: end pytest itself)
        raise _StraySigterm()

    previous = signal.signal(signal.SIGTERM, stray)
    try:
        catalog = tmp_path / "c.sqlite"
        cfg = landmark_config("command=classify", f"input={scenes}", "model=unused", f"catalog={catalog}")
        assert cli.main(cfg) == 143
        assert signal.getsignal(signal.SIGTERM) is stray  # the handler before the run is back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sql(catalog, "SELECT source_image FROM landmark_images") == [(A,)]  # the finished image is kept
    assert sql(catalog, "SELECT count(*) FROM landmarks WHERE source_image = ?", (B,)) == [(0,)]
    assert sql(catalog, "SELECT count(*) FROM runs WHERE finished_at IS NULL") == [(1,)]


def test_bad_files_go_to_the_errors_table_and_the_batch_goes_on(scenes, tmp_path, write_scene, classify, sql):
    (scenes / "notes.jpg").write_text("this is not an image")
    whole = (scenes / f"{A}.browse.png").read_bytes()
    (scenes / "cut.png").write_bytes(whole[: len(whole) // 3])
    write_scene(scenes, B, suffix=".png", seed=5)  # B's source name twice in one run, other content
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(scenes / "black.png")  # all no-data: no landmarks
    catalog = tmp_path / "c.sqlite"
    summary = classify(scenes, catalog)
    assert (summary.classified, summary.failed, summary.exit_code) == (3, 3, 3)
    assert sql(catalog, "SELECT landmarks, notes LIKE '%no-data%' FROM landmark_images WHERE source_image = 'black'"
               ) == [(0, 1)]
    assert sql(catalog, "SELECT count(*), sum(n) FROM landmark_counts WHERE source_image = 'black'") == [
        (len(LANDMARK_CLASSES), 0)]
    reasons = dict(sql(catalog, "SELECT path, reason FROM errors"))
    assert "not an image" in reasons[str(scenes / "notes.jpg")]
    assert "truncated" in reasons[str(scenes / "cut.png")]
    assert "already used by" in reasons[str(scenes / f"{B}.png")]

    (scenes / f"{B}.png").unlink()
    write_scene(scenes, "cut", discs=DISC_SCENES[B], suffix=".png", seed=3)  # the broken file, now fixed
    (scenes / "notes.jpg").write_bytes(whole)  # now a copy of A: done already, no longer an error
    fixed = classify(scenes, catalog)
    assert (fixed.classified, fixed.skipped, fixed.failed) == (1, 4, 0)
    # Their error rows went with their success; a removed file's row stays, as in predict's catalog.
    assert sql(catalog, "SELECT path FROM errors") == [(str(scenes / f"{B}.png"),)]


# ---------------------------------------------------------------------------------------- catalog and crops
def _v1_catalog(path: Path) -> None:
    """A catalog as predict.py wrote it before the landmark tables (schema 1), with rows."""
    with sqlite3.connect(path) as conn:
        for statement in filter(str.strip, SCHEMA.split(";")):
            conn.execute(statement)
        conn.executemany(f"INSERT INTO predictions VALUES ({', '.join('?' * 16)})",
                         [prediction_row("/m/a.JPG")[:16], prediction_row("/m/b.JPG", cls="drill", conf=0.7)[:16]])
        conn.execute("INSERT INTO models VALUES ('runs:/a', '[\"wheel\", \"drill\"]', 'msl', 1.0, '{}', '{}')")
        conn.execute("INSERT INTO runs (run_id, model_id, input, started_at, config) "
                     "VALUES ('r1', 'runs:/a', 'x', '2020', '{}')")
        conn.execute("PRAGMA user_version=1")


def test_a_schema_1_catalog_is_migrated_and_predict_still_reads_it(scenes, tmp_path, table_rows, classify, sql):
    catalog = tmp_path / "c.sqlite"
    _v1_catalog(catalog)
    before = table_rows(catalog, "predictions")
    classify(scenes, catalog)  # opens, migrates, and adds landmark rows beside the predictions
    assert sql(catalog, "PRAGMA user_version") == [(SCHEMA_VERSION,)] and SCHEMA_VERSION == 4
    assert table_rows(catalog, "predictions") == before
    assert sql(catalog, "SELECT run_id, command FROM runs ORDER BY started_at")[0] == ("r1", "predict")
    assert sql(catalog, "SELECT count(*) FROM landmarks") == [(7,)]
    out = io.StringIO()  # predict's query picks its own model, not the later landmarks run's
    run_predict_query(QueryOptions(catalog=catalog, min_confidence=0.5), out)
    assert out.getvalue().splitlines()[0].startswith("model runs:/a (latest run's of 2 models")
    assert "2 images match" in out.getvalue()

    fresh = tmp_path / "fresh.sqlite"
    Catalog.open(fresh).close()
    schema = "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    assert sql(fresh, schema) == sql(catalog, schema)  # migrated == created new


def test_a_failed_migration_leaves_the_schema_1_catalog_as_it_was(tmp_path, monkeypatch, sql):
    catalog = tmp_path / "c.sqlite"
    _v1_catalog(catalog)
    monkeypatch.setitem(catalog_module.MIGRATIONS, 2, catalog_module.LANDMARK_SCHEMA + ";\nCREATE TABLE models (x)")
    with pytest.raises(Exception, match="already exists"):
        Catalog.open(catalog)
    assert sql(catalog, "PRAGMA user_version") == [(1,)]
    assert "landmarks" not in {r[0] for r in sql(catalog, "SELECT name FROM sqlite_master")}


def test_crops_and_labels_template_feed_labeling_and_match_what_the_model_saw(scenes, tmp_path, classify, sql,
                                                                              known_bundle):
    catalog, crops = tmp_path / "c.sqlite", tmp_path / "crops"
    classify(scenes / f"{A}.browse.png", catalog, crops_dir=crops)
    files = [r[0] for r in sql(catalog, "SELECT crop_file FROM landmarks ORDER BY 1")]
    assert files == [f"{A}-{i:04d}.jpg" for i in range(1, 5)]
    assert (crops / "labels-map-proj.txt").read_text().splitlines() == [f"{f} -1" for f in files]
    assert (crops / "LABELING.txt").is_file() and (crops / "landmarks_mp_classmap.csv").is_file()
    bundle = known_bundle()  # training decodes the written JPEG: the model saw exactly those pixels
    jpeg = (crops / "map-proj" / files[0]).read_bytes()
    assert np.array_equal(crop_input(jpeg, bundle), bundle.preprocess.decode(crops / "map-proj" / files[0]))

    labelled = (crops / "labels-map-proj.txt").read_text().replace(f"{files[0]} -1", f"{files[0]} 1")
    (crops / "labels-map-proj.txt").write_text(labelled)  # a person labels one crop, then B arrives
    classify(scenes, catalog, crops_dir=crops)
    lines = (crops / "labels-map-proj.txt").read_text().splitlines()
    assert lines[:4] == labelled.splitlines() and lines[4:] == [f"{B}-{i:04d}.jpg -1" for i in range(1, 4)]


# --------------------------------------------------------------------------------------------- entry point
def test_config_errors_name_the_key(tmp_path, landmark_config):
    assert cli.main(landmark_config("command=classify", f"input={tmp_path}", "model=m.pt", "count_confidence=1.5")) == 2
    assert cli.main(landmark_config("command=query", f"catalog={tmp_path / 'absent.sqlite'}")) == 4
    assert cli.main(landmark_config("command=query", "csv=out.txt")) == 2
    assert cli.main(landmark_config(f"input={tmp_path}", "model=m.pt")) == 2  # detect would silently not classify


@pytest.mark.slow
def test_landmarks_py_classify_and_query_with_a_bundle_file(scenes, tmp_path, tiny_hirise_bundle, sql, landmark_config):
    model = tiny_hirise_bundle(tmp_path / "model.pt")
    catalog = tmp_path / "out" / "catalog.sqlite"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "landmarks.py", "classify", f"input={scenes}", f"model={model}",
                          f"catalog={catalog}", f"hydra.run.dir={tmp_path / 'h'}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "2 images: classified 2, skipped as already done 0, failed 0" in run.stdout
    assert sql(catalog, "SELECT count(*) FROM landmarks") == [(7,)]
    assert len(list((tmp_path / "out" / "catalog_overlays").glob("file-model-*/*.png"))) == 2
    assert cli.main(landmark_config("command=query", "class=crater", "min_count=0", f"catalog={catalog}")) == 0


@pytest.mark.slow
def test_real_browse_image_with_an_untrained_bundle(tmp_path, landmark_config, tiny_hirise_bundle, sql):
    data = os.environ.get("DEEPMARS_DATA")
    image = Path(data or ".") / "hirise_browse" / "ESP_072719_1970_RED.browse.jpg"
    if not data or not image.is_file():
        pytest.skip("DEEPMARS_DATA with hirise_browse/ESP_072719_1970_RED.browse.jpg is needed")
    catalog = tmp_path / "catalog.sqlite"
    cfg = landmark_config("command=classify", f"input={image}", f"model={tiny_hirise_bundle(tmp_path / 'm.pt')}",
                 f"catalog={catalog}")
    assert cli.main(cfg) == 0
    expected = len(process_image(image, settings_from_config(cfg)).landmarks)
    assert sql(catalog, "SELECT landmarks, source_width, source_height FROM landmark_images") == [
        (expected, 2048, 2999)]
    assert sql(catalog, "SELECT count(*) FROM landmarks") == [(expected,)]
    assert sql(catalog, "SELECT sum(n) FROM landmark_counts") == sql(
        catalog, "SELECT count(*) FROM landmarks WHERE confidence >= 0.9")

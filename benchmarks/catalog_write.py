"""Catalog write cost: what predict.py's batch writes and landmarks.py's image writes take, with the
triggers that keep the search tables (FTS5 text, count tables) in step.

    python benchmarks/catalog_write.py [--prefill 200000] [--batches 60] [--batch-size 64]
                                       [--scenes 40] [--rounds 2] [--workdir DIR] [--baseline REV]

On a copy of a catalog generated with --prefill images (``atlas_latency.generate``, the code's
own schema), times ``PredictionStore.write_batch`` (what predict.py calls once per batch) for
--batches batches of --batch-size new images, then the same paths reclassified (force=true: an
update of every row), then failing (an error row replaces each prediction); and
``LandmarkStore.write_image`` for --scenes new scenes of 62 landmarks and 7 class counts, then the
same scenes again (each replaces the one before). --baseline REV measures that revision's code the
same way, alternating with this one for --rounds rounds (the machine is shared: both see the same
load), and prints the two side by side.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
MSL_MODEL, HIRISE_MODEL = "runs:/0000000000000000000000000000msl1", "runs:/00000000000000000000000000hirise"
CLASSES = ["ground", "wheel", "drill holes", "horizon", "mastcam"]
HIRISE = ["other", "crater", "dark dune", "slope streak", "bright dune", "impact ejecta", "edge"]


def _prediction(row_type, i: int, cls: str, conf: float, at: str):
    inst = ("ML", "MR", "MH")[i % 3]
    top_k = json.dumps([{"class": cls, "p": conf}, {"class": "ground", "p": round(1 - conf, 4)}])
    return row_type(MSL_MODEL, f"/archive/new/{i:07d}{inst}0000000000000000E01_DRCL.JPG", f"{i:064x}", 100000, 1,
                    256, 192, 3000 + i // 500, inst, None, json.dumps({"site": i % 40}), cls, conf, top_k,
                    int(conf < 0.5), at)


def _scene(rows, k: int, at: str):
    image_row, landmark_row, count_row = rows
    name, sha = f"ESP_9{k:05d}_1000_RED", f"b{k:063x}"
    marks = [landmark_row(HIRISE_MODEL, sha, j + 1, name, None, j * 7, j * 5, 60, 60, j * 7, j * 5, 700, 700, 3600,
                          1.0, HIRISE[(j * 3 + k) % 7], 0.6 + 0.4 * ((j * 37 + k) % 101) / 101,
                          "[]", 0, at) for j in range(62)]
    counts = {c: sum(m.predicted_class == c and m.confidence >= 0.9 for m in marks) for c in HIRISE}
    image = image_row(HIRISE_MODEL, sha, name, f"/archive/hirise/{name}.JP2", 1, 0, 24000, 35000, 2048, 2987,
                      len(marks), "", "{}", None, at)
    return image, marks, [count_row(HIRISE_MODEL, sha, 0.9, c, name, n) for c, n in counts.items()]


def probe(catalog: Path, batches: int, batch_size: int, scenes: int) -> dict[str, list[float]]:
    """Milliseconds per write, by kind, on ``catalog`` with the deepmars first on sys.path."""
    from deepmars.catalog import Catalog, ErrorRow, LandmarkCountRow, LandmarkImageRow, LandmarkRow, PredictionRow
    from deepmars.catalog.landmarks import LandmarkStore
    from deepmars.catalog.predictions import PredictionStore

    out: dict[str, list[float]] = {}

    def timed(kind: str, write, *args) -> None:
        t = time.perf_counter()
        write(*args)
        out.setdefault(kind, []).append((time.perf_counter() - t) * 1000)

    with Catalog.open(catalog) as cat:
        store = PredictionStore(cat, MSL_MODEL)
        ranges = [range(b * batch_size, (b + 1) * batch_size) for b in range(batches)]
        for r in ranges:
            timed("predict batch: new images", store.write_batch,
                  [_prediction(PredictionRow, i, CLASSES[i % 5], 0.5 + (i * 7919 % 500) / 1000, "t1") for i in r], [])
        for r in ranges:
            timed("predict batch: reclassified (force=true)", store.write_batch,
                  [_prediction(PredictionRow, i, CLASSES[(i + 1) % 5], 0.99, "t2") for i in r], [])
        for r in ranges:
            timed("predict batch: now failing (error rows)", store.write_batch, [],
                  [ErrorRow(MSL_MODEL, _prediction(PredictionRow, i, "x", 0.5, "t3").path, None, 0, 1, "gone", "t3")
                   for i in r])
        landmarks = LandmarkStore(cat, HIRISE_MODEL)
        rows = (LandmarkImageRow, LandmarkRow, LandmarkCountRow)
        for k in range(scenes):
            timed("landmarks: new scene (62 landmarks)", landmarks.write_image, *_scene(rows, k, "t1"))
        for k in range(scenes):
            timed("landmarks: scene again (replaces it)", landmarks.write_image, *_scene(rows, k, "t2"))
    return out


def _run_probe(root: Path, pristine: Path, work: Path, args) -> dict[str, list[float]]:
    shutil.copyfile(pristine, work)
    result = subprocess.run([sys.executable, str(Path(__file__)), "--probe", str(root), "--catalog", str(work),
                             "--batches", str(args.batches), "--batch-size", str(args.batch_size),
                             "--scenes", str(args.scenes)], check=True, capture_output=True, text=True)
    work.unlink()
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefill", type=int, default=200_000)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "deepmars-atlas-bench")
    ap.add_argument("--baseline", help="a git revision to measure side by side (e.g. main)")
    ap.add_argument("--probe", type=Path, help=argparse.SUPPRESS)  # a tree's root: time writes with its code
    ap.add_argument("--catalog", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        sys.path.insert(0, str(args.probe))
        print(json.dumps(probe(args.catalog, args.batches, args.batch_size, args.scenes)))
        return
    sys.path.insert(0, str(HERE))
    from baseline_tree import baseline_tree, call_in_tree

    args.workdir.mkdir(parents=True, exist_ok=True)
    trees = ({"now": ROOT} if not args.baseline
             else {args.baseline: baseline_tree(args.baseline, args.workdir), "now": ROOT})
    pristine = {}
    for label, root in trees.items():
        schema = subprocess.run([sys.executable, "-c", "from deepmars.catalog import SCHEMA_VERSION as v; print(v)"],
                                cwd=root, check=True, capture_output=True, text=True).stdout.strip()
        pristine[label] = args.workdir / f"write-{args.prefill}-schema{schema}.sqlite"
        if not pristine[label].is_file():
            partial = pristine[label].with_suffix(".partial")
            call_in_tree(root, "atlas_latency", "generate", str(partial), args.prefill, max(1, args.prefill // 230))
            partial.rename(pristine[label])
    times: dict[str, dict[str, list[float]]] = {label: {} for label in trees}
    for r in range(args.rounds):
        for label in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
            got = _run_probe(trees[label], pristine[label], args.workdir / "write-work.sqlite", args)
            for kind, values in got.items():
                times[label].setdefault(kind, []).extend(values)
    head = " | ".join(f"{label} median ms | {label} p95 ms" for label in trees)
    print(f"\n{args.batch_size} rows per predict batch, on a catalog of {args.prefill:,} images; "
          f"{args.rounds} rounds\n")
    print(f"| write | {head} |\n|---|{'---|---|' * len(trees)}")
    for kind in times["now"]:
        cells = []
        for label in trees:
            values = sorted(times[label][kind])
            cells.append(f"{statistics.median(values):.1f} | {values[max(0, int(0.95 * len(values)) - 1)]:.1f}")
        print(f"| {kind} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()

"""Ray Data predict vs single-process predict.py on the same real MSL images, side by side in one run.

    DEEPMARS_DATA=/path/to/data python benchmarks/ray_predict.py [--images 2000] [--workers 1,2]
        [--cpus N] [--batch-size 64]

The first ``--images`` files of $DEEPMARS_DATA/msl/calibrated (sorted names), one model
(tf_efficientnet_lite0 at 224 px; random weights run at the speed of trained ones), and for each
engine a fresh catalog:

- predict.py's own pipeline (engine=local): 1 torch thread, 1 decode worker, as conf/predict/predict.yaml;
- engine=ray with each ``--workers`` count, on one local Ray started once (``--cpus`` logical CPUs,
  default this machine's cores; not timed). Each classifier actor runs 1 torch thread and asks for
  1 CPU while that leaves one for decoding, else an equal share with the decode tasks.

The rate is images / the run's own time (listing, hashing, decoding, inference, catalog writes,
and for Ray each execution's actor start-up), as predict.py reports it. The catalogs must come out
equal. The archive estimate divides the 3.7 M-image MSL archive by the 1-worker Ray rate (one
worker's rate) times the number of such workers a cluster runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deepmars.catalog import TIME_COLUMNS, Catalog  # noqa: E402
from deepmars.config import ModelConfig  # noqa: E402
from deepmars.devices import cuda_report  # noqa: E402
from deepmars.models.bundle import ModelBundle  # noqa: E402
from deepmars.models.factory import build_model  # noqa: E402
from deepmars.models.loading import load_bundle  # noqa: E402
from deepmars.prediction.options import PredictOptions, RayConfig  # noqa: E402
from deepmars.prediction.ray_engine import run_predict_ray  # noqa: E402
from deepmars.prediction.runner import run_predict  # noqa: E402
from deepmars.schema import load  # noqa: E402

LITE0 = {"source": "timm", "name": "tf_efficientnet_lite0", "pretrained": "none", "img_size": 224, "resize": None}
MSL_METADATA = {"pattern": r"^(?P<sol>\d{4})(?P<instrument>M[LRH])", "types": {"sol": "int"}}
MSL_ARCHIVE = 3_700_000


def rows(catalog: Path) -> list[tuple]:
    with Catalog.open(catalog, create=False) as c:
        return c.rows("predictions", exclude=TIME_COLUMNS.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--workers", default="1,2", help="comma-separated Ray classifier actor counts")
    ap.add_argument("--cpus", type=int, default=os.cpu_count(), help="logical CPUs of the local Ray")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    if not os.environ.get("DEEPMARS_DATA"):
        sys.exit("set DEEPMARS_DATA to the folder holding msl/ (the published MSL v1 data set)")
    images = sorted((Path(os.environ["DEEPMARS_DATA"]) / "msl" / "calibrated").glob("*.JPG"))[:args.images]
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        listing = tmp / "images.txt"
        listing.write_text("".join(f"{p}\n" for p in images))
        model, pre = build_model(load(ModelConfig, LITE0, prefix="model"), 24, load_pretrained=False)
        bundle_path = ModelBundle(model=model, model_cfg=LITE0, class_names=[f"c{i}" for i in range(24)],
                                  preprocess=pre, dataset={"name": "msl", "metadata": MSL_METADATA}).save(tmp / "m.pt")

        def opts(name: str) -> PredictOptions:
            return PredictOptions(input=str(listing), model=str(bundle_path), catalog=tmp / f"{name}.sqlite",
                                  batch_size=args.batch_size, num_workers=1, threads=1)

        results = []
        summary = run_predict(opts("local"), load_bundle(str(bundle_path)), out=open(os.devnull, "w"), progress=False)
        results.append(("predict.py (1 thread, 1 decode worker)", "", summary.classified / summary.seconds,
                        summary.classified, "local"))
        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False)
        ray_start = time.perf_counter() - started
        try:
            for workers in (int(w) for w in args.workers.split(",")):
                share = min(1.0, args.cpus / (workers + 1))
                settings = RayConfig(workers=workers, cpus_per_worker=share, decode_cpus=share)
                name = f"ray{workers}"
                summary = run_predict_ray(opts(name), settings, load_bundle(str(bundle_path)),
                                          out=open(os.devnull, "w"), progress=False)
                results.append((f"engine=ray, {workers} worker{'s' if workers > 1 else ''}",
                                f"{share:g} CPU/actor, {share:g} CPU/decode task",
                                summary.classified / summary.seconds, summary.classified, name))
        finally:
            ray.shutdown()
        equal = all(rows(tmp / f"{r[4]}.sqlite") == rows(tmp / "local.sqlite") for r in results)

    print(f"machine: {os.cpu_count()} CPUs ({torch.get_num_threads()} torch threads available), "
          f"{cuda_report()}; Ray {ray.__version__} with {args.cpus} logical CPUs (start-up {ray_start:.0f} s, "
          "not counted)")
    print(f"{len(images)} real MSL images ($DEEPMARS_DATA/msl/calibrated, first by name), EfficientNet-Lite0 "
          f"224 px, batch {args.batch_size}")
    print(f"{'engine':<42}{'img/s':>8}  {'classified':>10}  resources")
    for label, resources, rate, n, _ in results:
        print(f"{label:<42}{rate:8.1f}  {n:>10}  {resources}")
    print(f"catalogs equal (prediction rows, timestamps aside): {'yes' if equal else 'NO'}")
    per_worker = next(r[2] for r in results if r[4] == "ray1") if any(r[4] == "ray1" for r in results) else None
    if per_worker:
        hours = MSL_ARCHIVE / per_worker / 3600
        print(f"3.7 M-image MSL archive at the measured per-worker rate ({per_worker:.1f} img/s): "
              f"{hours:.1f} h with 1 worker, {hours / 8:.1f} h with 8, {hours / 32:.1f} h with 32 "
              "(workers with this machine's per-worker speed, each with its own cores for decoding)")


if __name__ == "__main__":
    main()

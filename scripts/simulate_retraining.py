"""Simulate the labeling loop on MSL: random order vs active learning, N labels of a new delivery.

    DEEPMARS_DATA=/path/to/data python scripts/simulate_retraining.py --work-dir /tmp/sim \\
        [--cache-dir DIR] [--sizes 100,250,500,1000] [--seeds 0,1,2] [--plot docs/retraining_msl.png]

What it does and why: deepmars/retraining/simulation.py and docs/retraining.md. The feature cache
(the training one: a forward pass over the 6,691 MSL images, about 25 minutes on a loaded 2-core
CPU, once) and the work folder should lie outside the repository; both default to the user cache
($DEEPMARS_CACHE).
Prints a table of test accuracy per order and N, and wall times.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deepmars.data.root import cache_home, resolve_root  # noqa: E402
from deepmars.retraining.plot import plot_results, summary  # noqa: E402
from deepmars.retraining.simulation import SimulationSettings, simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=None, help="queues, catalog, exports (default: cache)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default: cache)")
    parser.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    parser.add_argument("--sizes", default="100,250,500,1000")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the random order")
    parser.add_argument("--orders", default="random,least_confident,margin,entropy")
    parser.add_argument("--probe-c", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not os.environ.get("DEEPMARS_DATA"):
        sys.exit("set DEEPMARS_DATA to the folder holding msl/ (the published MSL v1 data set)")
    dataset_cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "dataset" / "msl.yaml"))
    dataset_cfg["root"] = str(resolve_root(dataset_cfg, download=False))
    model_cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / "efficientnet_lite0.yaml"))
    base = cache_home() / "retraining"
    settings = SimulationSettings(
        dataset_cfg=dataset_cfg, model_cfg=model_cfg, work_dir=(args.work_dir or base / "work").resolve(),
        cache_dir=(args.cache_dir or base / "features").resolve(), tracking_uri=args.tracking_uri,
        sizes=tuple(int(n) for n in args.sizes.split(",")), orders=tuple(args.orders.split(",")),
        random_seeds=tuple(int(s) for s in args.seeds.split(",")), probe_c=args.probe_c, threads=args.threads)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = simulate(settings)
    wall = time.monotonic() - started
    table = summary(results)
    sizes = [0, *settings.sizes]
    print("test accuracy (%) on the test sols, head retrained on train + N delivery labels")
    print(f"{'order':<18}" + "".join(f"{'N=' + str(n):>14}" for n in sizes))
    for order, by_n in table.items():
        cells = [by_n.get(n, []) for n in sizes]
        print(f"{order:<18}" + "".join(f"{_cell(v):>14}" for v in cells))
    print(f"wall time {wall / 60:.1f} min; runs under MLflow experiment 'msl-retraining' at {args.tracking_uri}; "
          f"results: {settings.work_dir / 'results.csv'}")
    if args.plot:
        print("plot:", plot_results(results, args.plot, "MSL: head retrained on train + N labeled delivery images "
                                                     "(val sols 182-564)"))


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    mean = 100 * sum(values) / len(values)
    return f"{mean:.1f}" if len(values) == 1 else f"{mean:.1f}±{100 * (max(values) - min(values)) / 2:.1f}"


if __name__ == "__main__":
    main()

"""Predict throughput and memory: end-to-end vs model-only, peak RSS over 100k images, archive time.

    DEEPMARS_DATA=/path/to/data python benchmarks/predict_throughput.py
        [--images 512] [--rounds 3] [--batch-size 64] [--configs 1x1,2x1,2x0] [--memory-images 100000]
        [--profile]

For each ``threads x num_workers`` config, on the same model (tf_efficientnet_lite0, 224 px; random
weights run at the speed of trained ones) and batch size:

- model-only: ``ModelBundle.predict_proba`` on a pre-built batch of real decoded MSL images, over
  as many images as an end-to-end run, alternating with it for ``--rounds`` rounds (the machine
  is shared: both see the same load; the medians are compared);
- end-to-end: ``run_predict`` (what predict.py runs) over the first ``--images`` MSL images into a
  fresh catalog: listing, hashing, decoding in workers, inference, catalog writes. It excludes the
  interpreter start and model load (a fixed ~5 s per run, not per image).

Then predict.py in a subprocess over ``--memory-images`` generated 32x32 JPEGs with timm's tiny
test network (the memory question is about per-image state, not the network), sampling the RSS of
the process and its workers; and the time for the 3.7 M image MSL archive from the best rate.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deepmars.config import ModelConfig  # noqa: E402
from deepmars.models.bundle import ModelBundle  # noqa: E402
from deepmars.models.factory import build_model  # noqa: E402
from deepmars.models.loading import load_bundle  # noqa: E402
from deepmars.prediction.decode import DecodeSettings, process_path  # noqa: E402
from deepmars.prediction.options import PredictOptions  # noqa: E402
from deepmars.prediction.runner import run_predict  # noqa: E402
from deepmars.schema import load  # noqa: E402

LITE0 = {"source": "timm", "name": "tf_efficientnet_lite0", "pretrained": "none", "img_size": 224, "resize": None}
TINY = {"source": "timm", "name": "test_efficientnet", "pretrained": "none", "img_size": 64, "resize": 72}
MSL_ARCHIVE = 3_700_000
MSL_METADATA = {"pattern": r"^(?P<sol>\d{4})(?P<instrument>M[LRH])", "types": {"sol": "int"}}


def save_bundle(path: Path, cfg: dict, classes: list[str]) -> Path:
    model, preprocess = build_model(load(ModelConfig, cfg, prefix="model"), len(classes), load_pretrained=False)
    return ModelBundle(model=model, model_cfg=cfg, class_names=classes, preprocess=preprocess,
                       dataset={"name": "msl", "metadata": MSL_METADATA}).save(path)


def msl_classes(msl: Path) -> list[str]:
    lines = (msl / "msl_synset_words-indexed.txt").read_text().splitlines()
    return [line.split(None, 1)[1].strip() for line in lines if line.strip()]


def model_only(bundle: ModelBundle, batch: torch.Tensor, n_images: int) -> float:
    """img/s of predict_proba alone on a ready batch, over as many images as the end-to-end run."""
    bundle.predict_proba(batch)  # warm-up: kernels chosen for this shape
    steps = max(1, round(n_images / len(batch)))
    start = time.perf_counter()
    for _ in range(steps):
        bundle.predict_proba(batch)
    return steps * len(batch) / (time.perf_counter() - start)


def end_to_end(bundle: ModelBundle, listing: Path, catalog: Path, threads: int, workers: int,
               batch_size: int, profiler: cProfile.Profile | None = None) -> float:
    """img/s of the whole predict pipeline into a fresh catalog."""
    opts = PredictOptions(input=str(listing), model="bench", catalog=catalog, batch_size=batch_size,
                          num_workers=workers, threads=threads)
    if profiler:
        profiler.enable()
    summary = run_predict(opts, bundle, out=io.StringIO(), progress=False)
    if profiler:
        profiler.disable()
    assert summary.failed == 0 and summary.classified > 0, summary
    return summary.classified / summary.seconds


def throughput(args, msl: Path, tmp: Path) -> float:
    """Print the model-only / end-to-end table; return the best end-to-end img/s (median of rounds)."""
    images = sorted((msl / "calibrated").glob("*.JPG"))[: args.images]
    listing = tmp / "images.txt"
    listing.write_text("".join(f"{p}\n" for p in images))
    bundle = load_bundle(str(save_bundle(tmp / "lite0.pt", LITE0, msl_classes(msl))))
    settings = DecodeSettings(bundle.preprocess, None, str(tmp / "none.sqlite"), "bench", reuse=False)
    batch = bundle.preprocess.eval_batch(np.stack([process_path(str(p), settings)[1]
                                                   for p in images[: args.batch_size]]))
    print(f"\nmodel tf_efficientnet_lite0 224px, batch {args.batch_size}, {len(images)} real MSL images per run, "
          f"{args.rounds} alternating rounds per config (medians), {os.cpu_count()} cores, "
          f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'threads':>7} {'workers':>7} {'model-only img/s':>17} {'end-to-end img/s':>17} {'ratio':>6}  rounds (model/e2e)")
    best, profiler = 0.0, cProfile.Profile() if args.profile else None
    for i, config in enumerate(args.configs.split(",")):
        threads, workers = (int(v) for v in config.split("x"))
        model_rates, e2e_rates = [], []
        for r in range(args.rounds):  # alternate, so both see the same share of a busy machine
            torch.set_num_threads(threads)
            model_rates.append(model_only(bundle, batch, len(images)))
            e2e_rates.append(end_to_end(bundle, listing, tmp / f"e2e-{i}-{r}.sqlite", threads, workers,
                                        args.batch_size, profiler=profiler if i == r == 0 else None))
        base, e2e = statistics.median(model_rates), statistics.median(e2e_rates)
        rounds = " ".join(f"{m:.1f}/{e:.1f}" for m, e in zip(model_rates, e2e_rates))
        print(f"{threads:>7} {workers:>7} {base:>17.1f} {e2e:>17.1f} {e2e / base:>6.2f}  {rounds}")
        best = max(best, e2e)
    if profiler:
        print("\nprofile of the first end-to-end run (main process, top 12 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    return best


def write_tiny_jpegs(folder: Path, n: int) -> None:
    """``n`` distinct 32x32 JPEGs in folders of 1000: a few seconds per 10k."""
    rng = np.random.default_rng(0)
    bases = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    bits = 1 << np.arange(24)
    for i in range(n):
        sub = folder / f"d{i // 1000:04d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        img = bases[i % 64].copy()
        # The index as 24 black/white 4x4 blocks: survives JPEG, so every file's content differs.
        blocks = np.where(i & bits, 255, 0).astype(np.uint8).reshape(3, 8)
        img[:12] = np.kron(blocks, np.ones((4, 4), np.uint8))[:, :, None]
        Image.fromarray(img).save(sub / f"{i % 1000:04d}ML{i:012d}.jpg", quality=85)


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS of ``pid``, PSS of ``pid`` plus its children) in KiB, from /proc.

    PSS splits pages shared between the forked workers and the main process (torch's libraries,
    ~0.6 GB of RSS in every process) so the sum is the real footprint, not a multiple of it.
    """
    def field(p: int, name: str, path: str) -> int:
        try:
            with open(f"/proc/{p}/{path}") as f:
                return next(int(line.split()[1]) for line in f if line.startswith(name))
        except (OSError, StopIteration):
            return 0
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        children = []
    return field(pid, "VmRSS:", "status"), sum(field(p, "Pss:", "smaps_rollup") for p in [pid, *children])


def memory_run(n: int, tmp: Path) -> None:
    """predict.py over ``n`` generated images in a subprocess; print peak RSS and the rate."""
    folder = tmp / "tiny_images"
    start = time.perf_counter()
    write_tiny_jpegs(folder, n)
    print(f"memory: generated {n:,} 32x32 JPEGs in {time.perf_counter() - start:.0f} s; predict.py with timm "
          "test_efficientnet (64 px), batch 256, 1 thread, 1 decode worker")
    model = save_bundle(tmp / "tiny.pt", TINY, ["a", "b", "c", "d", "e"])
    cmd = [sys.executable, str(REPO / "predict.py"), f"input={folder}", f"model={model}",
           f"catalog={tmp / 'memory.sqlite'}", "batch_size=256", "num_workers=1", "threads=1"]
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak_main = peak_tree = 0
    timeline: list[int] = []  # main-process RSS every 0.25 s: flat, or growing with the images?
    start = time.perf_counter()
    while proc.poll() is None:
        main, tree = _memory_kb(proc.pid)
        peak_main, peak_tree = max(peak_main, main), max(peak_tree, tree)
        timeline.append(main)
        time.sleep(0.25)
    seconds = time.perf_counter() - start
    out = proc.stdout.read()
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux, kernel-tracked
    print("\n".join(out.splitlines()[:2]))
    print(f"peak RSS of the largest process (kernel): {largest / 1024:.0f} MiB (main process sampled: "
          f"{peak_main / 1024:.0f} MiB); peak PSS of main + decode worker: {peak_tree / 1024:.0f} MiB; "
          f"wall {seconds:.0f} s incl. start-up")
    quarters = [max(timeline[: max(1, len(timeline) * q // 4)]) // 1024 for q in (1, 2, 3, 4)]
    print(f"main-process peak RSS after 1/4, 2/4, 3/4, 4/4 of the run: {quarters} MiB")


def archive_estimate(rate: float) -> None:
    hours = MSL_ARCHIVE / rate / 3600
    print(f"\nMSL archive ({MSL_ARCHIVE:,} images) at {rate:.1f} img/s end-to-end on this machine: {hours:.1f} h")
    for n in (4, 16, 64):
        print(f"  on {n} such machines (shard=i/{n}, then merge): {hours / n:.1f} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512, help="real MSL images per end-to-end run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating model-only / end-to-end rounds")
    parser.add_argument("--configs", default="1x1,2x1,2x0", help="threads x decode workers, comma separated")
    parser.add_argument("--memory-images", type=int, default=100_000, help="0 skips the memory run")
    parser.add_argument("--profile", action="store_true", help="cProfile the first end-to-end run")
    args = parser.parse_args()
    data = os.environ.get("DEEPMARS_DATA")
    if not data or not (Path(data) / "msl" / "calibrated").is_dir():
        sys.exit("set DEEPMARS_DATA to the folder holding msl/ (e.g. DEEPMARS_DATA=~/data holding msl/)")
    with tempfile.TemporaryDirectory(prefix="deepmars-bench-") as tmp:
        if args.memory_images:  # first: the kernel's peak-RSS of children must be predict.py's alone
            memory_run(args.memory_images, Path(tmp))
        archive_estimate(throughput(args, Path(data) / "msl", Path(tmp)))


if __name__ == "__main__":
    main()

"""Predict throughput per runtime x precision: end-to-end vs model-only, agreement, accuracy, archive time.

    DEEPMARS_DATA=/path/to/data python benchmarks/predict_throughput.py [--model runs:/<id> | model.pt]
        [--images 2000] [--rounds 2] [--batch-size 64] [--memory-images 100000] [--profile]
        [--configs torch:fp32:1x1,onnxruntime:fp32:2x1,openvino:fp32:2x1,torch:bf16:2x1,openvino:bf16:2x1,
                   openvino:int8:2x1]

One model (``--model``: a trained MSL bundle; default tf_efficientnet_lite0 at 224 px with random
weights, which run at the speed of trained ones but make accuracy meaningless) is first exported
by ``export_model.py``'s code (ONNX, OpenVINO IR, NNCF int8 calibrated on 300 MSL training
images), which classifies the whole MSL test split (sol split, 1305 images) on every runtime x
precision: top-1 agreement with eager fp32 and accuracy. Then, per ``runtime:precision:threads x
decode workers`` config, alternately for ``--rounds`` rounds (the machine is shared: both see the
same load; medians are compared):

- model-only: the classifier's calibrated probabilities for a ready batch of decoded MSL images,
  over as many images as an end-to-end run;
- end-to-end: ``run_predict`` (what predict.py runs) over the first ``--images`` MSL images into a
  fresh catalog: listing, hashing, decoding in workers, inference, catalog writes, and the
  first-batch check against eager. It excludes the interpreter start, model load and runtime
  compilation (a fixed few seconds per run, not per image).

Each config's catalog is compared with eager fp32's on the same images (top-1 agreement, largest
confidence difference); the MSL archive time (3.7 M images) comes from the best exact (fp32)
configuration. Then predict.py runs in a subprocess over ``--memory-images`` generated 32x32
JPEGs with timm's tiny test network, sampling the RSS of the process and its workers.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deepmars.catalog import Catalog  # noqa: E402
from deepmars.config import ModelConfig  # noqa: E402
from deepmars.errors import DeepMarsError  # noqa: E402
from deepmars.inference.opening import open_classifier  # noqa: E402
from deepmars.inference.runtimes import choose  # noqa: E402
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
CONFIGS = "torch:fp32:1x1,onnxruntime:fp32:2x1,openvino:fp32:2x1,torch:bf16:2x1,openvino:bf16:2x1,openvino:int8:2x1"


@dataclass(frozen=True)
class Config:
    runtime: str
    precision: str
    threads: int
    workers: int

    @classmethod
    def parse(cls, text: str) -> Config:
        runtime, precision, shape = text.split(":")
        threads, workers = (int(v) for v in shape.split("x"))
        return cls(runtime, precision, threads, workers)

    @property
    def name(self) -> str:
        return f"{self.runtime}:{self.precision}:{self.threads}x{self.workers}"


def save_bundle(path: Path, cfg: dict, classes: list[str]) -> Path:
    """The network with random weights drawn from seed 0: each run benchmarks the same model. (Unseeded,
    the share of near-tied images that reduced precision re-runs in fp32 went from 1% to 46% between
    two runs, and with it their speed.)"""
    import torch

    torch.manual_seed(0)
    model, preprocess = build_model(load(ModelConfig, cfg, prefix="model"), len(classes), load_pretrained=False)
    return ModelBundle(model=model, model_cfg=cfg, class_names=classes, preprocess=preprocess,
                       dataset={"name": "msl", "metadata": MSL_METADATA}).save(path)


def msl_classes(msl: Path) -> list[str]:
    lines = (msl / "msl_synset_words-indexed.txt").read_text().splitlines()
    return [line.split(None, 1)[1].strip() for line in lines if line.strip()]


def model_file(args, msl: Path, tmp: Path) -> Path:
    """A copy of the benchmarked bundle in ``tmp``: its export is made there, not beside the user's file."""
    path = tmp / "model" / "model.pt"
    path.parent.mkdir()
    if args.model is None:
        classes = [c for c in msl_classes(msl) if c != "sun"]  # the 24 classes with images, as training keeps
        return save_bundle(path, LITE0, classes)
    bundle = load_bundle(args.model, args.tracking_uri)
    bundle.save(path)
    return path


def export_and_measure(model: Path, args) -> dict:
    """export_model.py on the MSL sol split: int8 calibrated on train, every runtime on the test split."""
    from hydra import compose, initialize_config_dir

    import deepmars.config  # noqa: F401 - the ${deepmars_sample:...} resolver
    from deepmars.export.command import run_export

    overrides = [f"model={model}", "dataset=msl", "split=sol", "int8=true", "threads=1",
                 f"batch_size={args.batch_size}", "num_workers=1", f"check_images={args.test_images}"]
    with initialize_config_dir(config_dir=str(REPO / "conf" / "export_model"), version_base="1.3"):
        cfg = compose(config_name="export_model", overrides=overrides)
    start = time.perf_counter()
    table = run_export(cfg)
    print(f"(export, int8 calibration and the test-split measurements took {time.perf_counter() - start:.0f} s)")
    return {(m.runtime, m.precision): m.agreement for m in table}


def model_only(bundle: ModelBundle, config: Config, pixels: np.ndarray, n_images: int) -> float:
    """img/s of the classifier alone on a ready batch of decoded images, over ``n_images``."""
    with open_classifier(bundle, config.runtime, config.precision, config.threads, report=lambda line: None) as c:
        c.probabilities(pixels)  # warm-up: kernels chosen for this shape (and the first-batch check)
        steps = max(1, round(n_images / len(pixels)))
        start = time.perf_counter()
        for _ in range(steps):
            c.probabilities(pixels)
        return steps * len(pixels) / (time.perf_counter() - start)


def end_to_end(bundle: ModelBundle, listing: Path, catalog: Path, config: Config, batch_size: int,
               profiler: cProfile.Profile | None = None) -> tuple[float, str]:
    """img/s of the whole predict pipeline into a fresh catalog; and the catalog's model id."""
    opts = PredictOptions(input=str(listing), model="bench", catalog=catalog, batch_size=batch_size,
                          num_workers=config.workers, threads=config.threads, runtime=config.runtime,
                          precision=config.precision)
    if profiler:
        profiler.enable()
    summary = run_predict(opts, bundle, out=io.StringIO(), progress=False)
    if profiler:
        profiler.disable()
    assert summary.failed == 0 and summary.classified > 0, summary
    return summary.classified / summary.seconds, summary.model_id


def catalog_answers(catalog: Path, model_id: str) -> dict[str, tuple[str, float]]:
    with Catalog.open(catalog, create=False) as c:
        rows = c.conn.execute("SELECT path, predicted_class, confidence FROM predictions WHERE model_id = ?",
                              (model_id,)).fetchall()
    return {path: (cls, conf) for path, cls, conf in rows}


def compare(reference: dict, other: dict) -> tuple[float, float]:
    """Top-1 agreement and the largest confidence difference over the same images."""
    same = sum(reference[p][0] == other[p][0] for p in reference)
    return same / len(reference), max(abs(reference[p][1] - other[p][1]) for p in reference)


def throughput(args, msl: Path, tmp: Path) -> None:
    """Export and measure, then the side-by-side table; ends with the archive estimate."""
    configs = [Config.parse(c) for c in args.configs.split(",")]
    model = model_file(args, msl, tmp)
    measured = export_and_measure(model, args)
    images = sorted((msl / "calibrated").glob("*.JPG"))[: args.images]
    listing = tmp / "images.txt"
    listing.write_text("".join(f"{p}\n" for p in images))
    bundle = load_bundle(str(model))
    settings = DecodeSettings(bundle.preprocess, None, str(tmp / "none.sqlite"), "bench", reuse=False)
    pixels = np.stack([process_path(str(p), settings)[1] for p in images[: args.batch_size]])
    print(f"\nmodel {bundle.model_cfg['name']} {bundle.preprocess.img_size}px ({args.model or 'random weights'}), "
          f"batch {args.batch_size}, {len(images)} real MSL images per run, {args.rounds} alternating rounds per "
          f"config (medians), {os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.1f}")
    results, answers, profiler = [], {}, cProfile.Profile() if args.profile else None
    for i, config in enumerate(configs):
        try:
            choose(config.runtime, config.precision)
        except DeepMarsError as exc:
            print(f"{config.name}: skipped ({exc})")
            continue
        model_rates, e2e_rates = [], []
        for r in range(args.rounds):  # alternate, so both see the same share of a busy machine
            model_rates.append(model_only(bundle, config, pixels, len(images)))
            rate, model_id = end_to_end(bundle, listing, tmp / f"e2e-{i}-{r}.sqlite", config, args.batch_size,
                                        profiler=profiler if i == r == 0 else None)
            e2e_rates.append(rate)
        answers[config] = catalog_answers(tmp / f"e2e-{i}-0.sqlite", model_id)
        results.append((config, statistics.median(model_rates), statistics.median(e2e_rates), model_rates, e2e_rates))
    print_table(results, answers, measured)
    if profiler:
        print("\nprofile of the first end-to-end run (main process, top 12 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    exact = [r for r in results if r[0].precision == "fp32"]
    if exact:
        best = max(exact, key=lambda r: r[2])
        archive_estimate(best[2], best[0].name)


def print_table(results, answers: dict, measured: dict) -> None:
    eager = next((r for r in results if (r[0].runtime, r[0].precision) == ("torch", "fp32")), None)
    reference = answers.get(eager[0]) if eager else None
    print(f"\n{'runtime:precision:threads x workers':<36} {'model-only':>10} {'end-to-end':>10} {'ratio':>5} "
          f"{'x eager e2e':>11} {'top-1 agree':>11} {'max dconf':>9} {'test acc':>8} {'test agree':>10}  "
          "rounds (model/e2e)")
    for config, base, e2e, model_rates, e2e_rates in results:
        speedup = f"{e2e / eager[2]:.1f}" if eager else "-"
        agree, dconf = compare(reference, answers[config]) if reference else (float("nan"), float("nan"))
        test = measured.get((config.runtime, config.precision))
        acc = f"{100 * test.accuracy:.2f}" if test else "-"
        test_agree = f"{100 * test.top1_agreement:.2f}%" if test else "-"
        rounds = " ".join(f"{m:.1f}/{e:.1f}" for m, e in zip(model_rates, e2e_rates, strict=True))
        print(f"{config.name:<36} {base:>10.1f} {e2e:>10.1f} {e2e / base:>5.2f} {speedup:>11} "
              f"{100 * agree:>10.2f}% {dconf:>9.2g} {acc:>8} {test_agree:>10}  {rounds}")
    print("(img/s; top-1 agree and max dconf: catalog rows against eager fp32's on the same images; test acc and "
          "test agree: the whole MSL test split, from the export)")


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


def archive_estimate(rate: float, config: str) -> None:
    hours = MSL_ARCHIVE / rate / 3600
    print(f"\nMSL archive ({MSL_ARCHIVE:,} images) at {rate:.1f} img/s end-to-end ({config}, exact) on this machine: "
          f"{hours:.1f} h")
    for n in (4, 16, 64):
        print(f"  on {n} such machines (shard=i/{n}, then merge): {hours / n:.1f} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a trained MSL bundle (file, runs:/<id>, ...); default: "
                                                      "tf_efficientnet_lite0 with random weights")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store of --model when it is a run")
    parser.add_argument("--images", type=int, default=2000, help="real MSL images per end-to-end run")
    parser.add_argument("--test-images", type=int, default=0, help="MSL test images for agreement and accuracy "
                                                                   "(0: the whole split, 1305)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating model-only / end-to-end rounds")
    parser.add_argument("--configs", default=CONFIGS,
                        help="runtime:precision:threads x decode workers, comma separated")
    parser.add_argument("--memory-images", type=int, default=100_000, help="0 skips the memory run")
    parser.add_argument("--profile", action="store_true", help="cProfile the first end-to-end run")
    args = parser.parse_args()
    data = os.environ.get("DEEPMARS_DATA")
    if not data or not (Path(data) / "msl" / "calibrated").is_dir():
        sys.exit("set DEEPMARS_DATA to the folder holding msl/ (e.g. DEEPMARS_DATA=~/data holding msl/)")
    with tempfile.TemporaryDirectory(prefix="deepmars-bench-") as tmp:
        if args.memory_images:  # first: the kernel's peak-RSS of children must be predict.py's alone
            memory_run(args.memory_images, Path(tmp))
        throughput(args, Path(data) / "msl", Path(tmp))


if __name__ == "__main__":
    main()

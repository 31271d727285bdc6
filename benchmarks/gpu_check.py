"""GPU check: the GPU paths end to end on whatever GPU is present, in one table, in under 8 minutes.

    python benchmarks/gpu_check.py [--smoke] [--step-timeout 300]

Steps (each the real entry point in a subprocess, so one failure still leaves the others' rows):

1. demo: ``python train.py experiment=demo`` on the GPU (wall time, test accuracy);
2. HiRISE training at 224 px in bf16 (``experiment=hirise_lite0``, 300 iterations) with the
   training loop's own img/s; ``$DEEPMARS_DATA/hirise``, else the embedded sample;
3. predict.py on 2,000 real MSL images (``$DEEPMARS_DATA/msl/calibrated``, else the embedded
   sample) with step 2's model: img/s as predict.py reports it;
4. a 1-GPU torchrun run (``torchrun --standalone --nproc_per_node=1 train.py experiment=demo``).

Without a CUDA GPU (or with ``--smoke``) it says so and runs the same four steps on the CPU with
tiny sizes (timm's test network, the embedded samples, a few iterations), then exits 0 if they
pass: the script itself is tested that way. Exit code 1 if a step failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deepmars.devices import cuda_report  # noqa: E402

PREDICT_IMAGES = 2000


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    figure: str
    tail: str = ""


@dataclass(frozen=True)
class Sizes:
    device: str
    demo: tuple[str, ...]
    train: tuple[str, ...]
    predict_images: int
    predict: tuple[str, ...]


def sizes(gpu: bool, data: Path | None) -> Sizes:
    if gpu:
        hirise = ("dataset=hirise",) if data and (data / "hirise").is_dir() else ("dataset=sample_hirise",)
        return Sizes(device="cuda",
                     demo=("experiment=demo",),
                     train=("experiment=hirise_lite0", *hirise, "model.img_size=224", "trainer.precision=bf16",
                            "trainer.max_iters=300", "trainer.epochs=null", "trainer.eval_every=100",
                            "trainer.checkpoint_every=100", "trainer.num_workers=8", "trainer.log_every=50"),
                     predict_images=PREDICT_IMAGES,
                     predict=("batch_size=256", "num_workers=8", "threads=4"))
    tiny = ("model=tiny", "trainer.threads=1", "trainer.eval_every=3", "trainer.checkpoint_every=3")
    return Sizes(device="cpu",
                 demo=("experiment=demo", *tiny, "trainer.max_iters=3", "trainer.epochs=null"),
                 train=("experiment=hirise_lite0", "dataset=sample_hirise", *tiny, "trainer.precision=bf16",
                        "trainer.head_init=random", "trainer.max_iters=6", "trainer.epochs=null",
                        "trainer.log_every=3"),
                 predict_images=20,
                 predict=("batch_size=8", "num_workers=1", "threads=1"))


def run(cmd: list[str], cwd: Path, timeout: float) -> tuple[int, str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
        return 124, out + f"\n(timed out after {timeout:g} s)", time.perf_counter() - start


def last(pattern: str, text: str) -> str | None:
    found = re.findall(pattern, text)
    return found[-1] if found else None


def train_step(name: str, overrides: tuple[str, ...], s: Sizes, tmp: Path, timeout: float,
               launcher: tuple[str, ...] = ()) -> Step:
    folder = tmp / name.replace(" ", "_")
    cmd = [*(launcher or (sys.executable,)), str(REPO / "train.py"), *overrides, f"trainer.device={s.device}",
           "trainer.progress=log", f"tracking.uri=sqlite:///{tmp}/mlruns/mlflow.db", "tracking.log_model=false",
           f"hydra.run.dir={folder}"]
    rc, out, secs = run(cmd, tmp, timeout)
    test_acc, rate = last(r"test_acc (\d\.\d+)", out), last(r"(\d+\.\d) img/s", out)
    figure = ", ".join(f for f in (f"{float(rate):.0f} img/s (last log line)" if rate else "",
                                   f"test acc {float(test_acc):.3f}" if test_acc else "") if f)
    return Step(name, rc == 0, secs, figure or f"exit code {rc}", out[-3000:])


def predict_step(s: Sizes, tmp: Path, model: Path, data: Path | None, timeout: float) -> Step:
    folder = data / "msl" / "calibrated" if data and (data / "msl" / "calibrated").is_dir() else (
        REPO / "deepmars" / "sample_data" / "msl" / "calibrated")
    images = sorted(folder.glob("*.JPG"))[:s.predict_images]
    listing = tmp / "predict_images.txt"
    listing.write_text("".join(f"{p}\n" for p in images))
    cmd = [sys.executable, str(REPO / "predict.py"), f"input={listing}", f"model={model}",
           f"catalog={tmp}/catalog.sqlite", f"device={s.device}", *s.predict]
    rc, out, secs = run(cmd, tmp, timeout)
    rate = last(r"\(([\d.]+) s, ([\d.]+) img/s\)", out)
    where = "real MSL" if data and folder.parent.parent == data else "sample MSL"
    figure = f"{float(rate[1]):.0f} img/s on {len(images)} {where} images" if rate else f"exit code {rc}"
    return Step("predict.py", rc == 0, secs, figure, out[-3000:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="the CPU version with tiny sizes, even on a GPU machine")
    ap.add_argument("--step-timeout", type=float, default=300.0)
    args = ap.parse_args()
    gpu = torch.cuda.is_available() and not args.smoke
    data = Path(os.environ["DEEPMARS_DATA"]) if os.environ.get("DEEPMARS_DATA") else None
    if gpu:
        print(f"GPU: {torch.cuda.get_device_name(0)} ({cuda_report()})", flush=True)
    else:
        why = "--smoke" if args.smoke and torch.cuda.is_available() else f"no CUDA GPU here ({cuda_report()})"
        print(f"{why}: running the CPU smoke version of every step (tiny network, embedded samples, few "
              "iterations); the figures below are not GPU figures", flush=True)
    s = sizes(gpu, data)
    steps: list[Step] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        steps.append(train_step("demo", s.demo, s, tmp, args.step_timeout))
        steps.append(train_step("train bf16", s.train, s, tmp, args.step_timeout))
        model = tmp / "train_bf16" / "checkpoints" / "model.pt"
        steps.append(predict_step(s, tmp, model, data, args.step_timeout) if model.is_file()
                     else Step("predict.py", False, 0.0, "skipped: the training step left no model"))
        torchrun = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1")
        steps.append(train_step("torchrun 1 process", s.demo, s, tmp, args.step_timeout, launcher=torchrun))
    print(f"\n{'step':<20}{'result':<8}{'wall s':>8}  figure")
    for st in steps:
        print(f"{st.name:<20}{'ok' if st.ok else 'FAILED':<8}{st.seconds:8.1f}  {st.figure}")
    print(f"total {sum(st.seconds for st in steps):.0f} s on "
          f"{'GPU ' + torch.cuda.get_device_name(0) if gpu else 'CPU'}")
    for st in steps:
        if not st.ok:
            print(f"\n--- {st.name}: last output ---\n{st.tail}", file=sys.stderr)
    return 0 if all(st.ok for st in steps) else 1


if __name__ == "__main__":
    sys.exit(main())

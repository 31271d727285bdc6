"""Peak memory (RSS) of one training step of EfficientNet-Lite0, by batch size and input size.

    python benchmarks/train_memory.py                      # batch 8/16/32/64 x 160/224 px, 2 steps each
    python benchmarks/train_memory.py --batches 32 --sizes 224 --steps 5

Each setting runs in a fresh subprocess, so one setting's peak cannot hide in another's: the
offline ImageNet weights (model=efficientnet_lite0, model.pretrained=efficientnet_lite0_package)
with a 6-class head, channels_last as training uses it, SGD with momentum, and a few steps of
forward + backward + optimizer step on a random batch (the first step allocates what every later
one reuses). Printed side by side: the process's peak RSS, the RSS before the first step
(libraries, model, batch), and what the step adds. Training's data (the decoded-image cache,
trainer.cache=memory) comes on top: HiRISE ~0.2 GB, MSL ~1.3 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024 ** 3


def rss_now() -> int:
    """Resident set size of this process now, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def one_setting(batch: int, img_size: int, steps: int, threads: int) -> dict:
    """Runs in the child: build the model, take ``steps`` training steps, report the memory."""
    sys.path.insert(0, str(ROOT))
    import torch
    from omegaconf import OmegaConf

    from deepmars.config import ModelConfig
    from deepmars.models.factory import build_model
    from deepmars.schema import load

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    yaml = OmegaConf.load(ROOT / "conf" / "model" / "efficientnet_lite0.yaml")
    model, _ = build_model(load(ModelConfig, {**OmegaConf.to_container(yaml), "img_size": img_size}, prefix="model"), 6)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, img_size, img_size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 6, (batch,))
    before = rss_now()
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"batch": batch, "img_size": img_size, "before": before, "peak": peak_rss()}


def run_child(batch: int, img_size: int, steps: int, threads: int) -> dict:
    """One setting in a fresh process; its peak is also sampled from outside, so a child killed for
    want of memory (the kernel's OOM killer) is still reported, as "more than" its last peak."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(batch), str(img_size), str(steps), str(threads)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = 0
    while proc.poll() is None:
        seen = max(seen, _hwm(proc.pid))
        time.sleep(0.2)
    out, err = proc.communicate()
    if proc.returncode != 0:
        last = err.strip().splitlines()[-1] if err.strip() else "killed"
        print(f"batch {batch}, {img_size} px: exit {proc.returncode} ({last})", file=sys.stderr)
        return {"batch": batch, "img_size": img_size, "before": None, "peak": seen, "killed": True}
    return json.loads(out.strip().splitlines()[-1])


def _hwm(pid: int) -> int:
    """Peak RSS so far of process ``pid`` (VmHWM), in bytes; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cell(r: dict) -> str:
    if r.get("killed"):
        return f"| > {r['peak'] / GIB:.2f} (killed: out of memory) "
    return f"| {r['peak'] / GIB:.2f} ({r['before'] / GIB:.2f} + {(r['peak'] - r['before']) / GIB:.2f}) "


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--sizes", type=int, nargs="+", default=[160, 224])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", type=int, nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_setting(*args.child)))
        return
    rows = {}
    for s in args.sizes:
        for b in args.batches:
            rows[(b, s)] = run_child(b, s, args.steps, args.threads)
            print(f"batch {b}, {s} px: {cell(rows[(b, s)]).strip('| ')}", file=sys.stderr, flush=True)
    print(f"EfficientNet-Lite0 training step (forward+backward+SGD, channels_last), {args.steps} steps, "
          f"{args.threads} threads: peak RSS of a fresh process in GiB (before the first step + added by the step)")
    print("| batch " + "".join(f"| {s} px " for s in args.sizes) + "|")
    print("|---" * (1 + len(args.sizes)) + "|")
    for b in args.batches:
        print(f"| {b} " + "".join(cell(rows[(b, s)]) for s in args.sizes) + "|")


if __name__ == "__main__":
    main()

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GB = 1024 ** 3


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
    out = subprocess.run([sys.executable, __file__, "--child", str(batch), str(img_size), str(steps), str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    rows = {(b, s): run_child(b, s, args.steps, args.threads) for s in args.sizes for b in args.batches}
    print(f"EfficientNet-Lite0 training step (forward+backward+SGD, channels_last), {args.steps} steps, "
          f"{args.threads} threads: peak RSS of a fresh process in GB (before the first step + added by the step)")
    print("| batch " + "".join(f"| {s} px " for s in args.sizes) + "|")
    print("|---" * (1 + len(args.sizes)) + "|")
    for b in args.batches:
        cells = [f"| {r['peak'] / GB:.2f} ({r['before'] / GB:.2f} + {(r['peak'] - r['before']) / GB:.2f}) "
                 for r in (rows[(b, s)] for s in args.sizes)]
        print(f"| {b} " + "".join(cells) + "|")


if __name__ == "__main__":
    main()

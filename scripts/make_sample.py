"""Build the small embedded sample (deepmars/sample_data) from the full published data sets.

Run once by maintainers: ``python scripts/make_sample.py /path/to/shared/data``. Files are copied
byte for byte in the published layout, so the sample reads through the same code as the full sets.
Selection is deterministic: per class, images are taken round-robin over HiRISE source images
(or MSL sols) so the sample spans as many source images as the class has.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path

HIRISE_PER_CLASS = 24
MSL_PER_CLASS = {"train": 3, "val": 2, "test": 2}
OUT = Path(__file__).resolve().parents[1] / "deepmars" / "sample_data"


def round_robin(items: list[tuple[str, str]], k: int) -> list[str]:
    """Up to k names, one per group in turn (groups and names in sorted order)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for group, name in sorted(items):
        groups[group].append(name)
    picked: list[str] = []
    while len(picked) < k and any(groups.values()):
        for g in sorted(groups):
            if groups[g] and len(picked) < k:
                picked.append(groups[g].pop(0))
    return picked


def read_labels(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]


def make_hirise(src: Path, dst: Path) -> None:
    by_class: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, cid in read_labels(src / "labels-map-proj.txt"):
        by_class[cid].append((name.rsplit("-", 1)[0], name))
    (dst / "map-proj").mkdir(parents=True, exist_ok=True)
    lines = []
    for cid in sorted(by_class, key=int):
        for name in round_robin(by_class[cid], HIRISE_PER_CLASS):
            shutil.copyfile(src / "map-proj" / name, dst / "map-proj" / name)
            lines.append(f"{name} {cid}\n")
    (dst / "labels-map-proj.txt").write_text("".join(lines))


def make_msl(src: Path, dst: Path) -> None:
    (dst / "calibrated").mkdir(parents=True, exist_ok=True)
    for split, k in MSL_PER_CLASS.items():
        fname = f"{split}-calibrated-shuffled.txt"
        by_class: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for name, cid in read_labels(src / fname):
            by_class[cid].append((Path(name).name[:4], name))
        lines = []
        for cid in sorted(by_class, key=int):
            for name in round_robin(by_class[cid], k):
                shutil.copyfile(src / name, dst / name)
                lines.append(f"{name} {cid}\n")
        (dst / fname).write_text("".join(lines))
    for extra in ("msl_synset_words-indexed.txt", "README.txt"):
        shutil.copyfile(src / extra, dst / extra)


if __name__ == "__main__":
    if len(sys.argv) < 2 and not os.environ.get("DEEPMARS_DATA"):
        sys.exit("usage: python scripts/make_sample.py DATA_DIR (the folder holding hirise/ and msl/; "
                 "default $DEEPMARS_DATA)")
    data = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ["DEEPMARS_DATA"])
    shutil.rmtree(OUT / "hirise", ignore_errors=True)
    shutil.rmtree(OUT / "msl", ignore_errors=True)
    make_hirise(data / "hirise", OUT / "hirise")
    make_msl(data / "msl", OUT / "msl")
    print(f"sample written to {OUT}")

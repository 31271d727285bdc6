"""Training checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint holds everything an exact resume needs: model, optimizer, scheduler, the RNG
states (python, numpy, torch), the position in the data order, the best metric so far and the
resolved config (to refuse a resume under a different config, naming the keys that differ).
"""

from __future__ import annotations

import errno
import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepmars.errors import DeepMarsError

log = logging.getLogger(__name__)

LATEST = "last.pt"
BEST = "best.pt"


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": repr(random.getstate()),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    import ast

    py = ast.literal_eval(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])


def save_atomic(obj: dict, path: Path) -> bool:
    """Write ``obj`` to ``path`` via a temp file + rename; on failure keep the old file.

    Returns False (and logs why) when the write fails, e.g. the disk is full: losing one
    checkpoint must not kill a long run, and the previous checkpoint stays intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(obj, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        why = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        log.error("could not write checkpoint %s (%s); the previous checkpoint is intact", path, why)
        return False


def load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise DeepMarsError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise DeepMarsError(f"{path}: not a readable deepmars checkpoint ({exc})") from None

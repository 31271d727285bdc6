"""Hydra's command line for each process of a torchrun job: one output folder, not one per process.

Every process of ``torchrun ... train.py <overrides>`` runs Hydra, which would create its own
timestamped output folder and log file. Processes other than 0 get a temporary run folder (removed
at exit), no ``.hydra`` subfolder and no log files; their warnings still reach stderr. Kept free of
torch, so train.py checks the config before torch is imported.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Hydra overrides a non-zero rank drops from its command line: it gets its own (temporary) folder.
_RANK_OWN_KEYS = ("hydra.run.dir=", "hydra.sweep.dir=", "hydra.output_subdir=", "hydra/job_logging=",
                  "hydra/hydra_logging=")


def hydra_argv(argv: list[str]) -> list[str]:
    """Hydra's command line for this process: ranks other than 0 get a temporary run folder,
    no ``.hydra`` subfolder and no log files, so a torchrun job leaves one output folder, not N."""
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        return list(argv)
    folder = tempfile.mkdtemp(prefix=f"deepmars-rank{rank}-")
    atexit.register(shutil.rmtree, folder, True)
    kept = [a for a in argv if not a.startswith(_RANK_OWN_KEYS)]
    return [*kept, f"hydra.run.dir={folder}", f"hydra.sweep.dir={folder}", "hydra.output_subdir=null",
            "hydra/job_logging=none", "hydra/hydra_logging=none"]

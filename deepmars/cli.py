"""What the entry points share: a DeepMarsError is printed as one clear message, not a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from deepmars.errors import ConfigError, DeepMarsError

T = TypeVar("T")
log = logging.getLogger("deepmars")

# The same codes as predict.py: 2 a config/usage error, 4 could not run (data, weights, model).
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 4


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except ImportError:
        return False


def run_cli(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call ``fn``; a DeepMarsError exits with its message (no traceback): 2 for a config error, else 4.

    In a Hydra multirun the error is re-raised instead, so Hydra records that job as failed and
    the sweep's other jobs still run.
    """
    try:
        return fn(*args, **kwargs)
    except DeepMarsError as exc:
        log.error("%s", exc)
        if _in_multirun():
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_CANNOT_RUN)

"""What the entry points share: a DeepMarsError is printed as one clear message, not a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from deepmars.errors import DeepMarsError

T = TypeVar("T")
log = logging.getLogger("deepmars")

EXIT_USAGE = 2


def run_cli(fn: Callable[..., T], *args, **kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    except DeepMarsError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)

"""What the entry points share: exit codes, and errors printed as one clear message, not a traceback.

Exit codes of every entry point:
  0  done, no image failed
  1  internal error (a bug: the traceback is printed)
  2  usage error: unknown key, bad override syntax, or a value not allowed (the key is named)
  3  finished, but some images failed (listed at the end and kept in the catalog's errors table),
     or a folder of the input could not be read (listed at the end)
  4  could not run: the data, model, an input, or the catalog cannot be used (the reason is printed)
  130 interrupted (Ctrl-C): work finished so far is kept, the same command continues it
  143 terminated (SIGTERM: kill, timeout, a scheduler or service manager stopping the job): the same
      as Ctrl-C, with the code a shell reports for a process ended by SIGTERM (128 + 15), so a
      wrapper can tell who stopped the run
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import textwrap
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from deepmars.errors import ConfigError, DeepMarsError

T = TypeVar("T")
log = logging.getLogger("deepmars")

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_CANNOT_RUN, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt.

    A KeyboardInterrupt, so every clean-up written for Ctrl-C runs for it too (transactions rolled
    back, worker pools shut down), and no ``except Exception`` mistakes it for a bad image.
    """


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM raises Terminated in the main thread; the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

_task_started = False


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
    global _task_started
    _task_started = True
    try:
        return fn(*args, **kwargs)
    except DeepMarsError as exc:
        log.error("%s", exc)
        if _in_multirun():
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_CANNOT_RUN)


def positional_command(argv: list[str], commands: tuple[str, ...]) -> list[str]:
    """``tool.py query a=b`` -> ``tool.py command=query a=b`` (the first word only)."""
    if len(argv) > 1 and argv[1] in commands:
        return [argv[0], f"command={argv[1]}", *argv[2:]]
    return list(argv)


def help_argv(argv: list[str], examples: Mapping[str, str]) -> list[str]:
    """``argv`` with an example choice for each required config group it leaves out, when help is asked.

    Hydra's ``--help`` composes the config, which fails on a group whose default is ``???``
    (``dataset``, ``split``); with an example filled in, the help shows every group's options and a
    complete config, and its header names the example. Other command lines are returned unchanged,
    so a missing group is still a usage error when the tool runs.
    """
    if "--help" not in argv and "-h" not in argv:
        return list(argv)
    given = {arg.split("=", 1)[0].lstrip("+~") for arg in argv[1:] if "=" in arg}
    return [*argv, *(f"{group}={choice}" for group, choice in examples.items() if group not in given)]


@contextlib.contextmanager
def usage_exit_codes() -> Iterator[None]:
    """Hydra exits 1 on a bad override before our task runs; report that as a usage error (2)."""
    global _task_started
    _task_started = False
    try:
        yield
    except SystemExit as exc:
        if not _task_started and exc.code not in (0, None):
            raise SystemExit(EXIT_USAGE) from None
        raise


def guarded(fn: Callable[[Mapping[str, Any]], Any], cfg: Mapping[str, Any], interrupted: str) -> Any:
    """``fn(cfg)`` for a command-style entry point; every error becomes a message and an exit code.

    ``interrupted`` tells the user what a Ctrl-C or SIGTERM kept and how to continue.
    """
    global _task_started
    _task_started = True
    try:
        with sigterm_interrupts():
            return fn(cfg)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DeepMarsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except Terminated:
        print(f"terminated: {interrupted}", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - a bug: show the traceback, exit with a distinct code
        traceback.print_exc()
        return EXIT_INTERNAL


def required_keys(argv: list[str], required: tuple[str, ...], usage: str) -> None:
    """Exit 2 naming every ``required`` key the command line leaves out, with the usage.

    Hydra names only the first missing config group (``dataset: ???``) and none of the plain keys,
    so a user would find them one run at a time. Help and command lines with Hydra flags
    (``--multirun``, ``--config-name``, ...) are left to Hydra.
    """
    args = argv[1:]
    if any(a.startswith("-") for a in args):
        return
    given = {a.split("=", 1)[0].lstrip("+~") for a in args if "=" in a}
    missing = [key + "=" for key in required if key not in given]
    if missing:
        keys = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        print(f"error: {keys} {'is' if len(missing) == 1 else 'are'} required; usage:\n"
              f"{textwrap.dedent(usage).strip()}\n(python {Path(argv[0]).name} --help lists every key)",
              file=sys.stderr)
        sys.exit(EXIT_USAGE)

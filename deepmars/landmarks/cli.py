"""The ``landmarks.py`` commands and their exit codes.

``python landmarks.py [detect|classify|query] key=value ...``: the first word, when it is a command,
is shorthand for ``command=<word>`` (default: detect); everything else is an ordinary Hydra override
of ``conf/landmarks/landmarks.yaml``.

Exit codes are predict.py's (``deepmars/cli.py``): 0 done, 1 a bug (traceback printed), 2 usage
error (the key is named), 3 finished but some images failed (detect: listed in its images.csv;
classify: listed, and kept in the catalog's errors table) or a folder could not be read (listed),
4 could not run (model, input or catalog unusable), 130 interrupted (Ctrl-C) and 143 terminated
(SIGTERM) (classify: images finished so far are in the catalog; the same command continues).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deepmars import cli
from deepmars.cli import EXIT_OK, EXIT_SOME_FAILED, run_cli
from deepmars.landmarks import options

_INTERRUPTED = "images finished so far are in the catalog; run the same command again to continue"


def main(cfg: Mapping[str, Any]) -> int:
    """Run the configured command (a plain, resolved config dict); returns the exit code."""
    command = _guarded(options.command_of, cfg)
    if isinstance(command, int):
        return command
    if command == "detect":
        summary = run_cli(_detect, cfg)  # exits 2 or 4 itself on an error, as landmarks.py always has
        return EXIT_SOME_FAILED if summary.failed or summary.unreadable_folders else EXIT_OK
    return _guarded(_classify if command == "classify" else _query, cfg)


def _guarded(fn: Callable[[Mapping[str, Any]], Any], cfg: Mapping[str, Any]) -> Any:
    return cli.guarded(fn, cfg, _INTERRUPTED)


def _detect(cfg: Mapping[str, Any]) -> Any:  # a BatchSummary
    from deepmars.landmarks.batch import run_from_config

    return run_from_config(cfg)


def _classify(cfg: Mapping[str, Any]) -> int:
    from deepmars.inference.listing import UnreadableFolders
    from deepmars.landmarks.batch import find_images
    from deepmars.landmarks.classify import run_classify
    from deepmars.landmarks.config import settings_from_config
    from deepmars.models.loading import load_bundle

    settings = settings_from_config(cfg)
    opts = options.classify_options(cfg)
    unreadable = UnreadableFolders()
    paths = find_images(opts.input, unreadable)  # a missing input fails before the model is loaded
    bundle = load_bundle(opts.model, opts.tracking_uri)
    return run_classify(paths, settings, opts, bundle, unreadable=unreadable).exit_code


def _query(cfg: Mapping[str, Any]) -> int:
    from deepmars.landmarks.query import run_query

    run_query(options.query_options(cfg))
    return EXIT_OK


def positional_command(argv: list[str]) -> list[str]:
    """``landmarks.py classify a=b`` -> ``landmarks.py command=classify a=b`` (the first word only)."""
    return cli.positional_command(argv, options.COMMANDS)


usage_exit_codes = cli.usage_exit_codes

"""The ``predict.py`` commands and their exit codes.

``python predict.py [predict|query|export|merge] key=value ...``: the first word, when it is a
command, is shorthand for ``command=<word>``; everything else is an ordinary Hydra override of
``conf/predict/predict.yaml``.

Exit codes (also in the README):
  0  done, no image failed
  1  internal error (a bug: the traceback is printed)
  2  usage error: unknown key, bad override syntax, or a value not allowed (the key is named)
  3  finished, but some images failed (listed at the end and kept in the catalog's errors table)
  4  could not run: the model, an input, or the catalog cannot be used (the reason is printed)
  130 interrupted (Ctrl-C): completed batches are kept, a re-run continues where this one stopped
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator, Mapping

from deepmars.errors import ConfigError, DeepMarsError
from deepmars.prediction import options

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_CANNOT_RUN, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

_task_started = False


def main(cfg: Mapping) -> int:
    """Run the configured command; every error becomes a message and an exit code."""
    global _task_started
    _task_started = True
    try:
        return _dispatch(cfg)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DeepMarsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        print("interrupted: completed batches are in the catalog; run the same command again to "
              "continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - a bug: show the traceback, exit with a distinct code
        traceback.print_exc()
        return EXIT_INTERNAL


def _dispatch(cfg: Mapping) -> int:
    command = options.command_of(cfg)
    if command == "predict":
        return _predict(cfg)
    if command == "query":
        from deepmars.prediction.queries import run_query

        run_query(options.query_options(cfg))
    elif command == "export":
        from deepmars.prediction.queries import run_export

        run_export(options.export_options(cfg))
    else:
        from deepmars.prediction.merge import run_merge

        run_merge(options.merge_options(cfg))
    return EXIT_OK


def _predict(cfg: Mapping) -> int:
    from deepmars.models.loading import load_bundle
    from deepmars.prediction.inputs import input_kind
    from deepmars.prediction.runner import run_predict

    opts = options.predict_options(cfg)
    input_kind(opts.input)  # a missing input fails before the model is loaded
    bundle = load_bundle(opts.model, opts.tracking_uri)
    return run_predict(opts, bundle).exit_code


def positional_command(argv: list[str]) -> list[str]:
    """``predict.py query a=b`` -> ``predict.py command=query a=b`` (the first word only)."""
    if len(argv) > 1 and argv[1] in options.COMMANDS:
        return [argv[0], f"command={argv[1]}", *argv[2:]]
    return list(argv)


@contextlib.contextmanager
def usage_exit_codes() -> Iterator[None]:
    """Hydra exits 1 on a bad override before our task runs; report that as a usage error (2)."""
    try:
        yield
    except SystemExit as exc:
        if not _task_started and exc.code not in (0, None):
            raise SystemExit(EXIT_USAGE) from None
        raise

"""The ``predict.py`` commands and their exit codes.

``python predict.py [predict|query|export|merge] key=value ...``: the first word, when it is a
command, is shorthand for ``command=<word>``; everything else is an ordinary Hydra override of
``conf/predict/predict.yaml``.

Exit codes (deepmars/cli.py, also in the README): 0 done, 1 a bug, 2 usage error, 3 some images
failed or a folder could not be read, 4 could not run, 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM); after 130 or 143 completed batches are kept and a re-run continues.
"""

from __future__ import annotations

from collections.abc import Mapping

from deepmars import cli
from deepmars.cli import EXIT_CANNOT_RUN, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE  # noqa: F401
from deepmars.prediction import options


def main(cfg: Mapping) -> int:
    """Run the configured command; every error becomes a message and an exit code."""
    return cli.guarded(_dispatch, cfg, "completed batches are in the catalog; run the same command again to continue")


def positional_command(argv: list[str]) -> list[str]:
    """``predict.py query a=b`` -> ``predict.py command=query a=b`` (the first word only)."""
    return cli.positional_command(argv, options.COMMANDS)


usage_exit_codes = cli.usage_exit_codes


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
        _merge(options.merge_options(cfg))
    return EXIT_OK


def _merge(opts: options.MergeOptions) -> None:
    from deepmars.catalog.merge import merge_catalogs

    counts = merge_catalogs(opts.inputs, opts.catalog)
    tables = ", ".join(f"{n} {table}" for table, n in counts.rows.items())
    print(f"merged {counts.catalogs} catalogs into {opts.catalog}: {tables}")


def _predict(cfg: Mapping) -> int:
    from deepmars.models.loading import load_bundle
    from deepmars.prediction.inputs import input_kind
    from deepmars.prediction.runner import run_predict

    opts = options.predict_options(cfg)
    input_kind(opts.input)  # a missing input fails before the model is loaded
    if opts.engine == "ray":
        from deepmars.prediction.ray_engine import import_ray, ray_settings, run_predict_ray

        settings = ray_settings(cfg)
        import_ray()  # Ray missing: a usage error with the pip command, before the model is loaded
        return run_predict_ray(opts, settings, load_bundle(opts.model, opts.tracking_uri)).exit_code
    bundle = load_bundle(opts.model, opts.tracking_uri)
    return run_predict(opts, bundle).exit_code


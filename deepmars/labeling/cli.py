"""The ``label.py`` commands and their exit codes (deepmars/cli.py: 0 ok, 2 usage, 4 could not run).

``python label.py [command] key=value ...``: the first word, when it is a command, is shorthand
for ``command=<word>``; everything else is a Hydra override of ``conf/label/label.yaml``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from deepmars import cli
from deepmars.catalog.labels import LabelStore, Progress
from deepmars.cli import EXIT_OK
from deepmars.errors import ConfigError
from deepmars.labeling import options
from deepmars.labeling.options import LabelOptions


def main(cfg: Mapping) -> int:
    return cli.guarded(_dispatch, cfg, "every label given so far is in the queue")


def positional_command(argv: list[str]) -> list[str]:
    return cli.positional_command(argv, options.COMMANDS)


usage_exit_codes = cli.usage_exit_codes


def _dispatch(cfg: Mapping) -> int:
    opts = options.label_options(cfg)
    if opts.command == "adduser":
        from deepmars.labeling.users import add_user

        token = add_user(opts.users, opts.name)
        print(f"added {opts.name} to {opts.users}; their token (shown once, keep it secret):\n{token}")
        return EXIT_OK
    if opts.command == "serve":
        return _serve(opts)
    with open_queue(opts) as store:
        COMMANDS[opts.command](store, opts, sys.stdout)
    return EXIT_OK


def _serve(opts: LabelOptions) -> int:
    """Add ``images=`` if given, then serve the labeling page until Ctrl-C."""
    from deepmars.labeling.users import read_users
    from deepmars.web.label.app import create_label_app, web_settings
    from deepmars.web.server import check_port, serve

    users = read_users(opts.users)  # before anything else: no page without users
    check_port(opts.host, opts.port)
    with open_queue(opts) as store:
        print_progress(store.progress(), sys.stdout)
    settings = web_settings(opts)
    print(f"{len(users.digests)} users in {opts.users}; order {opts.order}", flush=True)
    serve(create_label_app(opts, users), settings, f"labeling {opts.queue}")
    return EXIT_OK


def open_queue(opts: LabelOptions) -> LabelStore:
    """Open (or create) the queue with the class list of ``classes=``, adding ``images=`` if given."""
    from deepmars.labeling.classes import load_class_list

    classes = load_class_list(opts.classes, opts.class_format) if opts.classes else None
    if classes is None and not opts.queue.is_file():
        raise ConfigError("classes is required to make a new queue: a data set YAML (e.g. hirise) or a class file")
    store = LabelStore.open(opts.queue, classes, opts.labels_per_item, lease_s=opts.lease_s)
    try:
        if opts.images:
            add_images(store, opts)
    except BaseException:
        store.close()
        raise
    return store


def add_images(store: LabelStore, opts: LabelOptions, out: TextIO | None = None) -> None:
    from deepmars.labeling.sources import known_paths, list_images, new_items, read_posteriors, source_kind

    images = list_images(opts.images, opts.model, opts.tracking_uri)
    ranking = opts.posteriors or (opts.images if source_kind(opts.images) == "catalog" else None)
    posteriors = read_posteriors(ranking, store.classes, opts.model, opts.tracking_uri) if ranking else None
    known = known_paths(store.conn)
    check = {im.path for im in images if im.path not in known} if opts.check_images else None
    items = new_items(images, opts.seed, posteriors, check)
    added, updated = store.add_items(items)
    bad = sum(1 for it in items if it.unlabelable and it.path not in known)
    out = out or sys.stdout
    print(f"{opts.queue}: {added} images added, {updated} already queued"
          + (f", {bad} unlabelable (cannot be decoded; reasons in `label.py status`)" if bad else "")
          + ("" if ranking is None else f"; ranked by {ranking}"), file=out)


def print_progress(progress: Progress, out: TextIO) -> None:
    print(f"{progress.total} images: {progress.labeled} labeled, {progress.skipped} skipped (Later), "
          f"{progress.left} left, {progress.unlabelable} unlabelable, {progress.disagreements} disagreements",
          file=out)
    for user, n in sorted(progress.by_user.items()):
        print(f"  {user:<24} {n:>7} labels", file=out)


def _add(store: LabelStore, opts: LabelOptions, out: TextIO) -> None:
    print_progress(store.progress(), out)


def _status(store: LabelStore, opts: LabelOptions, out: TextIO) -> None:
    print(f"queue {opts.queue}: classes {store.classes.describe()} from {store.classes.source}, "
          f"{store.labels_per_item} label(s) per image", file=out)
    print_progress(store.progress(), out)
    for item in store.items():
        if item.unlabelable:
            print(f"  unlabelable: {item.path}: {item.unlabelable}", file=out)


def _disagreements(store: LabelStore, opts: LabelOptions, out: TextIO) -> None:
    rows = store.disagreements()
    print(f"{len(rows)} images whose labels differ (decide with `label.py review item=<id> class=<name> "
          "name=<reviewer>`):", file=out)
    for d in rows:
        print(f"  item {d.item_id}  {d.path}  " + ", ".join(f"{u}: {c}" for u, c in d.labels.items()), file=out)


def _review(store: LabelStore, opts: LabelOptions, out: TextIO) -> None:
    from deepmars.labeling.users import read_users

    if opts.name not in read_users(opts.users).digests:
        raise ConfigError(f"name: {opts.name!r} is not a user of {opts.users}")
    store.review(opts.item, opts.name, store.classes.id_of(opts.class_name), source="cli")
    print(f"item {opts.item}: {opts.class_name} (review by {opts.name})", file=out)


def _export(store: LabelStore, opts: LabelOptions, out: TextIO) -> None:
    from deepmars.labeling import export

    if opts.format == "labelstudio":
        from deepmars.labeling.labelstudio import export_tasks

        n = export_tasks(store, opts.output, opts.image_url)
        print(f"wrote {n} Label Studio tasks to {opts.output} and its labeling config to "
              f"{opts.output.with_name(opts.output.stem + '.label_config.xml')}", file=out)
        return
    if opts.format == "dataset":
        result = export.export_dataset(store, opts.output, _dataset_of(store))
    elif opts.format == "labels":
        result = export.export_labels(store, opts.output, opts.image_dir)
    else:
        result = (export.export_history if opts.format == "history" else export.export_csv)(store, opts.output)
    print(f"exported {result.written} {'events' if opts.format == 'history' else 'labels'} to {result.path}"
          + (f" ({result.disagreements} disagreements left out: `label.py disagreements`)"
             if result.disagreements else ""), file=out)
    if result.note:
        print(result.note, file=out)


def _dataset_of(store: LabelStore) -> dict:
    from deepmars.labeling.classes import YAML_SUFFIXES, load_dataset_yaml

    source = Path(store.classes.source)
    if source.suffix.lower() not in YAML_SUFFIXES or not source.is_file():
        raise ConfigError(f"format=dataset: this queue's classes came from {source}, not a data set YAML; "
                          "use format=labels (or make the queue with classes=<data set YAML>)")
    return load_dataset_yaml(source)


def _import(store: LabelStore, opts: LabelOptions, out: TextIO) -> None:
    from deepmars.labeling.labelstudio import import_annotations

    result = import_annotations(store, opts.input)
    print(f"imported {result.labels} labels and {result.later} skips from {opts.input}"
          + (f" ({result.already} imported before)" if result.already else ""), file=out)
    print_progress(store.progress(), out)


COMMANDS = {"add": _add, "status": _status, "disagreements": _disagreements, "review": _review,
            "export": _export, "import": _import}

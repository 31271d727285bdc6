"""Where a data set lives: the configured root, the $DEEPMARS_DATA folder, or the user cache.

Every reader, split and entry point asks ``resolve_root`` for the folder that holds a data set in
its published (Zenodo) layout, so the lookup order and its error messages are the same
everywhere:

1. ``dataset.root`` when set: it must exist and hold the label and class files;
2. ``$DEEPMARS_DATA/<name>`` when the variable is set and that folder exists;
3. the user cache ``$DEEPMARS_CACHE/<name>`` (default: the platform cache, ``~/.cache/deepmars``
   on Linux), downloading and extracting the Zenodo archive there on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pooch
from omegaconf import ListConfig

from deepmars.data.download import fetch_dataset
from deepmars.errors import ConfigError, DataError

DATA_ENV = "DEEPMARS_DATA"
CACHE_ENV = "DEEPMARS_CACHE"


def required_paths(dataset_cfg: Mapping) -> list[str]:
    """Paths, relative to the root, that mark a complete data set: label files, class file, image dir.

    These are what tell the root apart from any other folder (an archive's top-level folder, a
    half-copied tree), so they are checked before a reader ever opens a label line.
    """
    labels = dataset_cfg.get("labels") or {}
    if not isinstance(labels, Mapping) or not labels:
        raise ConfigError("dataset.labels must map split names to label files, e.g. {all: labels.txt}")
    paths = []
    for split in labels:
        entries = labels[split]
        for entry in entries if isinstance(entries, (list, tuple, ListConfig)) else [entries]:
            paths.append(str(entry["file"]) if isinstance(entry, Mapping) else str(entry))
    class_file = (dataset_cfg.get("classes") or {}).get("file")
    if class_file:
        paths.append(str(class_file))
    image_dir = dataset_cfg.get("image_dir")
    if image_dir and Path(str(image_dir)) != Path("."):
        paths.append(str(image_dir))
    return paths


def missing_paths(folder: Path, required: list[str]) -> list[str]:
    """The entries of ``required`` that ``folder`` lacks, in config order."""
    return [rel for rel in required if not (folder / rel).exists()]


def cache_home(cache_dir: Path | None = None) -> Path:
    """The folder under which downloaded data sets are kept: argument, $DEEPMARS_CACHE, platform cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(pooch.os_cache("deepmars"))


def resolve_root(dataset_cfg: Mapping, *, download: bool = True, cache_dir: Path | None = None) -> Path:
    """The folder holding ``dataset_cfg``'s data set in its published layout (see the module doc).

    ``download=False`` never touches the network: it raises a DataError that lists the three ways
    to provide the data when neither a configured, shared nor cached copy exists.
    """
    name = _name(dataset_cfg)
    required = required_paths(dataset_cfg)
    if dataset_cfg.get("root"):
        return _checked(Path(str(dataset_cfg["root"])), required, "dataset.root")
    shared = _shared_root(name)
    if shared is not None:
        return _checked(shared, required, f"${DATA_ENV}/{name}")
    folder = cache_home(cache_dir) / name
    downloadable = bool((dataset_cfg.get("download") or {}).get("url"))
    if not download or not downloadable:
        cached = fetch_dataset(dataset_cfg, folder, required, download=False)
        if cached is not None:
            return cached
        message = _not_found_message if downloadable else _no_copy_message
        raise DataError(message(dataset_cfg, folder))
    return fetch_dataset(dataset_cfg, folder, required)


def _name(dataset_cfg: Mapping) -> str:
    name = dataset_cfg.get("name")
    if not name or not isinstance(name, str) or Path(name).name != name:
        raise ConfigError(f"dataset.name must be a plain folder name such as 'msl', got {name!r}")
    return name


def _shared_root(name: str) -> Path | None:
    """``$DEEPMARS_DATA/<name>`` if the variable is set and the folder exists, else None.

    A missing folder falls through to the cache (the $DEEPMARS_DATA folder need not hold every data set);
    an existing but incomplete one is an error, since the user pointed at it on purpose.
    """
    base = os.environ.get(DATA_ENV)
    if not base:
        return None
    folder = Path(base).expanduser() / name
    return folder if folder.is_dir() else None


def _checked(folder: Path, required: list[str], source: str) -> Path:
    """``folder`` resolved, if it exists and holds every required path; else a DataError saying what lacks."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise DataError(f"the data set folder does not exist (from {source})", path=folder)
    missing = missing_paths(folder, required)
    if missing:
        raise DataError(
            f"no {', '.join(missing)} in {folder} (from {source}); the folder must hold the data set "
            "in its published layout (the label files and class file at its top)",
            path=folder,
        )
    return folder


def _looked_in(name: str, folder: Path) -> str:
    """Where resolve_root looked, in its order, each with why it did not hold the data set."""
    base = os.environ.get(DATA_ENV)
    shared = f"${DATA_ENV}/{name} ({DATA_ENV} is not set)" if not base else \
        f"${DATA_ENV}/{name} ({Path(base).expanduser() / name} does not exist)"
    return f"dataset.root (not set), {shared}, the cache {folder} (no copy there)"


def _not_found_message(dataset_cfg: Mapping, folder: Path) -> str:
    name = dataset_cfg["name"]
    dl = dataset_cfg.get("download") or {}
    source = f"https://doi.org/{dataset_cfg['doi']}" if dataset_cfg.get("doi") else dl.get("url")
    return (
        f"data set {name!r} not found; looked in {_looked_in(name, folder)}, and downloading is off. "
        f"Provide it one of three ways: (1) dataset.root=<a folder holding {', '.join(required_paths(dataset_cfg))}>; "
        f"(2) {DATA_ENV}=<a folder holding it as {name}/>; (3) allow the download, which fetches "
        f"{dl.get('archive') or 'the archive'} from {source} into {folder} ({CACHE_ENV} moves the cache)."
    )


def _no_copy_message(dataset_cfg: Mapping, folder: Path) -> str:
    """A data set with no download URL (one's own YAML) that is nowhere to be found."""
    name = dataset_cfg["name"]
    return (
        f"data set {name!r} not found; looked in {_looked_in(name, folder)}. It has no dataset.download.url, "
        f"so it cannot be downloaded. Point at it with dataset.root=/path/to/folder (the folder holding "
        f"{', '.join(required_paths(dataset_cfg))}), or put it in ${DATA_ENV}/{name}."
    )

"""Downloading a data set's Zenodo archive into the user cache, verified, resumable and atomic.

A 60 MB transfer over a flaky link must neither restart from zero nor leave anything that looks
complete when it is not. So the archive is written to ``<archive>.part``, resumed with an HTTP
Range request when a partial exists (and from scratch when the server ignores Range), checked
against its size and checksum, and only then renamed into place. It is extracted into a temporary
folder that is renamed to ``extracted/`` with a marker recording the archive's checksum, so an
interrupted extraction is simply redone. Cache layout::

    <cache>/<name>/.lock                   held while downloading/extracting (parallel sweeps)
    <cache>/<name>/<archive>.part          partial download, resumed next time
    <cache>/<name>/<archive>               verified archive, removed once extracted
    <cache>/<name>/extracted/.deepmars-extracted.json   marker: archive, checksum, data set folder

pooch gives the platform cache folder and the file hashing; the transfer itself is a small urllib
loop because pooch's downloaders cannot resume.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

import pooch
from tqdm import tqdm

from deepmars import __version__
from deepmars.errors import ConfigError, DataError

log = logging.getLogger(__name__)

MARKER = ".deepmars-extracted.json"
EXTRACTED = "extracted"
CHUNK = 1 << 16
TIMEOUT_S = 30.0
ATTEMPTS = 3
# Pause before resuming a dropped transfer within one call; tests set it to 0.
RETRY_PAUSE_S = 2.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class NetworkError(DataError):
    """The server could not be reached (offline, DNS, refused, timed out) or refused the request."""


class _Dropped(Exception):
    """A transfer ended before the server's announced length; the .part file keeps what arrived."""


@dataclass(frozen=True)
class Checksum:
    """An ``<algorithm>:<hex digest>`` pair, as in the config's known_hash and Zenodo's records."""

    alg: str
    digest: str

    @classmethod
    def parse(cls, text: str, source: str) -> Checksum:
        """Parse ``md5:<hex>``/``sha256:<hex>``; ``source`` names where the text came from, for errors."""
        alg, sep, digest = str(text).strip().partition(":")
        alg, digest = alg.lower(), digest.lower()
        if not sep or alg not in hashlib.algorithms_guaranteed or not re.fullmatch(r"[0-9a-f]+", digest):
            raise ConfigError(f"{source}: {text!r} is not '<algorithm>:<hex digest>', e.g. 'md5:0123abcd...'")
        expected = hashlib.new(alg).digest_size * 2
        if len(digest) != expected:
            raise ConfigError(f"{source}: {text!r} has {len(digest)} hex digits, {alg} has {expected}")
        return cls(alg, digest)

    def of(self, path: Path) -> Checksum:
        """The checksum of ``path`` with this algorithm."""
        return Checksum(self.alg, pooch.file_hash(str(path), alg=self.alg))

    def __str__(self) -> str:
        return f"{self.alg}:{self.digest}"


def manual_download_help(dataset_cfg: Mapping) -> str:
    """How to provide the data set without deepmars downloading it (appended to network errors)."""
    dl = dataset_cfg.get("download") or {}
    archive = dl.get("archive") or "the archive"
    source = f"https://doi.org/{dataset_cfg['doi']}" if dataset_cfg.get("doi") else dl.get("url")
    name = dataset_cfg.get("name")
    return (
        f"To provide it by hand: download {archive} from {source}, unzip it, and set "
        "dataset.root=<the unzipped folder holding the label files> or "
        f"DEEPMARS_DATA=<a folder holding it as {name}/>."
    )


def fetch_dataset(
    dataset_cfg: Mapping, folder: Path, required: Sequence[str], *, download: bool = True
) -> Path | None:
    """The data set folder inside the cache ``folder``, downloading and extracting the archive if needed.

    Returns None only when ``download`` is False and no complete copy is cached. A copy unzipped
    by hand directly into ``folder`` is used as is.
    """
    if folder.is_dir() and all((folder / rel).exists() for rel in required):
        return folder
    found = cached_extraction(folder, required)
    if found is not None or not download:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        # Another process may have finished while this one waited for the lock.
        return cached_extraction(folder, required) or _download_and_extract(dataset_cfg, folder, required)


def _download_and_extract(dataset_cfg: Mapping, folder: Path, required: Sequence[str]) -> Path:
    """Fetch the verified archive into ``folder``, extract it, and drop the archive (the marker keeps its hash)."""
    dl = dataset_cfg.get("download") or {}
    if not dl.get("url"):
        raise ConfigError(f"dataset.download.url is not set for {dataset_cfg.get('name')!r}; it cannot be downloaded")
    archive_name = dl.get("archive") or Path(urlparse(dl["url"]).path).name
    try:
        checksum, size = expected_checksum(dl, archive_name)
        archive = download_file(dl["url"], folder / archive_name, checksum, size=size)
    except NetworkError as exc:
        part = folder / f"{archive_name}.part"
        kept = f" The partial download {part} is kept and resumed next time." if part.exists() else ""
        raise NetworkError(f"{exc.reason}.{kept} {manual_download_help(dataset_cfg)}") from None
    root = extract_archive(archive, folder, checksum=checksum, required=required)
    archive.unlink()
    return root


def cached_extraction(folder: Path, required: Sequence[str]) -> Path | None:
    """The data set folder of a finished extraction under ``folder`` that still holds every required path."""
    marker = folder / EXTRACTED / MARKER
    try:
        info = json.loads(marker.read_text())
        root = folder / EXTRACTED / info["folder"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return root if all((root / rel).exists() for rel in required) else None


def expected_checksum(dl: Mapping, archive_name: str) -> tuple[Checksum, int | None]:
    """The archive's checksum and size: ``known_hash``/``size`` from config, else Zenodo's record.

    Zenodo publishes an md5 for every file, so even without a configured hash a truncated or
    corrupted transfer is caught.
    """
    size = dl.get("size")
    if dl.get("known_hash"):
        return Checksum.parse(dl["known_hash"], "dataset.download.known_hash"), size
    if not dl.get("record_api"):
        raise ConfigError("dataset.download needs known_hash or record_api to verify the archive")
    entry = _record_entry(dl["record_api"], archive_name)
    checksum = Checksum.parse(entry.get("checksum", ""), f"{dl['record_api']}: files[{archive_name}].checksum")
    published = entry.get("size")
    if size and published and int(size) != int(published):
        raise ConfigError(
            f"dataset.download.size is {size} but {dl['record_api']} lists {published} bytes for {archive_name}"
        )
    return checksum, size or published


def _record_entry(record_api: str, archive_name: str) -> dict:
    """The ``files`` entry named ``archive_name`` in a Zenodo record's JSON."""
    try:
        with _open(record_api) as resp:
            record = json.loads(resp.read().decode("utf-8"))
        files = record["files"]
        entries = list(files["entries"].values()) if isinstance(files, dict) else list(files)
        keys = [f.get("key") for f in entries]
    except (ValueError, KeyError, TypeError, AttributeError, OSError, HTTPException) as exc:
        raise DataError(f"unexpected answer from {record_api}, not a Zenodo record with files: {exc}") from None
    for entry in entries:
        if entry.get("key") == archive_name:
            return entry
    raise ConfigError(f"dataset.download.archive: {record_api} has no file {archive_name!r}; it lists {keys}")


def download_file(
    url: str,
    dest: Path,
    checksum: Checksum,
    *,
    size: int | None = None,
    attempts: int = ATTEMPTS,
    progress: bool | None = None,
) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part`` (resumed), renamed only once size and checksum pass.

    A transfer that drops mid-file is resumed up to ``attempts`` times in this call; after that
    the .part file is kept for the next call. ``progress=None`` shows the bar only on a terminal.
    """
    if dest.exists() and checksum.of(dest) == checksum:
        return dest
    dest.unlink(missing_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s into %s", url, dest.parent)
    bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, disable=_no_bar(progress))
    with bar:  # one bar across resumed attempts
        for attempt in range(1, attempts + 1):
            try:
                _transfer(url, part, size=size, bar=bar)
                break
            except _Dropped as exc:
                if attempt == attempts:
                    raise DataError(
                        f"the download from {url} stopped {attempts} times ({exc}); the "
                        f"{_size_text(part)} received so far are kept: run again to resume",
                        path=part,
                    ) from None
                log.warning("download of %s interrupted (%s); resuming", dest.name, exc)
                time.sleep(RETRY_PAUSE_S)
    _verify(part, url, checksum, size)
    os.replace(part, dest)
    return dest


def _transfer(url: str, part: Path, *, size: int | None, bar: tqdm) -> None:
    """One GET appending to ``part`` from its current length (or rewriting it if the server ignores Range)."""
    offset = part.stat().st_size if part.exists() else 0
    resp = _open(url, offset=offset)
    if resp.status == 416:  # nothing left after offset: the partial is complete, or not a prefix at all
        resp.close()
        if _range_total(resp) == offset:
            return
        part.unlink()
        offset, resp = 0, _open(url)
    with resp:
        start, total = _span(resp, offset)
        if start is None:  # a range we did not ask for: its bytes cannot be placed, start over
            part.unlink(missing_ok=True)
            raise _Dropped(f"the server sent range {resp.headers.get('Content-Range')!r} for bytes={offset}-")
        total = total or size
        _ensure_free(part.parent, (total - start) if total else None, f"downloading {part.name[:-5]}")
        bar.reset(total=total)
        bar.update(start)
        received = _copy(resp, part, start, bar)
    if total is not None and received < total:
        raise _Dropped(f"connection closed after {received} of {total} bytes")


def _span(resp: HTTPResponse, offset: int) -> tuple[int | None, int | None]:
    """Where the body starts in the file (None: unusable) and the file's total size, from the headers.

    A 206 whose range starts where the partial ends continues it; a 200 (a server that ignores
    Range) is a fresh copy from byte 0.
    """
    if resp.status == 206:
        m = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
        if not m or int(m.group(1)) != offset:
            return None, None
        return offset, _range_total(resp)
    length = resp.headers.get("Content-Length", "")
    return 0, int(length) if length.isdigit() else None


def _range_total(resp: HTTPResponse) -> int | None:
    """The complete size from ``Content-Range: bytes a-b/N`` or ``bytes */N`` (None when unknown)."""
    m = re.search(r"/(\d+)\s*$", resp.headers.get("Content-Range", ""))
    return int(m.group(1)) if m else None


def _copy(resp: HTTPResponse, part: Path, start: int, bar: tqdm) -> int:
    """Stream the body into ``part`` from byte ``start``; returns the length of ``part`` afterwards."""
    with open(part, "r+b" if start else "wb") as fh:
        fh.seek(start)
        fh.truncate()
        while True:
            try:
                chunk = resp.read(CHUNK)
            except (OSError, HTTPException) as exc:
                fh.flush()
                raise _Dropped(f"{type(exc).__name__}: {exc} after {fh.tell()} bytes") from None
            if not chunk:
                return fh.tell()
            _write(fh, chunk, part)
            bar.update(len(chunk))


def _write(fh, chunk: bytes, path: Path) -> None:
    """Write, turning a full disk into a DataError that says where space is needed."""
    try:
        fh.write(chunk)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DataError(_disk_full_text(path.parent), path=path) from None
        raise


def _verify(part: Path, url: str, checksum: Checksum, size: int | None) -> None:
    """Raise (deleting ``part``) unless its size and checksum are the expected ones."""
    actual_size = part.stat().st_size
    if size is not None and actual_size != int(size):
        part.unlink()
        raise DataError(
            f"{url} gave {actual_size} bytes, expected {size} (dataset.download.size or the Zenodo record); "
            "the file was deleted, run again",
            path=part,
        )
    actual = checksum.of(part)
    if actual != checksum:
        part.unlink()
        raise DataError(
            f"checksum mismatch for {url}: expected {checksum}, got {actual}; the file was deleted, "
            "run again to download it afresh",
            path=part,
        )


def _open(url: str, *, offset: int = 0) -> HTTPResponse:
    """GET ``url`` (from byte ``offset``); a 416 is returned for the caller, other HTTP errors raise."""
    headers = {"User-Agent": f"deepmars/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    host = urlparse(url).hostname
    try:
        return urlopen(Request(url, headers=headers), timeout=TIMEOUT_S)
    except HTTPError as exc:
        if exc.code == 416 and offset:
            return exc  # type: ignore[return-value]  # HTTPError is a response with a status
        exc.close()
        raise NetworkError(f"{host} answered HTTP {exc.code} {exc.reason} for {url}") from None
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NetworkError(f"cannot reach {host} ({reason}) for {url}") from None


def extract_archive(archive: Path, folder: Path, *, checksum: Checksum, required: Sequence[str]) -> Path:
    """Unpack ``archive`` into ``folder/extracted`` atomically; returns the data set folder inside it.

    The tree is built in a temporary sibling and renamed into place with its marker, so a crash
    leaves either no ``extracted/`` or a complete one; leftovers of a crashed run are removed.
    """
    for stale in folder.glob(".extracting-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extracting-", dir=folder))
    try:
        _unpack(archive, tmp)
        root = find_dataset_folder(tmp, required)
        if root is None:
            raise DataError(f"the archive holds no folder with {', '.join(required)}", path=archive)
        info = {"archive": archive.name, "checksum": str(checksum), "folder": root.relative_to(tmp).as_posix()}
        (tmp / MARKER).write_text(json.dumps(info, indent=1) + "\n")
        final = folder / EXTRACTED
        if final.exists():  # an older, unmarked or incomplete tree
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / info["folder"]


def _unpack(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into ``dest``, keeping every member inside it (no absolute or ../ paths)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _ensure_free(dest, sum(i.file_size for i in zf.infolist()), f"extracting {archive.name}")
                zf.extractall(dest)  # zipfile drops absolute paths and '..' parts
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
        else:
            raise DataError("not a zip or tar archive", path=archive)
    except (zipfile.BadZipFile, tarfile.TarError) as exc:
        raise DataError(f"cannot extract: {exc}", path=archive) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DataError(_disk_full_text(dest), path=archive) from None
        raise


def find_dataset_folder(tree: Path, required: Sequence[str]) -> Path | None:
    """The shallowest folder under ``tree`` (itself included) holding every required path.

    Archives differ in whether they wrap the data in a top-level folder; the label files say
    where the data set starts either way.
    """
    hits = [Path(d) for d, _, _ in os.walk(tree) if all((Path(d) / rel).exists() for rel in required)]
    return min(hits, key=lambda p: len(p.parts)) if hits else None


def _ensure_free(folder: Path, needed: int | None, what: str) -> None:
    """Fail before writing when the disk cannot hold ``needed`` more bytes."""
    if not needed:
        return
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DataError(
            f"not enough free disk space for {what}: {needed / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free. "
            "Free some space or set DEEPMARS_CACHE to a folder on a larger disk",
            path=folder,
        )


def _disk_full_text(folder: Path) -> str:
    return f"the disk holding {folder} is full; free some space or set DEEPMARS_CACHE to a folder on a larger disk"


def _size_text(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB" if path.exists() else "0 MB"


def _no_bar(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None lets tqdm hide the bar when stderr is not a terminal (CI logs)."""
    return None if progress is None else not progress


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` so parallel runs (sweeps) download it once, not N times.

    The OS releases the lock when a process dies, so a crash never leaves the cache locked.
    Without fcntl (Windows) parallel first downloads are not coordinated.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(folder / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process downloading into %s", folder)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

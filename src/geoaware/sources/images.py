"""A catalog's photos by URL: concurrent, resumable, checked downloads into one folder.

Each row's photo goes to ``<out>/<file_name>``, the path ``geoaware embed --images <out>``
opens, so the two commands agree by construction. A download runs through
:func:`geoaware.sources.download.download_url` (retries, timeouts, ``Range`` resume, the S3
path) into ``<file_name>.part``; only bytes that start like a JPEG or PNG are renamed to
their name, so a photo present under its name is complete and is skipped on the next run (a
part left by Ctrl-C is resumed). A row whose photo cannot be had (HTTP status, timeout, not
an image, no URL) is listed in ``<out>/failed.csv`` (``image_id,url,reason``) and the run
goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from geoaware.errors import DownloadError, InputFileError
from geoaware.fileio import atomic_write_csv
from geoaware.sources.download import Timeouts, download_url
from geoaware.typing import PathLike

__all__ = ["FAILED_FILE", "FetchImagesReport", "PhotoFailure", "fetch_images", "image_kind"]

FAILED_FILE = "failed.csv"
"""The rows whose photo could not be fetched: ``image_id,url,reason``."""

_RESERVED = {FAILED_FILE, "_manifest.json"}  # files of the folder itself
_MAGIC = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"))


def image_kind(head: bytes) -> str | None:
    r"""Return ``"jpeg"`` or ``"png"`` from a file's first bytes, or None for anything else.

    Examples
    --------
    >>> image_kind(b"\xff\xd8\xff\xe0..JFIF"), image_kind(b"<!DOCTYPE html>")
    ('jpeg', None)
    """
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


@dataclass(frozen=True)
class PhotoFailure:
    """A row whose photo was not fetched, and why."""

    image_id: str
    url: str
    reason: str


@dataclass
class FetchImagesReport:
    """What :func:`fetch_images` did; every row is counted once in fetched, present or failed.

    Attributes
    ----------
    out : str
        The photos folder.
    rows : int
        Catalog rows asked for.
    fetched : int
        Rows whose photo this run downloaded.
    present : int
        Rows whose photo was already there (skipped).
    failed : int
        Rows listed in ``failed.csv``.
    failed_file : str
        Path of ``failed.csv`` (written every run, header only when nothing failed).
    bytes : int
        Bytes of the photos this run downloaded.
    seconds : float
        Wall time of the run.
    failures : list of PhotoFailure
        The failed rows, in catalog order.
    """

    out: str
    rows: int = 0
    fetched: int = 0
    present: int = 0
    failed: int = 0
    failed_file: str = ""
    bytes: int = 0
    seconds: float = 0.0
    failures: list[PhotoFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the figures, for ``--json`` (the failures are in ``failed.csv``)."""
        keys = ("out", "rows", "fetched", "present", "failed", "failed_file", "bytes")
        return {**{k: getattr(self, k) for k in keys}, "seconds": round(self.seconds, 3)}


@dataclass
class _Job:
    """One photo to download, and the catalog rows (by position) that share it."""

    url: str
    target: Path
    rows: list[int]


def _plan(
    ids: list[str], urls: list[str | None], names: list[str | None], out: Path
) -> tuple[list[_Job], dict[int, str], list[int]]:
    """Sort rows into jobs to download, failures (row -> reason) and rows already present."""
    jobs: dict[str, _Job] = {}
    failed: dict[int, str] = {}
    present: list[int] = []
    for i, (url, name) in enumerate(zip(urls, names, strict=True)):
        if not url:
            failed[i] = "no url in the catalog"
            continue
        if not name:
            failed[i] = "no file_name in the catalog (embed would not find the photo)"
            continue
        rel = os.path.normpath(name)
        if os.path.isabs(name) or rel == ".." or rel.startswith(".." + os.sep):
            failed[i] = f"file_name {name!r} leaves the photos folder"
            continue
        if rel in _RESERVED:
            failed[i] = f"file_name {name!r} is a file of the photos folder itself"
            continue
        job = jobs.get(rel)
        if job is not None:
            if job.url != url:
                failed[i] = f"file_name {name!r} is also that of image {ids[job.rows[0]]}"
            else:
                job.rows.append(i)
            continue
        jobs[rel] = _Job(url, out / rel, [i])
    todo = []
    for job in jobs.values():
        if job.target.is_file():
            present.extend(job.rows)
        else:
            todo.append(job)
    return todo, failed, present


def _fetch_one(job: _Job, retries: int, timeouts: Timeouts) -> int:
    """Download, check and rename one photo; return its size. DownloadError on failure."""
    try:
        part = download_url(job.url, job.target, retries=retries, timeouts=timeouts)
    except DownloadError as exc:
        raise DownloadError(str(exc).removeprefix(f"{job.url}: ")) from exc
    with open(part, "rb") as fh:
        head = fh.read(16)
    if image_kind(head) is None:
        part.unlink(missing_ok=True)  # a fresh try next run
        what = "an empty body" if not head else f"bytes {head!r}"
        raise DownloadError(f"not a JPEG or PNG: {what}")
    size = part.stat().st_size
    os.replace(part, job.target)
    return size


def fetch_images(
    table: pa.Table,
    out: PathLike,
    *,
    workers: int = 16,
    retries: int = 3,
    timeouts: Timeouts | None = None,
    progress: bool = True,
    where: str = "<catalog>",
) -> FetchImagesReport:
    """Download the photos of a catalog table's rows into ``out``, ``workers`` at a time.

    Parameters
    ----------
    table
        Catalog rows with ``image_id``, ``url`` and ``file_name`` (other columns ignored).
    out
        The photos folder; a row's photo lands at ``out / file_name``.
    workers
        Downloads at once (threads).
    retries, timeouts
        Per photo, as for ``geoaware fetch`` (404, 403, 401 and 410 are not retried).
    progress
        Show a progress bar on stderr (only on a terminal).
    where
        The catalog's path, for errors.

    Returns
    -------
    FetchImagesReport
        Its ``failed.csv`` is written, atomically, before it returns.

    Raises
    ------
    InputFileError
        If a column is missing, or no row has a ``file_name``.

    Examples
    --------
    >>> rows = pa.table({"image_id": ["a"], "url": ["https://example.org/a.jpg"],
    ...                  "file_name": ["a.jpg"]})
    >>> fetch_images(rows, "photos").fetched  # doctest: +SKIP
    1
    """
    start = time.perf_counter()
    for name in ("image_id", "url", "file_name"):
        if name not in table.column_names:
            raise InputFileError(where, "the catalog has no such column", field=name)
    ids = [str(v) for v in table.column("image_id").to_pylist()]
    urls = table.column("url").to_pylist()
    names = table.column("file_name").to_pylist()
    if ids and not any(names):
        raise InputFileError(
            where,
            f"none of its {len(ids):,} rows has a file_name, so embed could not find the "
            "photos; ingest the catalog again with this geoaware (fg_geo_yfcc rows get "
            "<image_id>.jpg) or fill file_name with geoaware query",
            field="file_name",
        )
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    todo, reasons, present = _plan(ids, urls, names, root)
    report = FetchImagesReport(str(root), rows=len(ids), present=len(present), failed=len(reasons))
    report.failed_file = str(root / FAILED_FILE)
    limits = timeouts or Timeouts()
    with _bar(progress, total=len(ids), done=len(present) + len(reasons)) as advance:
        pool = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="photo")
        try:
            futures: dict[Future[int], _Job] = {
                pool.submit(_fetch_one, job, retries, limits): job for job in todo
            }
            for future in as_completed(futures):
                job = futures[future]
                try:
                    size = future.result()
                except DownloadError as exc:
                    reasons.update(dict.fromkeys(job.rows, str(exc)))
                    report.failed += len(job.rows)
                else:
                    report.fetched += len(job.rows)
                    report.bytes += size
                advance(len(job.rows), report.fetched, report.failed)
        finally:  # Ctrl-C or an error: no new downloads; those under way finish their part
            pool.shutdown(wait=False, cancel_futures=True)
    report.failures = [PhotoFailure(ids[i], urls[i] or "", reasons[i]) for i in sorted(reasons)]
    report.failed = len(report.failures)
    _write_failed(root / FAILED_FILE, report.failures)
    report.seconds = time.perf_counter() - start
    return report


def _write_failed(path: Path, failures: list[PhotoFailure]) -> None:
    atomic_write_csv(path, ["image_id", "url", "reason"],
                     ([f.image_id, f.url, f.reason] for f in failures))  # fmt: skip


@contextmanager
def _bar(show: bool, total: int, done: int) -> Iterator[Callable[[int, int, int], None]]:
    """Yield ``advance(rows, fetched, failed)``: a rich bar on stderr on a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from geoaware.clikit import err

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        "{task.fields[counts]}",
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not (show and err.is_terminal),
        transient=False,
    ) as bar:
        task = bar.add_task("photos", total=total, completed=done, counts="")

        def advance(rows: int, fetched: int, failed: int) -> None:
            bar.update(task, advance=rows, counts=f"{fetched:,} fetched, {failed:,} failed")

        yield advance

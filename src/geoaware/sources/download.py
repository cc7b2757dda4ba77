"""Verified downloads: mirror first, then HTTP with resume, retries, progress and checksums.

A :class:`RemoteFile` knows its relative path, its URLs and its published checksum.
:func:`fetch` returns a local, verified copy:

1. the file already under ``dest``, its checksum verified again (a copy that kept its size
   and modification time but not its bytes is caught);
2. else the same relative path under ``GEOAWARE_MIRROR``, used in place once verified;
3. else each URL in turn: bytes go to ``<name>.part``, an interrupted download resumes with an
   HTTP ``Range`` request, and only a file whose checksum matches is renamed to its name.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoaware.errors import ChecksumError, DownloadError, UsageError
from geoaware.fileio import atomic_write_text
from geoaware.paths import cache_dir, mirror_dir
from geoaware.typing import PathLike

__all__ = [
    "RemoteFile",
    "Timeouts",
    "download_url",
    "fetch",
    "file_digest",
    "part_path",
    "verify",
    "verify_once",
]

CHUNK = 1 << 20
STREAM_CHUNK = 1 << 16  # small, so an interrupted download keeps almost all it received


@dataclass(frozen=True)
class RemoteFile:
    """A file of a public release.

    Attributes
    ----------
    path : str
        Relative path, the same under the download folder and under ``GEOAWARE_MIRROR``.
    urls : tuple of str
        Where to download it from, tried in order.
    sha256, md5 : str or None
        Published checksums (at least one should be given; both are checked when given).
    size : int or None
        Size in bytes, when known (shown by ``geoaware sources``).
    extract : bool
        Whether ``fetch`` unpacks it (a zip or tar) beside itself after verification.
    """

    path: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    extract: bool = False

    @property
    def name(self) -> str:
        """The file name, without folders."""
        return Path(self.path).name


@dataclass(frozen=True)
class Timeouts:
    """How long a download waits, in seconds.

    Attributes
    ----------
    connect : float
        For the server to accept the connection.
    read : float
        For the next bytes once connected (a server that accepts and never answers ends here).
    deadline : float or None
        For the whole file, every URL and retry included (None: no limit).

    Examples
    --------
    >>> Timeouts(read=5).connect
    10.0
    """

    connect: float = 10.0
    read: float = 30.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "read", "deadline"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(
                    f"--{name}{'' if name == 'deadline' else '-timeout'} must be "
                    f"a positive number of seconds, got {value}"
                )


class _Clock:
    """The deadline of one file: time left, and the read timeout it allows."""

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self.end = None if timeouts.deadline is None else time.monotonic() + timeouts.deadline

    def left(self, url: str) -> float:
        """Seconds left; past the deadline, a DownloadError naming the URL."""
        if self.end is None:
            return float("inf")
        left = self.end - time.monotonic()
        if left <= 0:
            raise _PermanentError(
                f"{url}: gave up at the {self.timeouts.deadline:g} s deadline for this file "
                "(--deadline)"
            )
        return left

    def requests_timeout(self, url: str) -> tuple[float, float]:
        left = self.left(url)
        return min(self.timeouts.connect, left), min(self.timeouts.read, left)


def file_digest(path: PathLike, algorithm: str) -> str:
    """Return the hex digest of a file, read in 1 MiB chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> file_digest(p, "md5")
    '900150983cd24fb0d6963f7d28e17f72'
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def verify(remote: RemoteFile, path: PathLike) -> None:
    """Raise :class:`ChecksumError` unless ``path`` matches the remote file's checksums.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> verify(RemoteFile("x", (), md5="0" * 32), p)
    Traceback (most recent call last):
    ...
    geoaware.errors.ChecksumError: ...: md5 is 900150983cd24fb0d6963f7d28e17f72, expected 000...
    """
    for algorithm, expected in (("sha256", remote.sha256), ("md5", remote.md5)):
        if expected is None:
            continue
        actual = file_digest(path, algorithm)
        if actual.lower() != expected.lower():
            raise ChecksumError(f"{path}: {algorithm} is {actual}, expected {expected}")


def _record(remote: RemoteFile, path: Path) -> tuple[Path, str]:
    """Where the verification record of ``path`` lives (the cache), and the key it must hold.

    The record sits in the cache, not beside the file, so a read-only mirror works too; the key
    ties it to this file's size and modification time and to the checksums it was checked
    against.
    """
    resolved = path.resolve()
    st = resolved.stat()
    name = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    key = f"{resolved}\n{st.st_size}:{st.st_mtime_ns}:{remote.sha256}:{remote.md5}"
    return cache_dir("verified") / name, key


def verify_once(remote: RemoteFile, path: PathLike) -> None:
    """Verify ``path`` against ``remote``'s checksums unless it was verified as it is now.

    A successful check is recorded (keyed by the resolved path, size, modification time and
    the expected checksums), so reading the same file again costs a ``stat``, not a hash. A
    file that changed in any of these is hashed again.

    Raises
    ------
    ChecksumError
        Naming the file, if it does not match.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> verify_once(RemoteFile("x", (), md5="900150983cd24fb0d6963f7d28e17f72"), p)
    """
    if remote.sha256 is None and remote.md5 is None:
        return
    record, key = _record(remote, Path(path))
    if record.is_file() and record.read_text() == key:
        return
    verify(remote, path)
    atomic_write_text(record, key)


def _remember(remote: RemoteFile, path: Path) -> None:
    """Record that ``path`` (as it is now) was just verified."""
    record, key = _record(remote, path)
    atomic_write_text(record, key)


def fetch(
    remote: RemoteFile,
    dest: PathLike,
    *,
    retries: int = 3,
    timeouts: Timeouts | None = None,
    progress: bool = True,
    note: Callable[[str], None] | None = None,
) -> Path:
    """Return a verified local copy of ``remote``, downloading into ``dest`` if needed.

    Parameters
    ----------
    remote
        The file to get.
    dest
        Download folder; the file lands at ``dest / remote.path``.
    retries
        Attempts per URL; each resumes where the last one stopped.
    timeouts
        Connect and read timeouts and the file's overall deadline (:class:`Timeouts`).
    progress
        Show a progress bar (rich) while downloading; while no byte comes it says that it is
        waiting for the server, and for how long.
    note
        Called with one line for each place looked at (``dest``, ``GEOAWARE_MIRROR``, a URL).

    Raises
    ------
    ChecksumError
        If a mirrored or downloaded file does not match (a bad download is deleted).
    DownloadError
        If no URL gave the file, a server did not answer in time, or the deadline passed.

    Examples
    --------
    >>> import os, tempfile
    >>> os.environ["GEOAWARE_MIRROR"] = "../shared/data"  # doctest: +SKIP
    >>> fetch(FgGeoYfcc.files["csv"], tempfile.mkdtemp())  # doctest: +SKIP
    PosixPath('../shared/data/fg_geo_yfcc/yfcc100m_geolocated_inat2017species.csv.zip')
    """
    say = note or (lambda _line: None)
    clock = _Clock(timeouts or Timeouts())
    target = Path(dest) / remote.path
    if target.is_file():
        verify(remote, target)  # every time: size and mtime do not prove the bytes
        _remember(remote, target)  # so `ingest` need not hash it again
        say(f"{target}: already downloaded, checksum verified again")
        return target
    mirror = mirror_dir()
    if mirror is None:
        looked = "GEOAWARE_MIRROR is not set"
    elif (mirror / remote.path).is_file():
        copy = mirror / remote.path
        verify(remote, copy)
        _remember(remote, copy)
        say(f"found in GEOAWARE_MIRROR={mirror}: {copy} (checksum verified)")
        return copy
    else:
        looked = f"not in GEOAWARE_MIRROR={mirror} (no {mirror / remote.path})"
    if not remote.urls:
        raise DownloadError(f"{remote.path}: no URL known, and {looked}")
    target.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    mismatch: ChecksumError | None = None
    # Public HTTPS mirrors first; S3 requester-pays (billed to the user) last. A URL whose
    # bytes fail the checksum is dropped (its download deleted) and the next one is tried.
    for url in sorted(remote.urls, key=lambda u: u.startswith("s3://")):
        say(f"{remote.path}: {looked}; downloading {url}")
        try:
            _download_any(url, target, retries=retries, clock=clock, progress=progress)
        except DownloadError as exc:
            errors.append(str(exc))
            if clock.end is not None and clock.end <= time.monotonic():
                break  # the file's deadline passed: no other URL gets a try
            continue
        part = part_path(target)
        try:
            verify(remote, part)
        except ChecksumError as exc:
            part.unlink(missing_ok=True)
            mismatch = exc
            errors.append(f"{url}: {exc}")
            continue
        os.replace(part, target)
        _remember(remote, target)
        return target
    if mismatch is not None and len(errors) == 1:
        raise mismatch
    failure = ChecksumError if mismatch is not None else DownloadError
    raise failure(f"{remote.path}: every URL failed:\n  " + "\n  ".join([*errors, looked]))


def download_url(
    url: str,
    target: PathLike,
    *,
    retries: int = 3,
    timeouts: Timeouts | None = None,
    progress: bool = False,
) -> Path:
    """Download one URL (HTTP(S) or ``s3://``) into ``target``'s ``.part`` file; return it.

    The bytes go to :func:`part_path` of ``target``; a part left by an earlier, interrupted
    try is resumed with a ``Range`` request. The caller checks the bytes and renames the part
    to ``target`` (``os.replace``), so ``target`` only ever holds a complete, checked file.
    Retries, timeouts and the S3 path are those of :func:`fetch`, for one URL and no
    checksum.

    Raises
    ------
    DownloadError
        Starting with the URL: an HTTP error status (404, 403, 401 and 410 are not retried),
        a server that did not answer in time, or a connection that failed every retry.

    Examples
    --------
    >>> part = download_url("https://example.org/a.jpg", "photos/a.jpg")  # doctest: +SKIP
    >>> os.replace(part, "photos/a.jpg")  # doctest: +SKIP
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clock = _Clock(timeouts or Timeouts())
    _download_any(url, target, retries=retries, clock=clock, progress=progress)
    return part_path(target)


def part_path(target: PathLike) -> Path:
    """Where the bytes of ``target`` gather while they download: ``<name>.part`` beside it.

    Examples
    --------
    >>> part_path("photos/a.jpg").as_posix()
    'photos/a.jpg.part'
    """
    target = Path(target)
    return target.with_name(target.name + ".part")


def _download_any(url: str, target: Path, *, retries: int, clock: _Clock, progress: bool) -> None:
    download = _download_s3 if url.startswith("s3://") else _download
    download(url, target, retries=retries, clock=clock, progress=progress)


def _progress(show: bool) -> Any:
    """Return a transient byte-count progress bar (rich) for the HTTP and S3 paths.

    Its description says what it waits for; the elapsed time keeps moving while no byte comes.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    # On stderr, and only on a terminal: a finished transient bar leaves an empty line behind
    # in piped or logged output.
    console = Console(stderr=True)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (show and console.is_terminal),
        transient=True,
    )


_local = threading.local()


def _session() -> Any:
    """Return this thread's ``requests.Session``, which keeps connections alive between files.

    A session is not safe to share between threads, so each thread (``fetch-images``'s
    workers) has its own.
    """
    session = getattr(_local, "session", None)
    if session is None:
        import requests

        session = _local.session = requests.Session()
    return session


def _download(url: str, target: Path, *, retries: int, clock: _Clock, progress: bool) -> None:
    import requests

    part = part_path(target)
    last: Exception | None = None
    host = url.split("/")[2] if "//" in url else url
    limits = f"connect <= {clock.timeouts.connect:g} s, read <= {clock.timeouts.read:g} s"
    if clock.timeouts.deadline is not None:
        limits += f", file <= {clock.timeouts.deadline:g} s"
    with _progress(progress) as bar:
        task = bar.add_task(f"{target.name}: waiting for {host} ({limits})", total=None)
        for attempt in range(max(retries, 1)):
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            if attempt:
                bar.update(
                    task,
                    description=f"{target.name}: retry {attempt + 1}/{retries}, "
                    f"waiting for {host} ({limits}) after: {last}",
                )
            try:
                timeout = clock.requests_timeout(url)
                with _session().get(url, headers=headers, stream=True, timeout=timeout) as r:
                    if r.status_code == 416:  # nothing left: the part is complete
                        return
                    if r.status_code in (404, 403, 401, 410):
                        raise _PermanentError(f"{url}: HTTP {r.status_code}")
                    if r.status_code not in (200, 206):
                        raise DownloadError(f"{url}: HTTP {r.status_code}")
                    mode = "ab" if r.status_code == 206 else "wb"
                    start = have if mode == "ab" else 0
                    length = r.headers.get("Content-Length")
                    total = start + int(length) if length is not None else None
                    bar.update(
                        task, total=total, completed=start, description=f"download {target.name}"
                    )
                    with open(part, mode) as fh:
                        for block in r.iter_content(STREAM_CHUNK):
                            fh.write(block)
                            bar.advance(task, len(block))
                            clock.left(url)
                    if total is not None and part.stat().st_size < total:
                        raise DownloadError(f"{url}: connection closed early")
                    return
            except requests.ConnectTimeout:
                last = DownloadError(
                    f"{url}: no connection within {timeout[0]:g} s (--connect-timeout)"
                )
            except (requests.ReadTimeout, requests.exceptions.ConnectionError) as exc:
                # requests reports a read timeout inside a streamed body as a ConnectionError
                if "timed out" not in str(exc) and not isinstance(exc, requests.ReadTimeout):
                    last = exc
                elif timeout[1] < clock.timeouts.read:  # cut short by the file's deadline
                    last = _PermanentError(
                        f"{url}: gave up at the {clock.timeouts.deadline:g} s deadline for "
                        "this file (--deadline)"
                    )
                    break
                else:
                    last = DownloadError(
                        f"{url}: the server sent nothing for {timeout[1]:g} s (--read-timeout)"
                    )
            except (requests.RequestException, DownloadError) as exc:
                last = exc
                if isinstance(exc, _PermanentError):
                    raise
            if attempt + 1 < retries:
                time.sleep(min(2.0**attempt * 0.5, 8.0, clock.left(url)))
    raise DownloadError(f"{url}: {last}" if not str(last).startswith(url) else str(last))


def _download_s3(url: str, target: Path, *, retries: int, clock: _Clock, progress: bool) -> None:
    """Download ``s3://bucket/key`` with the user's own credentials, as requester-pays.

    The endpoint follows boto3's own settings (``AWS_ENDPOINT_URL_S3``, profiles), so a local
    S3-compatible server works too. Resumes from the ``.part`` file with a byte range.
    """
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError as exc:
        raise DownloadError(f"{url}: S3 downloads need boto3: pip install 'geoaware[s3]'") from exc
    bucket, _, key = url.removeprefix("s3://").partition("/")
    connect, read = clock.requests_timeout(url)
    config = botocore.config.Config(
        read_timeout=read, connect_timeout=connect, retries={"max_attempts": retries}
    )
    client = boto3.client("s3", config=config)
    part = part_path(target)
    have = part.stat().st_size if part.exists() else 0
    args = {"Bucket": bucket, "Key": key, "RequestPayer": "requester"}
    try:
        total = int(client.head_object(**args)["ContentLength"])
        if have >= total:
            return
        answer = client.get_object(**args, Range=f"bytes={have}-")
    except botocore.exceptions.NoCredentialsError as exc:
        raise DownloadError(
            f"{url}: requester-pays S3 needs your AWS credentials (aws configure); "
            "the transfer is billed to your account"
        ) from exc
    except botocore.exceptions.ClientError as exc:
        raise DownloadError(f"{url}: {exc}") from exc
    mode = "ab" if answer.get("ContentRange") else "wb"
    with _progress(progress) as bar, open(part, mode) as fh:
        task = bar.add_task(f"s3 {target.name}", total=total, completed=have if mode == "ab" else 0)
        for block in answer["Body"].iter_chunks(STREAM_CHUNK):
            fh.write(block)
            bar.advance(task, len(block))
    if part.stat().st_size != total:
        raise DownloadError(f"{url}: got {part.stat().st_size} of {total} bytes")


class _PermanentError(DownloadError):
    """An HTTP answer that a retry will not change (not found, forbidden)."""

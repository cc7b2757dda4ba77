"""Atomic writes: a file appears whole under its final name, or not at all.

Every file geoaware writes goes through :func:`atomic_path`: the writer fills a temporary file
in the same folder, and only a successful write is renamed over the target (``os.replace`` is
atomic on POSIX and Windows). An interrupted command therefore never leaves a half file.
Temporary names carry the writer's process id (``.<name>.<pid>.…``): a later write to the same
target removes the leftovers of writers that no longer run (a killed ``ingest``), and never
those of a writer that is still running.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "remove_leftovers",
]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it to ``target`` on success.

    Parameters
    ----------
    target
        The final path. Its folder is created if needed.
    suffix
        Suffix of the temporary file (defaults to the target's, so writers that pick a format
        from the extension still work).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("hi")
    >>> out.read_text()
    'hi'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.",
        suffix=(target.suffix if suffix is None else suffix) + ".part",
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file owner-only; give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; swap it in whole on success.

    An existing ``target`` is replaced only once everything was written; on error the old
    folder (or nothing) stays and the staging folder is removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "parts"
    >>> with atomic_dir(out) as tmp:
    ...     _ = (tmp / "a.txt").write_text("1")
    >>> sorted(p.name for p in out.iterdir())
    ['a.txt']
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=final.parent))
    try:
        yield staging
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.{os.getpid()}.old")
            final.rename(old)
        staging.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_leftovers(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files and folders that dead writers of ``target`` left beside it.

    Returns what was removed. Only names of geoaware's own pattern (``.<name>.<pid>.…``) whose
    process is gone are touched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".cat.parquet.999999999.abc.parquet.part").write_text("half")
    >>> [p.name for p in remove_leftovers(folder / "cat.parquet")]
    ['.cat.parquet.999999999.abc.parquet.part']
    """
    target = Path(target)
    removed: list[Path] = []
    prefix = f".{target.name}."
    if not target.parent.is_dir():
        return removed
    for entry in target.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "a.bin", b"xy")
    >>> p.read_bytes()
    b'xy'
    """
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically and return the target path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> atomic_write_text(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "ok").read_text()
    'ok'
    """
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_csv(
    target: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Path:
    r"""Write a CSV file (``\n`` line ends, UTF-8) atomically and return the target path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "failed.csv"
    >>> atomic_write_csv(f, ["image_id", "reason"], [["a", "HTTP 404, gone"]]).read_text()
    'image_id,reason\na,"HTTP 404, gone"\n'
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(target, buf.getvalue())

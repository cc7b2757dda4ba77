"""Safe extraction of zip and tar archives: nothing lands outside the destination.

Every member is checked before anything is written: no absolute path, no drive letter, no
``..`` component, no link (symbolic or hard) that points outside the destination, and no
device or FIFO. The archive is extracted into a staging folder beside the destination and its
entries are moved in only when all of it extracted, so a failure leaves no partial output.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from geoaware.errors import InputFileError, UnsafeArchiveError
from geoaware.typing import PathLike

__all__ = ["extract", "safe_member_path"]


def safe_member_path(archive: object, name: str) -> PurePosixPath:
    """Return a member's relative path, or raise :class:`UnsafeArchiveError` if it escapes.

    Examples
    --------
    >>> safe_member_path("a.zip", "train/img 1.jpg")
    PurePosixPath('train/img 1.jpg')
    >>> safe_member_path("a.zip", "../etc/passwd")
    Traceback (most recent call last):
    ...
    geoaware.errors.UnsafeArchiveError: a.zip, member '../etc/passwd': path escapes the destination
    """
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if (
        normalised.startswith("/")
        or (len(normalised) > 1 and normalised[1] == ":")
        or ".." in path.parts
    ):
        raise UnsafeArchiveError(f"{archive}, member {name!r}: path escapes the destination")
    return path


def _check_link(archive: Path, name: str, target: str) -> None:
    base = PurePosixPath(name.replace("\\", "/")).parent
    joined = os.path.normpath(str(base / target.replace("\\", "/")))
    if target.startswith("/") or joined == ".." or joined.startswith("../"):
        raise UnsafeArchiveError(
            f"{archive}, member {name!r}: link to {target!r} points outside the destination"
        )


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = []
    for info in zf.infolist():
        safe_member_path(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(f"{archive}, member {info.filename!r}: symbolic links refused")
        members.append(info)
    return members


def _tar_members(archive: Path, tf: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    for info in tf.getmembers():
        safe_member_path(archive, info.name)
        if info.issym() or info.islnk():
            _check_link(archive, info.name, info.linkname)
        elif not (info.isfile() or info.isdir()):
            raise UnsafeArchiveError(f"{archive}, member {info.name!r}: special file refused")
        members.append(info)
    return members


def _extract_tar(src: Path, staging: Path) -> None:
    try:
        with tarfile.open(src) as tf:
            tf.extractall(staging, members=_tar_members(src, tf), filter="data")
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"{src}: {exc}") from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputFileError(src, f"not a readable zip or tar archive ({exc})") from exc


def extract(archive: PathLike, dest: PathLike, *, skip: Iterable[str] = ()) -> list[Path]:
    """Extract a ``.zip``, ``.tar``, ``.tar.gz``/``.tgz`` or ``.tar.bz2``/``.tar.xz`` safely.

    Parameters
    ----------
    archive
        The archive to extract.
    dest
        Destination folder (created); existing files of the same name are replaced.
    skip
        Top-level folder names to leave out (for example ``"__MACOSX"``).

    Returns
    -------
    list of Path
        The top-level entries written under ``dest``.

    Raises
    ------
    UnsafeArchiveError
        Before anything is written, if a member would escape ``dest``.
    InputFileError
        If the archive is not a readable zip or tar file.

    Examples
    --------
    >>> import tempfile, zipfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(tmp / "a.zip", "w") as zf:
    ...     zf.writestr("data/x.txt", "hi")
    >>> [p.name for p in extract(tmp / "a.zip", tmp / "out")]
    ['data']
    """
    src, out = Path(archive), Path(dest)
    skipped = set(skip)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{src.name}.", dir=out))
    try:
        if zipfile.is_zipfile(src):
            with zipfile.ZipFile(src) as zf:
                zf.extractall(staging, members=_zip_members(src, zf))
        else:
            _extract_tar(src, staging)
        written = []
        for entry in sorted(staging.iterdir()):
            if entry.name in skipped:
                continue
            target = out / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            entry.rename(target)
            written.append(target)
        return written
    except zipfile.BadZipFile as exc:
        raise InputFileError(src, f"zip archive is truncated or corrupt ({exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)

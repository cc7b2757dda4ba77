"""What geoaware writes: the output rules and the provenance manifest of every output.

The rules, one place for every command:

* an output path that does not exist is written;
* an output that exists and was written by geoaware (it has a manifest) is replaced only with
  ``--overwrite``;
* an output that exists and was not written by geoaware is never touched: the command stops
  with an error that names it (a folder that exists but is empty counts as free);
* an output whose extension names another format than the one written is an error;
* a *run folder* (``eval geo --out RUN``, ``geoaware demo``) collects many results: a folder of
  geoaware's is added to, a folder of anything else is refused.

The manifest records how an output was made, so that it can be made again: the command line,
the geoaware version and git revision, the seed, each input's size, modification time and
SHA-256 (files up to 256 MB; larger files and folders by size and time), and the time. A
folder keeps it as ``_manifest.json`` inside (a name Parquet dataset readers skip); a file
keeps it beside itself as the hidden ``.<name>.manifest.json``. ``geoaware info PATH`` prints
it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from geoaware import package_version
from geoaware.errors import GeoawareError

__all__ = [
    "MANIFEST_NAME",
    "OutputError",
    "catalog_kind",
    "claim_catalog",
    "claim_output",
    "command_line",
    "fingerprint",
    "is_geoaware_output",
    "manifest_path",
    "read_manifest",
    "record_output",
]

MANIFEST_NAME = "_manifest.json"  # Parquet dataset readers skip names starting with _
_TOOL = "geoaware"
_HASH_LIMIT = 256 * 1024 * 1024
OutputKind = Literal["file", "folder", "run"]


class OutputError(GeoawareError, ValueError):
    """An output path that geoaware will not write: not its own, or the wrong format."""


def manifest_path(path: str | os.PathLike[str], kind: OutputKind | None = None) -> Path:
    """Return where an output's manifest lives: inside a folder, beside a file.

    Examples
    --------
    >>> manifest_path("runs/split.parquet", "file").as_posix()
    'runs/.split.parquet.manifest.json'
    >>> manifest_path("runs/model", "folder").as_posix()
    'runs/model/_manifest.json'
    """
    p = Path(path)
    is_folder = p.is_dir() if kind is None else kind != "file"
    return p / MANIFEST_NAME if is_folder else p.with_name(f".{p.name}.manifest.json")


def catalog_kind(path: str | os.PathLike[str]) -> OutputKind:
    """Return how a catalog is written: one ``.parquet`` file, else a folder of parts.

    Examples
    --------
    >>> catalog_kind("c.parquet"), catalog_kind("parts")
    ('file', 'folder')
    """
    return "file" if Path(path).suffix.lower() == ".parquet" else "folder"


def claim_catalog(path: str | os.PathLike[str], *, overwrite: bool = False) -> OutputKind:
    """Check that a command may write a catalog at ``path``; return how it is written.

    :func:`claim_output` for a ``.parquet`` file or a folder of parts (see
    :func:`catalog_kind`); any other extension is refused.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> claim_catalog(pathlib.Path(tempfile.mkdtemp()) / "split.parquet")
    'file'
    """
    kind = catalog_kind(path)
    claim_output(path, kind, overwrite=overwrite, suffixes=(".parquet",))
    return kind


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return an output's manifest, or None when it has none (not written by geoaware).

    Examples
    --------
    >>> read_manifest("/no/such/output") is None
    True
    """
    m = manifest_path(path)
    try:
        doc = orjson.loads(m.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("tool") == _TOOL else None


def _parquet_of_ours(path: Path) -> bool:
    """Tell whether a Parquet file carries geoaware's catalog or embeddings metadata."""
    if path.suffix.lower() != ".parquet":
        return False
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
    except Exception:  # not Parquet at all: not ours
        return False
    return any(key.startswith(b"geoaware") for key in meta)


def is_geoaware_output(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` was written by geoaware (it has a manifest or geoaware's metadata).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.txt").write_text("mine")
    >>> is_geoaware_output(folder / "notes.txt")
    False
    """
    p = Path(path)
    if read_manifest(p) is not None:
        return True
    if p.is_file():
        return _parquet_of_ours(p)
    # a folder written before manifests existed: its Parquet parts carry geoaware's metadata
    first = next(iter(sorted(p.glob("*.parquet"))), None) if p.is_dir() else None
    return first is not None and _parquet_of_ours(first)


def claim_output(
    path: str | os.PathLike[str],
    kind: OutputKind = "file",
    *,
    overwrite: bool = False,
    suffixes: Sequence[str] = (),
    what: str = "--out",
) -> Path:
    """Check that a command may write ``path``; return it. Call before doing any work.

    Parameters
    ----------
    path
        The output.
    kind
        ``file``, ``folder`` (replaced whole) or ``run`` (a folder results are added to).
    overwrite
        Replace an output that geoaware wrote.
    suffixes
        The extensions the written format may have (lower case, with the dot); empty: any. A
        ``folder`` may also be named without an extension.
    what
        The option's name, for the message.

    Raises
    ------
    OutputError
        The path exists and is not geoaware's, exists without ``overwrite``, is a folder where
        a file is written (or the reverse), or has another format's extension.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.csv").write_text("mine")
    >>> claim_output(folder / "split.parquet", suffixes=(".parquet",)).name
    'split.parquet'
    >>> claim_output(folder / "notes.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoaware.outputs.OutputError: --out .../notes.csv exists and was not written by geoaware...
    """
    p = Path(path)
    if kind == "file" and p.is_dir():
        raise OutputError(f"{what} {p} is a folder; give a file name")
    suffix = p.suffix.lower()
    if suffixes and suffix not in suffixes and not (kind != "file" and suffix == ""):
        raise OutputError(
            f"{what} {p}: this command writes {' or '.join(suffixes)}"
            + (" (or a folder without an extension)" if kind != "file" else "")
            + f", not {suffix or 'a name without an extension'}"
        )
    if not p.exists():
        return p
    if kind != "file" and not p.is_dir():
        raise OutputError(f"{what} {p} is a file; this command writes a folder")
    if p.is_dir() and not any(p.iterdir()):
        return p
    if not is_geoaware_output(p):
        raise OutputError(
            f"{what} {p} exists and was not written by geoaware (no {manifest_path(p).name}); "
            "choose another path or move it away: geoaware never replaces what it did not write"
        )
    if kind == "run" or overwrite:
        return p
    raise OutputError(
        f"{what} {p} exists (an earlier geoaware output); pass --overwrite to replace it"
    )


def command_line(argv: Sequence[str] | None = None) -> str:
    """Return the command as typed: ``geoaware`` and its arguments (``sys.argv`` by default).

    Examples
    --------
    >>> command_line(["/usr/bin/geoaware", "split", "my catalog.parquet"])
    "geoaware split 'my catalog.parquet'"
    """
    args = list(sys.argv if argv is None else argv)
    return shlex.join(["geoaware", *args[1:]])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe an input so a later run can tell whether it changed.

    Files up to 256 MB get their SHA-256; larger files and folders their size and
    modification time (a folder: the number and total size of the files directly in it and the
    newest time).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = f.write_text("abc")
    >>> fingerprint(f)["sha256"][:12], fingerprint(f)["bytes"]
    ('ba7816bf8f01', 3)
    """
    p = Path(path)
    if p.is_file():
        st = p.stat()
        doc: dict[str, Any] = {
            "path": str(p.resolve()),
            "bytes": st.st_size,
            "mtime": _iso(st.st_mtime),
        }
        if st.st_size <= _HASH_LIMIT:
            doc["sha256"] = _sha256(p)
        return doc
    if p.is_dir():  # its files, not its subfolders: a data root may hold millions of images
        files = [f for f in p.iterdir() if f.is_file()]
        stats = [f.stat() for f in files]
        return {
            "path": str(p.resolve()),
            "files": len(files),
            "bytes": sum(s.st_size for s in stats),
            "mtime": _iso(max((s.st_mtime for s in stats), default=p.stat().st_mtime)),
        }
    return {"path": str(p), "missing": True}


def _iso(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).isoformat(timespec="seconds")


@functools.cache  # one process, one source tree: ask git once
def _git_revision() -> str | None:
    """Return the git revision of geoaware's source tree when it runs from a checkout."""
    here = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def record_output(
    path: str | os.PathLike[str],
    kind: OutputKind = "file",
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    seed: int | None = None,
    argv: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the manifest of an output that a command has just written; return its path.

    A run folder keeps every command that added to it, newest last, under ``history``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "split.parquet"
    >>> _ = out.write_bytes(b"PAR1")
    >>> _ = record_output(out, argv=["geoaware", "split", "c.parquet"], seed=3)
    >>> doc = read_manifest(out)
    >>> doc["command"], doc["seed"], is_geoaware_output(out)
    ('geoaware split c.parquet', 3, True)
    """
    p = Path(path)
    doc: dict[str, Any] = {
        "tool": _TOOL,
        "version": package_version(),
        "git_revision": _git_revision(),
        "command": command_line(argv),
        "seed": seed,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "output": str(p.resolve()),
        "kind": kind,
        "inputs": [fingerprint(i) for i in inputs if i is not None],
        **(extra or {}),
    }
    target = manifest_path(p, kind)
    if kind == "run":
        earlier = read_manifest(p)
        history = list(earlier.get("history", [])) if earlier else []
        history.append({k: doc[k] for k in ("command", "seed", "time", "inputs")})
        doc["history"] = history
    from geoaware.fileio import atomic_write_bytes

    return atomic_write_bytes(target, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")

"""The base of every source: a small class that knows its files, URLs and checksums."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from geoaware.errors import ChecksumError, DatasetNotFoundError, UsageError
from geoaware.paths import mirror_dir
from geoaware.sources.archive import extract
from geoaware.sources.download import RemoteFile, Timeouts, fetch, verify_once
from geoaware.typing import PathLike

__all__ = ["Source", "empty_catalog"]


def empty_catalog(schema: pa.Schema | None = None) -> pa.Table:
    """Return a catalog table with no rows: the schema's required columns, as text.

    What a source reads when there is nothing to read; the catalog stage conforms it to the
    full schema (:func:`geoaware.catalog.conform`), as it does every source's table. A source
    whose tables have a fixed ``schema`` passes it, and gets its columns too.

    Examples
    --------
    >>> empty_catalog().column_names, empty_catalog().num_rows
    (['source', 'image_id'], 0)
    >>> empty_catalog(pa.schema([("image_id", pa.string()), ("tile_z", pa.int32())])).schema
    source: string
    image_id: string
    tile_z: int32
    """
    fields = [pa.field("source", pa.string()), pa.field("image_id", pa.string())]
    if schema is not None:
        fields += [f for f in schema if f.name not in ("source", "image_id")]
    return pa.schema(fields).empty_table()


class Source(ABC):
    """A dataset release: its parts (remote files) and how to read them into a catalog.

    Subclasses set the class attributes and implement :meth:`read`. Nothing downloads unless
    :meth:`fetch` is called.

    Attributes
    ----------
    name : str
        The name used on the command line (``geoaware fetch NAME``).
    description : str
        One line for ``geoaware sources``.
    files : dict of str to RemoteFile
        The release's parts by short name.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    files: ClassVar[dict[str, RemoteFile]]
    catalog_parts: ClassVar[tuple[str, ...] | None] = None
    """The parts :meth:`read` needs (default: all); image archives are left out here."""

    verify: bool = True
    """Check each release file's published checksum before reading it (set False to read a
    hand-made file of the release's layout, as tests do)."""

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)
        self.counts: dict[str, int] = {}
        """What the last read found worth reporting, e.g. ``{"images_without_location": 12}``."""

    def fetch(
        self,
        parts: list[str] | None = None,
        *,
        progress: bool = True,
        timeouts: Timeouts | None = None,
        note: Callable[[str], None] | None = None,
    ) -> dict[str, Path]:
        """Download (or find in the mirror) and verify parts; return their local paths.

        ``timeouts`` and ``note`` go to :func:`geoaware.sources.download.fetch` (connect and
        read timeouts, the deadline per file; one line per place looked at).

        ``parts=None`` fetches :attr:`catalog_parts` (what the catalog needs), ``["all"]``
        every part, image archives included.

        Parts marked ``extract`` are then unpacked safely into the folder they sit in under
        ``root`` (once: a stamp records the archive's size and mtime).
        """
        got = {}
        for part in self.plan(parts):
            remote = self.files[part]
            got[part] = path = fetch(
                remote, self.root, progress=progress, timeouts=timeouts, note=note
            )
            if remote.extract:
                self._extract_once(path, (self.root / remote.path).parent)
        return got

    def plan(self, parts: list[str] | None = None) -> list[str]:
        """Return the parts :meth:`fetch` would get, in order: the catalog's parts first.

        ``None``: :attr:`catalog_parts`; ``["all"]``: every part, the metadata before the image
        archives, so that a long archive download never holds up the catalog.

        Raises
        ------
        ValueError
            A part the source does not have.
        """
        if parts is None:
            wanted = list(self.catalog_parts or self.files)
        elif parts == ["all"]:
            first = [p for p in self.files if p in (self.catalog_parts or ())]
            wanted = first + [p for p in self.files if p not in first]
        else:
            wanted = parts
        unknown = [p for p in wanted if p not in self.files]
        if unknown:
            raise UsageError(
                f"{self.name}: unknown part(s) {', '.join(unknown)}; known: {', '.join(self.files)}"
            )
        return wanted

    @staticmethod
    def _extract_once(archive: Path, dest: Path) -> None:
        st = archive.stat()
        stamp = dest / f".{archive.name}.extracted"
        key = f"{st.st_size}:{st.st_mtime_ns}"
        if stamp.exists() and stamp.read_text() == key:
            return
        extract(archive, dest, skip=["__MACOSX"])
        stamp.write_text(key)

    def local(self, part: str) -> Path:
        """Return a part's local path (under ``root``, else the mirror) without downloading.

        With :attr:`verify` (the default) the file's checksum is checked the first time it is
        read, and again whenever its size or modification time changes (see
        :func:`geoaware.sources.download.verify_once`).

        Raises
        ------
        ChecksumError
            If the file does not match its published checksum.
        DatasetNotFoundError
            If the part is in neither place; the message says how to get it.
        """
        remote = self.files[part]
        for base in (self.root, mirror_dir()):
            if base is not None and (base / remote.path).is_file():
                path = base / remote.path
                if self.verify:
                    self._verify(remote, path)
                return path
        raise DatasetNotFoundError(
            f"{self.name}: {remote.path} not found under {self.root}"
            + (f" or GEOAWARE_MIRROR={mirror_dir()}" if mirror_dir() else "")
            + f"; run `geoaware fetch {self.name} --dest {self.root}`"
        )

    def _verify(self, remote: RemoteFile, path: Path) -> None:
        try:
            verify_once(remote, path)
        except ChecksumError as exc:
            raise ChecksumError(
                f"{exc}; this is not the published {self.name} file (a damaged or changed "
                f"copy): fetch it again with `geoaware fetch {self.name} --dest {self.root}`"
            ) from exc

    @abstractmethod
    def read(self) -> pa.Table:
        """Read the fetched files into a catalog table (not yet conformed)."""

    def read_batches(self) -> Iterator[pa.Table]:
        """Yield the catalog in batches, for sources too big to hold at once.

        The default yields :meth:`read` whole; big sources override this (and make ``read``
        concatenate it), so ``geoaware ingest`` writes one Parquet part per batch.
        """
        yield self.read()

    def count(self, key: str, n: int) -> None:
        """Add ``n`` to a reported count (rows without location, junk values, ...)."""
        if n:
            self.counts[key] = self.counts.get(key, 0) + int(n)

"""What the iNat releases share: finding a split's documents and reading them in batches.

:class:`InatSource` reads a split in two passes over its document (the other arrays, then the
images, joined by :class:`~geoaware.sources.inat.coco.SplitContext`), one batch ahead of the
caller in a background thread; the releases (:mod:`.releases`) name their files and splits.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.errors import InputFileError, UsageError
from geoaware.paths import mirror_dir
from geoaware.sources.base import Source, empty_catalog
from geoaware.sources.csvio import json_objects
from geoaware.sources.inat.coco import Lookup, SplitContext, concat_records, int_array
from geoaware.sources.inat.records import BBOX_SPEC, IMAGE_SPEC, LOCATION_SPEC
from geoaware.sources.inat.stream import (
    BLOCK_SIZE,
    CHUNK_BYTES,
    Chunk,
    GuessFailedError,
    JsonFile,
    JsonScanner,
    RecordSpec,
    decode_records,
    decode_span,
    iter_span,
    reload,
    scan_stretch,
)
from geoaware.typing import PathLike

__all__ = ["InatSource", "Split"]

LOOKAHEAD = 6
"""Chunks of image records decoded ahead of the join (while the rest of a file is scanned)."""


@dataclass(frozen=True)
class Split:
    """Where one split's files are.

    Attributes
    ----------
    name : str
        ``train``, ``val``, ``test``, ...
    part, member : str
        The part (key of ``files``) and the JSON file name in it.
    labelled : bool
        Whether the document has ``annotations`` (test splits do not).
    locations, bboxes : tuple of str or None
        ``(part, member)`` of the split's locations / boxes file, if the release has one.
    """

    name: str
    part: str
    member: str
    labelled: bool = True
    locations: tuple[str, str] | None = None
    bboxes: tuple[str, str] | None = None


# --------------------------------------------------------------------------------------------
# The sources


class InatSource(Source):
    """What the iNat competition sources share; subclasses name their files and splits."""

    year: ClassVar[int]
    splits: ClassVar[dict[str, Split]]
    default_splits: ClassVar[tuple[str, ...]]
    catalog_parts: ClassVar[tuple[str, ...] | None]
    """The parts :meth:`read` needs for the default splits (the image archives are not)."""
    image_spec: ClassVar[RecordSpec] = IMAGE_SPEC
    category_spec: ClassVar[RecordSpec]
    category_extra: ClassVar[tuple[str, ...]] = ()
    """Columns of :meth:`_categories` that go to ``extra`` (not catalog columns)."""

    def __init__(
        self,
        root: PathLike,
        *,
        splits: Sequence[str] | None = None,
        batch_rows: int = 200_000,
        strict: bool = True,
    ) -> None:
        super().__init__(root)
        chosen = tuple(self.default_splits if splits is None else splits)
        unknown = [s for s in chosen if s not in self.splits]
        if unknown:
            raise UsageError(
                f"{self.name}: unknown split(s) {', '.join(unknown)}; "
                f"known: {', '.join(self.splits)}"
            )
        if batch_rows < 1:
            raise UsageError(f"batch_rows must be positive, but given {batch_rows}")
        self.chosen = chosen
        self.batch_rows = int(batch_rows)
        self.strict = strict
        self._override: Lookup | None = None
        self.guess = True
        """Read the ``images`` array in checked pieces cut at ``}, {`` (the fast path); set
        False to walk it exactly (the fall-back the fast path takes on any surprise)."""
        self.chunk_bytes = CHUNK_BYTES
        """Bytes of image records decoded at a time (memory scales with it)."""
        self.block_size = BLOCK_SIZE
        """Bytes read at a time."""

    # finding the documents

    def document(self, part: str, member: str) -> JsonFile:
        """Return where a part's JSON member is: extracted, else inside the part's archive.

        The extracted file is looked for beside the archive under ``root`` (then under the
        mirror), and one folder deeper.

        Raises
        ------
        DatasetNotFoundError
            If neither the extracted file nor the archive is there.
        """
        folder = PurePosixPath(self.files[part].path).parent
        for base in (self.root, mirror_dir()):
            if base is None or not (base / folder).is_dir():
                continue
            direct = base / folder / member
            if direct.is_file():
                return JsonFile(direct)
            deeper = sorted((base / folder).glob(f"*/{member}"))
            if deeper:
                return JsonFile(deeper[0])
        return JsonFile(self.local(part), member)

    # reading

    def read(self) -> pa.Table:
        """Read the chosen splits into one catalog table (not yet conformed)."""
        batches = list(self.read_batches())
        if not batches:
            return empty_catalog()
        return pa.concat_tables(batches)

    def read_batches(self) -> Iterator[pa.Table]:
        """Yield the catalog split by split, in batches of about ``batch_rows`` images.

        The batches are made in a background thread one batch ahead of the caller, so that
        reading overlaps with whatever the caller does with the previous batch (writing
        Parquet, say); an error in the reader is raised here. Counts (:attr:`counts`) start
        afresh at each call and are complete once the iteration ends.
        """
        self.counts = {}
        return _prefetch(self._batches())

    def _batches(self) -> Iterator[pa.Table]:
        self._override = self._categories_override()
        for name in self.chosen:
            yield from self._read_split(self.splits[name])

    def _read_split(self, split: Split) -> Iterator[pa.Table]:
        doc = self.document(split.part, split.member)
        locations = bboxes = None
        if split.locations is not None:
            locations = self._read_locations(self.document(*split.locations))
        if split.bboxes is not None:
            bboxes = self._read_bboxes(self.document(*split.bboxes))
        if self.guess:
            counts = dict(self.counts)
            try:
                yield from self._read_images(split, doc, locations, bboxes, guess=True)
                return
            except GuessFailedError:  # raised before any batch of the split was yielded
                self.counts = counts
        yield from self._read_images(split, doc, locations, bboxes, guess=False)

    def _read_images(
        self,
        split: Split,
        doc: JsonFile,
        locations: Lookup | None,
        bboxes: Lookup | None,
        *,
        guess: bool,
    ) -> Iterator[pa.Table]:
        """Read a split's document: its other arrays first, then its images, joined.

        With ``guess``, the ``images`` array is not walked in the first pass: its end is
        guessed and its records are read in the second pass as checked pieces (see
        :func:`~geoaware.sources.inat_json.decode_span`); a wrong guess raises
        :class:`~geoaware.sources.inat_json.GuessFailedError` before anything is yielded.
        """
        ctx = SplitContext(self, split, doc)
        ctx.locations, ctx.bboxes = locations, bboxes
        ctx.categories_override = self._override
        wanted = {"images", "annotations", "categories", "licenses"}
        deferred: list[Chunk] = []
        span: Chunk | None = None
        decoder: _Prefetch | None = None
        batches = _Batcher(self.batch_rows)
        try:
            with doc.open() as fh:
                scanner = JsonScanner(
                    fh,
                    doc.where,
                    wanted,
                    block_size=self.block_size,
                    chunk_bytes=self.chunk_bytes,
                    skip={"images"} if guess else (),
                )
                scanner.materialize = lambda key: key != "images" or ctx.ready(scanner.arrays)
                try:
                    for chunk in scanner:
                        if chunk.key != "images":
                            ctx.add(chunk)
                        elif not chunk.exact:
                            span = chunk
                            # decode the first image records while the rest is scanned
                            images = self._image_tables(doc, span, [])
                            decoder = _Prefetch(images, ahead=LOOKAHEAD)
                        elif ctx.ready(scanner.arrays):
                            if (batch := batches.add(ctx.images(chunk))) is not None:
                                yield batch
                        else:
                            deferred.append(chunk.ref())
                    ctx.finish_pass(scanner.arrays)
                except InputFileError as exc:
                    if span is not None:  # what followed the guessed end did not read
                        raise GuessFailedError(str(exc)) from exc
                    raise
            if decoder is None:
                decoder = _Prefetch(self._image_tables(doc, None, deferred))
            # the image records are read and decoded in a worker while the previous are joined
            for images in decoder:
                if (batch := batches.add(ctx.assemble(images))) is not None:
                    yield batch
            if (batch := batches.flush()) is not None:
                yield batch
        finally:
            if decoder is not None:
                decoder.close()
        ctx.check_references()

    def _image_tables(
        self, doc: JsonFile, span: Chunk | None, deferred: list[Chunk]
    ) -> Iterator[pa.Table]:
        """Decode the image records left for the second pass, in order."""
        spec = self.image_spec
        if span is not None:
            done = 0  # records read so far
            with doc.open() as fh:
                for piece in iter_span(fh, span, self.chunk_bytes):
                    table = decode_span(piece, spec)
                    if table is None:  # not plain records from here: walk the rest exactly
                        end = span.offset + span.size
                        with doc.open() as again:
                            stretch = scan_stretch(
                                again, doc.where, "images", piece.offset, end, done,
                                self.chunk_bytes,
                            )  # fmt: skip
                            for chunk in stretch:
                                yield decode_records(chunk, spec, doc.where)
                        return
                    done += table.num_rows
                    yield table
        elif deferred:
            with doc.open() as fh:
                for chunk in reload(fh, deferred):
                    yield decode_records(chunk, spec, doc.where)

    def _categories_override(self) -> Lookup | None:
        """Categories that replace those of the split files (read once per read)."""
        return None

    def _read_table(self, doc: JsonFile, key: str | None, spec: RecordSpec) -> pa.Table:
        """Read one array of a (small) document whole."""
        tables = []
        with doc.open() as fh:
            scanner = JsonScanner(fh, doc.where, {key})
            for chunk in scanner:
                tables.append(decode_records(chunk, spec, doc.where))
        if key not in scanner.arrays:
            what = "a top-level JSON list" if key is None else f"key {key!r}"
            raise InputFileError(doc.where, f"missing {what}", field=key)
        return concat_records(tables, spec)

    def _read_locations(self, doc: JsonFile) -> Lookup:
        table = self._read_table(doc, None, LOCATION_SPEC)
        lookup = Lookup(int_array(table.column("id")), table, doc.where, "location")
        dups = lookup.duplicates()
        if dups.size:
            if self.strict:
                first = int(dups[0])
                raise InputFileError(
                    doc.where,
                    f"image id {int(table.column('id')[first].as_py())} has a location "
                    "already (duplicate record)",
                    record=f"[{first}]",
                    field="id",
                )
            self.count("duplicate_location_records", dups.size)
        return lookup

    def _read_bboxes(self, doc: JsonFile) -> Lookup:
        table = self._read_table(doc, "annotations", BBOX_SPEC)
        lengths = pc.list_value_length(table.column("bbox")).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(lengths != 4)
        if bad.size:
            i = int(bad[0])
            raise InputFileError(
                doc.where,
                f"a box is [x, y, w, h], found {table.column('bbox')[i].as_py()!r}",
                record=f"annotations[{i}]",
                field="bbox",
            )
        flat = pc.list_flatten(table.column("bbox")).to_numpy(zero_copy_only=False)
        flat = flat.reshape(-1, 4) if flat.size else np.empty((0, 4))
        area = table.column("area").combine_chunks()
        boxes = pa.StructArray.from_arrays(
            [pa.array(flat[:, 0]), pa.array(flat[:, 1]), pa.array(flat[:, 2]),
             pa.array(flat[:, 3]), area],
            names=["x", "y", "w", "h", "area"],
        )  # fmt: skip
        ids = int_array(table.column("image_id"))
        return Lookup(ids, pa.table({"box": boxes}), doc.where, "box")

    # per-year hooks

    def _category_table(self, table: pa.Table) -> pa.Table:
        """:meth:`_categories`, plus the JSON of their ``extra`` values (``_extra``)."""
        cats = self._categories(table)
        if self.category_extra:
            cats = cats.append_column(
                "_extra", json_objects({name: cats.column(name) for name in self.category_extra})
            )
        return cats

    def _categories(self, table: pa.Table) -> pa.Table:
        """Catalog columns of each category (label_name, taxonomy, supercategory, extras)."""
        raise NotImplementedError

    def _locate(self, images: pa.Table, ctx: SplitContext) -> dict[str, pa.Array]:
        """``lat, lon, location_uncertainty_m, date, user_id`` (and ``rights_holder``)."""
        ids = int_array(images.column("id"))
        assert ctx.locations is not None or not ctx.split.locations
        n = images.num_rows
        if ctx.locations is None:
            nulls = pa.nulls(n, pa.float64())
            out = {"lat": nulls, "lon": nulls, "date": pa.nulls(n, pa.string())}
            out["user_id"] = pa.nulls(n, pa.string())
        else:
            pos, found = ctx.locations.find(ids)
            self.count("images_without_location_record", int(np.count_nonzero(~found)))
            out = {
                "lat": ctx.locations.take("lat", pos, found),
                "lon": ctx.locations.take("lon", pos, found),
                "date": ctx.locations.take("date", pos, found),
                "user_id": ctx.locations.take("user_id", pos, found),
            }
        out["location_uncertainty_m"] = pa.nulls(n, pa.float64())
        return out

    def _image_extra(self, images: pa.Table) -> dict[str, pa.Array]:
        """Per-image values for ``extra`` (category-level ones: :attr:`category_extra`)."""
        return {"rights_holder": images.column("rights_holder").combine_chunks()}


class _Batcher:
    """Gather tables into batches of at least ``rows`` rows (the last one: what is left)."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.pending: list[pa.Table] = []
        self.count = 0

    def add(self, table: pa.Table) -> pa.Table | None:
        """Keep a table; return a batch once enough rows are kept."""
        self.pending.append(table)
        self.count += table.num_rows
        return self.flush() if self.count >= self.rows else None

    def flush(self) -> pa.Table | None:
        """Return what is kept as one batch (None when nothing is)."""
        if not self.pending:
            return None
        batch = pa.concat_tables(self.pending)
        self.pending, self.count = [], 0
        return batch


class _Prefetch:
    """Run an iterator in a daemon thread, at most ``ahead`` items ahead of the consumer.

    The thread starts at once. Exceptions reach the consumer; :meth:`close` (or leaving the
    ``with`` block) stops the producer and closes its iterator.
    """

    def __init__(self, items: Iterator[pa.Table], ahead: int = 1) -> None:
        self.items = items
        self.slots: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=ahead)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, name="geoaware-inat", daemon=True)
        self.thread.start()

    def _put(self, kind: str, value: object) -> bool:
        while not self.stop.is_set():
            try:
                self.slots.put((kind, value), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self.items:
                if not self._put("item", item):
                    break
            else:
                self._put("done", None)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put("error", exc)
        finally:
            if self.stop.is_set():
                close = getattr(self.items, "close", None)
                if close is not None:
                    close()

    def __iter__(self) -> Iterator[pa.Table]:
        while True:
            kind, value = self.slots.get()
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "error":
                assert isinstance(value, BaseException)
                raise value
            else:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join()

    def __enter__(self) -> _Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _prefetch(items: Iterator[pa.Table], ahead: int = 1) -> Iterator[pa.Table]:
    """Yield ``items``, made in a background thread (started at the first ``next``)."""
    with _Prefetch(items, ahead) as prefetched:
        yield from prefetched

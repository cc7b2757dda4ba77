"""The iNaturalist species-classification competitions (2017, 2018, 2021) as catalog sources.

Released by Visipedia (``github.com/visipedia/inat_comp``) on the AWS Open Data bucket
``ml-inat-competition-datasets``; the 2017 and 2018 files are also in the older requester-pays
bucket ``inaturalist-datasets``. Each split is one COCO-style JSON document (``images``,
``categories``, ``annotations``, ``licenses``; the test split has no ``annotations``), shipped
zipped (2017) or as ``.json.tar.gz`` (2018, 2021). Quirks handled here:

* a document is read already extracted under ``root`` (``<root>/inat2017/train2017.json``, or
  one folder deeper) or, failing that, straight from its archive, streamed: the 2.7 million
  image records of iNat2021's ``train.json`` are decoded in chunks of whole records into Arrow
  columns (see :mod:`geoaware.sources.inat_json`), never into one Python object each. iNat
  writes ``images`` before the ``annotations`` they are joined with, so a first pass reads the
  other arrays while a worker thread already decodes the first image records, and the images
  are joined in a second pass (the keys may come in any order). Reading runs in background
  threads one batch ahead of the caller, so it overlaps with writing the catalog;
* 2017 and 2018 locations are separate files (``train2017_locations.json``, ...): a JSON list
  of ``{id, lat, lon, date, user_id}`` with ``null`` where unknown, joined on the image id. An
  image without a location record keeps a null location (counted
  ``images_without_location_record``); a location record whose id is no image of the split
  is an error (with ``strict=False``: counted ``locations_without_image``);
* 2017 bounding boxes (``train_2017_bboxes.json``, ``val_2017_bboxes.json``: COCO annotations
  with ``bbox [x, y, w, h]`` in pixels, ``area`` = w * h / 2 as published, ``iscrowd`` 0) become
  a list per image, in file order; an image without boxes has a null list;
* 2017 categories carry only ``name`` and ``supercategory``: ``genus`` is the name's first word,
  ``species`` its first two (null for a genus-level category), and kingdom, phylum and class
  follow from the super-category where it is one (``Aves`` is a class of Chordata, ...);
* 2018 category names are obfuscated in the split files; the un-obfuscated ``categories.json``
  replaces them when it has been fetched (otherwise counted ``categories_obfuscated``);
* 2021 images carry ``latitude``, ``longitude``, ``location_uncertainty`` (metres; null when the
  observation's location is private, and junk such as -80 or 106807033 as published: kept
  as is, counted ``location_uncertainty_invalid`` when negative, not finite or more than half
  the equator), ``date`` and ``rights_holder`` (the user); species is ``genus`` plus
  ``specific_epithet``, or the name;
* dates come as ``2017-05-01 10:23:00+00:00``, ``2011-06-03 08:32:21``, ``2010-07-17`` or
  with other offsets: all become UTC; an unparseable one is null (counted
  ``unparseable_date``) and its text is kept in ``extra["date_raw"]``; ``NaN`` coordinates are
  null (counted ``nan_coordinates``);
* ids stay the release's integers, written as strings (``image_id``); ``label`` is the
  category id and ``label_name`` its name; ``license`` is the licence's name; ``extra`` holds
  what has no column: the image's ``rights_holder`` (2017, 2018, whose ``user_id`` is the
  numeric iNaturalist user of the locations file), the category's ``common_name`` (2021) and
  ``date_raw``.

Every image row is kept. Truncated or malformed JSON, a missing key, a value of the wrong type,
a duplicate image id, or an annotation, box or location naming an image that is not in the
split raises :class:`~geoaware.errors.InputFileError` naming file, record and field.

The federated-learning tables some work derives from iNat2021 (one row per image with its user,
one row per user) are read by :func:`read_inat2021_user_images` and
:func:`read_inat2021_users`.
"""

from __future__ import annotations

import csv
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geoaware.errors import DatasetNotFoundError, InputFileError, UsageError
from geoaware.paths import mirror_dir
from geoaware.sources.base import Source
from geoaware.sources.download import RemoteFile
from geoaware.sources.inat_json import (
    BLOCK_SIZE,
    CHUNK_BYTES,
    Chunk,
    Field,
    GuessFailedError,
    JsonFile,
    JsonScanner,
    RecordSpec,
    decode_records,
    decode_span,
    iter_span,
    json_objects,
    parse_timestamps,
    reload,
    scan_stretch,
)

__all__ = [
    "Inat2017",
    "Inat2018",
    "Inat2021",
    "inat2017_category_ids",
    "read_inat2021_user_images",
    "read_inat2021_users",
]

BUCKET = "ml-inat-competition-datasets"
"""The AWS Open Data bucket of the competitions (free HTTPS and S3 access)."""
REQUESTER_PAYS_BUCKET = "inaturalist-datasets"
"""The 2020 requester-pays copy of the 2017 and 2018 files."""
MAX_UNCERTAINTY_M = 20_037_508.0
"""Half the equator: a larger location uncertainty (in metres) says nothing."""
LOOKAHEAD = 6
"""Chunks of image records decoded ahead of the join (while the rest of a file is scanned)."""

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# 2017 super-categories and the ranks they name (Mollusca is a phylum, Animalia a kingdom)
_SUPER_RANKS: dict[str, tuple[str | None, str | None, str | None]] = {
    "Plantae": ("Plantae", None, None),
    "Fungi": ("Fungi", None, None),
    "Chromista": ("Chromista", None, None),
    "Protozoa": ("Protozoa", None, None),
    "Animalia": ("Animalia", None, None),
    "Mollusca": ("Animalia", "Mollusca", None),
    "Insecta": ("Animalia", "Arthropoda", "Insecta"),
    "Arachnida": ("Animalia", "Arthropoda", "Arachnida"),
    "Aves": ("Animalia", "Chordata", "Aves"),
    "Reptilia": ("Animalia", "Chordata", "Reptilia"),
    "Mammalia": ("Animalia", "Chordata", "Mammalia"),
    "Amphibia": ("Animalia", "Chordata", "Amphibia"),
    "Actinopterygii": ("Animalia", "Chordata", "Actinopterygii"),
}
_RANKS = ("kingdom", "phylum", "class", "order", "family", "genus")


def _remote(year: int, name: str, md5: str | None = None, *, requester_pays: bool) -> RemoteFile:
    urls = [
        f"https://{BUCKET}.s3.amazonaws.com/{year}/{name}",
        f"s3://{BUCKET}/{year}/{name}",
    ]
    if requester_pays:
        urls.append(f"s3://{REQUESTER_PAYS_BUCKET}/{year}/{name}")
    return RemoteFile(path=f"inat{year}/{name}", urls=tuple(urls), md5=md5, extract=True)


# --------------------------------------------------------------------------------------------
# Record types

IMAGE_FIELDS = [
    Field("id", pa.int64(), required=True, nullable=False),
    Field("file_name", pa.string(), required=True, nullable=False),
    Field("width", pa.int32()),
    Field("height", pa.int32()),
    Field("license", pa.int64()),
    Field("rights_holder", pa.string(), loose=True),
]
IMAGE_SPEC = RecordSpec("image", IMAGE_FIELDS)
IMAGE2021_SPEC = RecordSpec(
    "image2021",
    [
        *IMAGE_FIELDS,
        Field("date", pa.string()),
        Field("latitude", pa.float64()),
        Field("longitude", pa.float64()),
        Field("location_uncertainty", pa.float64()),
    ],
)
ANNOTATION_SPEC = RecordSpec(
    "annotation",
    [
        Field("image_id", pa.int64(), required=True, nullable=False),
        Field("category_id", pa.int64(), required=True, nullable=False),
    ],
)
BBOX_SPEC = RecordSpec(
    "bbox",
    [
        Field("image_id", pa.int64(), required=True, nullable=False),
        Field("bbox", pa.list_(pa.float64()), required=True, nullable=False),
        Field("area", pa.float64()),
    ],
)
LOCATION_SPEC = RecordSpec(
    "location",
    [
        Field("id", pa.int64(), required=True, nullable=False),
        Field("lat", pa.float64()),
        Field("lon", pa.float64()),
        Field("date", pa.string()),
        Field("user_id", pa.string(), loose=True),
    ],
)
LICENSE_SPEC = RecordSpec(
    "license",
    [Field("id", pa.int64(), required=True, nullable=False), Field("name", pa.string())],
)
_CATEGORY_BASE = [
    Field("id", pa.int64(), required=True, nullable=False),
    Field("name", pa.string(), required=True, nullable=False),
    Field("supercategory", pa.string()),
]
CATEGORY2017_SPEC = RecordSpec("category2017", _CATEGORY_BASE)
CATEGORY2018_SPEC = RecordSpec(
    "category2018", [*_CATEGORY_BASE, *(Field(r, pa.string()) for r in _RANKS)]
)
CATEGORY2021_SPEC = RecordSpec(
    "category2021",
    [
        *_CATEGORY_BASE,
        *(Field(r, pa.string()) for r in _RANKS),
        Field("specific_epithet", pa.string()),
        Field("common_name", pa.string()),
        Field("image_dir_name", pa.string()),
    ],
)


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
# Lookups: sorted ids, joined with searchsorted


class _Lookup:
    """Rows keyed by an int64 id (from a file), sorted for vectorised joins."""

    def __init__(self, ids: IntArray, table: pa.Table, where: str, what: str) -> None:
        if ids.size < 2 or bool(np.all(ids[1:] >= ids[:-1])):  # the usual case: in order
            self.order = np.arange(ids.size)
            self.ids = ids
            self.table = table
        else:
            self.order = np.argsort(ids, kind="stable")
            self.ids = ids[self.order]
            self.table = table.take(pa.array(self.order)) if table.num_columns else table
        self.where = where
        self.what = what
        self._arrays: dict[str, npt.NDArray[np.int64]] = {}

    def ints(self, column: str) -> IntArray:
        """Return a (non-null) integer column as numpy, converted once."""
        if column not in self._arrays:
            self._arrays[column] = _numpy(self.table.column(column))
        return self._arrays[column]

    def find(self, keys: IntArray) -> tuple[IntArray, BoolArray]:
        """Position of each key's first row in the sorted table, and whether it has one."""
        pos = np.searchsorted(self.ids, keys)
        found = pos < self.ids.size
        found[found] = self.ids[pos[found]] == keys[found]
        return np.where(found, pos, 0), found

    def take(self, column: str, pos: IntArray, found: BoolArray) -> pa.Array:
        """Return a column's value for each found key (null where not found)."""
        if not self.ids.size:
            return pa.nulls(len(pos), self.table.schema.field(column).type)
        values = self.table.column(column).take(pa.array(pos))
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        return pc.if_else(pa.array(found), values, pa.scalar(None, values.type))

    def duplicates(self) -> IntArray:
        """Original record indices of rows whose id repeats an earlier row's."""
        if self.ids.size < 2:
            return np.empty(0, np.int64)
        dup = np.flatnonzero(self.ids[1:] == self.ids[:-1]) + 1
        return np.sort(self.order[dup])

    def missing_from(self, known_sorted: IntArray) -> IntArray:
        """Original record indices whose id is not in ``known_sorted``."""
        pos = np.searchsorted(known_sorted, self.ids)
        ok = pos < known_sorted.size
        ok[ok] = known_sorted[pos[ok]] == self.ids[ok]
        return np.sort(self.order[~ok])


def _concat(tables: list[pa.Table], spec: RecordSpec) -> pa.Table:
    if not tables:
        return spec.schema.empty_table()
    return pa.concat_tables(tables).combine_chunks()


def _numpy(column: pa.ChunkedArray | pa.Array) -> IntArray:
    return np.asarray(column.to_numpy(), dtype=np.int64)


# --------------------------------------------------------------------------------------------
# The sources


class _Inat(Source):
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
        root: str | os.PathLike[str],
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
        self._override: _Lookup | None = None
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
            return _empty_catalog()
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
        locations: _Lookup | None,
        bboxes: _Lookup | None,
        *,
        guess: bool,
    ) -> Iterator[pa.Table]:
        """Read a split's document: its other arrays first, then its images, joined.

        With ``guess``, the ``images`` array is not walked in the first pass: its end is
        guessed and its records are read in the second pass as checked pieces (see
        :func:`~geoaware.sources.inat_json.decode_span`); a wrong guess raises
        :class:`~geoaware.sources.inat_json.GuessFailedError` before anything is yielded.
        """
        ctx = _SplitContext(self, split, doc)
        ctx.locations, ctx.bboxes = locations, bboxes
        ctx.categories_override = self._override
        wanted = {"images", "annotations", "categories", "licenses"}
        deferred: list[Chunk] = []
        span: Chunk | None = None
        decoder: _Prefetch | None = None
        pending: list[pa.Table] = []
        rows = 0
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
                            table = ctx.images(chunk)
                            pending.append(table)
                            rows += table.num_rows
                            if rows >= self.batch_rows:
                                yield pa.concat_tables(pending)
                                pending, rows = [], 0
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
                table = ctx.assemble(images)
                pending.append(table)
                rows += table.num_rows
                if rows >= self.batch_rows:
                    yield pa.concat_tables(pending)
                    pending, rows = [], 0
            if pending:
                yield pa.concat_tables(pending)
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

    def _categories_override(self) -> _Lookup | None:
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
        return _concat(tables, spec)

    def _read_locations(self, doc: JsonFile) -> _Lookup:
        table = self._read_table(doc, None, LOCATION_SPEC)
        lookup = _Lookup(_numpy(table.column("id")), table, doc.where, "location")
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

    def _read_bboxes(self, doc: JsonFile) -> _Lookup:
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
        return _Lookup(_numpy(table.column("image_id")), pa.table({"box": boxes}), doc.where, "box")

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

    def _locate(self, images: pa.Table, ctx: _SplitContext) -> dict[str, pa.Array]:
        """``lat, lon, location_uncertainty_m, date, user_id`` (and ``rights_holder``)."""
        ids = _numpy(images.column("id"))
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


class _SplitContext:
    """The state of reading one split: its lookups, and the image ids seen."""

    def __init__(self, source: _Inat, split: Split, doc: JsonFile) -> None:
        self.source = source
        self.split = split
        self.doc = doc
        self.locations: _Lookup | None = None
        self.bboxes: _Lookup | None = None
        self.categories_override: _Lookup | None = None
        self.parts: dict[str, list[pa.Table]] = {
            "annotations": [],
            "categories": [],
            "licenses": [],
        }
        self.closed: set[str] = set()
        self.labels: _Lookup | None = None
        self.categories: _Lookup | None = None
        self.licenses: _Lookup | None = None
        self.ids: list[IntArray] = []

    def add(self, chunk: Chunk) -> None:
        spec = {
            "annotations": ANNOTATION_SPEC,
            "categories": self.source.category_spec,
            "licenses": LICENSE_SPEC,
        }[str(chunk.key)]
        self.parts[str(chunk.key)].append(decode_records(chunk, spec, self.doc.where))
        if chunk.last:
            self.closed.add(str(chunk.key))

    def ready(self, arrays: dict[str | None, int]) -> bool:
        """Whether the images can be joined now (what they need was before them)."""
        needed = {"categories", "licenses"} | ({"annotations"} if self.split.labelled else set())
        if not needed <= self.closed:
            return False
        if self.labels is None:
            self.finish_pass(arrays)
        return True

    def finish_pass(self, arrays: dict[str | None, int]) -> None:
        """Build the lookups once the arrays other than ``images`` are read."""
        if self.labels is not None or self.categories is not None:
            return
        where = self.doc.where
        if "images" not in arrays:
            raise InputFileError(where, "missing key 'images'", field="images")
        if self.split.labelled and "annotations" not in arrays:
            raise InputFileError(where, "missing key 'annotations'", field="annotations")
        cats = _concat(self.parts["categories"], self.source.category_spec)
        if self.categories_override is not None:
            self.categories = self.categories_override
        elif cats.num_rows or "categories" in arrays:
            big = np.flatnonzero(np.abs(_numpy(cats.column("id"))) > np.iinfo(np.int32).max)
            if big.size:
                raise InputFileError(
                    where,
                    "category id does not fit a 32-bit label",
                    record=f"categories[{int(big[0])}]",
                    field="id",
                )
            table = self.source._category_table(cats)
            self.categories = _Lookup(_numpy(cats.column("id")), table, where, "category")
            dups = self.categories.duplicates()
            if dups.size:
                raise InputFileError(
                    where, "duplicate category id", record=f"categories[{int(dups[0])}]", field="id"
                )
        elif self.split.labelled:
            raise InputFileError(where, "missing key 'categories'", field="categories")
        lic = _concat(self.parts["licenses"], LICENSE_SPEC)
        self.licenses = _Lookup(_numpy(lic.column("id")), lic.select(["name"]), where, "license")
        ann = _concat(self.parts["annotations"], ANNOTATION_SPEC)
        self.labels = _Lookup(
            _numpy(ann.column("image_id")), ann.select(["category_id"]), where, "annotation"
        )
        self.parts = {}
        if ann.num_rows and self.categories is not None:
            cat_ids = _numpy(ann.column("category_id"))
            pos = np.searchsorted(self.categories.ids, cat_ids)
            ok = pos < self.categories.ids.size
            ok[ok] = self.categories.ids[pos[ok]] == cat_ids[ok]
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                raise InputFileError(
                    where,
                    f"category id {int(cat_ids[i])} is not in 'categories'",
                    record=f"annotations[{i}]",
                    field="category_id",
                )
        elif ann.num_rows:
            raise InputFileError(where, "missing key 'categories'", field="categories")
        several = np.count_nonzero(self.labels.ids[1:] == self.labels.ids[:-1])
        self.source.count("images_with_several_labels", int(several))

    def images(self, chunk: Chunk) -> pa.Table:
        """Return the catalog rows of one chunk of image records."""
        return self.assemble(self.decode(chunk))

    def decode(self, chunk: Chunk) -> pa.Table:
        """Decode one chunk of image records."""
        return decode_records(chunk, self.source.image_spec, self.doc.where)

    def assemble(self, images: pa.Table) -> pa.Table:
        """Join decoded image records into catalog rows."""
        source = self.source
        n = images.num_rows
        ids = _numpy(images.column("id"))
        self.ids.append(ids)
        assert self.labels is not None and self.licenses is not None
        # label and category
        if self.split.labelled:
            pos, found = self.labels.find(ids)
            source.count("images_without_label", int(np.count_nonzero(~found)))
            label64 = self.labels.ints("category_id")[pos]
        else:
            found = np.zeros(n, bool)
            label64 = np.zeros(n, np.int64)
        label = pa.array(label64.astype(np.int32), pa.int32(), mask=~found)
        if self.categories is not None:
            cpos, cfound = self.categories.find(label64)
            cfound &= found
            cats = self.categories.table.take(pa.array(cpos, mask=~cfound))
        else:
            cats = pa.table({"label_name": pa.nulls(n, pa.string())})
        # location, date, user
        located = source._locate(images, self)
        lat = _finite(located["lat"], source, "nan_coordinates")
        lon = _finite(located["lon"], source, "nan_coordinates")
        no_loc = pc.or_(pc.is_null(lat), pc.is_null(lon))
        source.count("images_without_location", pc.sum(pc.cast(no_loc, pa.int64())).as_py() or 0)
        out_of_range = pc.or_(
            pc.greater(pc.abs(lat), 90.0), pc.greater(pc.abs(lon), 180.0)
        ).fill_null(False)
        source.count("location_out_of_range", _true_count(out_of_range))
        taken_at, no_date, bad_date = parse_timestamps(located["date"])
        source.count("images_without_date", no_date)
        source.count("unparseable_date", bad_date)
        user = located["user_id"]
        blank = pc.or_(pc.equal(user, ""), pc.utf8_is_space(user))
        user = pc.if_else(blank, pa.scalar(None, pa.string()), user)
        source.count("images_without_user", user.null_count)
        # licence name (the id as text when the licence list lacks it)
        lic_ids = images.column("license").combine_chunks()
        lpos, lfound = self.licenses.find(_numpy(lic_ids.fill_null(-1)))
        license_name = pc.coalesce(
            self.licenses.take("name", lpos, lfound), pc.cast(lic_ids, pa.string())
        )
        # boxes
        bboxes = _boxes(self.bboxes, ids) if self.bboxes is not None else pa.nulls(n, _BBOX_TYPE)
        if bad_date:  # keep the text of the dates that could not be parsed
            text = located["date"]
            failed = pc.and_(pc.is_null(taken_at), pc.invert(pc.is_null(text)))
            failed = pc.and_(failed, pc.invert(pc.or_(pc.equal(text, ""), pc.utf8_is_space(text))))
            date_raw = pc.if_else(failed, text, pa.scalar(None, pa.string()))
        else:
            date_raw = pa.nulls(n, pa.string())
        extra = self._extra(images, cats, date_raw)
        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            "source": pa.repeat(pa.scalar(source.name), n),
            "split": pa.repeat(pa.scalar(self.split.name), n),
            "image_id": pc.cast(images.column("id"), pa.string()),
            "file_name": images.column("file_name"),
            "lat": lat,
            "lon": lon,
            "location_uncertainty_m": located["location_uncertainty_m"],
            "taken_at": taken_at,
            "user_id": user,
            "label": label,
            "label_name": cats.column("label_name"),
        }
        for rank in ("kingdom", "phylum", "class", "order", "family", "genus", "species"):
            columns[rank] = cats.column(rank) if rank in cats.column_names else pa.nulls(n)
        columns["supercategory"] = (
            cats.column("supercategory")
            if "supercategory" in cats.column_names
            else pa.nulls(n, pa.string())
        )
        columns["width"] = images.column("width")
        columns["height"] = images.column("height")
        columns["license"] = license_name
        columns["bboxes"] = bboxes
        columns["extra"] = extra
        return pa.table(
            {k: v if v.type != pa.null() else v.cast(pa.string()) for k, v in columns.items()}
        )

    def _extra(self, images: pa.Table, cats: pa.Table, date_raw: pa.Array) -> pa.Array:
        """Return each image's ``extra`` JSON: its own values, its category's, a raw date."""
        fields = self.source.category_extra
        per_image = self.source._image_extra(images)
        if per_image or "_extra" not in cats.column_names:
            columns = dict(per_image)
            for name in fields:
                if name in cats.column_names:
                    columns[name] = cats.column(name)
            columns["date_raw"] = date_raw
            return json_objects(columns)
        # only category values: their JSON is made once per category, then taken
        extra = cats.column("_extra").combine_chunks()
        if date_raw.null_count < len(date_raw):
            mask = date_raw.is_valid()
            rows = pa.array(np.flatnonzero(mask.to_numpy(zero_copy_only=False)))
            sub: dict[str, pa.Array | pa.ChunkedArray] = {
                name: cats.column(name).take(rows) for name in fields
            }
            sub["date_raw"] = date_raw.take(rows)
            extra = pc.replace_with_mask(extra, mask, json_objects(sub))
        return extra

    def check_references(self) -> None:
        """Raise if an annotation, box or location names an image not in the split."""
        ids = np.concatenate(self.ids) if self.ids else np.empty(0, np.int64)
        if ids.size > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            ids = np.sort(ids)
        where = self.doc.where
        if ids.size > 1:
            dup = np.flatnonzero(ids[1:] == ids[:-1])
            if dup.size:
                value = int(ids[dup[0]])
                index = _first_index(self.ids, value, nth=2)
                raise InputFileError(
                    where, f"duplicate image id {value}", record=f"images[{index}]", field="id"
                )
        checks: list[tuple[_Lookup | None, str, str, str]] = [
            (self.labels, "annotations", "image_id", where)
        ]
        if self.bboxes is not None:
            checks.append((self.bboxes, "annotations", "image_id", self.bboxes.where))
        for lookup, key, fld, at in checks:
            if lookup is None:
                continue
            orphans = lookup.missing_from(ids)
            if orphans.size:
                i = int(orphans[0])
                raise InputFileError(
                    at,
                    f"image id {int(lookup.ids[np.flatnonzero(lookup.order == i)[0]])} is not "
                    f"in the images of {where}",
                    record=f"{key}[{i}]",
                    field=fld,
                )
        if self.locations is not None:
            orphans = self.locations.missing_from(ids)
            if orphans.size and self.source.strict:
                i = int(orphans[0])
                value = int(self.locations.ids[np.flatnonzero(self.locations.order == i)[0]])
                raise InputFileError(
                    self.locations.where,
                    f"image id {value} is not in the images of {where} "
                    "(use strict=False to count such records instead)",
                    record=f"[{i}]",
                    field="id",
                )
            self.source.count("locations_without_image", orphans.size)


_BBOX_TYPE = pa.list_(
    pa.struct([(c, pa.float64()) for c in ("x", "y", "w", "h", "area")])
)  # the catalog's bboxes type


def _boxes(lookup: _Lookup, ids: IntArray) -> pa.Array:
    """Each image's boxes as a list (null when it has none), in file order."""
    lo = np.searchsorted(lookup.ids, ids, side="left")
    hi = np.searchsorted(lookup.ids, ids, side="right")
    counts = hi - lo
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    total = int(offsets[-1])
    index = np.repeat(lo - offsets[:-1], counts) + np.arange(total)
    values = lookup.table.column("box").combine_chunks().take(pa.array(index, pa.int64()))
    return pa.ListArray.from_arrays(
        pa.array(offsets), values, type=_BBOX_TYPE, mask=pa.array(counts == 0)
    )


def _first_index(parts: list[IntArray], value: int, nth: int) -> int:
    """Index (over the concatenated parts) of the ``nth`` occurrence of ``value``."""
    seen = 0
    base = 0
    for part in parts:
        hits = np.flatnonzero(part == value)
        if seen + hits.size >= nth:
            return base + int(hits[nth - seen - 1])
        seen += hits.size
        base += part.size
    return -1


def _finite(values: pa.Array, source: Source, key: str) -> pa.Array:
    """NaN and infinities become null (counted under ``key``)."""
    values = values.cast(pa.float64())
    bad = pc.invert(pc.is_finite(values)).fill_null(False)
    nbad = _true_count(bad)
    if nbad:
        source.count(key, nbad)
        values = pc.if_else(bad, pa.scalar(None, pa.float64()), values)
    return values


def _true_count(mask: pa.Array | pa.ChunkedArray) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def _empty_catalog() -> pa.Table:
    return pa.table({"source": pa.array([], pa.string()), "image_id": pa.array([], pa.string())})


def _words(names: pa.Array, count: int) -> pa.Array:
    """Return the first ``count`` words of each name (null when it has fewer)."""
    parts = pc.split_pattern(names, " ")
    enough = pc.greater_equal(pc.list_value_length(parts), count)
    first = pc.list_slice(parts, 0, count)
    joined = pc.binary_join(first, " ")
    return pc.if_else(enough, joined, pa.scalar(None, pa.string()))


class Inat2017(_Inat):
    """The iNaturalist 2017 competition (5,089 categories; 579,184 train, 95,986 val images).

    Parameters
    ----------
    root
        Folder with (or to receive) the release; its files go under ``root/inat2017/``.
    splits
        Splits to read, from ``train``, ``val`` and ``test`` (default: all three).
    batch_rows
        About how many images each batch of :meth:`read_batches` holds.
    strict
        Whether a location record naming no image of its split is an error (else counted).

    Examples
    --------
    >>> source = Inat2017("data", splits=["val"])
    >>> source.fetch(source.catalog_parts)  # doctest: +SKIP
    >>> source.read().num_rows  # doctest: +SKIP
    95986
    >>> sorted(Inat2017.files)[:3]
    ['locations', 'test_images', 'test_info']
    """

    name: ClassVar[str] = "inat2017"
    description: ClassVar[str] = (
        "iNaturalist 2017: 5,089 species, 675k train/val images with location, date, user"
    )
    year: ClassVar[int] = 2017
    files: ClassVar[dict[str, RemoteFile]] = {
        "train_val_images": _remote(  # 186 GB
            2017, "train_val_images.tar.gz", "7c784ea5e424efaec655bd392f87301f",
            requester_pays=True,
        ),
        "train_val_annotations": _remote(2017, "train_val2017.zip", requester_pays=True),
        "train_bboxes": _remote(2017, "train_2017_bboxes.zip", requester_pays=True),
        "val_bboxes": _remote(2017, "val_2017_bboxes.zip", requester_pays=True),
        "locations": _remote(
            2017, "inat2017_locations.zip", "afc1956f9a100b165b89f3923d040912",
            requester_pays=True,
        ),
        "test_images": _remote(  # 53 GB
            2017, "test2017.tar.gz", "7d9b096fa1cd94d67a0fa779ea301234", requester_pays=True
        ),
        "test_info": _remote(2017, "test2017.zip", requester_pays=True),
    }  # fmt: skip
    splits: ClassVar[dict[str, Split]] = {
        "train": Split(
            "train", "train_val_annotations", "train2017.json",
            locations=("locations", "train2017_locations.json"),
            bboxes=("train_bboxes", "train_2017_bboxes.json"),
        ),
        "val": Split(
            "val", "train_val_annotations", "val2017.json",
            locations=("locations", "val2017_locations.json"),
            bboxes=("val_bboxes", "val_2017_bboxes.json"),
        ),
        "test": Split("test", "test_info", "test2017.json", labelled=False),
    }  # fmt: skip
    default_splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    catalog_parts: ClassVar[tuple[str, ...]] = (
        "train_val_annotations", "train_bboxes", "val_bboxes", "locations", "test_info"
    )  # fmt: skip
    category_spec: ClassVar[RecordSpec] = CATEGORY2017_SPEC

    def _categories(self, table: pa.Table) -> pa.Table:
        names = table.column("name").combine_chunks()
        supers = table.column("supercategory").combine_chunks()
        ranks = [_SUPER_RANKS.get(s, (None, None, None)) for s in supers.to_pylist()]
        return pa.table(
            {
                "label_name": names,
                "kingdom": pa.array([r[0] for r in ranks], pa.string()),
                "phylum": pa.array([r[1] for r in ranks], pa.string()),
                "class": pa.array([r[2] for r in ranks], pa.string()),
                "genus": _words(names, 1),
                "species": _words(names, 2),
                "supercategory": supers,
            }
        )


class Inat2018(_Inat):
    """The iNaturalist 2018 competition (8,142 species; 437,513 train, 24,426 val images).

    Category names in the split files are obfuscated; fetch the ``categories`` part for the
    real ones. Parameters as for :class:`Inat2017`.

    Examples
    --------
    >>> Inat2018.files["train_annotations"].md5
    'bfa29d89d629cbf04d826a720c0a68b0'
    """

    name: ClassVar[str] = "inat2018"
    description: ClassVar[str] = (
        "iNaturalist 2018: 8,142 species, 462k train/val images with location, date, user"
    )
    year: ClassVar[int] = 2018
    files: ClassVar[dict[str, RemoteFile]] = {
        "train_val_images": _remote(  # 120 GB
            2018, "train_val2018.tar.gz", "b1c6952ce38f31868cc50ea72d066cc3",
            requester_pays=True,
        ),
        "train_annotations": _remote(
            2018, "train2018.json.tar.gz", "bfa29d89d629cbf04d826a720c0a68b0",
            requester_pays=True,
        ),
        "val_annotations": _remote(
            2018, "val2018.json.tar.gz", "f2ed8bfe3e9901cdefceb4e53cd3775d",
            requester_pays=True,
        ),
        "locations": _remote(
            2018, "inat2018_locations.zip", "1704763abc47b75820aa5a3d93c6c0f3",
            requester_pays=True,
        ),
        "categories": _remote(2018, "categories.json.tar.gz", requester_pays=True),
        "test_images": _remote(  # 40 GB
            2018, "test2018.tar.gz", "4b71d44d73e27475eefea68886c7d1b1", requester_pays=True
        ),
        "test_info": _remote(
            2018, "test2018.json.tar.gz", "fc717a7f53ac72ed8b250221a08a4502",
            requester_pays=True,
        ),
    }  # fmt: skip
    splits: ClassVar[dict[str, Split]] = {
        "train": Split(
            "train", "train_annotations", "train2018.json",
            locations=("locations", "train2018_locations.json"),
        ),
        "val": Split(
            "val", "val_annotations", "val2018.json",
            locations=("locations", "val2018_locations.json"),
        ),
        "test": Split("test", "test_info", "test2018.json", labelled=False),
    }  # fmt: skip
    default_splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    catalog_parts: ClassVar[tuple[str, ...]] = (
        "train_annotations", "val_annotations", "locations", "categories", "test_info"
    )  # fmt: skip
    category_spec: ClassVar[RecordSpec] = CATEGORY2018_SPEC

    def _categories(self, table: pa.Table) -> pa.Table:
        names = table.column("name").combine_chunks()
        columns = {"label_name": names}
        for rank in _RANKS:
            columns[rank] = table.column(rank).combine_chunks()
        columns["species"] = names
        columns["supercategory"] = table.column("supercategory").combine_chunks()
        return pa.table(columns)

    def _categories_override(self) -> _Lookup | None:
        try:
            doc = self.document("categories", "categories.json")
        except DatasetNotFoundError:
            self.count("categories_obfuscated", 1)
            return None
        table = self._read_table(doc, None, CATEGORY2018_SPEC)
        lookup = _Lookup(
            _numpy(table.column("id")), self._category_table(table), doc.where, "category"
        )
        dups = lookup.duplicates()
        if dups.size:
            raise InputFileError(
                doc.where, "duplicate category id", record=f"[{int(dups[0])}]", field="id"
            )
        return lookup


class Inat2021(_Inat):
    """The iNaturalist 2021 competition (10,000 species; 2.7M train, 100k val images).

    Images carry their own location, location uncertainty, date and user (``rights_holder``).
    ``splits`` may include ``train_mini`` (500k images, a subset of ``train``: reading both
    gives each of those images twice). Other parameters as for :class:`Inat2017`.

    Examples
    --------
    >>> source = Inat2021("data", splits=["val"])
    >>> source.fetch(["val_annotations"])  # doctest: +SKIP
    >>> source.read().column("user_id").null_count  # doctest: +SKIP
    0
    >>> Inat2021.splits["test"].member
    'public_test.json'
    """

    name: ClassVar[str] = "inat2021"
    description: ClassVar[str] = (
        "iNaturalist 2021: 10,000 species, 2.8M train/val images with location, date, user"
    )
    year: ClassVar[int] = 2021
    files: ClassVar[dict[str, RemoteFile]] = {
        "train_images": _remote(  # 224 GB
            2021, "train.tar.gz", "e0526d53c7f7b2e3167b2b43bb2690ed", requester_pays=False
        ),
        "train_annotations": _remote(
            2021, "train.json.tar.gz", "38a7bb733f7a09214d44293460ec0021", requester_pays=False
        ),
        "train_mini_images": _remote(  # 42 GB
            2021, "train_mini.tar.gz", "db6ed8330e634445efc8fec83ae81442", requester_pays=False
        ),
        "train_mini_annotations": _remote(
            2021, "train_mini.json.tar.gz", "395a35be3651d86dc3b0d365b8ea5f92",
            requester_pays=False,
        ),
        "val_images": _remote(  # 8.4 GB
            2021, "val.tar.gz", "f6f6e0e242e3d4c9569ba56400938afc", requester_pays=False
        ),
        "val_annotations": _remote(
            2021, "val.json.tar.gz", "4d761e0f6a86cc63e8f7afc91f6a8f0b", requester_pays=False
        ),
        "test_images": _remote(  # 43 GB
            2021, "public_test.tar.gz", "7124b949fe79bfa7f7019a15ef3dbd06", requester_pays=False
        ),
        "test_info": _remote(
            2021, "public_test.json.tar.gz", "7a9413db55c6fa452824469cc7dd9d3d",
            requester_pays=False,
        ),
    }  # fmt: skip
    splits: ClassVar[dict[str, Split]] = {
        "train": Split("train", "train_annotations", "train.json"),
        "train_mini": Split("train_mini", "train_mini_annotations", "train_mini.json"),
        "val": Split("val", "val_annotations", "val.json"),
        "test": Split("test", "test_info", "public_test.json", labelled=False),
    }
    default_splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    catalog_parts: ClassVar[tuple[str, ...]] = ("train_annotations", "val_annotations", "test_info")
    image_spec: ClassVar[RecordSpec] = IMAGE2021_SPEC
    category_spec: ClassVar[RecordSpec] = CATEGORY2021_SPEC
    category_extra: ClassVar[tuple[str, ...]] = ("common_name",)

    def _categories(self, table: pa.Table) -> pa.Table:
        names = table.column("name").combine_chunks()
        columns = {"label_name": names}
        for rank in _RANKS:
            columns[rank] = table.column(rank).combine_chunks()
        binomial = pc.binary_join_element_wise(
            columns["genus"], table.column("specific_epithet").combine_chunks(), " "
        )
        columns["species"] = pc.coalesce(binomial, names)
        columns["supercategory"] = table.column("supercategory").combine_chunks()
        columns["common_name"] = table.column("common_name").combine_chunks()
        return pa.table(columns)

    def _locate(self, images: pa.Table, ctx: _SplitContext) -> dict[str, pa.Array]:
        unc = images.column("location_uncertainty").combine_chunks()
        self.count("images_without_location_uncertainty", unc.null_count)
        finite = pc.is_finite(unc)
        invalid = pc.or_(
            pc.invert(finite),
            pc.or_(pc.less(unc, 0.0), pc.greater(unc, MAX_UNCERTAINTY_M)),
        ).fill_null(False)
        self.count("location_uncertainty_invalid", _true_count(invalid))
        return {
            "lat": images.column("latitude").combine_chunks(),
            "lon": images.column("longitude").combine_chunks(),
            "location_uncertainty_m": unc,
            "date": images.column("date").combine_chunks(),
            "user_id": images.column("rights_holder").combine_chunks(),
        }

    def _image_extra(self, images: pa.Table) -> dict[str, pa.Array]:
        return {}


# --------------------------------------------------------------------------------------------
# The iNat2017 category vocabulary


def inat2017_category_ids(
    root_or_json: str | os.PathLike[str], member: str = "train2017.json"
) -> dict[str, int]:
    """Map each iNat2017 category's scientific name to its category id.

    Parameters
    ----------
    root_or_json
        An :class:`Inat2017` root (the annotations are looked up as :meth:`Inat2017.read`
        does), a COCO JSON file of the release (``train2017.json``, ``val2017.json``, a
        bounding-box file) or its zip, or a plain JSON list of ``{id, name}`` records.
    member
        The JSON file to read inside a zip.

    Raises
    ------
    InputFileError
        If the document has no categories, or a name is given two ids.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train2017.json"
    >>> _ = p.write_text('{"images": [], "categories": [{"id": 3, "name": "Vireo griseus", '
    ...                  '"supercategory": "Aves"}]}')
    >>> inat2017_category_ids(p)
    {'Vireo griseus': 3}
    """
    path = Path(root_or_json)
    if path.is_dir():
        doc = Inat2017(path).document("train_val_annotations", member)
    elif path.suffix.lower() in (".zip", ".gz", ".tgz", ".tar"):
        doc = JsonFile(path, member)
    else:
        doc = JsonFile(path)
    tables = []
    with doc.open() as fh:
        scanner = JsonScanner(fh, doc.where, {"categories", None})
        for chunk in scanner:
            tables.append(decode_records(chunk, CATEGORY2017_SPEC, doc.where))
    if "categories" not in scanner.arrays and None not in scanner.arrays:
        raise InputFileError(doc.where, "missing key 'categories'", field="categories")
    table = _concat(tables, CATEGORY2017_SPEC)
    result: dict[str, int] = {}
    for i, (name, cid) in enumerate(
        zip(table.column("name").to_pylist(), table.column("id").to_pylist(), strict=True)
    ):
        if result.get(name, cid) != cid:
            key = "categories" if "categories" in scanner.arrays else ""
            raise InputFileError(
                doc.where,
                f"name {name!r} has two ids ({result[name]} and {cid})",
                record=f"{key}[{i}]",
                field="name",
            )
        result[name] = cid
    return result


# --------------------------------------------------------------------------------------------
# Federated-learning tables derived from iNat2021

USER_IMAGE_COLUMNS = (
    "image_id", "user", "width", "height", "file_name", "phylum", "class", "order", "species"
)  # fmt: skip
"""The columns of ``training_image_info.csv`` its README names (the file has 11)."""
_USER_IMAGE_MAP = {
    "image_id": "image_id",
    "user": "user_id",
    "rights_holder": "user_id",
    "width": "width",
    "height": "height",
    "file_name": "file_name",
    "kingdom": "kingdom",
    "phylum": "phylum",
    "class": "class",
    "order": "order",
    "family": "family",
    "genus": "genus",
    "species": "species",
    "supercategory": "supercategory",
    "category_id": "label",
    "latitude": "lat",
    "longitude": "lon",
    "location_uncertainty": "location_uncertainty_m",
    "date": "taken_at",
}
_CSV_TYPES = {
    "image_id": pa.string(),
    "label": pa.int32(),
    "width": pa.int32(),
    "height": pa.int32(),
    "lat": pa.float64(),
    "lon": pa.float64(),
    "location_uncertainty_m": pa.float64(),
}


def _index_column(name: str) -> bool:
    """Tell a pandas index written by ``to_csv``: an empty or ``Unnamed: 0`` header."""
    return name.strip() == "" or name.startswith("Unnamed:")


def read_inat2021_user_images(path: str | os.PathLike[str]) -> pa.Table:
    r"""Read ``training_image_info.csv`` (one iNat2021 training image a row, with its user).

    The header must hold the columns its README names (:data:`USER_IMAGE_COLUMNS`: ``user`` is
    the JSON's ``rights_holder``, ``species`` its category ``name``); a leading pandas index
    column is dropped; ``category_id``, ``kingdom``, ``family``, ``genus`` and location columns
    are used when present; any other column goes to ``extra``.

    Returns
    -------
    pyarrow.Table
        Catalog columns: ``source`` (``inat2021``), ``split`` (``train``), ``image_id``,
        ``user_id``, ``width``, ``height``, ``file_name``, the taxonomy present, ``label_name``
        (the species name), ``genus`` (its first word unless given), ``extra``.

    Raises
    ------
    InputFileError
        For a missing column, or a value that is not a number where one is due (naming the
        line and the column).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "training_image_info.csv"
    >>> _ = p.write_text(",image_id,user,width,height,file_name,phylum,class,order,species\n"
    ...     "0,7,ann,500,375,train/x/a.jpg,Chordata,Aves,Passeriformes,Turdus migratorius\n")
    >>> t = read_inat2021_user_images(p)
    >>> t.column("user_id").to_pylist(), t.column("genus").to_pylist()
    (['ann'], ['Turdus'])
    """
    raw = _read_csv_strings(path)
    names = raw.column_names
    missing = [c for c in USER_IMAGE_COLUMNS if c not in names]
    if missing:
        raise InputFileError(
            path, f"missing column(s) {', '.join(missing)} (header: {','.join(names)})",
            record="line 1", field=missing[0],
        )  # fmt: skip
    n = raw.num_rows
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "source": pa.repeat(pa.scalar("inat2021"), n),
        "split": pa.repeat(pa.scalar("train"), n),
    }
    extra: dict[str, pa.Array | pa.ChunkedArray] = {}
    for i, name in enumerate(names):
        if i == 0 and _index_column(name):
            continue
        target = _USER_IMAGE_MAP.get(name)
        if target is None or target in columns:
            extra[name] = raw.column(name)
            continue
        values = raw.column(name)
        if target == "taken_at":
            values, _, _ = parse_timestamps(values)
        elif target in _CSV_TYPES:
            values = _cast_csv(values, _CSV_TYPES[target], path, name)
        columns[target] = values
    columns["label_name"] = columns["species"]
    if "genus" not in columns:
        columns["genus"] = _words(pc.cast(columns["species"], pa.string()).combine_chunks(), 1)
        columns["genus"] = pc.if_else(
            pc.is_null(columns["genus"]),
            pc.utf8_trim_whitespace(columns["species"]),
            columns["genus"],
        )
    if extra:
        columns["extra"] = json_objects(extra)
    return pa.table(columns)


USER_COLUMNS = ("user_id", "images", "phyla", "classes", "orders", "species")
"""The columns of :func:`read_inat2021_users`'s table."""
_USER_KEYWORDS = (
    ("images", ("image",)),
    ("phyla", ("phyl",)),
    ("classes", ("class",)),
    ("orders", ("order",)),
    ("species", ("species", "name")),
)


def read_inat2021_users(path: str | os.PathLike[str]) -> pa.Table:
    r"""Read ``images_and_categories_per_users.csv`` (one iNat2021 user a row, with totals).

    The six columns are matched by name: the user (``user`` or ``rights_holder``, else an
    unnamed first column), then the columns whose names contain ``image``, ``phyl``,
    ``class``, ``order`` and ``species`` (or ``name``): the user's number of images and of
    distinct phyla, classes, orders and species.

    Returns
    -------
    pyarrow.Table
        ``user_id`` (string) and ``images``, ``phyla``, ``classes``, ``orders``, ``species``
        (int64), in file order.

    Raises
    ------
    InputFileError
        If a column cannot be matched, or a count is not a whole number (naming the line).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "images_and_categories_per_users.csv"
    >>> _ = p.write_text("user,image_id,phylum,class,order,species\nann,12,2,3,4,9\n")
    >>> read_inat2021_users(p).to_pylist()[0]
    {'user_id': 'ann', 'images': 12, 'phyla': 2, 'classes': 3, 'orders': 4, 'species': 9}
    """
    raw = _read_csv_strings(path)
    names = raw.column_names
    chosen: dict[str, str] = {}
    for name in names:
        if name.strip().lower() in ("user", "users", "user_id", "rights_holder"):
            chosen["user_id"] = name
            break
    else:
        if names and _index_column(names[0]):
            chosen["user_id"] = names[0]
    for target, keywords in _USER_KEYWORDS:
        for name in names:
            low = name.lower()
            if name not in chosen.values() and any(k in low for k in keywords):
                chosen[target] = name
                break
    lacking = [c for c in USER_COLUMNS if c not in chosen]
    if lacking:
        raise InputFileError(
            path,
            f"no column for {', '.join(lacking)} (header: {','.join(names)})",
            record="line 1",
            field=lacking[0],
        )
    columns = {"user_id": raw.column(chosen["user_id"])}
    for target in USER_COLUMNS[1:]:
        columns[target] = _cast_csv(raw.column(chosen[target]), pa.int64(), path, chosen[target])
    return pa.table(columns)


def _read_csv_strings(path: str | os.PathLike[str]) -> pa.Table:
    """Read a CSV with every column as text (so ids and user names stay as written)."""
    header = _csv_header(path)
    names = [f"c{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InputFileError(path, f"malformed CSV ({exc})") from exc
    return table.rename_columns(header)


def _csv_header(path: str | os.PathLike[str]) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            first = fh.readline()
    except FileNotFoundError as exc:
        raise InputFileError(path, "no such file") from exc
    if not first.strip():
        raise InputFileError(path, "empty file: no header", record="line 1")
    return next(csv.reader([first.rstrip("\r\n")]))


def _cast_csv(
    values: pa.ChunkedArray | pa.Array, type_: pa.DataType, path: object, column: str
) -> pa.Array | pa.ChunkedArray:
    """Cast a text column; the first value that does not fit names its line."""
    try:
        return pc.cast(values, type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pylist = values.to_pylist()
        for i, v in enumerate(pylist):
            try:
                pc.cast(pa.array([v], pa.string()), type_)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise InputFileError(
                    path,
                    f"{v!r} is not a valid {type_}",
                    record=f"line {i + 2}",
                    field=column,
                ) from None
        raise

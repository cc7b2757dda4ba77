"""The COCO join: images + annotations + categories + locations + boxes -> catalog rows.

A split's small arrays become :class:`Lookup` s (ids sorted once, joined with
``searchsorted``); :class:`SplitContext` joins each chunk of image records against them and
checks, at the end, that every annotation, box and location names an image of the split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.errors import InputFileError
from geoaware.sources.base import Source
from geoaware.sources.csvio import json_objects
from geoaware.sources.inat.dates import parse_timestamps
from geoaware.sources.inat.records import ANNOTATION_SPEC, LICENSE_SPEC
from geoaware.sources.inat.stream import Chunk, JsonFile, RecordSpec, decode_records
from geoaware.typing import BoolArray, IntArray

if TYPE_CHECKING:
    from geoaware.sources.inat.reader import InatSource, Split


# --------------------------------------------------------------------------------------------
# Lookups: sorted ids, joined with searchsorted


class Lookup:
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
            self._arrays[column] = int_array(self.table.column(column))
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


def concat_records(tables: list[pa.Table], spec: RecordSpec) -> pa.Table:
    """Concatenate decoded record tables (an empty table of the spec when there are none)."""
    if not tables:
        return spec.schema.empty_table()
    return pa.concat_tables(tables).combine_chunks()


def int_array(column: pa.ChunkedArray | pa.Array) -> IntArray:
    """Return an integer column as an int64 numpy array."""
    return np.asarray(column.to_numpy(), dtype=np.int64)


class SplitContext:
    """The state of reading one split: its lookups, and the image ids seen."""

    def __init__(self, source: InatSource, split: Split, doc: JsonFile) -> None:
        self.source = source
        self.split = split
        self.doc = doc
        self.locations: Lookup | None = None
        self.bboxes: Lookup | None = None
        self.categories_override: Lookup | None = None
        self.parts: dict[str, list[pa.Table]] = {
            "annotations": [],
            "categories": [],
            "licenses": [],
        }
        self.closed: set[str] = set()
        self.labels: Lookup | None = None
        self.categories: Lookup | None = None
        self.licenses: Lookup | None = None
        self.ids: list[IntArray] = []

    def add(self, chunk: Chunk) -> None:
        """Decode a chunk of annotations, categories or licences, kept for the lookups."""
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
        cats = concat_records(self.parts["categories"], self.source.category_spec)
        if self.categories_override is not None:
            self.categories = self.categories_override
        elif cats.num_rows or "categories" in arrays:
            big = np.flatnonzero(np.abs(int_array(cats.column("id"))) > np.iinfo(np.int32).max)
            if big.size:
                raise InputFileError(
                    where,
                    "category id does not fit a 32-bit label",
                    record=f"categories[{int(big[0])}]",
                    field="id",
                )
            table = self.source._category_table(cats)
            self.categories = Lookup(int_array(cats.column("id")), table, where, "category")
            dups = self.categories.duplicates()
            if dups.size:
                raise InputFileError(
                    where, "duplicate category id", record=f"categories[{int(dups[0])}]", field="id"
                )
        elif self.split.labelled:
            raise InputFileError(where, "missing key 'categories'", field="categories")
        lic = concat_records(self.parts["licenses"], LICENSE_SPEC)
        self.licenses = Lookup(int_array(lic.column("id")), lic.select(["name"]), where, "license")
        ann = concat_records(self.parts["annotations"], ANNOTATION_SPEC)
        self.labels = Lookup(
            int_array(ann.column("image_id")), ann.select(["category_id"]), where, "annotation"
        )
        self.parts = {}
        if ann.num_rows and self.categories is not None:
            cat_ids = int_array(ann.column("category_id"))
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
        ids = int_array(images.column("id"))
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
        source.count("location_out_of_range", true_count(out_of_range))
        taken_at, no_date, bad_date = parse_timestamps(located["date"])
        source.count("images_without_date", no_date)
        source.count("unparseable_date", bad_date)
        user = located["user_id"]
        blank = pc.or_(pc.equal(user, ""), pc.utf8_is_space(user))
        user = pc.if_else(blank, pa.scalar(None, pa.string()), user)
        source.count("images_without_user", user.null_count)
        # licence name (the id as text when the licence list lacks it)
        lic_ids = images.column("license").combine_chunks()
        lpos, lfound = self.licenses.find(int_array(lic_ids.fill_null(-1)))
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
        checks: list[tuple[Lookup | None, str, str, str]] = [
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


def _boxes(lookup: Lookup, ids: IntArray) -> pa.Array:
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
    nbad = true_count(bad)
    if nbad:
        source.count(key, nbad)
        values = pc.if_else(bad, pa.scalar(None, pa.float64()), values)
    return values


def true_count(mask: pa.Array | pa.ChunkedArray) -> int:
    """Count the true values of a boolean mask (nulls do not count)."""
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)

"""Git-10M: ten million remote-sensing image-text pairs located by web-mercator tile.

Released with "Text2Earth" (Liu et al., 2025) as the Hugging Face dataset ``lcybuaa/Git-10M``
(licence CC-BY-NC-ND-4.0), a set of Parquet shards with the columns ``image`` (the HF ``Image``
feature: a struct of ``bytes`` and ``path``), ``img_name``, ``img_quality_score``, ``caption``,
``caption_length``, ``resolution`` and ``Google_location``. Nothing is downloaded here: fetch
the shards yourself and point ``root`` at them. Quirks handled:

* ``Google_location`` is ``"Z_X_Y"``, a web-mercator (XYZ) tile, not a point. The dataset
  card's ``XYZToLonLat(x, y, z)`` converts the tile's *north-west corner* (``x / 2**z``), so
  every image lands up to a tile's width away from where it is (about 0.8 km at zoom 15). Here
  ``lat``/``lon`` are the tile's centre in mercator space
  (:func:`geoaware.geo.tiles.tile_centers`) and the edges go to ``extra["tile_bounds"]``.
* Locations are parsed vectorised (one regular expression per record batch). A string that is
  not three non-negative integers, or whose x or y is outside ``0..2**z - 1`` (or zoom outside
  ``0..30``), raises :class:`~geoaware.errors.InputFileError` naming the shard, the 0-based row
  in the shard and the field; with ``strict=False`` the row is kept without a location and
  counted as ``malformed_location``. A null or blank location is counted as
  ``missing_location``. A null ``img_name`` is an error too; with ``strict=False`` the row's
  id becomes ``<shard>#<row>`` (counted ``missing_img_name``).
* Zoom 0 is not a place: an earlier version of the card used level 0 for images taken from
  public datasets, which have no location and no resolution. Tile ``0_0_0``'s centre is
  (0, 0), "null island", so such rows keep a null location (counted ``zoom0_no_location``).
* ``resolution`` is the image's nominal ground resolution in metres per pixel; the card gives
  it as ``2 ** (17 - Z)`` (0.5 m at zoom 18, 1 m at 17, 128 m at 10). That nominal value
  ignores the web-mercator scale factor: a 256-pixel tile really covers
  ``2 * pi * 6378137 * cos(lat) / (256 * 2**Z)`` metres per pixel (1.19 m at zoom 17 on the
  equator, 0.60 m at 60 degrees). ``ground_sample_distance_m`` is that true value at the
  tile's centre latitude, for 256-pixel tiles (``tile_size``), unless ``resolution`` says
  otherwise: a row whose resolution is ``2 ** (17 - Z) / 2**k`` holds ``256 * 2**k`` pixels
  per tile, and its GSD is scaled to match. A resolution that is no such power-of-two multiple
  is kept as published in ``extra["resolution_m"]`` and counted
  (``resolution_inconsistent``); the GSD then assumes ``tile_size``.
* Image bytes (kilobytes per row) are never read by :meth:`Git10M.read_batches`: it asks
  Parquet for the metadata columns only, one record batch at a time, so memory stays bounded.
  :meth:`Git10M.iter_images` streams ``(img_name, bytes)`` pairs when pixels are wanted; the
  column may be the HF struct or plain binary.
* The shards' file names vary between mirrors (``data/train-*.parquet``, ``*.parquet`` at the
  top), so ``root`` is searched recursively for ``*.parquet``; there is no fixed file list.

Catalog columns written: ``source`` ("git10m"), ``image_id`` and ``file_name`` (both
``img_name``), ``caption``, ``lat``/``lon`` (tile centre), ``tile_z/x/y`` (int32),
``ground_sample_distance_m`` and ``extra`` (JSON with ``tile_bounds``, ``img_quality_score``,
``caption_length``, ``resolution_m``, ``tile_size_px``, ``shard`` and ``row``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geoaware.errors import DatasetNotFoundError, InputFileError, InvalidTileError, UsageError
from geoaware.geo.tiles import MAX_ZOOM, ground_sample_distance_m, parse_tile, tile_centers
from geoaware.sources.base import Source, empty_catalog
from geoaware.sources.download import RemoteFile, Timeouts
from geoaware.typing import BoolArray, Float64Array, IntArray, PathLike

__all__ = ["HOMEPAGE", "Git10M", "TileColumns", "parse_locations", "tile_edges"]

CATALOG_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("image_id", pa.string()),
        ("file_name", pa.string()),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        ("caption", pa.string()),
        ("tile_z", pa.int32()),
        ("tile_x", pa.int32()),
        ("tile_y", pa.int32()),
        ("ground_sample_distance_m", pa.float64()),
        ("extra", pa.string()),
    ]
)
"""The columns of the catalog tables a Git-10M read yields (empty ones too)."""

HOMEPAGE = "https://huggingface.co/datasets/lcybuaa/Git-10M"
"""Where the shards are published (download them with ``huggingface-cli`` or ``git lfs``)."""

LOCATION = "Google_location"
IMAGE = "image"
NAME = "img_name"
OPTIONAL = ("caption", "img_quality_score", "caption_length", "resolution")
"""Columns read when a shard has them; ``img_name`` and ``Google_location`` are required."""

NOMINAL_ZOOM = 17
"""The card's rule: ``resolution = 2 ** (NOMINAL_ZOOM - Z)`` metres per pixel."""

_LOCATION_RE = r"^\s*(?P<z>\d{1,2})[_/](?P<x>\d{1,10})[_/](?P<y>\d{1,10})\s*$"
_MIN_TILE_PX, _MAX_TILE_PX = 64, 4096


class TileColumns(NamedTuple):
    """Parsed ``Z_X_Y`` strings, one entry per input row.

    Attributes
    ----------
    z, x, y : ndarray of int64
        The tile (0 where the row is not ``ok``).
    ok : ndarray of bool
        A valid tile at zoom 1 or more.
    missing : ndarray of bool
        Null, empty or blank string.
    zoom0 : ndarray of bool
        A valid tile at zoom 0 (no location in Git-10M).
    malformed : ndarray of bool
        Not three non-negative integers, or x, y or z out of range.
    """

    z: IntArray
    x: IntArray
    y: IntArray
    ok: BoolArray
    missing: BoolArray
    zoom0: BoolArray
    malformed: BoolArray


def parse_locations(values: pa.Array | pa.ChunkedArray) -> TileColumns:
    """Parse a string column of ``Z_X_Y`` tiles at once (``Z/X/Y`` is accepted too).

    Examples
    --------
    >>> t = parse_locations(pa.array(["15_16384_10896", "2_4_1", None, "0_0_0", "a_b_c"]))
    >>> t.z.tolist(), t.ok.tolist()
    ([15, 0, 0, 0, 0], [True, False, False, False, False])
    >>> t.malformed.tolist()
    [False, True, False, False, True]
    >>> t.missing.tolist(), t.zoom0.tolist()
    ([False, False, True, False, False], [False, False, False, True, False])
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    n = len(values)
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(values), ""), True)
    missing = np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
    parts = pc.extract_regex(values, _LOCATION_RE)
    matched = np.asarray(parts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    ints = []
    for name in ("z", "x", "y"):
        field = pc.fill_null(pc.struct_field(parts, name), "0")
        ints.append(np.asarray(field.cast(pa.int64()).to_numpy(zero_copy_only=False)))
    z, x, y = ints
    zc = np.clip(z, 0, MAX_ZOOM)
    size = np.left_shift(np.int64(1), zc)
    in_range = (z <= MAX_ZOOM) & (x < size) & (y < size)
    valid = matched & in_range
    malformed = ~missing & ~valid
    zoom0 = valid & (z == 0)
    ok = valid & (z > 0)
    zero = np.zeros(n, dtype=np.int64)
    return TileColumns(
        np.where(ok, z, zero),
        np.where(ok, x, zero),
        np.where(ok, y, zero),
        ok,
        missing,
        zoom0,
        malformed,
    )


def tile_edges(
    z: npt.ArrayLike, x: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[Float64Array, Float64Array, Float64Array, Float64Array]:
    """Vectorised tile edges: arrays of zoom, x and y to (west, south, east, north) in degrees.

    The same values as :func:`geoaware.geo.tiles.tile_bounds`, for whole columns.

    Examples
    --------
    >>> w, s, e, n = tile_edges([1], [0], [0])
    >>> float(w[0]), float(s[0]), float(e[0]), round(float(n[0]), 6)
    (-180.0, 0.0, 0.0, 85.051129)
    """
    count = np.exp2(np.asarray(z, dtype=np.float64))
    xf = np.asarray(x, dtype=np.float64)
    yf = np.asarray(y, dtype=np.float64)

    def lat(row: Float64Array) -> Float64Array:
        return np.asarray(np.degrees(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * row / count)))))

    west = xf / count * 360.0 - 180.0
    east = (xf + 1.0) / count * 360.0 - 180.0
    return west, lat(yf + 1.0), east, lat(yf)


class Git10M(Source):
    """Git-10M image-text pairs from local Parquet shards (images read only when asked).

    Parameters
    ----------
    root
        Folder searched recursively for ``*.parquet`` shards.
    strict
        Raise on a malformed ``Google_location`` (default); when False keep the row with a null
        location and count it as ``malformed_location``.
    batch_size
        Rows per Parquet record batch, and so per yielded catalog batch.
    tile_size
        Pixels per tile side when ``resolution`` equals the card's nominal ``2 ** (17 - Z)``.

    Examples
    --------
    >>> import tempfile, pyarrow.parquet as pq
    >>> root = tempfile.mkdtemp()
    >>> shard = pa.table({"img_name": ["a.png"], "Google_location": ["15_16384_10896"]})
    >>> pq.write_table(shard, f"{root}/train-00000.parquet")
    >>> row = Git10M(root).read().to_pylist()[0]
    >>> row["tile_z"], round(row["lat"], 4), round(row["lon"], 4)  # the tile's centre
    (15, 51.5053, 0.0055)
    >>> round(row["ground_sample_distance_m"], 3)  # metres per pixel, 256-pixel tile
    2.974
    >>> source = Git10M("data/git10m", strict=False)  # doctest: +SKIP
    >>> for batch in source.read_batches():  # doctest: +SKIP
    ...     print(batch.num_rows, source.counts)
    >>> name, data = next(source.iter_images())  # doctest: +SKIP
    """

    name: ClassVar[str] = "git10m"
    description: ClassVar[str] = "Git-10M remote-sensing image-text pairs (Liu et al. 2025)"
    files: ClassVar[dict[str, RemoteFile]] = {}
    homepage: ClassVar[str] = HOMEPAGE

    def __init__(
        self,
        root: PathLike,
        *,
        strict: bool = True,
        batch_size: int = 65_536,
        tile_size: int = 256,
    ) -> None:
        super().__init__(root)
        if batch_size <= 0:
            raise UsageError(f"batch_size must be positive, but given {batch_size}")
        if tile_size <= 0:
            raise UsageError(f"tile_size must be positive, but given {tile_size}")
        self.strict = strict
        self.batch_size = batch_size
        self.tile_size = tile_size

    def shards(self) -> list[Path]:
        """Return the ``*.parquet`` files under ``root``, sorted.

        Raises
        ------
        DatasetNotFoundError
            If there are none; the message says where to download them.
        """
        found = sorted(self.root.rglob("*.parquet")) if self.root.is_dir() else []
        if not found:
            raise DatasetNotFoundError(
                f"{self.name}: no *.parquet shards found under {self.root}; download them from "
                f"{HOMEPAGE} (e.g. `huggingface-cli download lcybuaa/Git-10M --repo-type "
                f"dataset --local-dir {self.root}`) and pass that folder as root"
            )
        return found

    def fetch(
        self,
        parts: list[str] | None = None,
        *,
        progress: bool = True,
        timeouts: Timeouts | None = None,
        note: Callable[[str], None] | None = None,
    ) -> dict[str, Path]:
        """Return the local shards by path relative to ``root``; nothing is downloaded.

        Git-10M is tens of gigabytes under a no-derivatives licence, so geoaware leaves the
        download to the user; this only checks that shards are there.

        Raises
        ------
        DatasetNotFoundError
            If ``root`` holds no shards (the message says where to download them).
        ValueError
            If ``parts`` names a shard that is not there.
        """
        found = {self._relative(p): p for p in self.shards()}
        if parts is None:
            return found
        unknown = [p for p in parts if p not in found]
        if unknown:
            raise UsageError(
                f"{self.name}: unknown shard(s) {', '.join(unknown)}; found: {', '.join(found)}"
            )
        return {p: found[p] for p in parts}

    def read(self) -> pa.Table:
        """Read every shard into one catalog table (not yet conformed), without the images."""
        batches = list(self.read_batches())
        if not batches:
            return empty_catalog(CATALOG_SCHEMA)
        return pa.concat_tables(batches)

    def read_batches(self) -> Iterator[pa.Table]:
        """Yield one catalog table per Parquet record batch, shard after shard.

        Only the metadata columns are read, so image bytes never enter memory. ``counts`` is
        reset when iteration starts.
        """
        self.counts = {}
        for shard in self.shards():
            parquet = _open(shard)
            names = parquet.schema_arrow.names
            for required in (NAME, LOCATION):
                if required not in names:
                    raise InputFileError(
                        shard,
                        f"no column {required!r}; found {', '.join(names)}",
                        field=required,
                    )
            columns = [NAME, LOCATION, *(c for c in OPTIONAL if c in names)]
            offset = 0
            try:
                for batch in parquet.iter_batches(batch_size=self.batch_size, columns=columns):
                    if batch.num_rows:
                        yield self._convert(batch, shard, offset)
                    offset += batch.num_rows
            except (OSError, pa.ArrowException) as exc:
                raise InputFileError(shard, f"cannot read Parquet data ({exc})") from exc

    def iter_images(self, *, batch_size: int = 256) -> Iterator[tuple[str, bytes]]:
        """Yield ``(img_name, encoded image bytes)`` for every row, streaming the shards.

        Rows whose image holds no bytes (an HF ``Image`` that only names a path) are skipped
        and counted as ``image_without_bytes``.

        Examples
        --------
        >>> for name, data in Git10M("data/git10m").iter_images():  # doctest: +SKIP
        ...     PIL.Image.open(io.BytesIO(data))
        """
        for shard in self.shards():
            parquet = _open(shard)
            names = parquet.schema_arrow.names
            for required in (NAME, IMAGE):
                if required not in names:
                    raise InputFileError(shard, f"no column {required!r}", field=required)
            try:
                for batch in parquet.iter_batches(batch_size=batch_size, columns=[NAME, IMAGE]):
                    image = batch.column(IMAGE)
                    if pa.types.is_struct(image.type):
                        if image.type.get_field_index("bytes") < 0:
                            raise InputFileError(
                                shard, "image struct has no 'bytes' field", field=IMAGE
                            )
                        image = pc.struct_field(image, "bytes")
                    ids = batch.column(NAME).to_pylist()
                    blobs = image.to_pylist()
                    for image_id, blob in zip(ids, blobs, strict=True):
                        if blob is None:
                            self.count("image_without_bytes", 1)
                            continue
                        yield str(image_id), bytes(blob)
            except (OSError, pa.ArrowException) as exc:
                raise InputFileError(
                    shard, f"cannot read image bytes ({exc})", field=IMAGE
                ) from exc

    def _convert(self, batch: pa.RecordBatch, shard: Path, offset: int) -> pa.Table:
        n = batch.num_rows
        raw = batch.column(LOCATION)
        tiles = parse_locations(raw)
        if tiles.malformed.any():
            first = int(np.flatnonzero(tiles.malformed)[0])
            if self.strict:
                value = raw[first].as_py()
                raise InputFileError(
                    shard,
                    f"{_why(value)} (pass strict=False to keep such rows without a location)",
                    record=f"row {offset + first}",
                    field=LOCATION,
                )
            self.count("malformed_location", int(tiles.malformed.sum()))
        self.count("missing_location", int(tiles.missing.sum()))
        self.count("zoom0_no_location", int(tiles.zoom0.sum()))

        ok = tiles.ok
        lat, lon = tile_centers(tiles.z, tiles.x, tiles.y)
        west, south, east, north = tile_edges(tiles.z, tiles.x, tiles.y)
        resolution = _floats(batch, "resolution", n)
        if "resolution" in batch.schema.names:
            given = np.asarray(batch.column("resolution").is_valid(), dtype=bool)
            self.count("unreadable_resolution", int((given & np.isnan(resolution)).sum()))
        tile_px = self._tile_pixels(tiles.z, resolution, ok)
        gsd = ground_sample_distance_m(lat, tiles.z) * (256.0 / tile_px)

        quality = _floats(batch, "img_quality_score", n).tolist()
        lengths = (
            batch.column("caption_length").to_pylist()
            if "caption_length" in batch.schema.names
            else [None] * n
        )
        raw_text = raw.cast(pa.string()).to_pylist() if not ok.all() else [None] * n
        shard_name = self._relative(shard)
        edges = [a.tolist() for a in (west, south, east, north)]
        pixels = tile_px.astype(np.int64).tolist()
        published = resolution.tolist()
        ok_list = ok.tolist()
        extra = []
        for i in range(n):
            item: dict[str, Any] = {}
            if ok_list[i]:
                item["tile_bounds"] = {
                    "west": edges[0][i],
                    "south": edges[1][i],
                    "east": edges[2][i],
                    "north": edges[3][i],
                }
                item["tile_size_px"] = pixels[i]
            else:
                item["google_location"] = raw_text[i]
            item["img_quality_score"] = quality[i]
            item["caption_length"] = lengths[i]
            item["resolution_m"] = published[i]
            item["shard"] = shard_name
            item["row"] = offset + i
            extra.append(orjson.dumps(item).decode())

        mask = ~ok
        names = batch.column(NAME).cast(pa.string())
        if names.null_count:
            first = names.to_pylist().index(None)
            if self.strict:
                raise InputFileError(
                    shard,
                    "img_name is null (pass strict=False to name such rows '<shard>#<row>')",
                    record=f"row {offset + first}",
                    field=NAME,
                )
            self.count("missing_img_name", names.null_count)
            fallback = pa.array([f"{shard_name}#{offset + i}" for i in range(n)], pa.string())
            names = pc.coalesce(names, fallback)
        caption = (
            batch.column("caption").cast(pa.string())
            if "caption" in batch.schema.names
            else pa.nulls(n, pa.string())
        )
        return pa.table(
            {
                "source": pa.array([self.name] * n, pa.string()),
                "image_id": names,
                "file_name": names,
                "lat": pa.array(lat, pa.float64(), mask=mask),
                "lon": pa.array(lon, pa.float64(), mask=mask),
                "caption": caption,
                "tile_z": pa.array(tiles.z.astype(np.int32), pa.int32(), mask=mask),
                "tile_x": pa.array(tiles.x.astype(np.int32), pa.int32(), mask=mask),
                "tile_y": pa.array(tiles.y.astype(np.int32), pa.int32(), mask=mask),
                "ground_sample_distance_m": pa.array(gsd, pa.float64(), mask=mask),
                "extra": pa.array(extra, pa.string()),
            },
            schema=CATALOG_SCHEMA,
        )

    def _tile_pixels(self, z: IntArray, resolution: Float64Array, ok: BoolArray) -> Float64Array:
        """Pixels per tile side: ``tile_size`` scaled by nominal / published resolution."""
        nominal = np.exp2(NOMINAL_ZOOM - z.astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            power = np.log2(nominal / resolution)
            steps = np.rint(power)
            pixels = self.tile_size * np.exp2(steps)
            usable = (
                np.isfinite(power)
                & (resolution > 0)
                & (np.abs(power - steps) < 1e-6)
                & (pixels >= _MIN_TILE_PX)
                & (pixels <= _MAX_TILE_PX)
            )
        self.count("resolution_inconsistent", int((ok & ~np.isnan(resolution) & ~usable).sum()))
        return np.where(usable, pixels, float(self.tile_size))

    def _relative(self, shard: Path) -> str:
        try:
            return shard.relative_to(self.root).as_posix()
        except ValueError:
            return str(shard)


def _open(shard: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(shard)
    except (OSError, pa.ArrowException) as exc:
        raise InputFileError(shard, f"not a readable Parquet file ({exc})") from exc


def _why(value: object) -> str:
    """Say why one ``Google_location`` value is not a usable tile."""
    if not isinstance(value, str):
        return f"{value!r} is not a 'Z_X_Y' string"
    try:
        parse_tile(value)
    except InvalidTileError as exc:
        return str(exc)
    return f"tile {value!r} is not usable"  # pragma: no cover - parse_locations agrees


def _floats(batch: pa.RecordBatch, name: str, n: int) -> Float64Array:
    """Read a numeric (or numeric string, ``"0.5m"``) column as float64, NaN where unusable."""
    if name not in batch.schema.names:
        return np.full(n, np.nan)
    column = batch.column(name)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.replace_substring_regex(
            pc.utf8_trim_whitespace(column), pattern=r"(?i)\s*m$", replacement=""
        )
        try:
            column = column.cast(pa.float64())
        except pa.ArrowInvalid:
            column = pa.array([_to_float(v) for v in column.to_pylist()], pa.float64())
    elif not pa.types.is_floating(column.type):
        column = column.cast(pa.float64())
    return np.asarray(column.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


def _to_float(value: object) -> float | None:
    try:
        return float(value) if isinstance(value, str) and value else None
    except ValueError:
        return None

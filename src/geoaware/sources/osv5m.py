"""OpenStreetView-5M: the test set's metadata, its scored selection and the quadtree cells.

OSV-5M (Astruc et al., CVPR 2024) is 5.1 million Mapillary street-level images; its metadata
is ``train.csv`` and ``test.csv`` on Hugging Face (``osv5m/osv5m``), its geocells and demo
files are in the ``gastruc/osv5m`` repository. Quirks handled here:

* ``test.csv`` is written by pandas; the published header is ``id,latitude,longitude,
  thumb_original_url,country,sequence,captured_at,lon_bin,lat_bin,cell,region,sub-region,city,
  land_cover,road_index,drive_side,climate,soil,dist_sea,quadtree_10_5000,quadtree_10_25000,
  quadtree_10_1000,quadtree_10_50000,quadtree_10_12500,quadtree_10_500,quadtree_10_2500,
  unique_region,unique_sub-region,unique_city,unique_country,creator_username,creator_id``
  (:data:`TEST_HEADER`), but copies with fewer columns circulate, so only ``id``,
  ``latitude``, ``longitude``, ``country``, ``region``, ``sub-region`` and ``city`` are
  required and every other column present goes to ``extra``, numbers as numbers;
* ids are Mapillary image ids (up to 16 digits), kept as text; the image is
  ``images/test/<id>.jpg`` once the ``images/test/NN.zip`` archives are extracted;
* ``creator_id`` went through a float column and may read ``111336221091714.0``; the ``.0`` is
  dropped for ``user_id`` (and counted: ``creator_id_float_artefacts``);
* empty cells are missing values, but the country code ``NA`` (Namibia) is a value, not a
  missing one (pandas' own reader would lose it);
* ``thumb_original_url`` is a signed Mapillary link that expires, so it stays in ``extra``
  rather than ``url``;
* ``game/select.csv`` (50 test images with the truth, two models' predictions, distances in km
  and GeoScores) starts with two pandas index columns, ``Unnamed: 0.1,Unnamed: 0``; every
  ``Unnamed: …`` column is dropped. Its ``area`` is the test set's ``sub-region``; its
  ``distance`` is the haversine distance on a 6371 km sphere and ``score`` is
  ``5000 * exp(-distance / 1492.7)`` (both reproduce to 1e-9);
* ``quadtree_10_1000.csv`` (11,399 cells) is
  ``cluster_id,min_lat,min_lon,max_lat,max_lon,mean_lat,mean_lon``: each cell's box and the
  mean of its training images, which lies inside the box.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.sources.base import Source
from geoaware.sources.csvio import json_objects, read_csv_columns
from geoaware.sources.download import RemoteFile
from geoaware.typing import PathLike

__all__ = [
    "QUADTREE_HEADER",
    "SELECT_REQUIRED",
    "TEST_HEADER",
    "TEST_REQUIRED",
    "Osv5m",
    "Osv5mSelect",
    "read_osv5m_select",
    "read_osv5m_test",
    "read_quadtree_cells",
]

TEST_HEADER = (
    "id",
    "latitude",
    "longitude",
    "thumb_original_url",
    "country",
    "sequence",
    "captured_at",
    "lon_bin",
    "lat_bin",
    "cell",
    "region",
    "sub-region",
    "city",
    "land_cover",
    "road_index",
    "drive_side",
    "climate",
    "soil",
    "dist_sea",
    "quadtree_10_5000",
    "quadtree_10_25000",
    "quadtree_10_1000",
    "quadtree_10_50000",
    "quadtree_10_12500",
    "quadtree_10_500",
    "quadtree_10_2500",
    "unique_region",
    "unique_sub-region",
    "unique_city",
    "unique_country",
    "creator_username",
    "creator_id",
)
"""The columns of the published ``test.csv`` (and ``train.csv``)."""
TEST_REQUIRED = ("id", "latitude", "longitude", "country", "region", "sub-region", "city")
"""The columns :func:`read_osv5m_test` needs; the others are optional."""
_TEST_NUMBERS = (
    "lon_bin",
    "lat_bin",
    "land_cover",
    "road_index",
    "drive_side",
    "climate",
    "soil",
    "dist_sea",
    *(name for name in TEST_HEADER if name.startswith("quadtree_")),
)
SELECT_REQUIRED = (
    "id",
    "pred_lat",
    "pred_lon",
    "true_lat",
    "true_lon",
    "city",
    "area",
    "region",
    "country",
    "distance",
    "score",
)
"""The columns :func:`read_osv5m_select` needs; the others are kept too."""
_SELECT_LEVELS = ("city", "area", "region", "country")
_SELECT_FLOATS = (
    "pred_lat",
    "pred_lon",
    "true_lat",
    "true_lon",
    "pred_lat_base",
    "pred_lon_base",
    "distance",
    "score",
    "distance_base",
    "score_base",
    *(f"accuracy_{level}{end}" for end in ("", "_base") for level in _SELECT_LEVELS),
)
QUADTREE_HEADER = ("cluster_id", "min_lat", "min_lon", "max_lat", "max_lon", "mean_lat", "mean_lon")
"""The header of the OSV-5M quadtree cell files."""

_REPO = "https://raw.githubusercontent.com/gastruc/osv5m/4e6075387ecde4255410785ffb83830c9aa099f6"
_HF = "https://huggingface.co/datasets/osv5m/osv5m/resolve/main"
_LAT, _LON = (-90.0, 90.0), (-180.0, 180.0)


def read_osv5m_test(
    source: bytes | PathLike,
    *,
    name: str = "osv5m",
    split: str = "test",
    where: str | None = None,
) -> tuple[pa.Table, dict[str, int]]:
    r"""Read OSV-5M's ``test.csv`` (or ``train.csv``) into catalog columns.

    Parameters
    ----------
    source
        The CSV's path or bytes.
    name, split
        The catalog's ``source`` and ``split`` values (``split`` also names the image folder).
    where
        The name used in errors (defaults to the path).

    Returns
    -------
    table : pyarrow.Table
        ``source, split, image_id, file_name, lat, lon, user_id, extra``; ``extra`` holds
        every other column present (country, region, sub-region, city, ...).
    counts : dict of str to int
        ``rows_without_location``, ``duplicate_image_id``, ``creator_id_float_artefacts``
        (zero counts left out).

    Raises
    ------
    InputFileError
        A required column missing, an empty id, a coordinate or number that is not a number,
        or a coordinate out of range; naming the line and the field.

    Examples
    --------
    >>> data = (b"id,latitude,longitude,country,region,sub-region,city,creator_id\n"
    ...         b"3859149887465501,-43.804769384023,-176.61409250805,NZ,Chatham Islands,,"
    ...         b"Waitangi,111336221091714.0\n")
    >>> table, counts = read_osv5m_test(data, where="test.csv")
    >>> table.column("file_name")[0].as_py(), table.column("user_id")[0].as_py()
    ('images/test/3859149887465501.jpg', '111336221091714')
    >>> table.column("extra")[0].as_py()
    '{"country":"NZ","region":"Chatham Islands","city":"Waitangi"}'
    """
    read = read_csv_columns(
        source,
        where=where,
        expected_header=TEST_REQUIRED,
        extra_columns=True,
        float_columns=("latitude", "longitude", *_TEST_NUMBERS),
        non_empty=("id",),
        ranges={"latitude": _LAT, "longitude": _LON},
    )
    raw = _drop_pandas_index(read.table)
    ids = raw.column("id")
    n = raw.num_rows
    lat, lon = raw.column("latitude"), raw.column("longitude")
    counts = {
        "rows_without_location": int(pc.sum(pc.or_(lat.is_null(), lon.is_null())).as_py() or 0),
        "duplicate_image_id": n - int(pc.count_distinct(ids).as_py()),
    }
    columns: dict[str, Any] = {
        "source": pa.array(np.full(n, name, dtype=object), pa.string()),
        "split": pa.array(np.full(n, split, dtype=object), pa.string()),
        "image_id": ids,
        "file_name": pc.binary_join_element_wise(f"images/{split}/", ids, ".jpg", ""),
        "lat": lat,
        "lon": lon,
    }
    if "creator_id" in raw.column_names:
        creator = raw.column("creator_id")
        artefact = pc.fill_null(pc.match_substring_regex(creator, r"^\d+\.0$"), False)
        counts["creator_id_float_artefacts"] = int(pc.sum(artefact).as_py() or 0)
        columns["user_id"] = pc.replace_substring_regex(creator, r"^(\d+)\.0$", r"\1")
    else:
        columns["user_id"] = pa.nulls(n, pa.string())
    skip = {"id", "latitude", "longitude", "creator_id"}
    columns["extra"] = json_objects(
        {column: raw.column(column) for column in raw.column_names if column not in skip}
    )
    return pa.table(columns), {key: value for key, value in counts.items() if value}


def read_osv5m_select(source: bytes | PathLike, *, where: str | None = None) -> pa.Table:
    r"""Read OSV-5M's ``select.csv``: 50 test images, the truth, two models' predictions.

    Parameters
    ----------
    source
        The file's path or bytes.
    where
        The name used in errors (defaults to the path).

    Returns
    -------
    pyarrow.Table
        The file's columns without the pandas index columns (``Unnamed: …``): ``id`` as text,
        coordinates, distances (km), scores and accuracies as float64, ``*_val`` as int64,
        ``*_hit`` as bool, names as strings.

    Raises
    ------
    InputFileError
        A required column missing, an empty id or true coordinate, a cell that is not a
        number, or a true coordinate out of range; naming the line and the field.

    Examples
    --------
    >>> head = "Unnamed: 0.1,Unnamed: 0," + ",".join(SELECT_REQUIRED) + ",city_hit"
    >>> row = "0,0,297765091851450,-44.19,170.15,-43.94,170.12,Pleasant Point,,Canterbury,NZ"
    >>> t = read_osv5m_select(f"{head}\n{row},28.3,4906.0,True\n".encode(), where="select.csv")
    >>> t.column_names[:3], t.column("area")[0].as_py(), t.column("city_hit")[0].as_py()
    (['id', 'pred_lat', 'pred_lon'], None, True)
    """
    levels = _SELECT_LEVELS
    read = read_csv_columns(
        source,
        where=where,
        expected_header=SELECT_REQUIRED,
        extra_columns=True,
        float_columns=_SELECT_FLOATS,
        int_columns=tuple(f"{level}_val" for level in levels),
        bool_columns=tuple(f"{level}_hit{s}" for s in ("", "_base") for level in levels),
        non_empty=("id", "true_lat", "true_lon"),
        ranges={"true_lat": _LAT, "true_lon": _LON},
    )
    return _drop_pandas_index(read.table)


def read_quadtree_cells(source: bytes | PathLike, *, where: str | None = None) -> pa.Table:
    r"""Read an OSV-5M quadtree cell file (``quadtree_10_1000.csv``).

    Parameters
    ----------
    source
        The file's path or bytes.
    where
        The name used in errors (defaults to the path).

    Returns
    -------
    pyarrow.Table
        ``cluster_id`` (int64) and ``min_lat, min_lon, max_lat, max_lon, mean_lat,
        mean_lon`` (float64), in file order.

    Raises
    ------
    InputFileError
        A wrong header or missing column, an empty or non-numeric cell, a coordinate out of
        range, a repeated ``cluster_id``, a box whose minimum exceeds its maximum or a mean
        outside its box; naming the line and the field.

    Examples
    --------
    >>> head = ",".join(QUADTREE_HEADER)
    >>> row = "0,-54.887208333333,-176.81130912065618,-21.5,-87.9,-43.53,-175.17"
    >>> read_quadtree_cells(f"{head}\n{row}\n".encode(), where="q.csv").num_rows
    1
    >>> upside_down = row.replace("-21.5", "-60.5")
    >>> read_quadtree_cells(f"{head}\n{upside_down}\n".encode(), where="q.csv")
    Traceback (most recent call last):
    ...
    geoaware.errors.InputFileError: q.csv, record line 2, field 'max_lat': -60.5 is below ...
    """
    read = read_csv_columns(
        source,
        where=where,
        expected_header=QUADTREE_HEADER,
        float_columns=QUADTREE_HEADER[1:],
        int_columns=("cluster_id",),
        non_empty=QUADTREE_HEADER,
        ranges={name: _LAT if name.endswith("_lat") else _LON for name in QUADTREE_HEADER[1:]},
    )
    table = read.table
    ids = table.column("cluster_id").to_numpy()
    _, first = np.unique(ids, return_index=True)
    if len(first) != len(ids):
        seen = np.zeros(len(ids), bool)
        seen[first] = True
        row = int(np.argmin(seen))
        raise read.error(row, "cluster_id", f"{int(ids[row])} appears twice")
    col = {name: table.column(name).to_numpy() for name in QUADTREE_HEADER[1:]}
    for axis in ("lat", "lon"):
        low, high, mean = col[f"min_{axis}"], col[f"max_{axis}"], col[f"mean_{axis}"]
        if (high < low).any():
            row = int(np.argmax(high < low))
            raise read.error(
                row, f"max_{axis}", f"{float(high[row])!r} is below min_{axis} {float(low[row])!r}"
            )
        outside = (mean < low) | (mean > high)
        if outside.any():
            row = int(np.argmax(outside))
            raise read.error(
                row,
                f"mean_{axis}",
                f"{float(mean[row])!r} is outside [{float(low[row])!r}, {float(high[row])!r}]",
            )
    return table


class Osv5m(Source):
    """The OSV-5M test set (210,122 Mapillary images) and its quadtree cells.

    Examples
    --------
    >>> import os
    >>> os.environ["GEOAWARE_MIRROR"] = "../shared/data"  # doctest: +SKIP
    >>> Osv5m("data").quadtree().num_rows  # doctest: +SKIP
    11399
    """

    name: ClassVar[str] = "osv5m"
    description: ClassVar[str] = "OpenStreetView-5M test set: Mapillary street views (2024)"
    files: ClassVar[dict[str, RemoteFile]] = {
        "test": RemoteFile(path="osv5m/test.csv", urls=(f"{_HF}/test.csv",)),
        "quadtree": RemoteFile(
            path="osv5m/quadtree_10_1000.csv",
            urls=(f"{_REPO}/utils/quadtree_10_1000.csv",),
            sha256="c08a6f4f903bdfaf94c0c73bf7ae3a00d028a939a659089789703da4d877f796",
            size=1_328_891,
        ),
    }

    def read(self) -> pa.Table:
        """Read ``test.csv`` into a catalog table; report counts in :attr:`counts`."""
        table, counts = read_osv5m_test(self.local("test"), name=self.name, split="test")
        for key, n in counts.items():
            self.count(key, n)
        return table

    def quadtree(self) -> pa.Table:
        """Read the part ``quadtree`` with :func:`read_quadtree_cells`."""
        return read_quadtree_cells(self.local("quadtree"))


class Osv5mSelect(Source):
    """50 OSV-5M test images with their truth (``select.csv`` of the OSV-5M game).

    The catalog holds the true location and, in ``extra``, the true city, area, region and
    country; the predictions and scores are read by :func:`read_osv5m_select`.

    Examples
    --------
    >>> Osv5mSelect("data").read().num_rows  # doctest: +SKIP
    50
    """

    name: ClassVar[str] = "osv5m_select"
    description: ClassVar[str] = "50 scored OSV-5M test images (the OSV-5M game's selection)"
    files: ClassVar[dict[str, RemoteFile]] = {
        "select": RemoteFile(
            path="osv5m/select.csv",
            urls=(f"{_REPO}/game/select.csv",),
            sha256="4f0e9dd0496409c2a967efb5da8ce7e9ae414e8b17f9269cfab938fa63185a6d",
            size=23_393,
        )
    }

    def read(self) -> pa.Table:
        """Read ``select.csv`` into a catalog table (truth only)."""
        scored = read_osv5m_select(self.local("select"))
        ids = scored.column("id")
        n = scored.num_rows
        self.count("duplicate_image_id", n - int(pc.count_distinct(ids).as_py()))
        return pa.table(
            {
                "source": pa.array(np.full(n, self.name, dtype=object), pa.string()),
                "split": pa.array(np.full(n, "test", dtype=object), pa.string()),
                "image_id": ids,
                "file_name": pc.binary_join_element_wise("images/", ids, ".jpg", ""),
                "lat": scored.column("true_lat"),
                "lon": scored.column("true_lon"),
                "extra": json_objects(
                    {key: scored.column(key) for key in ("city", "area", "region", "country")}
                ),
            }
        )


def _drop_pandas_index(table: pa.Table) -> pa.Table:
    """Drop the ``Unnamed: …`` columns pandas writes for an index saved by mistake."""
    return table.drop_columns([n for n in table.column_names if n.startswith("Unnamed: ")])

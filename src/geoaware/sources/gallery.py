"""GPS galleries: lists of candidate coordinates that retrieval geolocators pick from.

GeoCLIP (Vivanco Cepeda et al., NeurIPS 2023; ``VicenteVivan/geo-clip``) ships
``gps_gallery/coordinates_100K.csv``: 100,000 coordinates sampled from MP-16, of which 94,123
pairs are distinct. Quirks handled here:

* the header is ``LAT,LON`` (upper case), the values decimal degrees with up to six decimals;
* repeated coordinates are kept (the sampling repeats popular places) and counted as
  ``duplicate_coordinates`` when the gallery is read as a catalog;
* a gallery has no images: as a catalog, each row becomes one point whose ``image_id`` is its
  0-based row number and whose ``split`` is ``"gallery"``, so the catalog's maps and stats work
  on it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa

from geoaware.sources.base import Source
from geoaware.sources.csvio import read_csv_columns
from geoaware.sources.download import RemoteFile
from geoaware.typing import PathLike

__all__ = ["GALLERY_HEADER", "GpsGallery", "read_gps_gallery"]

GALLERY_HEADER = ("LAT", "LON")
"""The header of a GPS gallery CSV."""

_GEOCLIP = (
    "https://raw.githubusercontent.com/VicenteVivan/geo-clip/"
    "7a1a23b49648a5872a771cfda28490a17ab17d15/geoclip/model/gps_gallery/coordinates_100K.csv"
)


def read_gps_gallery(source: bytes | PathLike, *, where: str | None = None) -> pa.Table:
    r"""Read a ``LAT,LON`` gallery CSV into ``lat`` and ``lon`` (float64) columns.

    Parameters
    ----------
    source
        The file's path or bytes.
    where
        The name used in errors (defaults to the path).

    Returns
    -------
    pyarrow.Table
        ``lat``, ``lon`` in file order, duplicates kept.

    Raises
    ------
    InputFileError
        A wrong header or missing column, an empty cell, a cell that is not a number, or a
        coordinate out of range; naming the line and the field (``LAT`` or ``LON``).

    Examples
    --------
    >>> read_gps_gallery(b"LAT,LON\n-50.943392,-72.935664\n", where="g.csv").to_pylist()
    [{'lat': -50.943392, 'lon': -72.935664}]
    >>> read_gps_gallery(b"LAT,LON\n-50.9,-272.9\n", where="g.csv")
    Traceback (most recent call last):
    ...
    geoaware.errors.InputFileError: g.csv, record line 2, field 'LON': '-272.9' is out of ...
    """
    table = read_csv_columns(
        source,
        where=where,
        expected_header=GALLERY_HEADER,
        float_columns=GALLERY_HEADER,
        non_empty=GALLERY_HEADER,
        ranges={"LAT": (-90.0, 90.0), "LON": (-180.0, 180.0)},
    ).table
    return pa.table({"lat": table.column("LAT"), "lon": table.column("LON")})


class GpsGallery(Source):
    """GPS galleries as catalogs of points; GeoCLIP's 100K MP-16 gallery (part ``geoclip_100k``).

    Examples
    --------
    >>> import os
    >>> os.environ["GEOAWARE_MIRROR"] = "../shared/data"  # doctest: +SKIP
    >>> source = GpsGallery("data")  # doctest: +SKIP
    >>> source.read().num_rows, source.counts  # doctest: +SKIP
    (100000, {'duplicate_coordinates': 5877})
    """

    name: ClassVar[str] = "gps_gallery"
    description: ClassVar[str] = "GeoCLIP's GPS gallery: 100,000 coordinates sampled from MP-16"
    files: ClassVar[dict[str, RemoteFile]] = {
        "geoclip_100k": RemoteFile(
            path="geoclip_gallery/coordinates_100K.csv",
            urls=(_GEOCLIP,),
            sha256="3a00b1ba58f13443db726533b6399b39609e292df09d4e58792fa5949d1838b1",
            size=2_024_065,
        )
    }
    part: ClassVar[str] = "geoclip_100k"
    """The part :meth:`read` reads."""

    def read(self) -> pa.Table:
        """Read the gallery into a catalog table: one point per row, duplicates counted."""
        points = read_gps_gallery(self.local(self.part))
        n = points.num_rows
        pairs = np.column_stack([points.column(c).to_numpy() for c in ("lat", "lon")])
        rows = np.ascontiguousarray(pairs).view(np.dtype((np.void, 16)))  # one key per pair
        self.count("duplicate_coordinates", n - len(np.unique(rows)))
        return pa.table(
            {
                "source": pa.array(np.full(n, self.name, dtype=object), pa.string()),
                "split": pa.array(np.full(n, "gallery", dtype=object), pa.string()),
                "image_id": pa.array(np.arange(n)).cast(pa.string()),
                "lat": points.column("lat"),
                "lon": points.column("lon"),
            }
        )

"""The fg_geo YFCC100M subset: geotagged Flickr photos of the iNat2017 species.

Released with "Geo-Aware Networks for Fine Grained Recognition" (Chu et al., ICCVW 2019) as one
zipped CSV in the ``visipedia/fg_geo`` repository. Quirks handled here:

* read straight from the zip; the ``__MACOSX/`` entry beside the CSV is ignored;
* header ``yfcc100m ID,yfcc100m line number,label,latitude,longitude,Flickr URL,mmcommons URL``;
* ids are hex strings of 25 to 32 characters (YFCC's hash with leading zeros dropped, as in the
  mmcommons URLs), kept as strings so no id is ever read as a number;
* labels are iNat2017 scientific names with no numeric id, so ``label`` stays null and
  ``label_name`` and ``species`` hold the name (``genus`` is its first word);
* no date and no user (the catalog's ``taken_at`` and ``user_id`` stay null);
* 36,143 data rows although the dataset's README says 36,146; no trailing newline.

The mmcommons (AWS Multimedia Commons) URL goes to ``url``, since the Flickr static links
mostly no longer resolve; the Flickr URL and the YFCC line number go to ``extra``. The URL's
last part (``<id>.jpg``) goes to ``file_name``: where ``geoaware fetch-images`` puts the photo
under its ``--out`` folder and where ``geoaware embed --images`` looks for it.
"""

from __future__ import annotations

import zipfile
from typing import ClassVar

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.errors import DatasetNotFoundError, InputFileError
from geoaware.sources.base import Source
from geoaware.sources.csvio import read_csv_columns
from geoaware.sources.download import RemoteFile
from geoaware.typing import PathLike

__all__ = ["FgGeoYfcc", "parse_csv", "read_fg_geo_zip"]

_REPO = "visipedia/fg_geo"
_FILE = "data/yfcc100m_geolocated_inat2017species.csv.zip"
HEADER = [
    "yfcc100m ID",
    "yfcc100m line number",
    "label",
    "latitude",
    "longitude",
    "Flickr URL",
    "mmcommons URL",
]


class FgGeoYfcc(Source):
    """The fg_geo YFCC100M species subset (36,143 geotagged images, 4,472 species).

    Examples
    --------
    >>> import os
    >>> os.environ["GEOAWARE_MIRROR"] = "../shared/data"  # doctest: +SKIP
    >>> FgGeoYfcc("data/fg_geo_yfcc").read().num_rows  # doctest: +SKIP
    36143
    """

    name: ClassVar[str] = "fg_geo_yfcc"
    description: ClassVar[str] = "YFCC100M photos of iNat2017 species (fg_geo, Chu et al. 2019)"
    files: ClassVar[dict[str, RemoteFile]] = {
        "csv": RemoteFile(
            path="fg_geo_yfcc/yfcc100m_geolocated_inat2017species.csv.zip",
            urls=(
                f"https://github.com/{_REPO}/raw/f4ba836ea5ccfad14a22638dbb64c803252034db/{_FILE}",
                f"https://raw.githubusercontent.com/{_REPO}/master/{_FILE}",
            ),
            sha256="0a496adbb030f2c83dbf4b9ad1385a47f0c25c24f15c9e68d4b033e54e52681b",
            size=2_685_927,
        )
    }
    member: ClassVar[str] = "yfcc100m_geolocated_inat2017species.csv"

    def __init__(self, root: PathLike, inat2017: PathLike | None = None) -> None:
        super().__init__(root)
        self.inat2017 = inat2017
        """iNat2017 categories (a root, a COCO JSON or its zip) to map names to label ids."""

    def read(self) -> pa.Table:
        """Read the zipped CSV into a catalog table.

        Where the iNat2017 categories are available (``inat2017`` given, or the release
        fetched under the same root), ``label`` gets the iNat2017 category id of each
        species; names without one are counted as ``labels_without_inat2017_id``.
        """
        table = self._read_csv()
        ids = self._category_ids()
        if ids is None:
            return table
        mapped = pd.Series(table.column("label_name").to_numpy(zero_copy_only=False)).map(ids)
        self.count("labels_without_inat2017_id", int(mapped.isna().sum()))
        label = pa.array(mapped.to_numpy(dtype="float64"), mask=mapped.isna().to_numpy())
        return table.append_column("label", label.cast(pa.int32()))

    def _category_ids(self) -> dict[str, int] | None:
        from geoaware.sources.inat import inat2017_category_ids

        if self.inat2017 is not None:
            return inat2017_category_ids(self.inat2017)
        try:
            return inat2017_category_ids(self.root)
        except (DatasetNotFoundError, InputFileError, FileNotFoundError):
            return None  # the categories are optional

    def _read_csv(self) -> pa.Table:
        return read_fg_geo_zip(self.local("csv"), self.member)


def read_fg_geo_zip(path: PathLike, member: str | None = None) -> pa.Table:
    r"""Read the fg_geo CSV inside a zip (``member``, or else the one CSV it holds).

    The ``__MACOSX/`` entries beside the CSV are ignored.

    Raises
    ------
    InputFileError
        If the file is not a readable zip, lacks ``member`` (or holds no or several CSVs when
        none is named), or the CSV is not the fg_geo CSV (naming the line and column).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "fg.csv.zip"
    >>> with zipfile.ZipFile(p, "w") as zf:
    ...     zf.writestr("fg.csv", ",".join(HEADER) + "\nab,7,Vireo griseus,29.5,-94.3,f,m")
    >>> read_fg_geo_zip(p).column("species").to_pylist()
    ['Vireo griseus']
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]
            if member is None:
                csvs = [n for n in names if n.endswith(".csv")]
                if len(csvs) != 1:
                    raise InputFileError(path, f"zip should hold one CSV, found {csvs}")
                member = csvs[0]
            elif member not in names:
                raise InputFileError(path, f"zip holds no {member} (found {names})")
            data = zf.read(member)
    except zipfile.BadZipFile as exc:
        raise InputFileError(path, f"not a readable zip file ({exc})") from exc
    return parse_csv(data, where=f"{path}:{member}")


def parse_csv(data: bytes, where: str) -> pa.Table:
    r"""Parse the fg_geo CSV bytes into catalog columns; ``where`` names the file in errors.

    Examples
    --------
    >>> text = ",".join(HEADER) + "\nab12,7,Vireo griseus,29.5,-94.3,http://f/x.jpg,https://m/x.jpg"
    >>> t = parse_csv(text.encode(), "demo.csv")
    >>> t.column("image_id").to_pylist(), t.column("genus").to_pylist()
    (['ab12'], ['Vireo'])
    >>> t.column("file_name").to_pylist()
    ['x.jpg']
    """
    raw = read_csv_columns(
        data,
        where=where,
        expected_header=HEADER,
        float_columns=["latitude", "longitude"],
        int_columns=["yfcc100m line number"],
        non_empty=["yfcc100m ID"],
        ranges={"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0)},
    ).table
    lat, lon = raw.column("latitude"), raw.column("longitude")
    line = raw.column("yfcc100m line number")
    names = raw.column("label")
    urls = raw.column("mmcommons URL")
    # the URL's last part, as fetch-images saves it; null for an empty URL
    file_names = pc.struct_field(pc.extract_regex(urls, r"/(?P<name>[^/]+)$"), [0])
    extra = [
        orjson.dumps({"flickr_url": f, "yfcc_line": n}).decode()
        for f, n in zip(raw.column("Flickr URL").to_pylist(), line.to_pylist(), strict=True)
    ]
    return pa.table(
        {
            "source": pa.array(np.full(raw.num_rows, "fg_geo_yfcc", dtype=object), pa.string()),
            "image_id": raw.column("yfcc100m ID"),
            "file_name": file_names,
            "url": urls,
            "lat": lat,
            "lon": lon,
            "label_name": names,
            "species": names,
            "genus": pc.list_element(pc.split_pattern(names, " ", max_splits=1), 0),
            "extra": pa.array(extra, pa.string()),
        }
    )

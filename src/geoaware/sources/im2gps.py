r"""Im2GPS, Im2GPS3k, YFCC26k, YFCC4k and MP-16: the Places365 metadata CSVs and S2 cells.

The "Geolocation Estimation of Photos using a Hierarchical Model and Scene Classification"
line of work (Müller-Budack et al., ECCV 2018; ``TIBHannover/GeoEstimation``) publishes its
training set (MP-16) and test sets as one CSV each, all with the header
``IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban``,
plus the adaptive S2 cell partitions built from MP-16. Quirks handled here:

* Im2GPS ``IMG_ID`` is ``<photo>_<secret>_<server>_<owner>.jpg``, 177 of the 237 names with a
  ``<Place>_<NNNNN>_`` prefix (``Ankara_00003_601190107_9f05b2251e_1292_8504005@N07.jpg``);
  for those rows ``AUTHOR`` is wrong (it holds ``<secret>_<server>_<owner>``). The user is
  therefore always the owner token of a name of that shape, and ``AUTHOR`` only where the
  name has no owner (YFCC26k and MP-16: ``hh/hh/<photo id>.jpg``; YFCC4k: ``<photo id>.jpg``).
  Rows where ``AUTHOR`` disagrees are counted (``author_differs_from_file_name``) and keep
  the published value in ``extra``.
* ``image_id`` is the Flickr photo id (the same photo keeps it whatever the file is called:
  the GeoEstimation demo names Im2GPS images without the place prefix); ``file_name`` is
  ``IMG_ID`` as published, the key of the image on disk and of the cell mapping. Names of
  the Flickr shape also give ``url`` (``live.staticflickr.com/<server>/<photo>_<secret>.jpg``).
* Floats carry binary artefacts (``40.445378999999996``, ``4.680233274316492e-06``); they are
  parsed as the exact doubles Python's ``float`` gives.
* The scene labels (``S3_Label``, ``S16_Label``, ``S365_Label``: Places365 hierarchy levels)
  and probabilities go to ``extra`` under their published names.
* The Im2GPS files and the cell files end their lines with CRLF; the YFCC26k file with LF.
* Cell files (``cells_50_{5000,2000,1000}.csv``: the coarse, middle and fine partitions) start
  with two comment lines, ``num_images: 4723695`` and ``min_concept_probability: ---``, then
  ``class_label,hex_id,imgs_per_cell,latitude_mean,longitude_mean`` where ``hex_id`` is an S2
  cell token whose level varies from cell to cell (2 to 30).
* ``yfcc_25600_places365_mapping_h3.json`` maps each YFCC26k ``IMG_ID`` (with ``/`` written
  ``\/``) to ``[coarse, middle, fine]`` class labels of the three partitions; "h3" means
  three levels, not Uber's H3.

Rows are never dropped: rows without a location or a user are kept and counted.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.errors import InputFileError, InvalidCoordinateError, UsageError
from geoaware.geo import s2_cell_center, s2_level
from geoaware.sources.base import Source
from geoaware.sources.csvio import json_objects, read_csv_columns
from geoaware.sources.download import RemoteFile
from geoaware.typing import IntArray, PathLike

__all__ = [
    "CELL_HEADER",
    "PARTITIONS",
    "PLACES365_HEADER",
    "S2_CELL_FILES",
    "Im2gps",
    "Im2gps3k",
    "Mp16",
    "Places365Source",
    "Yfcc4k",
    "Yfcc26k",
    "read_cell_mapping",
    "read_places365",
    "read_s2_cells",
]

PLACES365_HEADER = (
    "IMG_ID",
    "AUTHOR",
    "LAT",
    "LON",
    "S3_Label",
    "S16_Label",
    "S365_Label",
    "Prob_indoor",
    "Prob_natural",
    "Prob_urban",
)
"""The header of every Places365 metadata CSV."""
CELL_HEADER = ("class_label", "hex_id", "imgs_per_cell", "latitude_mean", "longitude_mean")
"""The header of the S2 cell files (after their two comment lines)."""
CELL_COMMENTS = ("num_images", "min_concept_probability")

Partition = Literal["coarse", "middle", "fine"]
PARTITIONS: dict[Partition, str] = {
    "coarse": "cells_50_5000",
    "middle": "cells_50_2000",
    "fine": "cells_50_1000",
}
"""The three MP-16 partitions (at most 5000 / 2000 / 1000 images per cell) by name."""

_FLICKR_NAME = (
    r"(?:^|_)(?P<photo>\d+)_(?P<secret>[0-9a-f]+)_(?P<server>\d+)_(?P<owner>\d+@N\d+)\.\w+$"
)
_PLAIN_NAME = r"^(?:[0-9a-f]{2}/[0-9a-f]{2}/)?(?P<photo>\d+)\.\w+$"
_SCENE_COLUMNS = PLACES365_HEADER[4:]

# TIBHannover/GeoEstimation rewrote its history in 2026 (master now points at an empty tree);
# the commit below is still served. ShramanPramanick/Transformer_Based_Geo-localization holds
# byte-identical copies of the Im2GPS files and the YFCC26k files.
_TIB = "https://raw.githubusercontent.com/TIBHannover/GeoEstimation"
_TIB_COMMIT = "c84b20bb10cb44326874216dc72aeeafc5a4ae4f"
_TIB_DEMO_COMMIT = "704d075cf9bdd7745477aeac01dc32d15bfb74fa"  # the pytorch line
_TIB_RELEASES = "https://github.com/TIBHannover/GeoEstimation/releases/download"
_G3 = "https://huggingface.co/Jia-py/G3-checkpoint/resolve/main"  # not verified: see Yfcc4k
_SHRAMAN = (
    "https://raw.githubusercontent.com/ShramanPramanick/Transformer_Based_Geo-localization/"
    "0964b7d107a1f010bd0614d1390a0238960692bb/resources"
)

_CELL_SHA256 = {
    "cells_50_5000": ("244cf95f1ac532e98e7df2e621b172dd88a79091269f822eff13b8a305b54146", 177_214),
    "cells_50_2000": ("22846fa076dbe0464d2ffd457ecb563da1b85fe2f20aa6053d3d147a9fa74c79", 389_388),
    "cells_50_1000": ("1c4c8d3d9663ed40f62e1051ef2a2299a6745a68c5a59c675b24ff95add17b05", 701_771),
}
S2_CELL_FILES: dict[str, RemoteFile] = {
    f"cells_{partition}": RemoteFile(
        path=f"im2gps/geo-cells/{stem}.csv",
        urls=(f"{_TIB}/{_TIB_COMMIT}/geo-cells/{stem}.csv",),
        sha256=_CELL_SHA256[stem][0],
        size=_CELL_SHA256[stem][1],
    )
    for partition, stem in PARTITIONS.items()
}
"""The three S2 cell files, as parts ``cells_coarse``, ``cells_middle``, ``cells_fine``."""


def read_places365(
    source: bytes | PathLike,
    *,
    name: str,
    split: str,
    where: str | None = None,
) -> tuple[pa.Table, dict[str, int]]:
    r"""Read a Places365 metadata CSV (Im2GPS, Im2GPS3k, YFCC26k, YFCC4k, MP-16).

    Parameters
    ----------
    source
        The CSV's path or bytes.
    name
        The catalog's ``source`` value.
    split
        The catalog's ``split`` value.
    where
        The name used in errors (defaults to the path).

    Returns
    -------
    table : pyarrow.Table
        Catalog columns ``source, split, image_id, file_name, url, lat, lon, user_id,
        extra``.
    counts : dict of str to int
        ``author_differs_from_file_name``, ``rows_without_location``, ``rows_without_user``
        (zero counts left out).

    Raises
    ------
    InputFileError
        Wrong header, missing column, a coordinate or label that is not a number, a
        coordinate out of range, an empty ``IMG_ID``; naming the line and the field.

    Examples
    --------
    >>> head = ",".join(PLACES365_HEADER)
    >>> row = "Ankara_00003_601190107_9f05b2251e_1292_8504005@N07.jpg,9f05b2251e_1292_8504005@N07"
    >>> data = f"{head}\r\n{row},39.92,32.85,2,15,227,0.05,0.01,0.94\r\n".encode()
    >>> table, counts = read_places365(data, name="im2gps", split="test", where="demo.csv")
    >>> table.column("image_id")[0].as_py(), table.column("user_id")[0].as_py(), counts
    ('601190107', '8504005@N07', {'author_differs_from_file_name': 1})
    """
    read = read_csv_columns(
        source,
        where=where,
        expected_header=PLACES365_HEADER,
        float_columns=("LAT", "LON", "Prob_indoor", "Prob_natural", "Prob_urban"),
        int_columns=("S3_Label", "S16_Label", "S365_Label"),
        non_empty=("IMG_ID",),
        ranges={"LAT": (-90.0, 90.0), "LON": (-180.0, 180.0)},
    )
    raw = read.table
    names = raw.column("IMG_ID")
    author = raw.column("AUTHOR")
    flickr = pc.extract_regex(names, _FLICKR_NAME)
    photo = pc.coalesce(
        pc.struct_field(flickr, "photo"),
        pc.struct_field(pc.extract_regex(names, _PLAIN_NAME), "photo"),
    )
    owner = pc.struct_field(flickr, "owner")
    user = pc.coalesce(owner, author)
    differs = pc.fill_null(pc.not_equal(owner, author), False)
    url = pc.binary_join_element_wise(
        "https://live.staticflickr.com/",
        pc.struct_field(flickr, "server"),
        "/",
        pc.struct_field(flickr, "photo"),
        "_",
        pc.struct_field(flickr, "secret"),
        ".jpg",
        "",
    )
    extra: dict[str, Any] = {column: raw.column(column) for column in _SCENE_COLUMNS}
    extra["AUTHOR"] = pc.if_else(differs, author, pa.scalar(None, pa.string()))
    lat, lon = raw.column("LAT"), raw.column("LON")
    n = raw.num_rows
    counts = {
        "author_differs_from_file_name": pc.sum(differs).as_py() or 0,
        "rows_without_location": pc.sum(pc.or_(lat.is_null(), lon.is_null())).as_py() or 0,
        "rows_without_user": user.null_count,
    }
    table = pa.table(
        {
            "source": pa.array(np.full(n, name, dtype=object), pa.string()),
            "split": pa.array(np.full(n, split, dtype=object), pa.string()),
            "image_id": pc.coalesce(photo, names),
            "file_name": names,
            "url": url,
            "lat": lat,
            "lon": lon,
            "user_id": user,
            "extra": json_objects(extra),
        }
    )
    return table, {key: int(value) for key, value in counts.items() if value}


class Places365Source(Source):
    """A release whose catalog is one Places365 metadata CSV (the part ``meta``).

    Subclasses set ``name``, ``description``, ``files`` and ``split``.
    """

    split: ClassVar[str]

    def read(self) -> pa.Table:
        """Read the metadata CSV into a catalog table; report counts in :attr:`counts`."""
        table, counts = read_places365(self.local("meta"), name=self.name, split=self.split)
        for key, n in counts.items():
            self.count(key, n)
        return table


class Im2gps(Places365Source):
    """The Im2GPS test set (Hays & Efros, CVPR 2008): 237 Flickr photos.

    Examples
    --------
    >>> import os
    >>> os.environ["GEOAWARE_MIRROR"] = "../shared/data"  # doctest: +SKIP
    >>> source = Im2gps("data")  # doctest: +SKIP
    >>> source.read().num_rows, source.counts  # doctest: +SKIP
    (237, {'author_differs_from_file_name': 177})
    """

    name: ClassVar[str] = "im2gps"
    description: ClassVar[str] = "Im2GPS test set, 237 Flickr photos (Hays & Efros 2008)"
    split: ClassVar[str] = "test"
    files: ClassVar[dict[str, RemoteFile]] = {
        "meta": RemoteFile(
            path="im2gps/meta/im2gps_places365.csv",
            urls=(
                f"{_TIB}/{_TIB_COMMIT}/meta/im2gps_places365.csv",
                f"{_SHRAMAN}/im2gps_places365.csv",
            ),
            sha256="213c4d27f805c616948d582f20fe2bd4ab0c7a1ab5af08bee05f6481b0c7077f",
            size=39_788,
        ),
        # Per-image predictions of the published base (M, f*) scene model on Im2GPS, with the
        # photos' Flickr URL, author and licence: what `geoaware demo` scores.
        "demo_predictions": RemoteFile(
            path="im2gps/demo/scene_M_p_im2gps.csv",
            urls=(f"{_TIB}/{_TIB_DEMO_COMMIT}/demo/data/scene_M_p_im2gps.csv",),
            sha256="39876302c06c5bd6557a98d469deecbf5e5d95c1112819d9f64fe044a9d820c5",
            size=44_391,
        ),
    }
    catalog_parts: ClassVar[tuple[str, ...] | None] = ("meta",)


class Im2gps3k(Places365Source):
    """The Im2GPS3k test set (Vo et al., ICCV 2017): 2,997 Flickr photos.

    Examples
    --------
    >>> Im2gps3k("data").read().num_rows  # doctest: +SKIP
    2997
    """

    name: ClassVar[str] = "im2gps3k"
    description: ClassVar[str] = "Im2GPS3k test set, 2,997 Flickr photos (Vo et al. 2017)"
    split: ClassVar[str] = "test"
    files: ClassVar[dict[str, RemoteFile]] = {
        "meta": RemoteFile(
            path="im2gps/meta/im2gps3k_places365.csv",
            urls=(
                f"{_TIB}/{_TIB_COMMIT}/meta/im2gps3k_places365.csv",
                f"{_SHRAMAN}/im2gps3k_places365.csv",
            ),
            sha256="0f243d1e23cbb4ab8f0a83fa045ebae642dac2458fb94a1540db6f5f5588031d",
            size=435_645,
        )
    }


class Yfcc26k(Places365Source):
    """YFCC26k (YFCC-Val26k): 25,600 YFCC100M photos, the MP-16 line's validation set.

    The part ``mapping`` assigns each image its class in the three S2 partitions
    (:meth:`cell_mapping`).

    Examples
    --------
    >>> source = Yfcc26k("data")  # doctest: +SKIP
    >>> source.read().num_rows, source.cell_mapping().num_rows  # doctest: +SKIP
    (25600, 25600)
    """

    name: ClassVar[str] = "yfcc26k"
    description: ClassVar[str] = "YFCC26k validation set, 25,600 YFCC100M photos (MP-16 line)"
    split: ClassVar[str] = "val"
    files: ClassVar[dict[str, RemoteFile]] = {
        "meta": RemoteFile(
            path="yfcc25600/yfcc25600_places365.csv",
            urls=(
                f"{_SHRAMAN}/yfcc25600_places365.csv",
                f"{_TIB_RELEASES}/pytorch/yfcc25600_places365.csv",
            ),
            sha256="a49363ef7d87e8a2484169a2b0971f07355743d0741b9fcff7ffc8441afd397d",
            size=3_260_924,
        ),
        "mapping": RemoteFile(
            path="yfcc25600/yfcc_25600_places365_mapping_h3.json",
            urls=(f"{_SHRAMAN}/yfcc_25600_places365_mapping_h3.json",),
            sha256="8777e70ae3b4ef3b4b69e630d06a03f84458ca592275753a337265ed6ca9c69a",
            size=1_051_601,
        ),
    }

    def cell_mapping(self) -> pa.Table:
        """Read the part ``mapping`` with :func:`read_cell_mapping`."""
        return read_cell_mapping(self.local("mapping"))


class Yfcc4k(Places365Source):
    """YFCC4k (Vo et al., ICCV 2017): 4,536 YFCC100M test photos, names ``<photo id>.jpg``.

    The metadata is distributed with the G3 checkpoints on Hugging Face; the URL below
    follows that repository's layout and could not be checked against a published checksum.

    Examples
    --------
    >>> Yfcc4k("data").read().column("split")[0].as_py()  # doctest: +SKIP
    'test'
    """

    name: ClassVar[str] = "yfcc4k"
    description: ClassVar[str] = "YFCC4k test set, YFCC100M photos (Vo et al. 2017)"
    split: ClassVar[str] = "test"
    files: ClassVar[dict[str, RemoteFile]] = {
        "meta": RemoteFile(
            path="yfcc4k/yfcc4k_places365.csv",
            urls=(f"{_G3}/yfcc4k_places365.csv",),
        )
    }


class Mp16(Places365Source):
    """MP-16: 4.7 million geotagged YFCC100M photos, the training set of the line.

    Besides the metadata (part ``meta``, one row per image, ``split`` "train"), it holds the
    three S2 partitions built from it (parts ``cells_coarse``, ``cells_middle``,
    ``cells_fine``; read them with :meth:`cells`).

    Examples
    --------
    >>> Mp16("data").cells("coarse").num_rows  # doctest: +SKIP
    3298
    """

    name: ClassVar[str] = "mp16"
    description: ClassVar[str] = "MP-16 training set, 4.7M YFCC100M photos, and its S2 cells"
    split: ClassVar[str] = "train"
    files: ClassVar[dict[str, RemoteFile]] = {
        "meta": RemoteFile(
            path="mp16/mp16_places365.csv",
            urls=(f"{_TIB_RELEASES}/v1.0/mp16_places365.csv",),
        ),
        **S2_CELL_FILES,
    }

    def cells(self, partition: Partition) -> pa.Table:
        """Read one S2 partition (``"coarse"``, ``"middle"`` or ``"fine"``)."""
        if partition not in PARTITIONS:
            raise UsageError(f"partition must be one of {', '.join(PARTITIONS)}: {partition!r}")
        return read_s2_cells(self.local(f"cells_{partition}"))


def read_s2_cells(source: bytes | PathLike, *, where: str | None = None) -> pa.Table:
    r"""Read an S2 cell partition file (``cells_50_{5000,2000,1000}.csv``).

    Parameters
    ----------
    source
        The file's path or bytes.
    where
        The name used in errors (defaults to the path).

    Returns
    -------
    pyarrow.Table
        ``class_label`` (int64), ``token`` (the S2 cell token), ``level`` (int8),
        ``images`` (int64, images of MP-16 in the cell), ``lat_mean``, ``lon_mean`` (their
        mean location), ``center_lat``, ``center_lon`` (the cell's centre). The two comment
        lines are in the schema metadata: ``num_images`` and ``min_concept_probability``
        (bytes, as published).

    Raises
    ------
    InputFileError
        Missing or different comment lines, a wrong header, a bad number, a mean out of
        range, a token that is not an S2 cell, or a repeated class label or token.

    Examples
    --------
    >>> data = (b"num_images: 4723695\r\nmin_concept_probability: ---\r\n"
    ...         + ",".join(CELL_HEADER).encode()
    ...         + b"\r\n0,8747c,827,38.67121908948002,-109.49742631801699\r\n")
    >>> cells = read_s2_cells(data, where="cells.csv")
    >>> cells.column("level")[0].as_py(), round(cells.column("center_lat")[0].as_py(), 2)
    (7, 38.7)
    >>> cells.schema.metadata[b"num_images"]
    b'4723695'
    """
    read = read_csv_columns(
        source,
        where=where,
        expected_header=CELL_HEADER,
        float_columns=("latitude_mean", "longitude_mean"),
        int_columns=("class_label", "imgs_per_cell"),
        non_empty=CELL_HEADER,
        ranges={"latitude_mean": (-90.0, 90.0), "longitude_mean": (-180.0, 180.0)},
        comment_lines=2,
        comment_prefixes=tuple(f"{key}:" for key in CELL_COMMENTS),
    )
    metadata = {
        key.encode(): line.partition(":")[2].strip().encode()
        for key, line in zip(CELL_COMMENTS, read.comments, strict=True)
    }
    if not metadata[b"num_images"].isdigit():
        raise InputFileError(
            read.where,
            f"num_images {metadata[b'num_images'].decode()!r} is not a count",
            record="line 1",
        )
    raw = read.table
    tokens = raw.column("hex_id").to_pylist()
    for column in ("class_label", "hex_id"):
        values = raw.column(column).to_numpy(zero_copy_only=False)
        row = _first_duplicate(values)
        if row is not None:
            raise read.error(row, column, f"{raw.column(column)[row].as_py()!r} appears twice")
    levels = np.empty(len(tokens), np.int8)
    centers = np.empty((len(tokens), 2), np.float64)
    for i, token in enumerate(tokens):
        try:
            levels[i] = s2_level(token)
            centers[i] = s2_cell_center(token)
        except InvalidCoordinateError as exc:
            raise read.error(i, "hex_id", str(exc)) from None
    table = pa.table(
        {
            "class_label": raw.column("class_label"),
            "token": raw.column("hex_id"),
            "level": pa.array(levels),
            "images": raw.column("imgs_per_cell"),
            "lat_mean": raw.column("latitude_mean"),
            "lon_mean": raw.column("longitude_mean"),
            "center_lat": pa.array(centers[:, 0]),
            "center_lon": pa.array(centers[:, 1]),
        }
    )
    return table.replace_schema_metadata(metadata)


def read_cell_mapping(
    source: bytes | PathLike,
    *,
    partition_sizes: tuple[int, int, int] | None = None,
    where: str | None = None,
) -> pa.Table:
    r"""Read an image-to-cells mapping (``yfcc_25600_places365_mapping_h3.json``).

    Parameters
    ----------
    source
        The JSON file's path or bytes: an object mapping each ``IMG_ID`` to
        ``[coarse, middle, fine]`` class labels.
    partition_sizes
        The number of cells of each partition (e.g. ``(3298, 7202, 12893)``); when given,
        every label must be below it.
    where
        The name used in errors (defaults to the path).

    Returns
    -------
    pyarrow.Table
        ``file_name`` (the ``IMG_ID``, as in the catalog), ``coarse``, ``middle``, ``fine``
        (int32), in file order.

    Raises
    ------
    InputFileError
        Malformed JSON, an entry that is not three integers, or a negative or too large
        label; naming the image (``record``) and the partition (``field``).

    Examples
    --------
    >>> t = read_cell_mapping(b'{"45\\/77\\/3228511372.jpg": [981, 1170, 1241]}', where="m")
    >>> t.to_pylist()
    [{'file_name': '45/77/3228511372.jpg', 'coarse': 981, 'middle': 1170, 'fine': 1241}]
    """
    if isinstance(source, bytes | bytearray):
        data, where = bytes(source), where or "<bytes>"
    else:
        with open(source, "rb") as fh:
            data = fh.read()
        where = where or str(source)
    levels = ("coarse", "middle", "fine")
    try:
        mapping = msgspec.json.decode(data, type=dict[str, tuple[int, int, int]])
    except msgspec.ValidationError:  # a subclass of DecodeError: the JSON is fine, its shape not
        raise _mapping_error(msgspec.json.decode(data), where, levels) from None
    except msgspec.DecodeError as exc:
        raise InputFileError(where, f"not valid JSON ({exc})") from None
    names = list(mapping)
    labels: IntArray = np.array(list(mapping.values()), np.int64).reshape(-1, 3)
    limits = np.array(partition_sizes if partition_sizes else (np.iinfo(np.int32).max,) * 3)
    bad = (labels < 0) | (labels >= limits)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise InputFileError(
            where,
            f"class label {int(labels[row, col])} outside 0..{int(limits[col]) - 1}",
            record=f"key {names[row]!r}",
            field=levels[col],
        )
    columns: dict[str, pa.Array] = {"file_name": pa.array(names, pa.string())}
    for col, level in enumerate(levels):
        columns[level] = pa.array(labels[:, col].astype(np.int32))
    return pa.table(columns)


def _mapping_error(mapping: object, where: str, levels: tuple[str, ...]) -> InputFileError:
    """Find the entry that failed the typed decode (the failure path only)."""
    if not isinstance(mapping, dict):
        return InputFileError(where, f"expected a JSON object, found {type(mapping).__name__}")
    for key, value in mapping.items():
        if not isinstance(value, list) or len(value) != 3:
            return InputFileError(
                where, f"{value!r} is not a [coarse, middle, fine] list", record=f"key {key!r}"
            )
        for level, label in zip(levels, value, strict=True):
            if type(label) is not int:
                return InputFileError(
                    where, f"{label!r} is not a class label", record=f"key {key!r}", field=level
                )
    return InputFileError(where, "not an image -> [coarse, middle, fine] mapping")


def _first_duplicate(values: npt.NDArray[Any]) -> int | None:
    """Return the row of the first value seen before, or None."""
    _, first = np.unique(values, return_index=True)
    if len(first) == len(values):
        return None
    seen = np.zeros(len(values), bool)
    seen[first] = True
    return int(np.argmin(seen))

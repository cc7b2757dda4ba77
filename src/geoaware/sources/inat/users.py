"""The federated-learning tables some work derives from iNat2021, read back.

``training_image_info.csv`` (one image a row, with its user) and
``images_and_categories_per_users.csv`` (one user a row, with totals): the files
:func:`geoaware.construct.stats.write_inat_user_tables` writes, and published ones.
"""

from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geoaware.errors import InputFileError
from geoaware.sources.csvio import json_objects
from geoaware.sources.inat.dates import parse_timestamps
from geoaware.sources.inat.records import words
from geoaware.typing import PathLike

__all__ = [
    "USER_COLUMNS",
    "USER_IMAGE_COLUMNS",
    "read_inat2021_user_images",
    "read_inat2021_users",
]

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


def read_inat2021_user_images(path: PathLike) -> pa.Table:
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
        columns["genus"] = words(pc.cast(columns["species"], pa.string()).combine_chunks(), 1)
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


def read_inat2021_users(path: PathLike) -> pa.Table:
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


def _read_csv_strings(path: PathLike) -> pa.Table:
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


def _csv_header(path: PathLike) -> list[str]:
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

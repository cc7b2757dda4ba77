"""Reading geolocation prediction files: columns found by name, bad rows reported, footers skipped.

A prediction file is a CSV or Parquet with true and predicted coordinates, or with predicted
coordinates keyed by image id (the truth then comes from a catalog). Published result files
spell the columns many ways and often end with a few summary rows; both are handled here:

* columns are given in the order ``true_lat,true_lon,pred_lat,pred_lon`` or detected from the
  usual spellings (``gt_lat/gt_long/predicted_lat/predicted_long``,
  ``true_lat/true_lon/pred_lat/pred_lon``, ``lat/lon`` with ``pred_`` prefixes, ...);
* a cell that does not parse as a coordinate (or is out of range) is reported with its line
  number and the row left out, or is an error with ``strict=True``;
* a trailing summary block (after a blank line, or introduced by a row of names; see
  :mod:`geoaware.predictions.geo_footer`) is cut off before the rows are parsed, and its figures
  are kept for comparison; a trailing block of rows whose coordinates do not parse and whose
  first cell is a summary word (``mean``, ``median``, ``accuracy``, ...) or empty is skipped too;
* an image id that appears again is scored once (its first row) and the later rows are listed,
  or is an error with ``strict=True``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geoaware.errors import EvaluationError, InputFileError
from geoaware.predictions.geo_footer import Footer, split_footer
from geoaware.typing import BoolArray, Float64Array, PathLike

__all__ = ["GeoPredictions", "SkippedRow", "detect_columns", "read_geo_predictions"]


TRUE_LAT = ("true_lat", "gt_lat", "lat", "latitude", "true_latitude", "gt_latitude", "lat_true")
TRUE_LON = (
    "true_lon", "true_long", "true_lng", "gt_long", "gt_lon", "gt_lng", "lon", "long", "lng",
    "longitude", "true_longitude", "gt_longitude", "lon_true",
)  # fmt: skip
PRED_LAT = ("pred_lat", "predicted_lat", "pred_latitude", "predicted_latitude", "lat_pred")
PRED_LON = (
    "pred_lon", "pred_long", "pred_lng", "predicted_long", "predicted_lon", "predicted_lng",
    "pred_longitude", "predicted_longitude", "lon_pred",
)  # fmt: skip
ID_COLUMNS = ("image_id", "id", "img_id", "image", "img_name", "imgid")
_FOOTER_WORD = re.compile(
    r"^\s*(mean|median|avg|average|total|sum|summary|acc\w*|std|count|n|overall|all|result\w*)"
    r"\b",
    re.IGNORECASE,
)


@dataclass
class SkippedRow:
    """A row left out of the evaluation.

    Attributes
    ----------
    record : str
        ``line N`` for a CSV (the header is line 1), ``row N`` for Parquet.
    field : str
        The column at fault.
    value : str
        The cell as written.
    reason : str
        Why it was left out.
    """

    record: str
    field: str
    value: str
    reason: str


@dataclass
class GeoPredictions:
    """True and predicted coordinates read from one file.

    Attributes
    ----------
    source : str
        The file read.
    true_lat, true_lon, pred_lat, pred_lon : numpy.ndarray
        Degrees, one entry per kept row.
    image_id : numpy.ndarray or None
        Ids of the kept rows, when the file has an id column.
    columns : tuple of str
        The four columns used (true lat, true lon, predicted lat, predicted lon).
    extra : pandas.DataFrame
        The file's other columns for the kept rows, and the truth catalog's scalar columns
        when one was given (for ``--by`` on a column).
    skipped : list of SkippedRow
        Rows left out (bad cells), with line numbers.
    footer_rows : int
        Summary rows recognised at the end and skipped.
    footer : Footer or None
        The summary block cut from the end of the file, with the figures it states.
    """

    source: str
    true_lat: Float64Array
    true_lon: Float64Array
    pred_lat: Float64Array
    pred_lon: Float64Array
    image_id: npt.NDArray[Any] | None
    columns: tuple[str, str, str, str]
    extra: pd.DataFrame
    skipped: list[SkippedRow] = field(default_factory=list)
    footer_rows: int = 0
    footer: Footer | None = None

    @property
    def n(self) -> int:
        """Rows kept."""
        return int(self.true_lat.size)

    @property
    def skipped_rows(self) -> int:
        """Data rows left out (a row with several bad fields counts once; footers apart)."""
        return len({s.record for s in self.skipped})

    def skip_reasons(self) -> dict[str, int]:
        """Rows left out per reason (a row counts under its first reason)."""
        first: dict[str, str] = {}
        for s in self.skipped:
            first.setdefault(s.record, s.reason)
        counts: dict[str, int] = {}
        for reason in first.values():
            counts[reason] = counts.get(reason, 0) + 1
        return counts


def _find(names: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


def detect_columns(
    names: list[str], where: str = "<file>"
) -> tuple[str | None, str | None, str, str]:
    """Find (true lat, true lon, predicted lat, predicted lon) among column names.

    True columns may be absent (None) when the truth comes from a catalog.

    Examples
    --------
    >>> detect_columns(["img_id", "gt_lat", "predicted_lat", "gt_long", "predicted_long"])
    ('gt_lat', 'gt_long', 'predicted_lat', 'predicted_long')
    >>> detect_columns(["id", "pred_lat", "pred_lon"])
    (None, None, 'pred_lat', 'pred_lon')
    """
    pred_lat, pred_lon = _find(names, PRED_LAT), _find(names, PRED_LON)
    if pred_lat is None or pred_lon is None:
        raise InputFileError(
            where,
            f"no predicted latitude/longitude columns among {names}; name them with "
            "--columns true_lat,true_lon,pred_lat,pred_lon",
            record="line 1",
        )
    return _find(names, TRUE_LAT), _find(names, TRUE_LON), pred_lat, pred_lon


def _read_table(path: Path) -> tuple[pa.Table, str, Footer | None]:
    """Read every column as written (strings for CSV).

    Returns the table, the record unit and the summary block cut from the end of a CSV.
    """
    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path), "row", None
        data = path.read_bytes()
    except (OSError, pa.ArrowException) as exc:
        raise InputFileError(path, f"not a readable CSV or Parquet file ({exc})") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    body, footer = split_footer(data)
    try:
        first = body.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
        names = next(csv.reader([first]), [])
        if not [n for n in names if n.strip()]:
            raise InputFileError(path, "no header row (the file is empty)", record="line 1")
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise InputFileError(
                path, f"column {dup!r} appears twice in the header", record="line 1"
            )
        table = pacsv.read_csv(
            io.BytesIO(body),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
        return table, "line", footer
    except (UnicodeDecodeError, csv.Error, pa.ArrowException) as exc:
        raise InputFileError(path, f"not a readable CSV file ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _to_float(column: pa.ChunkedArray) -> tuple[Float64Array, BoolArray]:
    """Parse a column to float64; return values and a mask of cells that did not parse."""
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
        return values, np.isnan(values)
    try:
        values = np.asarray(
            pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
        return values, np.isnan(values)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        series = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        return values, np.isnan(values)


def read_geo_predictions(
    path: PathLike,
    columns: tuple[str, str, str, str] | None = None,
    *,
    truth: pa.Table | None = None,
    strict: bool = False,
) -> GeoPredictions:
    r"""Read a geolocation prediction file (CSV or Parquet).

    Parameters
    ----------
    path
        The file.
    columns
        ``(true_lat, true_lon, pred_lat, pred_lon)`` column names; detected when None.
    truth
        A catalog table: true coordinates are taken from it by ``image_id`` when the file has
        none (or always, when given).
    strict
        Raise :class:`InputFileError` on the first bad row instead of reporting and skipping.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "pred.csv"
    >>> _ = p.write_text("id,true_lat,true_lon,pred_lat,pred_lon\n"
    ...                  "a,48.85,2.35,48.80,2.30\nb,oops,0,1,1\nmean,,,,\n")
    >>> preds = read_geo_predictions(p)
    >>> preds.n, [(s.record, s.field) for s in preds.skipped], preds.footer_rows
    (1, [('line 3', 'true_lat')], 1)
    """
    src = Path(path)
    table, unit, footer_block = _read_table(src)
    names = table.column_names
    t_lat: str | None
    t_lon: str | None
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise InputFileError(
                src, f"columns {missing} not in the file (it has {names})", record="line 1"
            )
        t_lat, t_lon, p_lat, p_lon = columns
    else:
        t_lat, t_lon, p_lat, p_lon = detect_columns(names, str(src))
    id_col = _find(names, ID_COLUMNS)
    values: dict[str, Float64Array] = {}
    bad: dict[str, BoolArray] = {}
    for name in (c for c in (t_lat, t_lon, p_lat, p_lon) if c is not None):
        values[name], bad[name] = _to_float(table.column(name))
    n_rows = table.num_rows
    any_bad = np.zeros(n_rows, dtype=bool)
    for mask in bad.values():
        any_bad |= mask
    footer = _footer_length(table, any_bad)
    keep = ~any_bad
    keep[n_rows - footer :] = False
    for col, limit in ((t_lat, 90.0), (t_lon, 180.0), (p_lat, 90.0), (p_lon, 180.0)):
        if col is not None:
            with np.errstate(invalid="ignore"):
                bad[col] |= np.abs(values[col]) > limit
    offset = 2 if unit == "line" else 0
    line_of = _line_numbers(offset)
    skipped: list[SkippedRow] = []
    body = np.arange(n_rows - footer)
    for name in (c for c in (t_lat, t_lon, p_lat, p_lon) if c is not None):
        rows = body[bad[name][: n_rows - footer]]
        for row in rows[:1000].tolist():
            cell = table.column(name)[row].as_py()
            reason = "not a number" if np.isnan(values[name][row]) else "out of range"
            if strict:
                raise InputFileError(
                    src, f"{cell!r} is {reason}", record=f"{unit} {line_of(row)}", field=name
                )
            skipped.append(SkippedRow(f"{unit} {line_of(row)}", name, str(cell), reason))
        keep[rows] = False
    ids = (
        np.asarray(table.column(id_col).to_numpy(zero_copy_only=False)).astype(str)
        if id_col is not None
        else None
    )
    if ids is not None:
        keep = _drop_duplicates(src, ids, keep, skipped, unit, line_of, strict, id_col or "")
    catalog_rows = None
    if truth is not None or t_lat is None or t_lon is None:
        own_truth = t_lat is not None and t_lon is not None
        true_lat, true_lon, keep, catalog_rows = _truth_from_catalog(
            src, ids, truth, keep, skipped, unit, line_of, strict, own_truth
        )
    else:
        true_lat, true_lon = values[t_lat][keep], values[t_lon][keep]
    skipped.sort(key=lambda s: int(s.record.split()[1]))
    if not keep.any():
        _refuse_empty(src, n_rows - footer, skipped)
    used = {c for c in (t_lat, t_lon, p_lat, p_lon, id_col) if c is not None}
    extra_cols = [c for c in names if c not in used and not c.startswith("Unnamed:")]
    extra = (
        table.select(extra_cols).filter(pa.array(keep)).to_pandas()
        if extra_cols
        else pd.DataFrame(index=pd.RangeIndex(int(keep.sum())))
    )
    if catalog_rows is not None and truth is not None:
        _add_catalog_columns(extra, truth, catalog_rows)
    return GeoPredictions(
        source=str(src),
        true_lat=true_lat,
        true_lon=true_lon,
        pred_lat=values[p_lat][keep],
        pred_lon=values[p_lon][keep],
        image_id=None if ids is None else ids[keep],
        columns=(t_lat or "catalog.lat", t_lon or "catalog.lon", p_lat, p_lon),
        extra=extra,
        skipped=skipped,
        footer_rows=footer + (footer_block.rows if footer_block else 0),
        footer=footer_block,
    )


def _line_numbers(offset: int) -> Any:
    """Map a table row to its record number (the header is line 1 of a CSV)."""
    return lambda row: int(row) + offset


def _refuse_empty(src: Path, rows: int, skipped: list[SkippedRow]) -> None:
    if rows == 0:
        raise InputFileError(src, "has no prediction rows (only a header, or nothing)")
    reasons: dict[str, int] = {}
    for s in skipped:
        reasons.setdefault(s.reason, 0)
        reasons[s.reason] += 1
    said = ", ".join(f"{n:,} {r}" for r, n in reasons.items())
    first = ", ".join(s.record for s in skipped[:3])
    raise InputFileError(src, f"none of its {rows:,} rows can be scored ({said}; first at {first})")


def _drop_duplicates(
    src: Path,
    ids: npt.NDArray[Any],
    keep: BoolArray,
    skipped: list[SkippedRow],
    unit: str,
    line_of: Any,
    strict: bool,
    id_col: str,
) -> BoolArray:
    """Score each id once (its first kept row); list the later rows, or refuse them."""
    rows = np.flatnonzero(keep)
    kept_ids = pd.Index(ids[rows])
    if kept_ids.is_unique:
        return keep
    codes, _ = pd.factorize(kept_ids)
    first_pos = np.full(codes.max() + 1, -1, dtype=np.int64)
    first_pos[codes[::-1]] = np.arange(codes.size - 1, -1, -1)  # first occurrence wins
    again = np.flatnonzero(kept_ids.duplicated(keep="first"))
    if strict:
        r = int(rows[again[0]])
        f = int(rows[first_pos[codes[again[0]]]])
        raise InputFileError(
            src,
            f"image id {str(ids[r])!r} appears again (first at {unit} {line_of(f)}); "
            f"{again.size:,} repeated rows in all",
            record=f"{unit} {line_of(r)}",
            field=id_col,
        )
    for j in again[:1000].tolist():
        r, f = int(rows[j]), int(rows[first_pos[codes[j]]])
        skipped.append(
            SkippedRow(
                f"{unit} {line_of(r)}",
                id_col,
                str(ids[r]),
                f"duplicate image id (scored once, at {unit} {line_of(f)})",
            )
        )
    out = keep.copy()
    out[rows[again]] = False
    return out


def _add_catalog_columns(extra: pd.DataFrame, truth: pa.Table, rows: npt.NDArray[np.intp]) -> None:
    """Add the catalog's scalar columns for the kept rows (for --by supercategory, ...)."""
    taken = pa.array(rows)
    for name in truth.column_names:
        kind = truth.schema.field(name).type
        if name in extra.columns or name in ("lat", "lon", "image_id", "extra"):
            continue
        if pa.types.is_string(kind) or pa.types.is_integer(kind):
            extra[name] = truth.column(name).take(taken).to_numpy(zero_copy_only=False)


def _footer_length(table: pa.Table, bad: BoolArray) -> int:
    """Count trailing unparseable rows whose first cell is empty or a summary word."""
    first = table.column(0)
    n = 0
    for row in range(table.num_rows - 1, -1, -1):
        if not bad[row]:
            break
        text = first[row].as_py()
        text = "" if text is None else str(text)
        if text.strip() and not _FOOTER_WORD.match(text):
            break
        n += 1
    return n


def _truth_from_catalog(
    src: Path,
    ids: npt.NDArray[Any] | None,
    truth: pa.Table | None,
    keep: BoolArray,
    skipped: list[SkippedRow],
    unit: str,
    line_of: Any,
    strict: bool = False,
    own_truth: bool = False,
) -> tuple[Float64Array, Float64Array, BoolArray, npt.NDArray[np.intp]]:
    if truth is None:
        raise InputFileError(src, "the file has no true coordinates: pass --truth CATALOG")
    if ids is None:
        raise InputFileError(src, f"no image id column (one of {ID_COLUMNS}) to join the truth on")
    if not {"image_id", "lat", "lon"} <= set(truth.column_names):
        raise EvaluationError(
            f"the truth catalog needs image_id, lat and lon columns; it has {truth.column_names}"
        )
    truth_ids = truth.column("image_id").to_numpy(zero_copy_only=False).astype(str)
    index = pd.Index(truth_ids)
    if not index.is_unique:
        raise InputFileError("<truth catalog>", "image_id is not unique", field="image_id")
    pos = index.get_indexer(ids)
    lat = np.asarray(truth.column("lat").to_numpy(zero_copy_only=False), dtype=np.float64)
    lon = np.asarray(truth.column("lon").to_numpy(zero_copy_only=False), dtype=np.float64)
    unknown = keep & (pos < 0)
    if keep.any() and unknown.sum() == keep.sum():
        hint = (
            "; the file carries its own true coordinates: leave out --truth to use them"
            if own_truth
            else ""
        )
        raise EvaluationError(
            f"{src}: no image id joins the truth catalog ({int(keep.sum()):,} rows); "
            f"ids in the file, e.g. {_examples(ids[keep])}; in the catalog, e.g. "
            f"{_examples(truth_ids)}{hint}"
        )
    if strict and unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise InputFileError(
            src,
            f"image id {str(ids[row])!r} is not in the truth catalog "
            f"({int(unknown.sum()):,} such rows)",
            record=f"{unit} {line_of(row)}",
            field="image_id",
        )
    for row in np.flatnonzero(unknown)[:1000].tolist():
        skipped.append(
            SkippedRow(
                f"{unit} {line_of(row)}", "image_id", str(ids[row]), "not in the truth catalog"
            )
        )
    keep = keep & (pos >= 0)
    no_loc = np.zeros_like(keep)
    no_loc[keep] = np.isnan(lat[pos[keep]]) | np.isnan(lon[pos[keep]])
    if strict and no_loc.any():
        row = int(np.flatnonzero(no_loc)[0])
        raise InputFileError(
            src,
            f"the truth has no location for image id {str(ids[row])!r}",
            record=f"{unit} {line_of(row)}",
            field="image_id",
        )
    for row in np.flatnonzero(no_loc)[:1000].tolist():
        skipped.append(
            SkippedRow(f"{unit} {line_of(row)}", "image_id", str(ids[row]), "truth has no location")
        )
    keep &= ~no_loc
    return lat[pos[keep]], lon[pos[keep]], keep, pos[keep]


def _examples(values: npt.NDArray[Any], n: int = 3) -> str:
    return ", ".join(repr(str(v)) for v in values[:n]) or "(none)"

"""Catalog validation: every check vectorised, every finding counted with examples.

A check finds rows that are wrong (``error``: the value cannot be right) or incomplete
(``warning``: the value is missing or suspicious). Each finding names the column, counts the
rows, and gives up to five examples with their row number, ``image_id`` and value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.typing import BoolArray, Float64Array

__all__ = ["Finding", "ValidationReport", "validate_table"]

Severity = Literal["error", "warning"]

MAX_UNCERTAINTY_M = 20_037_508.0
"""Half the Earth's circumference: no location can be less certain than that."""
EARLIEST_PHOTO = np.datetime64("1826-01-01")
"""The first surviving photograph; earlier capture dates are junk."""


@dataclass
class Finding:
    """One check's result.

    Attributes
    ----------
    check : str
        Short name, e.g. ``"lat_out_of_range"``.
    severity : {"error", "warning"}
        Errors make ``validate --strict`` fail.
    column : str
        The column the check looks at.
    count : int
        Rows found.
    description : str
        What the check looks for.
    examples : list of dict
        Up to five ``{"row", "image_id", "column", "value"}`` records.
    """

    check: str
    severity: Severity
    column: str
    count: int
    description: str
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ValidationReport:
    """All findings for one catalog.

    Attributes
    ----------
    path : str
        The catalog validated.
    rows : int
        Its number of rows.
    findings : list of Finding
        One per check that found something.
    error_rows, warning_rows : int
        Distinct rows flagged by at least one error (warning) check; a row flagged by several
        checks counts once here and once in each finding's ``count``.
    """

    path: str
    rows: int
    findings: list[Finding]
    error_rows: int = 0
    warning_rows: int = 0

    @property
    def n_errors(self) -> int:
        """Distinct rows flagged by error checks."""
        return self.error_rows

    @property
    def n_warnings(self) -> int:
        """Distinct rows flagged by warning checks."""
        return self.warning_rows

    @property
    def ok(self) -> bool:
        """True when no error check found anything."""
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return {
            "path": self.path,
            "rows": self.rows,
            "ok": self.ok,
            "errors": self.n_errors,
            "warnings": self.n_warnings,
            "findings": [asdict(f) for f in self.findings],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (np.generic,)):
        return _jsonable(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class _Checker:
    def __init__(self, table: pa.Table, max_examples: int) -> None:
        self.table = table
        self.max_examples = max_examples
        self.findings: list[Finding] = []
        self.ids = table.column("image_id")
        self.flagged = {
            "error": np.zeros(table.num_rows, dtype=bool),
            "warning": np.zeros(table.num_rows, dtype=bool),
        }

    def floats(self, name: str) -> Float64Array:
        """Column as float64 with nulls as NaN (nulls are told apart by :meth:`nulls`)."""
        return np.asarray(self.table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

    def nulls(self, name: str) -> BoolArray:
        return np.asarray(pc.is_null(self.table.column(name)).to_numpy(zero_copy_only=False))

    def add(
        self,
        check: str,
        severity: Severity,
        column: str,
        mask: BoolArray,
        description: str,
        values: npt.NDArray[Any] | None = None,
    ) -> None:
        count = int(mask.sum())
        if not count:
            return
        self.flagged[severity] |= mask
        rows = np.flatnonzero(mask)[: self.max_examples]
        column_values = self.table.column(column) if column in self.table.column_names else None
        examples = []
        for row in rows.tolist():
            if values is not None:
                value = values[row]
            elif column_values is not None:
                value = column_values[row].as_py()
            else:
                value = None
            examples.append(
                {
                    "row": row,
                    "image_id": self.ids[row].as_py(),
                    "column": column,
                    "value": _jsonable(value),
                }
            )
        self.findings.append(Finding(check, severity, column, count, description, examples))


def validate_table(
    table: pa.Table, path: str = "<table>", max_examples: int = 5
) -> ValidationReport:
    """Run every check over a conformed catalog table and return the report.

    Examples
    --------
    >>> t = pa.table({"source": ["s", "s"], "image_id": ["a", "a"], "lat": [0.0, 91.0],
    ...               "lon": [0.0, 10.0]})
    >>> from geoaware.catalog.schema import conform
    >>> report = validate_table(conform(t))
    >>> sorted(f.check for f in report.findings if f.severity == "error")
    ['duplicate_image_id', 'lat_out_of_range', 'null_island']
    >>> report.error_rows  # both rows share the duplicate id; each has one more error
    2
    """
    c = _Checker(table, max_examples)
    _check_locations(c)
    _check_ids(c)
    _check_boxes(c)
    _check_sizes_and_tiles(c)
    _check_missing(c)
    return ValidationReport(
        path,
        table.num_rows,
        c.findings,
        error_rows=int(c.flagged["error"].sum()),
        warning_rows=int(c.flagged["warning"].sum()),
    )


def _check_locations(c: _Checker) -> None:
    lat, lon = c.floats("lat"), c.floats("lon")
    lat_null, lon_null = c.nulls("lat"), c.nulls("lon")
    with np.errstate(invalid="ignore"):
        c.add("lat_out_of_range", "error", "lat", np.abs(lat) > 90, "latitude outside [-90, 90]")
        c.add(
            "lon_out_of_range", "error", "lon", np.abs(lon) > 180, "longitude outside [-180, 180]"
        )
    c.add("lat_nan", "error", "lat", np.isnan(lat) & ~lat_null, "latitude is NaN (not null)")
    c.add("lon_nan", "error", "lon", np.isnan(lon) & ~lon_null, "longitude is NaN (not null)")
    c.add(
        "null_island",
        "error",
        "lat",
        (lat == 0) & (lon == 0),
        "location is exactly (0, 0), a placeholder for 'unknown'",
    )
    c.add(
        "half_location",
        "error",
        "lon",
        lat_null != lon_null,
        "only one of lat and lon is given",
    )
    unc = c.floats("location_uncertainty_m")
    with np.errstate(invalid="ignore"):
        bad_unc = (unc < 0) | (unc > MAX_UNCERTAINTY_M)
    c.add(
        "location_uncertainty_invalid",
        "warning",
        "location_uncertainty_m",
        bad_unc,
        "location uncertainty negative or larger than half the Earth's circumference",
    )


def _check_ids(c: _Checker) -> None:
    ids = pd.Series(c.ids.to_numpy(zero_copy_only=False))
    dup = ids.duplicated(keep="first").to_numpy()
    c.add("duplicate_image_id", "error", "image_id", dup, "image_id seen in an earlier row")


def _check_boxes(c: _Checker) -> None:
    boxes = c.table.column("bboxes").combine_chunks()
    if boxes.null_count == len(boxes):
        return
    flat = pc.list_flatten(boxes)
    if len(flat) == 0:
        return
    parent = np.asarray(pc.list_parent_indices(boxes).to_numpy(zero_copy_only=False))
    parts = {
        k: np.asarray(flat.field(k).to_numpy(zero_copy_only=False), dtype=np.float64)
        for k in ("x", "y", "w", "h", "area")
    }
    width = c.floats("width")[parent]
    height = c.floats("height")[parent]
    x, y, w, h = parts["x"], parts["y"], parts["w"], parts["h"]
    with np.errstate(invalid="ignore"):
        bad = (
            ~np.isfinite(x)
            | ~np.isfinite(y)
            | ~np.isfinite(w)
            | ~np.isfinite(h)
            | (w <= 0)
            | (h <= 0)
            | (x < 0)
            | (y < 0)
            | (x + w > width + 1)
            | (y + h > height + 1)
            | (parts["area"] < 0)
        )
    rows = np.zeros(c.table.num_rows, dtype=bool)
    rows[parent[bad]] = True
    values = np.empty(c.table.num_rows, dtype=object)
    for i in np.flatnonzero(bad)[: c.max_examples * 4].tolist():
        if values[parent[i]] is None:
            values[parent[i]] = {k: float(v[i]) for k, v in parts.items()}
    c.add(
        "bad_bbox",
        "error",
        "bboxes",
        rows,
        "box with non-positive size, negative corner, NaN, or outside the image",
        values,
    )


def _check_sizes_and_tiles(c: _Checker) -> None:
    for name in ("width", "height"):
        with np.errstate(invalid="ignore"):
            c.add(f"bad_{name}", "error", name, c.floats(name) <= 0, f"{name} is not positive")
    z, x, y = c.floats("tile_z"), c.floats("tile_x"), c.floats("tile_y")
    with np.errstate(invalid="ignore"):
        c.add("tile_zoom_out_of_range", "error", "tile_z", (z < 0) | (z > 30), "zoom outside 0..30")
        n = np.exp2(np.clip(z, 0, 30))
        for name, v in (("tile_x", x), ("tile_y", y)):
            c.add(
                f"{name}_out_of_range",
                "error",
                name,
                (v < 0) | (v >= n),
                f"{name} outside 0..2**z-1",
            )
    with np.errstate(invalid="ignore"):
        c.add("negative_label", "error", "label", c.floats("label") < 0, "label id is negative")


def _check_missing(c: _Checker) -> None:
    lat_null, lon_null = c.nulls("lat"), c.nulls("lon")
    c.add("missing_location", "warning", "lat", lat_null & lon_null, "no location")
    c.add("missing_user", "warning", "user_id", c.nulls("user_id"), "no user")
    c.add("missing_date", "warning", "taken_at", c.nulls("taken_at"), "no capture date")
    c.add(
        "missing_label",
        "warning",
        "label",
        c.nulls("label") & c.nulls("label_name"),
        "neither label nor label_name",
    )
    taken = c.table.column("taken_at").cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)
    now = np.datetime64("now", "us") + np.timedelta64(1, "D")
    implausible = ~np.isnat(taken) & ((taken < EARLIEST_PHOTO) | (taken > now))
    c.add(
        "implausible_date",
        "warning",
        "taken_at",
        np.asarray(implausible),
        "capture date before 1826 or in the future",
    )

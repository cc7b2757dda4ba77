"""Column helpers shared by splits, leakage checks and partitions."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.construct.errors import BuildError
from geoaware.geo.cells import h3_cells, s2_cells
from geoaware.typing import ObjectArray

__all__ = ["LEVELS", "Level", "cell_keys", "label_values", "parse_cell_spec", "require_columns"]

Level = Literal["species", "genus", "family", "order", "class", "phylum"]
LEVELS: tuple[str, ...] = ("species", "genus", "family", "order", "class", "phylum")


def require_columns(table: pa.Table, names: list[str], where: str = "catalog") -> None:
    """Raise :class:`BuildError` naming the first of ``names`` that ``table`` lacks.

    Examples
    --------
    >>> require_columns(pa.table({"a": [1]}), ["a", "b"], "c.parquet")
    Traceback (most recent call last):
    ...
    geoaware.construct.errors.BuildError: c.parquet: column 'b' does not exist (columns: a)
    """
    for name in names:
        if name not in table.column_names:
            cols = ", ".join(table.column_names)
            raise BuildError(f"{where}: column {name!r} does not exist (columns: {cols})")


def label_values(table: pa.Table, level: str | None, where: str = "catalog") -> pa.ChunkedArray:
    """Return the label of each row, regrouped at a taxonomic ``level`` (None: ``label_name``).

    For ``species`` a null ``species`` falls back to ``label_name``; for ``genus`` a null
    ``genus`` falls back to the first word of the species name.

    Examples
    --------
    >>> t = pa.table({"label_name": ["Vireo griseus"], "species": [None], "genus": [None]},
    ...              schema=pa.schema([("label_name", pa.string()), ("species", pa.string()),
    ...                                ("genus", pa.string())]))
    >>> label_values(t, "genus").to_pylist()
    ['Vireo']
    """
    if level is None:
        require_columns(table, ["label_name"], where)
        return table.column("label_name")
    if level not in LEVELS:
        raise BuildError(f"unknown taxonomic level {level!r}; choose one of {', '.join(LEVELS)}")
    names_only = level in ("species", "genus") and "label_name" in table.column_names
    if not names_only or level in table.column_names:
        require_columns(table, [level], where)
        values = table.column(level)
    else:
        values = pa.nulls(table.num_rows, pa.string())
    names = table.column("label_name") if "label_name" in table.column_names else None
    if level == "species" and names is not None:
        values = pc.coalesce(values, names)
    if level == "genus":
        species = table.column("species") if "species" in table.column_names else names
        if names is not None and species is not None:
            species = pc.coalesce(species, names)
        if species is not None:
            first = pc.list_element(pc.split_pattern(species, " ", max_splits=1), 0)
            values = pc.coalesce(values, first)
    return values


def parse_cell_spec(spec: str) -> tuple[str, int]:
    """Parse ``h3:RES`` or ``s2:LEVEL`` into (system, resolution).

    Examples
    --------
    >>> parse_cell_spec("h3:3"), parse_cell_spec("s2:8")
    (('h3', 3), ('s2', 8))
    """
    system, _, res = spec.partition(":")
    system = system.strip().lower()
    if system not in ("h3", "s2") or not res.strip().isdigit():
        raise BuildError(f"cell must look like h3:RES or s2:LEVEL, got {spec!r}")
    resolution = int(res)
    top = 15 if system == "h3" else 30
    if not 0 <= resolution <= top:
        raise BuildError(f"{system} resolution must be in 0..{top}, got {resolution}")
    return system, resolution


def cell_keys(lat: npt.ArrayLike, lon: npt.ArrayLike, spec: str) -> ObjectArray:
    """Return the H3/S2 cell id of each point (None where the point is unknown).

    Cells are computed once per distinct coordinate pair, so repeated points cost nothing.

    Examples
    --------
    >>> cell_keys([48.8566, 48.8566, np.nan], [2.3522, 2.3522, 0.0], "s2:10").tolist()
    ['47e66f', '47e66f', None]
    """
    system, res = parse_cell_spec(spec)
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    ok = ~(np.isnan(la) | np.isnan(lo))
    pts = np.stack([la[ok], lo[ok]], axis=1)
    uniq, inverse = np.unique(pts, axis=0, return_inverse=True)
    fn = h3_cells if system == "h3" else s2_cells
    cells = fn(uniq[:, 0], uniq[:, 1], res) if len(uniq) else np.empty(0, dtype=object)
    out = np.full(la.shape, None, dtype=object)
    out[ok] = cells[inverse.ravel()]
    return out

"""SQL over a catalog with DuckDB: the catalog is the table ``catalog``."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geoaware.catalog.io import catalog_files
from geoaware.errors import QueryError
from geoaware.fileio import atomic_path

__all__ = ["query_catalog", "write_result"]


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def query_catalog(catalog: str | os.PathLike[str], sql: str) -> pa.Table:
    """Run ``sql`` over a catalog (file or folder of parts) and return the result.

    The catalog is visible as the view ``catalog``; DuckDB reads only the columns and row
    groups the query needs.

    Raises
    ------
    QueryError
        With DuckDB's message and the query, if the SQL fails.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geoaware.catalog.io import write_catalog
    >>> path = write_catalog(pa.table({"source": ["a", "a", "b"], "image_id": ["1", "2", "3"]}),
    ...                      pathlib.Path(tempfile.mkdtemp()) / "c.parquet")
    >>> sql = "SELECT source, count(*) AS n FROM catalog GROUP BY 1 ORDER BY 1"
    >>> query_catalog(path, sql).to_pylist()
    [{'source': 'a', 'n': 2}, {'source': 'b', 'n': 1}]
    """
    import duckdb

    files = ", ".join(_sql_string(str(f)) for f in catalog_files(catalog))
    con = duckdb.connect()
    try:
        con.execute(
            f"CREATE VIEW catalog AS SELECT * FROM read_parquet([{files}], union_by_name = true)"
        )
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}\n  query: {sql}") from exc
    finally:
        con.close()


def write_result(table: pa.Table, out: str | os.PathLike[str]) -> Path:
    """Write a query result atomically as ``.parquet`` or ``.csv`` (chosen by the extension).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = write_result(pa.table({"n": [1]}), pathlib.Path(tempfile.mkdtemp()) / "r.csv")
    >>> p.read_text().splitlines()
    ['"n"', '1']
    """
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise QueryError(f"{path}: output must end in .parquet or .csv")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            pacsv.write_csv(table, tmp)
    return path

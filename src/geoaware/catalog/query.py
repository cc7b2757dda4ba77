"""SQL over a catalog with DuckDB: the catalog is the table ``catalog``, and nothing else.

A query may read the catalog's files and nothing else, and may write nothing: the connection
is allowed the catalog's own paths, then external access is switched off and the
configuration locked, so ``read_text('/etc/hostname')``, ``ATTACH``, ``COPY ... TO``,
``EXPORT DATABASE`` and ``INSTALL`` are refused by DuckDB itself. Only one ``SELECT`` (or
``EXPLAIN``) statement is run, because DuckDB would still write to an allowed path (the
catalog) with ``COPY``. Results are written by :func:`write_result`, atomically.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geoaware.catalog.io import catalog_files, check_catalog_schema
from geoaware.errors import QueryError
from geoaware.fileio import atomic_path
from geoaware.typing import PathLike

__all__ = ["query_catalog", "write_result"]


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def query_catalog(catalog: PathLike, sql: str) -> pa.Table:
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

    if not sql.strip():
        raise QueryError("empty query: give one SELECT statement over the table `catalog`")
    paths = catalog_files(catalog)
    check_catalog_schema(catalog)  # as validate does: each part against the schema
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    try:
        con.execute(f"SET allowed_paths = [{', '.join(_sql_string(str(p)) for p in paths)}]")
        files = ", ".join(_sql_string(str(f)) for f in paths)
        con.execute(f"CREATE VIEW catalog AS SELECT * FROM read_parquet([{files}])")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        statements = con.extract_statements(sql)
        kinds = [st.type for st in statements]
        if kinds not in ([duckdb.StatementType.SELECT], [duckdb.StatementType.EXPLAIN]):
            shown = ", ".join(k.name for k in kinds) or "nothing"
            raise QueryError(
                f"query reads the catalog only: give one SELECT statement (got {shown}); "
                "use --out to save the result\n  query: " + sql
            )
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QueryError(f"query failed: {first}\n  query: {sql}") from exc
    finally:
        con.close()


def write_result(table: pa.Table, out: PathLike) -> Path:
    """Write a query result atomically as ``.parquet`` or ``.csv`` (chosen by the extension).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = write_result(pa.table({"n": [1]}), pathlib.Path(tempfile.mkdtemp()) / "r.csv")
    >>> p.read_text().splitlines()
    ['"n"', '1']
    """
    path = Path(out)
    if path.is_dir():
        raise QueryError(f"{path}: --out is a folder; give a .parquet or .csv file name")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise QueryError(f"{path}: output must end in .parquet or .csv")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            pacsv.write_csv(table, tmp)
    return path

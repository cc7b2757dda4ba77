"""What every command module shares: consoles, the --json option, tables and number formats.

The ``geoaware`` command line is :mod:`geoaware.cli` plus one small ``commands`` module per
stage that registers its commands on the app (``register(app)``); all of them print through
these helpers so output looks alike and ``--json`` always prints exactly one object.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

__all__ = [
    "CatalogArg",
    "JsonOpt",
    "OverwriteOpt",
    "emit_json",
    "err",
    "floats_option",
    "fmt_metric",
    "out",
    "table",
]

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite", help="Replace an output that geoaware wrote before (never anything else)."
    ),
]
CatalogArg = Annotated[Path, typer.Argument(help="Catalog: a .parquet file or a folder of parts.")]


def emit_json(data: Any) -> None:
    """Print ``data`` as one line of JSON (numpy values allowed).

    Examples
    --------
    >>> emit_json({"n": 1})
    {"n":1}
    """
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    """Build a rich table; integers get thousands separators, None prints empty.

    Examples
    --------
    >>> table("t", ["a"], [[1234]]).row_count
    1
    """
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in r))
    return t


def fmt_metric(key: str, value: Any) -> Any:
    """Format a figure: rates, accuracies and top-k errors in percent, other floats 2 dp.

    Examples
    --------
    >>> fmt_metric("acc_25km", 0.4304), fmt_metric("median_km", 144.634)
    ('43.0%', '144.63')
    >>> fmt_metric("top1_error", 0.66)
    '66.0%'
    """
    if isinstance(value, float):
        if key.startswith("acc_") or key.endswith(("rate", "_acc", "_error")):
            return f"{100 * value:.1f}%"
        return f"{value:,.2f}"
    return value


def floats_option(text: str, what: str) -> tuple[float, ...]:
    """Parse a comma-separated option of numbers, or fail with a usage error naming it.

    Examples
    --------
    >>> floats_option("1,25.5", "--thresholds")
    (1.0, 25.5)
    """
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError as exc:
        raise typer.BadParameter(f"{what} must be comma-separated numbers, got {text!r}") from exc

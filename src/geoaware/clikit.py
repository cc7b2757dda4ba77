"""What every command module shares: consoles, the --json option, tables and number formats.

The ``geoaware`` command line is :mod:`geoaware.cli` plus one small ``commands`` module per
stage that registers its commands on the app (``register(app)``); all of them print through
these helpers so output looks alike and ``--json`` always prints exactly one object.
"""

from __future__ import annotations

import os
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
    "console",
    "emit_json",
    "err",
    "floats_option",
    "fmt_metric",
    "out",
    "table",
]

#: Width of a console that writes to a file or a pipe: wide enough that no table is cut.
PIPE_WIDTH = 1000


def console(stderr: bool = False) -> Console:
    """Return a console for stdout (or stderr): terminal width on a terminal, else uncut.

    On a terminal rich fits tables to the window.  Piped or logged output has no window, and
    rich's 80-column default would cut key figures ("acc…"); there tables take their natural
    width and lines are not wrapped.  ``COLUMNS`` in the environment still sets the width.

    Examples
    --------
    >>> console().width >= 80
    True
    """
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    if piped and "COLUMNS" not in os.environ:
        return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)
    return Console(stderr=stderr)


out = console()
err = console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
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
    """Format a figure for a table: rates and accuracies as percentages, other floats 2 dp.

    Examples
    --------
    >>> fmt_metric("acc_25km", 0.4304), fmt_metric("median_km", 144.634)
    ('43.0%', '144.63')
    """
    if isinstance(value, float):
        if key.startswith("acc_") or key.endswith("rate") or key.endswith("_acc"):
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

"""What every command module shares: consoles, the --json option, tables and number formats.

The ``geoaware`` command line is :mod:`geoaware.cli` plus one small ``commands`` module per
stage, each with a module-level ``app`` of its commands that ``cli.py`` adds to the top-level
app; all of them print through these helpers so output looks alike and ``--json`` always
prints exactly one object.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import orjson
import typer
import typer.core
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from geoaware.errors import GeoawareError

__all__ = [
    "CatalogArg",
    "GeoawareGroup",
    "JsonOpt",
    "OverwriteOpt",
    "console",
    "emit_json",
    "err",
    "floats_option",
    "fmt_metric",
    "one_line",
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
TiesOpt = Annotated[
    str,
    typer.Option(
        click_type=click.Choice(["pessimistic", "optimistic"]),
        help="A wrong class (or caption, or image) scoring exactly like the right one "
        "counts against it (pessimistic) or not (optimistic).",
    ),
]
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


def one_line(exc: BaseException) -> str | None:
    """Return the one-line message for an error a user's input caused, or None for a bug.

    geoaware's own errors carry their message; an ``OSError`` about a named file (a missing
    folder, no permission, a full disk) is said as ``path: reason``. Anything else is a bug
    and keeps its traceback.

    Examples
    --------
    >>> one_line(FileNotFoundError(2, "No such file or directory", "/no/dir/map.png"))
    '/no/dir/map.png: No such file or directory'
    >>> one_line(KeyError("x")) is None
    True
    """
    if isinstance(exc, GeoawareError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        where = str(exc.filename)
        if exc.filename2 is not None:
            where += f" -> {exc.filename2}"
        return f"{where}: {exc.strerror or exc}"
    return None


class GeoawareGroup(typer.core.TyperGroup):
    """The root command group: a user's bad input ends as one red line and exit status 2.

    Every command, including those the stages register, runs inside :meth:`invoke`, so this is
    the one place where errors become messages (see :func:`one_line`). Help lists the plain
    commands before the command groups, each in the order they were added.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Names of the commands: plain commands first, then groups, in the order added."""
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: isinstance(self.commands[n], click.Group))

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; turn an error from the user's input into one line and exit 2."""
        try:
            return super().invoke(ctx)
        except (GeoawareError, OSError) as exc:
            message = one_line(exc)
            if message is None:
                raise
            err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from exc

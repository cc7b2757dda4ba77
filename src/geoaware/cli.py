"""The ``geoaware`` command line: the top-level app, which only dispatches.

Each stage keeps its commands in its own ``commands`` module, as a module-level ``app`` of
commands and command groups; this module adds every one of them to the top-level app (an
unnamed sub-app's commands become top-level commands) and holds only ``--version`` and the
entry point. Help lists the plain commands first, then the groups, each in the order below.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from geoaware import demo_commands
from geoaware.catalog import commands as catalog_commands
from geoaware.clikit import GeoawareGroup, err, out
from geoaware.construct import commands as construct_commands
from geoaware.errors import GeoawareError
from geoaware.evaluate import commands as evaluate_commands
from geoaware.federated import commands as federated_commands
from geoaware.geolocate import commands as geolocate_commands
from geoaware.priors import commands as priors_commands
from geoaware.report import commands as report_commands
from geoaware.sources import commands as sources_commands
from geoaware.vision import commands as vision_commands

__all__ = ["app", "main"]

app = typer.Typer(
    name="geoaware",
    help="Clean, checked geotagged image datasets, geo-aware models and honest benchmarks.",
    epilog="Example: geoaware demo --out demo-output, then "
    "geoaware validate demo-output/catalog.parquet.  Each command's --help has its own example.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=GeoawareGroup,
)


def _print_version(value: bool) -> None:
    if value:
        from geoaware import package_version

        out.print(f"geoaware {package_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _top(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Clean, checked geotagged image datasets, geo-aware models and honest benchmarks."""


for _stage in (
    demo_commands,  # demo
    catalog_commands,  # validate, stats, query
    sources_commands,  # sources, fetch, ingest, fetch-images, scan-images
    report_commands,  # report, info
    evaluate_commands,  # eval geo/classify/zeroshot/retrieval, submission check/write
    construct_commands,  # split, leakage, partition, build fg-geo, check fg-geo
    federated_commands,  # fl simulate
    vision_commands,  # embed
    priors_commands,  # prior train/predict/eval/fuse/map
    geolocate_commands,  # geolocate fit/predict
):
    app.add_typer(_stage.app)


def main() -> None:
    """Console-script entry point: run the app, turning geoaware errors into one red line."""
    try:
        app()
    except GeoawareError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

"""The catalog commands: ``validate``, ``stats`` and ``query``.

Each command parses its options and calls one function of :mod:`geoaware.catalog`; ``cli.py``
adds this module's ``app`` to the top-level app. pyarrow and DuckDB are imported inside the
commands, so ``geoaware --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geoaware.clikit import CatalogArg, JsonOpt, OverwriteOpt, emit_json, out, table

__all__ = ["app", "query", "stats", "validate"]

app = typer.Typer()


def _print_validation(report: dict[str, Any]) -> None:
    rows = []
    for f in report["findings"]:
        ex = f["examples"][0] if f["examples"] else None
        example = (
            f"row {ex['row']} ({ex['image_id']}): {ex['column']}={ex['value']!r}" if ex else ""
        )
        rows.append([f["severity"], f["check"], f["count"], f["description"], example])
    n_err = sum(f["severity"] == "error" for f in report["findings"])
    n_warn = len(report["findings"]) - n_err
    title = (
        f"validate {report['path']}: {report['rows']:,} rows, "
        f"{report['errors']:,} with an error, {report['warnings']:,} with a warning "
        f"({n_err} error and {n_warn} warning checks found something; a row can be in several)"
    )
    out.print(table(title, ["severity", "check", "rows", "what", "first example"], rows))
    out.print("[green]OK: no errors[/]" if report["ok"] else "[red]FAILED: errors found[/]")


@app.command(
    epilog="Example: geoaware validate catalog.parquet --strict.  "
    "JSON keys: path, rows, ok, errors and warnings (distinct rows with at least one error / "
    "warning), findings (each: check, severity, column, count of rows, description, examples).",
)
def validate(
    catalog: CatalogArg,
    strict: Annotated[bool, typer.Option(help="Exit with status 1 if any error is found.")] = False,
    examples: Annotated[int, typer.Option(help="Examples kept per finding.")] = 5,
    json: JsonOpt = False,
) -> None:
    """Check a catalog: bad or (0,0) coordinates, duplicate ids, missing fields, bad boxes."""
    from geoaware.catalog import read_catalog, validate_table
    from geoaware.catalog.io import check_catalog_schema

    check_catalog_schema(catalog)
    report = validate_table(read_catalog(catalog), str(catalog), max_examples=examples)
    if json:
        emit_json(report.to_dict())
    else:
        _print_validation(report.to_dict())
    if strict and not report.ok:
        raise typer.Exit(1)


def _print_stats(s: dict[str, Any]) -> None:
    out.print(
        table(
            f"{s['rows']:,} images, {s['labels']:,} labels, {s['located']:,} located",
            ["source", "split", "rows"],
            [[r["source"], r["split"] or "-", r["rows"]] for r in s["by_source_split"]],
        )
    )
    u = s["users"]

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    out.print(
        table(
            "images per user",
            ["users", "images with user", "mean", "std", "skew", "max"],
            [
                [
                    u["users"],
                    u["images_with_user"],
                    fmt(u["mean"]),
                    fmt(u["std"]),
                    fmt(u["skew"]),
                    u["max"],
                ]
            ],
        )
    )
    total = max(s["located"], 1)
    out.print(
        table(
            "located images by continent",
            ["continent", "images", "share"],
            [[k, v, f"{100 * v / total:.1f}%"] for k, v in s["continents"].items()],
        )
    )


@app.command(
    epilog="Example: geoaware stats catalog.parquet --map points.png.  "
    "JSON keys: rows, by_source_split, labels, located, users "
    "(users, images_with_user, mean, std, skew, max), continents, map.",
)
def stats(
    catalog: CatalogArg,
    map_png: Annotated[
        Path | None, typer.Option("--map", help="Write a world map of the points to this PNG.")
    ] = None,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Rows per source and split, labels, users, images per user, continents, and a map."""
    from geoaware.catalog import catalog_stats, read_catalog
    from geoaware.outputs import claim_output, record_output

    if map_png is not None:
        claim_output(map_png, overwrite=overwrite, suffixes=(".png",), what="--map")
    table = read_catalog(catalog)
    summary = catalog_stats(table).to_dict()
    summary["map"] = None
    if map_png is not None:
        from geoaware.geo.maps import world_map

        lat = table.column("lat").to_numpy(zero_copy_only=False)
        lon = table.column("lon").to_numpy(zero_copy_only=False)
        summary["map"] = str(world_map(lat, lon, map_png, title=Path(catalog).name))
        record_output(map_png, inputs=[catalog])
    if json:
        emit_json(summary)
        return
    _print_stats(summary)
    if summary["map"]:
        out.print(f"[bold]map[/] {summary['map']}")


@app.command(
    epilog="Example: geoaware query catalog.parquet "
    '"SELECT label_name, count(*) n FROM catalog GROUP BY 1 ORDER BY n DESC LIMIT 5".  '
    "JSON keys: rows, columns, data (list of row objects).",
)
def query(
    catalog: CatalogArg,
    sql: Annotated[str, typer.Argument(help="DuckDB SQL; the catalog is the table `catalog`.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the result to a .parquet or .csv file.")
    ] = None,
    show: Annotated[int, typer.Option(help="Rows shown in the terminal.")] = 20,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Run SQL over a catalog with DuckDB; print the result or write it to a file.

    The query reads the catalog and nothing else: one SELECT statement, no other file, no
    writes (geoaware writes --out itself).
    """
    from geoaware.catalog import query_catalog, write_result
    from geoaware.outputs import claim_output, record_output

    if out_file is not None:
        claim_output(out_file, overwrite=overwrite, suffixes=(".parquet", ".csv"))
    result = query_catalog(catalog, sql)
    if out_file is not None:
        write_result(result, out_file)
        record_output(out_file, inputs=[catalog])
    if json:
        data = result.slice(0, show).to_pylist() if out_file is None else []
        emit_json(
            {
                "rows": result.num_rows,
                "columns": result.column_names,
                "data": data,
                "out": str(out_file) if out_file else None,
            }
        )
        return
    if out_file is not None:
        out.print(f"wrote {result.num_rows:,} rows to {out_file}")
        return
    rows = [list(r.values()) for r in result.slice(0, show).to_pylist()]
    more = f" (showing {show})" if result.num_rows > show else ""
    out.print(table(f"{result.num_rows:,} rows{more}", result.column_names, rows))

"""The ``geoaware`` command line: a thin layer, one library call per command."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from geoaware.clikit import (
    CatalogArg,
    GeoawareGroup,
    JsonOpt,
    OverwriteOpt,
    emit_json,
    err,
    floats_option,
    fmt_metric,
    out,
    table,
)
from geoaware.errors import GeoawareError

if TYPE_CHECKING:
    import pyarrow as pa

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


# ----------------------------------------------------------------------------------------------
@app.command(
    epilog="Example: geoaware demo --out demo-output.  JSON keys: out, report, commands, quick, "
    "seconds, steps (each step: command, seconds, result = that command's JSON object).",
)
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for every output and the report.")
    ] = Path("demo-output"),
    quick: Annotated[
        bool, typer.Option("--quick", help="Train the prior for 2 epochs (a smoke test).")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the outputs of an earlier demo.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Walk the fg_geo release to an honest report: catalog, splits, prior, Im2GPS, HTML.

    Every step is a geoaware command; they are written to OUT/commands.sh to rerun by hand.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from geoaware.demo import Step, run_demo

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        disable=json,
    ) as bar:
        task = bar.add_task("demo", total=None)

        def on_step(step: Step, index: int, count: int) -> None:
            bar.update(task, total=count, completed=index, description=step.title)

        summary = run_demo(
            out_dir, quick=quick, overwrite=overwrite, progress=not json, on_step=on_step
        )
        bar.update(task, completed=bar.tasks[0].total, description="done")
    if json:
        emit_json(summary)
        return
    _print_demo(summary)


def _print_demo(summary: dict[str, Any]) -> None:
    steps = summary["steps"]
    val = steps["validate"]["result"]
    stats = steps["stats"]["result"]
    out.print(
        f"[bold]catalog[/] {val['rows']:,} images, {stats['labels']:,} species, "
        f"{val['errors']:,} validation errors"
    )
    for key, name in (("random", "random"), ("cell", "spatial")):
        leak = steps[f"leakage_{key}"]["result"]["same_outing"]
        out.print(
            f"[bold]{name} split[/] {leak['images']:,} images lie within 100 m of an image on "
            "the other side"
        )
    ev = steps["prior_eval"]["result"]
    twin_free = {m["method"]: m for m in (ev.get("twin_free") or {}).get("rows", [])}
    rows = [
        [
            m["method"],
            *(fmt_metric(k, m[k]) for k in ("top1_acc", "top5_acc")),
            fmt_metric("top5_acc", twin_free.get(m["method"], {}).get("top5_acc")),
        ]
        for m in ev["rows"]
    ]
    recipe = steps["prior_train"]["result"].get("recipe") or {}
    if recipe:
        out.print(f"[bold]prior recipe[/] {recipe.get('name')}: {recipe.get('reason')}")
    out.print(
        table(
            f"prior against the baselines ({ev['n']:,} test points)",
            ["method", "top1_acc", "top5_acc", "top5_acc, no twin within 1 km"],
            rows,
        )
    )
    geo = steps["eval_geo"]["result"]
    accs = " / ".join(f"{100 * geo[k]:.1f}" for k in geo if k.startswith("acc_"))
    out.print(f"[bold]Im2GPS[/] accuracy at 1/25/200/750/2500 km: {accs} %")
    if summary["quick"]:
        out.print("[yellow]quick run: the prior trained for 2 epochs[/]")
    out.print(f"[bold]report[/] {summary['report']}  ({summary['seconds']:.0f} s)")
    out.print(f"[bold]commands[/] {summary['commands']}")


# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
@app.command(
    epilog="Example: geoaware sources --json.  JSON keys: sources (each: name, description, "
    "parts (each: part, path, size, sha256, md5, urls)).",
)
def sources(json: JsonOpt = False) -> None:
    """List the dataset sources geoaware can fetch and read, with their parts and sizes."""
    from geoaware.sources import SOURCES

    data: list[dict[str, Any]] = [
        {
            "name": name,
            "description": cls.description,
            "parts": [
                {
                    "part": part,
                    "path": f.path,
                    "size": f.size,
                    "sha256": f.sha256,
                    "md5": f.md5,
                    "urls": list(f.urls),
                }
                for part, f in cls.files.items()
            ],
        }
        for name, cls in sorted(SOURCES.items())
    ]
    if json:
        emit_json({"sources": data})
        return
    rows = [
        [s["name"], p["part"], p["path"], p["size"], s["description"]]
        for s in data
        for p in s["parts"]
    ]
    out.print(table("sources", ["source", "part", "file", "bytes", "what"], rows))


@app.command(
    epilog="Example: geoaware fetch fg_geo_yfcc --dest data --read-timeout 20 --deadline 600.  "
    "Set GEOAWARE_MIRROR to a folder with the same relative paths to work offline.",
)
def fetch(
    source: Annotated[str, typer.Argument(help="Source name (see `geoaware sources`).")],
    parts: Annotated[
        str | None,
        typer.Option(help="Comma-separated parts, or `all`; default: the parts the catalog needs."),
    ] = None,
    dest: Annotated[Path, typer.Option(help="Download folder.")] = Path("data"),
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a server to accept the connection.")
    ] = 10.0,
    read_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the next bytes from a server.")
    ] = 30.0,
    deadline: Annotated[
        float | None,
        typer.Option(help="Seconds for each whole file, every URL and retry included."),
    ] = None,
) -> None:
    """Download a source's files with resume and checksum checks (mirror first)."""
    from geoaware.sources import SOURCES
    from geoaware.sources.download import Timeouts

    cls = _source(source, SOURCES)
    _warn_large_parts(cls(dest), parts.split(",") if parts else None)
    timeouts = Timeouts(connect=connect_timeout, read=read_timeout, deadline=deadline)
    got = cls(dest).fetch(
        parts.split(",") if parts else None,
        timeouts=timeouts,
        note=lambda line: err.print(line, highlight=False, markup=False, soft_wrap=True),
    )
    for part, path in got.items():
        out.print(f"{source}/{part}: {path} (verified)")


#: Parts at least this large are announced before ``fetch`` starts.
LARGE_PART_BYTES = 1 << 30


def _warn_large_parts(src: Any, parts: list[str] | None) -> None:
    """Warn before image archives (parts the catalog does not need) or parts over 1 GiB."""
    order = src.plan(parts)
    needed = set(src.catalog_parts or src.files)

    def big(p: str) -> bool:
        size = src.files[p].size
        return p not in needed or (size is not None and size >= LARGE_PART_BYTES)

    large = [p for p in order if big(p)]
    if not large:
        return
    listed = ", ".join(
        f"{p} ({src.files[p].size / 1e9:,.1f} GB)" if src.files[p].size else p for p in large
    )
    err.print(
        f"[yellow]warning:[/] {src.name}: about to fetch {listed}: image archives or large "
        f"files (iNat's run to tens or hundreds of GB). Order: {', '.join(order)}, metadata "
        "first; interrupt at any time, downloads resume where they stopped.",
        highlight=False,
    )


@app.command(
    epilog="Example: geoaware ingest fg_geo_yfcc --root data --out fg_geo.parquet.  "
    "JSON keys: out, rows, counts (what the reader reports, e.g. images_without_location).",
)
def ingest(
    source: Annotated[str, typer.Argument(help="Source name (see `geoaware sources`).")],
    root: Annotated[Path, typer.Option(help="Folder the files were fetched into.")] = Path("data"),
    out_path: Annotated[
        Path, typer.Option("--out", help="Catalog to write (.parquet or folder).")
    ] = Path("catalog.parquet"),
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Read a fetched source into a catalog."""
    from geoaware.catalog.io import write_catalog_batches
    from geoaware.outputs import claim_catalog, record_output
    from geoaware.sources import SOURCES

    kind = claim_catalog(out_path, overwrite=overwrite)
    reader = _source(source, SOURCES)(root)
    rows = 0

    def counted() -> Iterator[pa.Table]:
        nonlocal rows
        for batch in reader.read_batches():
            rows += batch.num_rows
            yield batch

    path = write_catalog_batches(counted(), out_path)
    record_output(path, kind, inputs=[root])
    if json:
        emit_json({"out": str(path), "rows": rows, "counts": reader.counts})
        return
    out.print(f"wrote {rows:,} rows to {path}")
    for key, n in reader.counts.items():
        out.print(f"  {key.replace('_', ' ')}: {n:,}")


@app.command(
    "scan-images",
    epilog="Example: geoaware scan-images photos/ --out photos.parquet.  JSON keys: out, rows, "
    "folder, scanned, with_gps, without_gps, invalid_gps, without_time, corrupt, ignored, "
    "corrupt_files (each: path, reason).",
)
def scan_images_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of photos (searched recursively).")],
    out_path: Annotated[Path, typer.Option("--out", help="Catalog to write (.parquet or folder).")],
    source: Annotated[str, typer.Option(help="Value of the catalog's `source` column.")] = "images",
    headers_only: Annotated[
        bool, typer.Option(help="Read EXIF headers only (fast; truncated files go unnoticed).")
    ] = False,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Catalog any folder of photos: EXIF GPS, capture time, size, orientation."""
    from geoaware.catalog import write_catalog
    from geoaware.outputs import claim_catalog, record_output
    from geoaware.sources.exif import scan_images

    kind = claim_catalog(out_path, overwrite=overwrite)
    table, report = scan_images(
        folder, source=source, progress=not json, check_pixels=not headers_only
    )
    path = write_catalog(table, out_path)
    record_output(path, kind, inputs=[folder])
    summary = {"out": str(path), "rows": table.num_rows, **report.to_dict()}
    if json:
        emit_json(summary)
        return
    out.print(
        f"wrote {table.num_rows:,} rows to {path}: {report.with_gps:,} with GPS, "
        f"{report.without_gps:,} without ({report.invalid_gps:,} unusable GPS tags), "
        f"{report.corrupt:,} corrupt skipped"
    )
    for bad in report.corrupt_files:
        out.print(f"  [red]corrupt[/] {bad.path}: {bad.reason}", highlight=False)


# ----------------------------------------------------------------------------------------------
eval_app = typer.Typer(
    help="Evaluate predictions: geolocation (Im2GPS) and classification (iNat).",
    epilog="Example: geoaware eval geo predictions.csv --truth catalog.parquet --by continent",
)
app.add_typer(eval_app, name="eval")


@eval_app.command(
    "geo",
    epilog="Example: geoaware eval geo results.csv --by continent --reference im2gps3k "
    "--out runs/exp1.  JSON keys (one file): n, acc_1km, acc_25km, acc_200km, acc_750km, "
    "acc_2500km (fractions 0..1; one per --thresholds value), median_km, mean_km, geoscore, "
    "skipped_rows (data rows left out), skipped (reason -> rows, first records), footer (rows, "
    "first_line, reason of a summary block cut from the end), published_summary (the file's own "
    "summary beside ours: rows, agrees, largest_difference), tables (the --by breakdowns and "
    "the hit rates), reference (with --reference: dataset, columns, rows); with several files, "
    "one such object per file name.",
)
def eval_geo(
    predictions: Annotated[list[Path], typer.Argument(help="CSV or Parquet prediction files.")],
    truth: Annotated[
        Path | None, typer.Option(help="Catalog with the true locations (joined on image id).")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="true_lat,true_lon,pred_lat,pred_lon column names (else detected)."),
    ] = None,
    thresholds: Annotated[str, typer.Option(help="Accuracy thresholds in km.")] = (
        "1,25,200,750,2500"
    ),
    geodesic: Annotated[
        bool, typer.Option(help="WGS84 geodesic instead of the 6371 km sphere.")
    ] = False,
    by: Annotated[
        str | None, typer.Option(help="Breakdowns: continent, country, or column names.")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            help="Show published results on this test set beside yours: im2gps, im2gps3k, "
            "yfcc4k, yfcc26k or osv5m."
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="A bad row, a repeated image id or an id missing from --truth is an error, "
            "not a skipped row."
        ),
    ] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder for JSON results and figures.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Great-circle accuracy at 1/25/200/750/2500 km, median and mean error, GeoScore."""
    from geoaware.evaluate.geo import evaluate_geo
    from geoaware.geolocate.overlap import overlap_warnings, read_overlap
    from geoaware.outputs import claim_output, record_output
    from geoaware.predictions.geo import read_geo_predictions

    cols = tuple(columns.split(",")) if columns else None
    if cols is not None and len(cols) != 4:
        raise typer.BadParameter("--columns takes four names: true_lat,true_lon,pred_lat,pred_lon")
    if out_dir is not None:
        claim_output(out_dir, "run")
    ts = floats_option(thresholds, "--thresholds")
    truth_table = None
    if truth is not None:
        from geoaware.catalog import read_catalog

        truth_table = read_catalog(truth)
    groups = [b for b in (by or "").split(",") if b]
    reports = []
    for path, name in zip(predictions, _unique_names(predictions), strict=True):
        preds = read_geo_predictions(path, cols, truth=truth_table, strict=strict)  # type: ignore[arg-type]
        r = evaluate_geo(preds, thresholds=ts, geodesic=geodesic, by=groups, hit_rates=True)
        r.name = name
        if reference is not None:
            r.add_reference(reference)
        r.warnings = overlap_warnings(read_overlap(path))
        reports.append((r, preds))
    if out_dir is not None:
        _write_geo_run([r for r, _ in reports], out_dir, geodesic)
        record_output(out_dir, "run", inputs=[*predictions, truth])
    if json:
        docs = {r.name: _geo_json(r, p) for r, p in reports}
        emit_json(next(iter(docs.values())) if len(docs) == 1 else docs)
        return
    _print_geo([r for r, _ in reports], [p for _, p in reports])
    if out_dir is not None:
        out.print(f"[bold]run folder[/] {out_dir}")


def _unique_names(paths: list[Path]) -> list[str]:
    """One key per input: the file stem, with its folder (then a number) where stems repeat."""
    stems = [p.stem for p in paths]
    names = [
        s if stems.count(s) == 1 else f"{p.resolve().parent.name}.{s}"
        for p, s in zip(paths, stems, strict=True)
    ]
    seen: dict[str, int] = {}
    unique = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        unique.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return unique


def _geo_json(report: Any, preds: Any) -> dict[str, Any]:
    doc = report.to_dict()
    data: dict[str, Any] = dict(report.summary)
    data["skipped"] = {
        "reasons": preds.skip_reasons(),
        "first_records": list(dict.fromkeys(s.record for s in preds.skipped))[:10],
    }
    data["footer"] = doc.get("footer")
    data["published_summary"] = doc.get("published_summary")
    data["tables"] = {k: v for k, v in report.tables.items()}
    data["reference"] = doc.get("reference")
    return data


def _print_geo(reports: list[Any], preds: list[Any]) -> None:
    keys = list(reports[0].summary)
    out.print(
        table(
            "geolocation",
            ["predictions", *keys],
            [[r.name, *(fmt_metric(k, r.summary[k]) for k in keys)] for r in reports],
        )
    )
    for r, p in zip(reports, preds, strict=True):
        if p.skipped:
            records = list(dict.fromkeys(s.record for s in p.skipped))
            why = "; ".join(f"{n:,} {reason}" for reason, n in p.skip_reasons().items())
            out.print(
                f"[yellow]note:[/] {r.name}: {len(records):,} rows skipped ({why}); first at "
                f"{', '.join(records[:5])}",
                highlight=False,
            )
        if r.footer:
            out.print(
                f"[yellow]note:[/] {r.name}: {r.footer['rows']} summary rows at the end skipped "
                f"({r.footer['reason']}, from line {r.footer['first_line']})",
                highlight=False,
            )
        if r.published:
            _print_published(r)
        for title, t in r.tables.items():
            rows = [
                [fmt_metric(c, v) for c, v in zip(t["columns"], row, strict=False)]
                for row in t["rows"][:50]
            ]
            out.print(table(f"{r.name}: {title}", t["columns"], rows))
        if r.reference:
            _print_reference(r.reference)
    for r in reports:
        for warning in r.warnings:
            out.print(f"[yellow]warning:[/] {r.name}: {warning}", highlight=False)


def _print_published(r: Any) -> None:
    pub = r.published
    rows = [
        [row["label"], fmt_metric(row["measure"], row["published"]),
         fmt_metric(row["measure"], row["ours"]), f"{row['difference']:+.4g}",
         "yes" if row["agrees"] else "NO"]
        for row in pub["rows"]
    ]  # fmt: skip
    out.print(
        table(
            f"{r.name}: the file's own summary ({pub['scale']}s) beside geoaware's",
            ["published measure", "published", "geoaware", "difference", "agrees"],
            rows,
        )
    )
    big = pub["largest_difference"]
    if big is not None:
        line = f"largest difference: {big['label']} {big['difference']:+.4g}"
        if pub["agrees"]:
            out.print(f"the file's summary agrees with geoaware ({line})", highlight=False)
        else:
            out.print(
                f"[yellow]warning:[/] the file's summary disagrees with geoaware ({line})",
                highlight=False,
            )


def _print_reference(ref: dict[str, Any]) -> None:
    cols = ref["columns"][:-1]  # the sources are listed below the table
    rows = [
        [f"[{i}] {row[0]}" if i else row[0],
         *(fmt_metric(c, v) for c, v in zip(cols[1:], row[1:-1], strict=True))]
        for i, row in enumerate(ref["rows"])
    ]  # fmt: skip
    out.print(table(f"published results on {ref['dataset']}", cols, rows))
    for i, row in enumerate(ref["rows"][1:], start=1):
        out.print(f"  [{i}] {row[-1]}", highlight=False, markup=False)
    if ref.get("note"):
        out.print(f"[yellow]note:[/] {ref['note']}", highlight=False)


def _write_geo_run(reports: list[Any], out_dir: Path, geodesic: bool = False) -> None:
    from geoaware.report.plots import accuracy_curve, error_cdf, error_map, group_bars

    out_dir.mkdir(parents=True, exist_ok=True)
    cdf = error_cdf(
        {r.name: r.errors_km for r in reports},
        out_dir / "error_cdf.png",
        title="share of images located within d",
        distance="geodesic" if geodesic else "sphere",
    )
    for i, r in enumerate(reports):
        figures = [cdf.name] if i == 0 else []
        figures.append(
            error_map(
                r.true_lat,
                r.true_lon,
                r.errors_km,
                out_dir / f"{r.name}.error_map.png",
                title=r.name,
            ).name
        )
        if "by continent" in r.tables:
            figures.append(
                group_bars(
                    r.tables["by continent"],
                    out_dir / f"{r.name}.by_continent.png",
                    value=["acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km"],
                    title=f"{r.name}: accuracy by continent of the true location",
                ).name
            )
        if r.reference:
            figures.append(
                accuracy_curve(
                    r.reference, out_dir / f"{r.name}.reference_{r.reference['dataset']}.png"
                ).name
            )
        r.figures = figures
        r.save(out_dir / f"{r.name}.geo.json")


@eval_app.command(
    "classify",
    epilog="Example: geoaware eval classify preds.csv --truth catalog.parquet --split val "
    "--out runs/exp1.  JSON keys: kind, name, source, summary (n, top1_error, top5_error, "
    "top1_acc, top5_acc, mean_per_class_acc, missing_predictions, unknown_ids; one "
    "top<k>_error/top<k>_acc pair per --k value; fractions 0..1, shown in % in the console), "
    "tables, figures, and reference with --reference (dataset, columns, rows).",
)
def eval_classify(
    predictions: Annotated[
        Path, typer.Argument(help="Kaggle CSV (id,predicted), or Parquet/NPZ of scores or labels.")
    ],
    truth: Annotated[Path, typer.Option(help="Catalog with the true labels.")],
    split: Annotated[str | None, typer.Option(help="Evaluate only this split.")] = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated k values.")] = "1,5",
    train: Annotated[
        Path | None,
        typer.Option(help="Catalog of training rows (default: the truth's split == train rows)."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder: writes <name>.classify.json.")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="Show published top-1/top-5 on inat2017 or inat2018 beside yours."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """INat top-k error and accuracy, per super-category, taxonomic level and class frequency."""
    from geoaware.errors import EvaluationError
    from geoaware.evaluate import evaluate_classification
    from geoaware.outputs import claim_output, record_output

    if out_dir is not None:
        claim_output(out_dir, "run")
    try:
        ks = [int(x) for x in k.split(",")]
    except ValueError:
        raise EvaluationError(f"--k must be comma-separated integers, got {k!r}") from None
    ref = None
    if reference is not None:
        from geoaware.evaluate.reference import reference_table

        reference_table(reference, {}, "", "classify")  # an unknown name fails before the work
    result = evaluate_classification(predictions, truth, split=split, ks=ks, train_table=train)
    if reference is not None:
        ref = reference_table(reference, result.summary, result.name, "classify")
        result.tables[f"published results on {ref['dataset']}"] = {
            "columns": ref["columns"],
            "rows": ref["rows"],
        }
    if out_dir is not None:
        result.save(out_dir / f"{result.name}.classify.json")
        record_output(out_dir, "run", inputs=[predictions, truth, train])
    data = result.to_dict()
    if ref is not None:
        data["reference"] = ref
    if json:
        emit_json(data)
        return
    keys = list(data["summary"])
    out.print(
        table(
            f"{data['name']}: {data['summary']['n']:,} images",
            keys,
            [[fmt_metric(key, data["summary"][key]) for key in keys]],
        )
    )
    for title, t in data["tables"].items():
        rows = [
            [fmt_metric(c, v) for c, v in zip(t["columns"], row, strict=False)] for row in t["rows"]
        ]
        out.print(table(title, t["columns"], rows))


submission_app = typer.Typer(
    help="Check or write Kaggle-style iNat submissions.",
    epilog="Example: geoaware submission check submission.csv --truth catalog.parquet",
)
app.add_typer(submission_app, name="submission")


@submission_app.command(
    "check",
    epilog="Example: geoaware submission check sub.csv --truth catalog.parquet --split test.  "
    "Exits 1 on any error.  JSON keys: path, ok, errors, warnings, problems "
    "(each: line, field, message, severity).",
)
def submission_check(
    file: Annotated[Path, typer.Argument(help="The submission CSV (id,predicted).")],
    truth: Annotated[Path, typer.Option(help="Catalog holding the test images and labels.")],
    split: Annotated[str, typer.Option(help="The split the submission is for.")] = "test",
    show: Annotated[int, typer.Option(help="Problems shown in the terminal.")] = 50,
    json: JsonOpt = False,
) -> None:
    """List every problem of a submission with its line number: header, ids, labels."""
    import dataclasses

    from geoaware.evaluate import check_submission

    problems = check_submission(file, truth, split)
    errors = sum(p.severity == "error" for p in problems)
    if json:
        emit_json(
            {
                "path": str(file),
                "ok": errors == 0,
                "errors": errors,
                "warnings": len(problems) - errors,
                "problems": [dataclasses.asdict(p) for p in problems],
            }
        )
    else:
        out.print(
            table(
                f"{file}: {errors:,} errors, {len(problems) - errors:,} warnings",
                ["line", "field", "problem", "severity"],
                [[p.line or "-", p.field, p.message, p.severity] for p in problems[:show]],
            )
        )
    if errors:
        raise typer.Exit(1)


@submission_app.command(
    "write",
    epilog="Example: geoaware submission write scores.npz --out submission.csv.  "
    "JSON keys: out, rows.",
)
def submission_write(
    scores: Annotated[Path, typer.Argument(help="Parquet/NPZ of scores or ranked labels.")],
    out_file: Annotated[Path, typer.Option("--out", help="Submission CSV to write.")],
    k: Annotated[int, typer.Option(help="Labels per image.")] = 5,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Write a Kaggle submission (id,predicted with k space-separated ids) from scores."""
    from geoaware.evaluate import read_predictions, write_submission
    from geoaware.outputs import claim_output, record_output

    claim_output(out_file, overwrite=overwrite, suffixes=(".csv",))
    topk = read_predictions(scores, k=k)
    path = write_submission(topk, out_file, k=k)
    record_output(path, inputs=[scores])
    if json:
        emit_json({"out": str(path), "rows": len(topk)})
    else:
        out.print(f"wrote {len(topk):,} rows to {path}")


@app.command(
    epilog="Example: geoaware report runs/exp1 --out report.html.  "
    "JSON keys: report, runs (each: name, kind, source, file).",
)
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder of <name>.<kind>.json files.")],
    out_html: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "report.html"
    ),
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML report (tables and embedded figures) of a run folder."""
    from geoaware.outputs import claim_output, record_output
    from geoaware.report import build_report, read_runs

    claim_output(out_html, overwrite=overwrite, suffixes=(".html", ".htm"))
    path = build_report(run_dir, out_html, title=title)
    record_output(path, inputs=[run_dir])
    runs = [
        {"name": r.name, "kind": r.kind, "source": r.source, "file": r.path.name}
        for r in read_runs(run_dir)
    ]
    if json:
        emit_json({"report": str(path), "runs": runs})
        return
    out.print(f"[bold]report[/] {path} ({len(runs)} runs)")


@app.command(
    epilog="Example: geoaware info runs/split.parquet.  JSON keys: the manifest's (tool, "
    "version, git_revision, command, seed, time, output, kind, inputs (each: path, bytes, "
    "mtime, sha256 or files), history (run folders: each command that added to it)).",
)
def info(
    path: Annotated[Path, typer.Argument(help="Any output geoaware wrote (file or folder).")],
    json: JsonOpt = False,
) -> None:
    """How an output was made: command, version, git revision, seed, inputs and time."""
    from geoaware.outputs import manifest_path, read_manifest

    if not path.exists():
        raise GeoawareError(f"{path}: no such file or folder")
    doc = read_manifest(path)
    if doc is None:
        raise GeoawareError(
            f"{path}: no geoaware manifest ({manifest_path(path)}); it was not written by "
            "geoaware, or by a version before manifests"
        )
    if json:
        emit_json(doc)
        return
    out.print(f"[bold]{doc['output']}[/] ({doc['kind']})", highlight=False)
    for key in ("command", "seed", "time", "version", "git_revision"):
        if doc.get(key) is not None:
            out.print(f"  {key.replace('_', ' ')}: {doc[key]}", highlight=False)
    rows = [
        [i["path"], i.get("bytes"), i.get("mtime"), (i.get("sha256") or "")[:16]]
        for i in doc.get("inputs", [])
    ]
    if rows:
        out.print(table("inputs", ["path", "bytes", "modified", "sha256 (first 16)"], rows))
    history = doc.get("history") or []
    if len(history) > 1:
        out.print(
            table("commands that wrote here", ["time", "command"],
                  [[h["time"], h["command"]] for h in history])
        )  # fmt: skip


def _source(name: str, registry: dict[str, Any]) -> Any:
    if name not in registry:
        raise GeoawareError(f"unknown source {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]


from geoaware.construct.commands import register as register_build  # noqa: E402
from geoaware.evaluate.commands import register as register_imagetext  # noqa: E402
from geoaware.federated import commands as federated_commands  # noqa: E402
from geoaware.geolocate.commands import register as register_geolocate  # noqa: E402
from geoaware.priors.commands import register as register_priors  # noqa: E402
from geoaware.vision.commands import register as register_vision  # noqa: E402

register_build(app)
register_priors(app)
register_imagetext(app)
register_geolocate(app)
register_vision(app)
app.add_typer(federated_commands.app)


def main() -> None:
    """Console-script entry point: run the app, turning geoaware errors into one red line."""
    try:
        app()
    except GeoawareError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

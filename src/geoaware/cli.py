"""The ``geoaware`` command line: a thin layer, one library call per command."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from geoaware.clikit import (
    CatalogArg,
    JsonOpt,
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
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("geoaware")
        except PackageNotFoundError:  # running from a source tree that was never installed
            number = "unknown (not installed)"
        out.print(f"geoaware {number}", highlight=False)
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
    epilog="Example: geoaware demo --out demo-output.  JSON keys: catalog, map, validation, stats.",
)
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the catalog and map.")] = Path(
        "demo-output"
    ),
    json: JsonOpt = False,
) -> None:
    """Build a catalog from the real fg_geo YFCC file, validate it, print stats and a map."""
    from geoaware.demo import run_demo

    summary = run_demo(out_dir, progress=not json)
    if json:
        emit_json(summary)
        return
    out.print(f"[bold]catalog[/] {summary['catalog']}")
    _print_validation(summary["validation"])
    _print_stats(summary["stats"])
    out.print(f"[bold]map[/] {summary['map']}")


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
    json: JsonOpt = False,
) -> None:
    """Rows per source and split, labels, users, images per user, continents, and a map."""
    from geoaware.catalog import catalog_stats, read_catalog

    table = read_catalog(catalog)
    summary = catalog_stats(table).to_dict()
    summary["map"] = None
    if map_png is not None:
        from geoaware.geo.maps import world_map

        lat = table.column("lat").to_numpy(zero_copy_only=False)
        lon = table.column("lon").to_numpy(zero_copy_only=False)
        summary["map"] = str(world_map(lat, lon, map_png, title=str(catalog)))
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
    json: JsonOpt = False,
) -> None:
    """Run SQL over a catalog with DuckDB; print the result or write it to a file."""
    from geoaware.catalog import query_catalog, write_result

    result = query_catalog(catalog, sql)
    if out_file is not None:
        write_result(result, out_file)
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
    epilog="Example: geoaware fetch fg_geo_yfcc --dest data.  "
    "Set GEOAWARE_MIRROR to a folder with the same relative paths to work offline.",
)
def fetch(
    source: Annotated[str, typer.Argument(help="Source name (see `geoaware sources`).")],
    parts: Annotated[
        str | None,
        typer.Option(help="Comma-separated parts, or `all`; default: the parts the catalog needs."),
    ] = None,
    dest: Annotated[Path, typer.Option(help="Download folder.")] = Path("data"),
) -> None:
    """Download a source's files with resume and checksum checks (mirror first)."""
    from geoaware.sources import SOURCES

    cls = _source(source, SOURCES)
    _warn_large_parts(cls(dest), parts.split(",") if parts else None)
    got = cls(dest).fetch(parts.split(",") if parts else None)
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
    json: JsonOpt = False,
) -> None:
    """Read a fetched source into a catalog."""
    from geoaware.catalog.io import write_catalog_batches
    from geoaware.sources import SOURCES

    reader = _source(source, SOURCES)(root)
    rows = 0

    def counted() -> Iterator[pa.Table]:
        nonlocal rows
        for batch in reader.read_batches():
            rows += batch.num_rows
            yield batch

    path = write_catalog_batches(counted(), out_path)
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
    json: JsonOpt = False,
) -> None:
    """Catalog any folder of photos: EXIF GPS, capture time, size, orientation."""
    from geoaware.catalog import write_catalog
    from geoaware.sources.exif import scan_images

    table, report = scan_images(
        folder, source=source, progress=not json, check_pixels=not headers_only
    )
    path = write_catalog(table, out_path)
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
    epilog="Example: geoaware eval geo results.csv --by continent --out runs/exp1.  "
    "JSON keys (one file): n, acc_1km, acc_25km, acc_200km, acc_750km, acc_2500km "
    "(fractions 0..1; one per --thresholds value), median_km, mean_km, geoscore, "
    "skipped_rows; with several files, one such object per file name.",
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
    strict: Annotated[bool, typer.Option(help="A bad row is an error, not a skipped row.")] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder for JSON results and figures.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Great-circle accuracy at 1/25/200/750/2500 km, median and mean error, GeoScore."""
    from geoaware.evaluate.geo import evaluate_geo
    from geoaware.evaluate.geo_io import read_geo_predictions
    from geoaware.geolocate.overlap import overlap_warnings, read_overlap

    cols = tuple(columns.split(",")) if columns else None
    if cols is not None and len(cols) != 4:
        raise typer.BadParameter("--columns takes four names: true_lat,true_lon,pred_lat,pred_lon")
    truth_table = None
    if truth is not None:
        from geoaware.catalog import read_catalog

        truth_table = read_catalog(truth)
    groups = [b for b in (by or "").split(",") if b]
    reports = []
    for path in predictions:
        preds = read_geo_predictions(path, cols, truth=truth_table, strict=strict)  # type: ignore[arg-type]
        report = evaluate_geo(
            preds,
            thresholds=floats_option(thresholds, "--thresholds"),
            geodesic=geodesic,
            by=groups,
            hit_rates=out_dir is not None or not json,
        )
        report.warnings = overlap_warnings(read_overlap(path))
        reports.append(report)
    if out_dir is not None:
        _write_geo_run(reports, out_dir)
    if json:
        summaries = {r.name: r.summary for r in reports}
        emit_json(reports[0].summary if len(reports) == 1 else summaries)
        return
    keys = list(reports[0].summary)
    out.print(
        table(
            "geolocation",
            ["predictions", *keys],
            [[r.name, *(fmt_metric(k, r.summary[k]) for k in keys)] for r in reports],
        )
    )
    for r in reports:
        for title, t in r.tables.items():
            rows = [
                [fmt_metric(c, v) for c, v in zip(t["columns"], row, strict=False)]
                for row in t["rows"][:50]
            ]
            out.print(table(f"{r.name}: {title}", t["columns"], rows))
    for r in reports:
        for warning in r.warnings:
            out.print(f"[yellow]warning:[/] {r.name}: {warning}", highlight=False)
    if out_dir is not None:
        out.print(f"[bold]run folder[/] {out_dir}")


def _write_geo_run(reports: list[Any], out_dir: Path) -> None:
    from geoaware.report.plots import error_cdf, error_map, group_bars

    out_dir.mkdir(parents=True, exist_ok=True)
    cdf = error_cdf({r.name: r.errors_km for r in reports}, out_dir / "error_cdf.png")
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
                    value=["acc_25km", "acc_200km", "acc_750km", "acc_2500km"],
                ).name
            )
        r.figures = figures
        r.save(out_dir / f"{r.name}.geo.json")


@eval_app.command(
    "classify",
    epilog="Example: geoaware eval classify preds.csv --truth catalog.parquet --split val "
    "--out runs/exp1.  JSON keys: kind, name, source, summary (n, top1_error, top5_error, "
    "top1_acc, top5_acc, mean_per_class_acc, missing_predictions, unknown_ids; one "
    "top<k>_error/top<k>_acc pair per --k value), tables, figures.",
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
    json: JsonOpt = False,
) -> None:
    """INat top-k error and accuracy, per super-category, taxonomic level and class frequency."""
    from geoaware.errors import EvaluationError
    from geoaware.evaluate import evaluate_classification

    try:
        ks = [int(x) for x in k.split(",")]
    except ValueError:
        raise EvaluationError(f"--k must be comma-separated integers, got {k!r}") from None
    result = evaluate_classification(predictions, truth, split=split, ks=ks, train_table=train)
    if out_dir is not None:
        result.save(out_dir / f"{result.name}.classify.json")
    data = result.to_dict()
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
    json: JsonOpt = False,
) -> None:
    """Write a Kaggle submission (id,predicted with k space-separated ids) from scores."""
    from geoaware.evaluate import read_predictions, write_submission

    topk = read_predictions(scores, k=k)
    path = write_submission(topk, out_file, k=k)
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
    json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML report (tables and embedded figures) of a run folder."""
    from geoaware.report import build_report, read_runs

    path = build_report(run_dir, out_html, title=title)
    runs = [
        {"name": r.name, "kind": r.kind, "source": r.source, "file": r.path.name}
        for r in read_runs(run_dir)
    ]
    if json:
        emit_json({"report": str(path), "runs": runs})
        return
    out.print(f"[bold]report[/] {path} ({len(runs)} runs)")


def _source(name: str, registry: dict[str, Any]) -> Any:
    if name not in registry:
        raise GeoawareError(f"unknown source {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]


from geoaware.build.commands import register as register_build  # noqa: E402
from geoaware.evaluate.commands import register as register_imagetext  # noqa: E402
from geoaware.geolocate.commands import register as register_geolocate  # noqa: E402
from geoaware.priors.commands import register as register_priors  # noqa: E402
from geoaware.vision.commands import register as register_vision  # noqa: E402

register_build(app)
register_priors(app)
register_imagetext(app)
register_geolocate(app)
register_vision(app)


def main() -> None:
    """Console-script entry point: run the app, turning geoaware errors into one red line."""
    try:
        app()
    except GeoawareError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

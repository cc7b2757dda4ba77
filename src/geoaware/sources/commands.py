"""The source commands: ``sources``, ``fetch``, ``ingest``, ``fetch-images``, ``scan-images``.

Each command parses its options and calls one function of :mod:`geoaware.sources` (and the
catalog writer); ``cli.py`` adds this module's ``app`` to the top-level app. pyarrow is
imported inside the commands, so ``geoaware --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from geoaware.clikit import CatalogArg, JsonOpt, OverwriteOpt, emit_json, err, out, table
from geoaware.errors import GeoawareError, InputFileError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "FETCH_IMAGES_KEYS",
    "LARGE_PART_BYTES",
    "app",
    "fetch",
    "fetch_images_cmd",
    "ingest",
    "scan_images_cmd",
    "sources",
]

FETCH_IMAGES_KEYS = "out, rows, fetched, present, failed, failed_file, bytes, seconds"

app = typer.Typer()


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
    """Warn before parts over 1 GiB, or parts the catalog does not need of unknown size.

    A small extra part (Im2GPS's 44 kB demo predictions) is fetched without a warning.
    """
    order = src.plan(parts)
    needed = set(src.catalog_parts or src.files)

    def big(p: str) -> bool:
        size = src.files[p].size
        return size >= LARGE_PART_BYTES if size is not None else p not in needed

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
    "fetch-images",
    epilog="Example: geoaware fetch-images fg_geo.parquet --out photos, then "
    "geoaware embed fg_geo.parquet --images photos --out emb.  Rerun to resume: photos already "
    "there are skipped.  Each row's photo is saved as PHOTOS/<file_name>, where embed looks "
    f"for it.  JSON keys: {FETCH_IMAGES_KEYS}.",
)
def fetch_images_cmd(
    catalog: CatalogArg,
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Photos folder (resumed if geoaware made it); failed.csv."),
    ],
    workers: Annotated[int, typer.Option(help="Downloads at once.", min=1)] = 16,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N rows (after --where).", min=0)
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(help="DuckDB condition on the catalog's columns, e.g. \"genus = 'Vireo'\"."),
    ] = None,
    retries: Annotated[
        int, typer.Option(help="Tries per photo (404s are not retried).", min=1)
    ] = 3,
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a server to accept the connection.")
    ] = 10.0,
    read_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the next bytes from a server.")
    ] = 30.0,
    json: JsonOpt = False,
) -> None:
    """Download the photos of a catalog's rows (their url) for embed; dead links to failed.csv."""
    from geoaware.catalog import query_catalog, read_catalog
    from geoaware.catalog.io import catalog_columns
    from geoaware.errors import DownloadError
    from geoaware.outputs import claim_output, record_output
    from geoaware.sources.download import Timeouts
    from geoaware.sources.images import fetch_images

    timeouts = Timeouts(connect=connect_timeout, read=read_timeout)
    claim_output(out_dir, "run")  # a folder of ours is resumed; anything else is refused
    wanted = ["image_id", "url", "file_name"]
    if where is not None:
        sql = f"SELECT {', '.join(wanted)} FROM catalog WHERE {where}"
        rows = query_catalog(catalog, sql + ("" if limit is None else f" LIMIT {limit}"))
    else:
        have = catalog_columns(catalog)
        for name in wanted:
            if name not in have:
                raise InputFileError(catalog, "the catalog has no such column", field=name)
        rows = read_catalog(catalog, columns=wanted)
        if limit is not None:
            rows = rows.slice(0, limit)
    record_output(out_dir, "run", inputs=[catalog])  # now, so a stopped run can be resumed
    report = fetch_images(
        rows, out_dir, workers=workers, retries=retries, timeouts=timeouts,
        progress=not json, where=str(catalog),
    )  # fmt: skip
    if report.rows and report.failed == report.rows:
        first = report.failures[0]
        raise DownloadError(
            f"none of the {report.rows:,} photos could be fetched (first: {first.image_id} "
            f"{first.url}: {first.reason}); all are listed in {report.failed_file}"
        )
    if json:
        emit_json(report.to_dict())
        return
    out.print(
        table(
            f"photos: {report.out}",
            ["rows", "fetched", "already there", "failed", "MB", "seconds"],
            [
                [
                    report.rows,
                    report.fetched,
                    report.present,
                    report.failed,
                    f"{report.bytes / 1e6:,.1f}",
                    f"{report.seconds:.1f}",
                ]
            ],
        )
    )
    if report.failures:
        shown = "; ".join(f"{f.image_id} ({f.reason})" for f in report.failures[:3])
        out.print(
            f"[bold]{report.failed:,} photos not fetched[/], listed in {report.failed_file} "
            f"(a rerun tries them again); first: {shown}",
            highlight=False,
        )


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


def _source(name: str, registry: dict[str, Any]) -> Any:
    if name not in registry:
        raise GeoawareError(f"unknown source {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]

"""The dataset-construction commands: build/check fg-geo, split, leakage, partition.

``cli.py`` adds this module's ``app`` to the top-level app (``fl`` lives in
:mod:`geoaware.federated.commands`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geoaware.clikit import CatalogArg, JsonOpt, OverwriteOpt, emit_json, floats_option, out, table

__all__ = [
    "app",
    "build_app",
    "check_app",
    "leakage",
    "partition",
    "split",
]


def _examples(items: list[Any], n: int = 3) -> str:
    return ", ".join(str(x) for x in items[:n]) + (", ..." if len(items) > n else "")


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _show_fg_geo_build(r: dict[str, Any]) -> None:
    rows = [[rule, n] for rule, n in r["removed"].items()]
    out.print(
        table(
            f"fg_geo from {r['yfcc']}: {r['rows_read']:,} rows read", ["removed by", "rows"], rows
        )
    )
    out.print(f"kept {r['kept']:,} rows, wrote {r['out']}", highlight=False)
    if r["ambiguous_names"]:
        out.print(
            f"{len(r['ambiguous_names']):,} label names dropped as ambiguous: "
            + _examples(r["ambiguous_names"]),
            highlight=False,
        )


def _show_fg_geo_check(r: dict[str, Any]) -> None:
    rows = [[rule, v["violations"], _examples(v["examples"])] for rule, v in r["rules"].items()]
    title = (
        f"{r['path']}: {r['rows']:,} rows, {r['images']:,} images, {r['labels']:,} labels, "
        f"{r['duplicate_ids']:,} duplicate ids"
    )
    out.print(table(title, ["rule", "violations", "examples"], rows))
    hist = r["label_count_histogram"]
    out.print(
        table(
            "labels by number of images",
            ["images per label", "labels"],
            [[k, v] for k, v in hist.items()],
        )
    )
    out.print("[green]OK: every rule holds[/]" if r["ok"] else "[red]FAILED: a rule is broken[/]")


def _show_split(r: dict[str, Any]) -> None:
    rows_per = r["rows_per_split"]
    rows = [[side, n, _pct(n, r["rows"])] for side, n in rows_per.items()]
    ratios = ",".join(f"{x:g}" for x in r["ratios"])
    title = (
        f"split by {r['by']} (seed {r['seed']}, ratios {ratios}): {r['rows']:,} rows, "
        f"{r['keys']:,} distinct keys"
    )
    out.print(table(title, ["side", "rows", "share"], rows))
    if r.get("rows_without_key"):
        out.print(f"{r['rows_without_key']:,} rows have no {r['by']} key", highlight=False)
    missing = r.get("labels_missing_a_side")
    if missing:
        out.print(f"labels missing a side: {missing}", highlight=False)
    out.print(f"wrote {r['out']}", highlight=False)


def _show_leakage(r: dict[str, Any]) -> None:
    sides = ", ".join(f"{k} {v:,}" for k, v in r["sides"].items())
    out.print(
        f"{r['path']}: {r['rows']:,} rows by {r['split_column']!r} ({sides})", highlight=False
    )
    users, ids, urls, outing = (
        r["shared_users"], r["duplicate_ids"], r["duplicate_urls"], r["same_outing"]
    )  # fmt: skip
    user_note = (
        f"{users['rows_without_user']:,} rows have no user"
        if users.get("rows_without_user")
        else ""
    )
    time_note = (
        f"{outing['pairs_time_unknown']:,} pairs without a capture time (distance only)"
        if outing.get("pairs_time_unknown")
        else ""
    )
    rows = [
        ["users on two sides", users["count"], users["rows"], user_note],
        ["image ids on two sides", ids["count"], ids["rows"], ""],
        ["URLs on two sides", urls["count"], urls["rows"], ""],
        [
            f"same outing ({outing['radius_m']:g} m, {outing['window_s'] / 3600:g} h)",
            outing["pairs"],
            outing["images"],
            time_note,
        ],
    ]
    out.print(table("leaks between sides", ["check", "found", "rows", "note"], rows))
    labels = r.get("labels")
    if labels:
        ref = labels["reference"]
        lrows = [
            [
                side,
                n,
                "" if side == ref else labels[side]["not_in_reference"],
                "" if side == ref else _examples(labels[side]["not_in_reference_examples"]),
            ]
            for side, n in labels["labels_per_side"].items()
        ]
        out.print(
            table(
                f"labels per side (reference: {ref})",
                ["side", "labels", f"not in {ref}", "examples"],
                lrows,
            )
        )
    if r.get("map"):
        out.print(f"map {r['map']}", highlight=False)
    out.print("[red]leaks found[/]" if r["leaks"] else "[green]no leak[/]")


def _partition_figure(value: float | None, *, counts: bool) -> str:
    """One cell of the per-client table: whole counts as integers, no "-0.00" from rounding.

    >>> _partition_figure(1.0, counts=True), _partition_figure(-1e-12, counts=False)
    ('1', '0.00')
    """
    if value is None:
        return "-"
    if counts or float(value).is_integer():
        return f"{round(value):,}"
    return f"{max(value, 0.0):,.2f}"


def _show_partition(r: dict[str, Any], out_dir: Path) -> None:
    title = (
        f"{r['scheme']}: {r['clients']:,} clients, {r['rows_assigned']:,} rows assigned, "
        f"{r['rows_left_out']:,} left out, {r['empty_clients']:,} empty clients"
    )
    figures = ("mean", "std", "min", "median", "max")
    rows = [
        [label] + [_partition_figure(r[name][k], counts=k in ("min", "max") and
                                     name != "label_entropy_bits") for k in figures]
        for name, label in (
            ("samples_per_client", "images"),
            ("labels_per_client", "labels"),
            ("label_entropy_bits", "label entropy (bits)"),
        )
        if name in r
    ]  # fmt: skip
    out.print(table(title, ["per client", *figures], rows))
    left = {k: v for k, v in r["left_out"].items() if v}
    if left:
        out.print(
            "left out: "
            + ", ".join(f"{v:,} rows ({k.replace('_', ' ')})" for k, v in left.items()),
            highlight=False,
        )
    out.print(f"wrote {out_dir} ({', '.join(r['files'])})", highlight=False)


#: The stage's commands, added to the top-level app by ``cli.py``.
app = typer.Typer()

build_app = typer.Typer(
    help="Build datasets from raw metadata.",
    epilog="Example: geoaware build fg-geo --yfcc yfcc100m_dataset --labels names.txt "
    "--out fg_geo.parquet",
    no_args_is_help=True,
)
check_app = typer.Typer(
    help="Check built datasets against their recipe.",
    epilog="Example: geoaware check fg-geo yfcc100m_geolocated_inat2017species.csv.zip",
    no_args_is_help=True,
)
app.add_typer(build_app, name="build")
app.add_typer(check_app, name="check")


@build_app.command(
    "fg-geo",
    epilog="Example: geoaware build fg-geo --yfcc yfcc100m_dataset --labels names.txt "
    "--out fg_geo.parquet.  JSON keys: yfcc, labels, ambiguous_names, rows_read, removed "
    "(video, not_geotagged, no_label, several_labels, over_per_label), kept, out.",
)
def build_fg_geo_cmd(
    yfcc: Annotated[Path, typer.Option(help="YFCC100M metadata table (tab-separated).")],
    labels: Annotated[Path, typer.Option(help="Catalog, JSON or text file of names.")],
    out_file: Annotated[Path, typer.Option("--out", help="Catalog to write.")],
    per_label: Annotated[int, typer.Option(help="At most this many images per label.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the per-label choice.")] = 0,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Keep geotagged photos whose tags name exactly one label, at most N per label."""
    from geoaware.construct.fg_geo import build_fg_geo
    from geoaware.outputs import claim_catalog, record_output

    kind = claim_catalog(out_file, overwrite=overwrite)
    report = build_fg_geo(yfcc, labels, out_file, per_label=per_label, seed=seed)
    record_output(out_file, kind, inputs=[yfcc, labels], seed=seed)
    emit_json(report) if json else _show_fg_geo_build(report)


@check_app.command(
    "fg-geo",
    epilog="Example: geoaware check fg-geo yfcc100m_geolocated_inat2017species.csv.zip.  "
    "Exits 1 if a rule is broken.  JSON keys: path, rows, images, labels, duplicate_ids, "
    "rules (each: violations, examples), ok, label_count_histogram.",
)
def check_fg_geo_cmd(
    file: Annotated[Path, typer.Argument(help="Released zip/CSV or a catalog.")],
    per_label: Annotated[int, typer.Option(help="Largest allowed images per label.")] = 10,
    json: JsonOpt = False,
) -> None:
    """Check geotagged, one label per image, at most N per label; label-count histogram."""
    from geoaware.construct.fg_geo import check_fg_geo

    report = check_fg_geo(file, per_label=per_label)
    emit_json(report) if json else _show_fg_geo_check(report)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command(
    epilog="Example: geoaware split catalog.parquet --by user --out split.parquet.  "
    "JSON keys: by, seed, ratios, rows, rows_without_key, keys, rows_per_split, "
    "labels_missing_a_side, out.",
)
def split(
    catalog: CatalogArg,
    out_file: Annotated[Path, typer.Option("--out", help="Catalog to write.")],
    by: Annotated[str, typer.Option(help="random, user, cell or time.")] = "random",
    cell: Annotated[str, typer.Option(help="h3:RES or s2:LEVEL for --by cell.")] = "h3:3",
    ratios: Annotated[str, typer.Option(help="train,val[,test] shares.")] = "0.8,0.1,0.1",
    seed: Annotated[int, typer.Option(help="Seed of the key hash.")] = 0,
    stratify: Annotated[
        str | None, typer.Option(help="Keep every value of this column on every side.")
    ] = None,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Assign train/val/test by a seeded hash of the image, user, cell (or by time)."""
    from geoaware.catalog import read_catalog, write_catalog
    from geoaware.construct.split import assign_split
    from geoaware.outputs import claim_catalog, record_output

    kind = claim_catalog(out_file, overwrite=overwrite)
    r = floats_option(ratios, "--ratios")
    result = assign_split(
        read_catalog(catalog), by,  # type: ignore[arg-type]
        cell=cell, ratios=r, seed=seed, stratify=stratify, where=str(catalog),
    )  # fmt: skip
    write_catalog(result.table, out_file)
    record_output(out_file, kind, inputs=[catalog], seed=seed)
    result.summary["out"] = str(out_file)
    emit_json(result.summary) if json else _show_split(result.summary)


@app.command(
    epilog="Example: geoaware leakage split.parquet --map leaks.png.  JSON keys: path, "
    "split_column, rows, sides, shared_users, duplicate_ids, duplicate_urls, same_outing, "
    "labels, leaks, map.",
)
def leakage(
    catalog: CatalogArg,
    split_column: Annotated[str, typer.Option(help="Column naming the side.")] = "split",
    radius_m: Annotated[float, typer.Option(help="Same-outing distance (m).")] = 100.0,
    window_s: Annotated[float, typer.Option(help="Same-outing time window (s).")] = 86400.0,
    map_png: Annotated[Path | None, typer.Option("--map", help="PNG map of leaks.")] = None,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Users on both sides, same-outing images, duplicate ids/URLs, label gaps."""
    from geoaware.catalog import read_catalog
    from geoaware.construct.leakage import leakage_report
    from geoaware.outputs import claim_output, record_output

    if map_png is not None:
        claim_output(map_png, overwrite=overwrite, suffixes=(".png",), what="--map")
    report = leakage_report(
        read_catalog(catalog), split_column, radius_m=radius_m, window_s=window_s,
        map_png=map_png, where=str(catalog),
    )  # fmt: skip
    if map_png is not None:
        record_output(map_png, inputs=[catalog])
    emit_json(report) if json else _show_leakage(report)


@app.command(
    epilog="Example: geoaware partition catalog.parquet --by dirichlet --num-partitions 100 "
    "--alpha 0.1 --out parts/.  For a catalog without user_id (fg_geo): --by synthetic-user "
    "--users 2000 invents SYNTHETIC photographers (not real users): homes at catalog photos, "
    "lognormal activity, each photo to a nearby one with odds activity x exp(-km / "
    "--scale-km); those with no photo are dropped.  JSON keys: clients, rows_assigned, "
    "rows_left_out, empty_clients, labels, samples_per_client, labels_per_client, "
    "label_entropy_bits, scheme, settings, left_out, level, files, out.",
)
def partition(
    catalog: CatalogArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write.")],
    by: Annotated[
        str,
        typer.Option(
            help="user, synthetic-user, cell, dirichlet or iid. synthetic-user: SYNTHETIC "
            "photographers (not real users) for catalogs without user_id such as fg_geo."
        ),
    ] = "user",
    level: Annotated[
        str | None, typer.Option(help="species, genus, family, order, class or phylum.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Dirichlet concentration.")] = 0.1,
    num_partitions: Annotated[int | None, typer.Option(help="Dirichlet/iid clients.")] = None,
    min_size: Annotated[
        int | None, typer.Option(help="Smallest client (Dirichlet default 10; else 1).")
    ] = None,
    cell: Annotated[str, typer.Option(help="h3:RES or s2:LEVEL for --by cell.")] = "h3:3",
    max_cell_size: Annotated[
        int | None, typer.Option(help="Adaptive cells of at most this many images.")
    ] = None,
    users: Annotated[
        int | None, typer.Option(help="Synthetic photographers for --by synthetic-user.")
    ] = None,
    scale_km: Annotated[
        float, typer.Option(help="synthetic-user: locality kernel exp(-d / scale) in km.")
    ] = 200.0,
    activity_sigma: Annotated[
        float, typer.Option(help="synthetic-user: lognormal sigma of activity (tail).")
    ] = 2.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    inat_tables: Annotated[
        bool, typer.Option(help="Also write the iNat2021 per-user CSV tables.")
    ] = False,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Federated partitions (by user, SYNTHETIC user, cell, Dirichlet or IID), LEAF-style stats."""
    from geoaware.catalog import read_catalog
    from geoaware.construct.partition import make_partitioner
    from geoaware.construct.stats import write_inat_user_tables, write_partitions
    from geoaware.outputs import claim_output, record_output

    claim_output(out_dir, "folder", overwrite=overwrite)
    table = read_catalog(catalog)
    p = make_partitioner(
        by, level=level, alpha=alpha, num_partitions=num_partitions, min_size=min_size,
        cell=cell, max_cell_size=max_cell_size, users=users, scale_km=scale_km,
        activity_sigma=activity_sigma, seed=seed,
    )  # fmt: skip
    p.where = str(catalog)
    p.catalog = table
    stats = write_partitions(p, out_dir, level=level)
    if inat_tables:
        stats["inat_tables"] = [str(x) for x in write_inat_user_tables(table, out_dir)]
    record_output(out_dir, "folder", inputs=[catalog], seed=seed)
    if json:
        emit_json(stats)
        return
    _show_partition(stats, out_dir)

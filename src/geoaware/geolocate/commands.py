"""The ``geoaware geolocate`` commands: fit, predict.

Each command parses its options and calls one library function of
:mod:`geoaware.geolocate.model`; ``cli.py`` adds this module's ``app`` (the ``geolocate``
group) to the top-level app. faiss and torch are imported inside the methods that need them,
so ``geoaware --help`` stays fast.
"""

from __future__ import annotations

import json as _json
from pathlib import Path
from typing import Annotated, Any

import typer

from geoaware.clikit import JsonOpt, OverwriteOpt, emit_json, err, fmt_metric, out, table
from geoaware.errors import GeoawareError

__all__ = ["app", "geolocate_app"]

geolocate_app = typer.Typer(
    name="geolocate",
    help="Image geolocation from embeddings: k-NN retrieval, GPS gallery, geocells.",
    epilog="Example: geoaware geolocate fit emb --catalog split.parquet --method knn --k 3 "
    "--out knn-model",
    no_args_is_help=True,
    add_completion=False,
)

#: The stage's commands, added to the top-level app by ``cli.py``: the ``geolocate`` group.
app = typer.Typer()
app.add_typer(geolocate_app, name="geolocate")

EmbArg = Annotated[Path, typer.Argument(help="Embeddings: a .parquet file or a folder of shards.")]


def _parse_value(text: str) -> Any:
    try:
        return _json.loads(text)
    except ValueError:
        return text


def _extra_options(pairs: list[str] | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--option takes KEY=VALUE, got {pair!r}")
        options[key.strip().replace("-", "_")] = _parse_value(value)
    return options


def _levels(text: str) -> tuple[int, int]:
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"--levels takes MIN,MAX integers, got {text!r}") from exc
    if len(values) != 2:
        raise typer.BadParameter(f"--levels takes MIN,MAX integers, got {text!r}")
    return values[0], values[1]


def _partitions(text: str | None, tau_min: int | None, tau_max: int | None) -> Any:
    """Cells partitions from ``--partitions`` or one ``--tau-min``/``--tau-max`` pair."""
    if (tau_min is None) != (tau_max is None):
        raise typer.BadParameter("--tau-min and --tau-max go together")
    specs: list[Any] = []
    if tau_min is not None and tau_max is not None:
        specs.append((tau_min, tau_max))
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("_")
        if sep and low.isdigit() and high.isdigit():
            specs.append((int(low), int(high)))
        else:
            specs.append(part)
    return specs or None


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


@geolocate_app.command(
    epilog="Example: geoaware geolocate fit emb.parquet --catalog catalog.parquet "
    "--split train --method knn --k 10 --out knn-model --exclude-within 1 --exclude-near test; "
    "geoaware geolocate fit emb.parquet --catalog catalog.parquet --method cells "
    "--partitions 50_5000,50_1000 --epochs 20 --out cell-model; fine-tune GeoCLIP: "
    "geoaware geolocate fit emb/ --catalog catalog.parquet --method gallery --init geoclip "
    "--gallery coordinates_100K.csv --out geoclip-ft.  "
    "JSON keys: model_dir, method, join (catalog_rows, split, split_rows, no_location, "
    "no_location_example, no_embedding, no_embedding_example, embeddings, "
    "embeddings_not_in_rows, embeddings_not_in_rows_example, used), fitted_on, excluded "
    "(km, near, near_points, removed, or null), options, details (the model's config.json).",
)
def fit(
    embeddings: EmbArg,
    catalog: Annotated[Path, typer.Option(help="Catalog with the images' locations.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    method: Annotated[str, typer.Option(help="knn, gallery or cells.")] = "knn",
    split: Annotated[
        str | None, typer.Option(help="Fit on this split ('all': every located row).")
    ] = "train",
    k: Annotated[int | None, typer.Option(help="knn: neighbours that vote.")] = None,
    mode: Annotated[
        str | None, typer.Option(help="knn: kernel (density mode), nn or auto.")
    ] = None,
    bandwidth_km: Annotated[float | None, typer.Option(help="knn: kernel bandwidth, km.")] = None,
    index: Annotated[
        str | None, typer.Option(help="knn: auto, flat (exact) or ivfpq (approximate).")
    ] = None,
    ivf_threshold: Annotated[
        int | None, typer.Option(help="knn: gallery size above which auto uses IVF-PQ.")
    ] = None,
    nprobe: Annotated[int | None, typer.Option(help="knn: IVF lists searched.")] = None,
    gallery: Annotated[
        Path | None, typer.Option(help="gallery: LAT,LON CSV of candidate coordinates.")
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="gallery: geoclip starts from GeoCLIP's published weights (768-d "
            "hf:openai/clip-vit-large-patch14 vectors; pip install --no-deps geoclip)."
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="gallery/cells: training epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="gallery/cells: batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="gallery/cells: learning rate.")] = None,
    partitions: Annotated[
        str | None,
        typer.Option(
            help="cells: comma-separated partitions, coarse to fine: TAUMIN_TAUMAX (built from "
            "the training locations, e.g. 50_5000) or a published cells CSV."
        ),
    ] = None,
    tau_min: Annotated[
        int | None, typer.Option(help="cells: one partition, fewest images per cell.")
    ] = None,
    tau_max: Annotated[
        int | None, typer.Option(help="cells: one partition, most images per cell.")
    ] = None,
    levels: Annotated[
        str | None, typer.Option(help="cells: S2 levels to split from and to, MIN,MAX.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every random draw.")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(help="Any other method setting as KEY=VALUE (JSON value); repeatable."),
    ] = None,
    exclude_within: Annotated[
        float | None,
        typer.Option(help="Drop training images within KM of the --exclude-near locations."),
    ] = None,
    exclude_near: Annotated[
        str, typer.Option(help="Catalog path, or a split of --catalog, to keep away from.")
    ] = "test",
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Fit a geolocator on the embeddings of a catalog's located rows and save the folder."""
    from geoaware.geolocate.model import fit_from_files
    from geoaware.outputs import claim_output, record_output

    claim_output(out_dir, "folder", overwrite=overwrite)

    given: dict[str, Any] = {
        "k": k,
        "mode": mode,
        "bandwidth_km": bandwidth_km,
        "index": index,
        "ivf_threshold": ivf_threshold,
        "nprobe": nprobe,
        "epochs": epochs,
        ("batch" if method == "cells" else "batch_size"): batch_size,
        "lr": lr,
        "seed": seed,
        "init": init,
        "partitions": _partitions(partitions, tau_min, tau_max),
    }
    if levels is not None:
        low, high = _levels(levels)
        given["min_level"], given["max_level"] = low, high
    options = {key: v for key, v in given.items() if v is not None}
    options.update(_extra_options(option))

    def progress(epoch: int, loss: float) -> None:
        if not json:
            err.print(f"epoch {epoch}: loss {loss:.4f}", highlight=False)

    try:
        result = fit_from_files(
            embeddings,
            catalog,
            out_dir,
            method=method,
            split=None if split == "all" else split,
            gallery=gallery,
            exclude_within_km=exclude_within,
            exclude_near=exclude_near,
            progress=progress,
            **options,
        )
    except GeoawareError:
        raise  # one red line (the CLI's error layer), not a usage box
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    record_output(out_dir, "folder", inputs=[embeddings, catalog, gallery], seed=seed)
    if json:
        emit_json(result.to_dict())
        return
    j = result.join
    out.print(
        table(
            f"geolocate fit ({result.method}) -> {result.model_dir}",
            ["split rows", "no location", "no embedding", "fitted on", "excluded"],
            [
                [
                    j["split_rows"],
                    j["no_location"],
                    j["no_embedding"],
                    result.fitted_on,
                    (result.excluded or {}).get("removed", 0),
                ]
            ],
        )
    )
    if j["no_embedding"]:
        out.print(
            f"{j['no_embedding']:,} located rows have no vector, e.g. {j['no_embedding_example']}"
        )
    if result.excluded:
        e = result.excluded
        out.print(f"removed {e['removed']:,} training images within {e['km']} km of {e['near']}")


@geolocate_app.command(
    epilog="Example: geoaware geolocate predict knn-model emb.parquet --catalog catalog.parquet "
    "--split test --out pred.parquet --k 5, then geoaware eval geo pred.parquet "
    "--truth catalog.parquet; GeoCLIP out of the box: geoaware geolocate predict geoclip emb/ "
    "--out pred.csv (emb/ from embed --encoder hf:openai/clip-vit-large-patch14).  "
    "--truth catalog.parquet.  Candidate scores are in [0, 1] for every method: a cell's or "
    "gallery point's probability; for knn the place's share of the k voters' vote (0 for "
    "neighbours past the k voters).  Writes PRED.overlap.json beside the predictions (the "
    "overlap report, repeated by eval geo and report).  JSON keys: out, method, predicted, k, "
    "join (as in fit, or null), "
    "overlap (per reference set, e.g. training, gallery: km, n_query, n_reference, within, "
    "fraction, median_nearest_km), excluded (km, points, removed, or null), summary (with "
    "--evaluate: eval geo's summary of the file against --catalog, n, acc_1km ... acc_2500km, "
    "median_km, mean_km, geoscore; else null).",
)
def predict(
    model: Annotated[
        Path,
        typer.Argument(
            help="Model folder written by geolocate fit, or geoclip: GeoCLIP as published "
            "(pip install --no-deps geoclip; embeddings from hf:openai/clip-vit-large-patch14)."
        ),
    ],
    embeddings: EmbArg,
    out_file: Annotated[
        Path, typer.Option("--out", help="Predictions to write (.parquet or .csv).")
    ],
    catalog: Annotated[
        Path | None, typer.Option(help="Catalog: predict its --split rows; truth for reports.")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Split to predict with --catalog ('all': every row).")
    ] = "test",
    k: Annotated[int, typer.Option(help="Candidates written per image.")] = 5,
    exclude_within: Annotated[
        float | None,
        typer.Option(help="Drop reference points within KM of the test locations first."),
    ] = None,
    overlap_km: Annotated[float, typer.Option(help="Radius of the overlap report, km.")] = 1.0,
    overwrite: OverwriteOpt = False,
    evaluate: Annotated[
        bool, typer.Option("--evaluate", help="Score the file with eval geo against --catalog.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Predict a place and the top-k candidates per image; the file eval geo reads directly."""
    from geoaware.geolocate.model import predict_from_files
    from geoaware.outputs import claim_output, record_output

    claim_output(out_file, overwrite=overwrite, suffixes=(".parquet", ".csv"))

    if k < 1:
        raise typer.BadParameter(f"--k must be at least 1, got {k}")
    result = predict_from_files(
        model,
        embeddings,
        out_file,
        catalog=catalog,
        split=None if split == "all" else split,
        k=k,
        exclude_within_km=exclude_within,
        overlap_km=overlap_km,
    )
    record_output(out_file, inputs=[model, embeddings, catalog])
    summary = _evaluate(out_file, catalog) if evaluate else None
    if json:
        emit_json({**result.to_dict(), "summary": summary})
        return
    out.print(
        f"[bold]{result.predicted:,} predictions[/] ({result.method}, top {result.k}) "
        f"-> {result.out}"
    )
    if result.overlap:
        out.print(
            table(
                f"test locations within {overlap_km} km of a reference location",
                ["reference", "points", "test", "within", "fraction", "median nearest km"],
                [
                    [
                        name,
                        o["n_reference"],
                        o["n_query"],
                        o["within"],
                        _pct(o["fraction"]),
                        "-" if o["median_nearest_km"] is None else f"{o['median_nearest_km']:,.2f}",
                    ]
                    for name, o in result.overlap.items()
                ],
            )
        )
    from geoaware.geolocate.overlap import overlap_warnings

    for warning in overlap_warnings({"km": overlap_km, "overlap": result.overlap}):
        out.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if result.excluded:
        e = result.excluded
        out.print(
            f"excluded {e['removed']:,} {e['points']} points within {e['km']} km of a test location"
        )
    if summary:
        keys = [key for key in summary if key != "skipped_rows"]
        out.print(table("accuracy", keys, [[fmt_metric(key, summary[key]) for key in keys]]))


def _evaluate(predictions: Path, catalog: Path | None) -> dict[str, Any]:
    """Score a predictions file as ``eval geo PRED --truth CATALOG`` does: its summary."""
    if catalog is None:
        raise typer.BadParameter("--evaluate needs --catalog with the true locations")
    from geoaware.catalog import read_catalog
    from geoaware.evaluate import evaluate_geo, read_geo_predictions

    preds = read_geo_predictions(predictions, truth=read_catalog(catalog))
    return dict(evaluate_geo(preds, hit_rates=False).summary)

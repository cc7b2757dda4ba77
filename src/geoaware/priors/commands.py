"""The ``geoaware prior`` commands: train, predict, eval, fuse, map.

Each command parses its options and calls one library function; ``cli.py`` adds this
module's ``app`` (the ``prior`` group) to the top-level app. torch is imported inside the
commands, so ``geoaware --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geoaware.clikit import (
    CatalogArg,
    JsonOpt,
    OverwriteOpt,
    TiesOpt,
    emit_json,
    err,
    fmt_metric,
    out,
    table,
)
from geoaware.priors.config import SMALL_DATA_BELOW

__all__ = ["app", "prior_app"]

prior_app = typer.Typer(
    name="prior",
    help="Geographical priors p(species | location, date): train, predict, evaluate, fuse, map.",
    epilog="Example: geoaware prior train catalog.parquet --out prior-model --epochs 30",
    no_args_is_help=True,
    add_completion=False,
)

#: The stage's commands, added to the top-level app by ``cli.py``: the ``prior`` group.
app = typer.Typer()
app.add_typer(prior_app, name="prior")

ModelArg = Annotated[Path, typer.Argument(help="Prior checkpoint folder (model.pt, config.json).")]


@prior_app.command(
    epilog="Example: geoaware prior train catalog.parquet --out prior-model (the recipe is "
    "chosen from the data); geoaware prior train fg_geo.parquet --recipe small-data --lr 1e-3 "
    "--out prior-model.  "
    "JSON keys: model_dir, rows, used, dropped (no_location, no_label), classes, epochs, "
    "seconds, epochs_per_second, losses, recipe (asked, name, reason, median_per_class, "
    "classes), config.",
)
def train(
    catalog: CatalogArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Checkpoint folder to write.")],
    label_column: Annotated[
        str, typer.Option(help="Class column: label, label_name, species, genus, family, ...")
    ] = "label_name",
    split: Annotated[
        str | None, typer.Option(help="Train on this split only (default: every row).")
    ] = None,
    recipe: Annotated[
        str,
        typer.Option(
            help="Defaults of the options marked \\[recipe]: auto (the default: small-data when "
            f"the median class has fewer than {SMALL_DATA_BELOW} training observations, "
            "published otherwise; the choice and its reason are printed and saved), published "
            "(Mac Aodha et al. 2019: wrap, batch 2048, lr 5e-4, decay 0.98, dropout 0.5; for "
            "hundreds of observations per class) or small-data (fourier 10 levels, batch 512, "
            "lr 5e-3, decay 0.97, dropout 0). Options given explicitly win."
        ),
    ] = "auto",
    encoding: Annotated[
        str | None,
        typer.Option(help="\\[recipe] Location input: wrap, unit, multiscale, fourier or geoclip."),
    ] = None,
    levels: Annotated[
        int | None,
        typer.Option(
            help="\\[recipe] Levels of the multiscale and fourier encodings (finest wavelength "
            "~40,030 km/2^(n-1) and /2^n)."
        ),
    ] = None,
    use_date: Annotated[
        bool, typer.Option("--date/--no-date", help="Add the day of the year as input.")
    ] = False,
    loss: Annotated[
        str, typer.Option(help="full, ssdl, slds, full_me, ssdl_me or slds_me.")
    ] = "full",
    pos_weight: Annotated[float, typer.Option(help="Weight of the observed class.")] = 2048.0,
    user_weight: Annotated[
        float, typer.Option(help="Weight of the photographer loss (0: off).")
    ] = 0.0,
    width: Annotated[int, typer.Option(help="Network width.")] = 256,
    blocks: Annotated[int, typer.Option(help="Residual blocks.")] = 4,
    dropout: Annotated[float | None, typer.Option(help="\\[recipe] Dropout in each block.")] = None,
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 30,
    batch_size: Annotated[
        int | None, typer.Option(help="\\[recipe] Observations per step.")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="\\[recipe] Adam learning rate.")] = None,
    lr_decay: Annotated[
        float | None, typer.Option(help="\\[recipe] Learning-rate decay per epoch.")
    ] = None,
    max_per_class: Annotated[
        int, typer.Option(help="Observations per class per epoch (0: no cap).")
    ] = 1000,
    precision: Annotated[str, typer.Option(help="float32 or bfloat16 training.")] = "float32",
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Train a prior on a catalog's located rows (rows without a location are counted)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from geoaware.outputs import claim_output, record_output
    from geoaware.priors.config import PriorConfig
    from geoaware.priors.recipes import RECIPES, RecipeChoice
    from geoaware.priors.train import train_prior

    claim_output(out_dir, "folder", overwrite=overwrite)
    if recipe not in RECIPES:
        raise typer.BadParameter(f"{recipe!r}: use {', '.join(RECIPES)}", param_hint="--recipe")
    given = {
        "encoding": encoding,
        "levels": levels,
        "dropout": dropout,
        "batch_size": batch_size,
        "lr": lr,
        "lr_decay": lr_decay,
    }
    options: dict[str, Any] = {
        "label_column": label_column,
        "use_date": use_date,
        "width": width,
        "blocks": blocks,
        "loss": loss,
        "pos_weight": pos_weight,
        "user_weight": user_weight,
        "epochs": epochs,
        "max_per_class": max_per_class or None,
        "precision": precision,
        "seed": seed,
        **{k: v for k, v in given.items() if v is not None},
    }
    PriorConfig(**options)  # a bad value fails before the catalog is read
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        "epochs",
        "[progress.remaining]ETA",
        TimeRemainingColumn(),
        "{task.fields[loss]}",
        console=err,
        disable=json or not err.is_terminal,  # a transient bar leaves an empty line when piped
        transient=True,
    ) as bar:
        task = bar.add_task("reading the catalog", total=epochs, loss="")

        def announce(_config: PriorConfig, choice: RecipeChoice | None) -> None:
            name = choice.name if choice else "given"
            bar.update(task, description=f"training ({name} recipe)")

        def progress(epoch: int, value: float) -> None:
            bar.update(task, completed=epoch, loss=f"loss {value:.5f}")

        result = train_prior(
            catalog,
            out_dir,
            recipe=recipe,
            options=options,
            split=split,
            progress=progress,
            on_config=announce,
        )
    record_output(out_dir, "folder", inputs=[catalog], seed=seed)
    if json:
        emit_json(result.to_dict())
        return
    d = result.dropped
    out.print(
        table(
            f"prior trained: {out_dir}",
            [
                "rows",
                "trained on",
                "no location",
                "no label",
                "classes",
                "recipe",
                "s/epoch",
                "loss",
            ],
            [
                [
                    result.rows,
                    result.used,
                    d.get("no_location", 0),
                    d.get("no_label", 0),
                    result.classes,
                    (result.recipe or {}).get("name", "given"),
                    f"{1 / result.epochs_per_second:,.1f}" if result.epochs_per_second else "-",
                    f"{result.losses[-1]:.5f}",
                ]
            ],
        )
    )
    if result.recipe:
        out.print(
            f"recipe {result.recipe['name']} ({result.recipe['asked']}): {result.recipe['reason']}",
            highlight=False,
        )


@prior_app.command(
    epilog="Example: geoaware prior predict prior-model --lat 37.77 --lon -122.42 "
    "--date 2017-06-01.  JSON keys: lat, lon, date, date_used, top (list of {label, "
    "probability}).",
)
def predict(
    model: ModelArg,
    lat: Annotated[float, typer.Option(help="Latitude, degrees.")],
    lon: Annotated[float, typer.Option(help="Longitude, degrees.")],
    date: Annotated[str | None, typer.Option(help="Date, YYYY-MM-DD.")] = None,
    top: Annotated[int, typer.Option(help="Classes shown.")] = 10,
    json: JsonOpt = False,
) -> None:
    """Print the most likely classes at a location (and date) with their probabilities.

    A model trained without dates ignores --date: it says so (a warning, and ``date_used``
    false in the JSON).
    """
    from geoaware.priors.checkpoint import load_prior
    from geoaware.priors.features import parse_date

    if not -90.0 <= lat <= 90.0:  # NaN fails both comparisons
        raise typer.BadParameter(f"{lat!r}: a latitude in [-90, 90] degrees", param_hint="--lat")
    if not -180.0 <= lon <= 180.0:
        raise typer.BadParameter(f"{lon!r}: a longitude in [-180, 180] degrees", param_hint="--lon")
    if top < 1:
        raise typer.BadParameter(f"{top}: at least 1 class", param_hint="--top")
    fraction = parse_date(date) if date is not None else None
    prior = load_prior(model)
    date_used = fraction is not None and prior.config.use_date
    if fraction is not None and not date_used:
        err.print(
            f"[yellow]warning:[/] {model} was trained without dates: --date {date} is ignored",
            highlight=False,
            soft_wrap=True,
        )
    ranked = prior.top(lat, lon, fraction if date_used else None, k=top)
    if json:
        emit_json(
            {
                "lat": lat,
                "lon": lon,
                "date": date,
                "date_used": date_used,
                "top": [{"label": n, "probability": p} for n, p in ranked],
            }
        )
        return
    where = f"{lat:.4f}, {lon:.4f}" + (f" on {date}" if date_used else "")
    out.print(
        table(
            f"p(class | {where})",
            ["rank", "label", "probability"],
            [[i + 1, n, f"{p:.4f}"] for i, (n, p) in enumerate(ranked)],
        )
    )


@prior_app.command(
    name="eval",
    epilog="Example: geoaware prior eval prior-model catalog.parquet --split test "
    "--exclude-within 1.  "
    "JSON keys: split, n, dropped, baselines, ties, rows "
    "(each: method, n, top1_acc, top5_acc, top10_acc, map), twin_free (km, n, twins, rows; "
    "null with --exclude-within 0).",
)
def evaluate(
    model: ModelArg,
    catalog: CatalogArg,
    split: Annotated[str, typer.Option(help="Split evaluated.")] = "test",
    train_split: Annotated[str, typer.Option(help="Split the baselines are fitted on.")] = "train",
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="Also score the baselines.")
    ] = True,
    exclude_within: Annotated[
        float,
        typer.Option(
            help="Also score the test points with no training point of the same label within "
            "this many km (twin-free), next to all points; 0: all points only."
        ),
    ] = 1.0,
    ties: TiesOpt = "pessimistic",
    json: JsonOpt = False,
) -> None:
    """Location-only top-1/5/10 and mean average precision of the prior beside the baselines."""
    from geoaware.priors.evaluate import evaluate_prior
    from geoaware.ranking import check_ties

    if not exclude_within >= 0:
        raise typer.BadParameter(f"{exclude_within!r}: 0 or more km", param_hint="--exclude-within")
    report = evaluate_prior(
        model,
        catalog,
        split=split,
        train_split=train_split,
        baselines=baselines,
        exclude_within_km=exclude_within or None,
        ties=check_ties(ties),
    )
    if json:
        emit_json(report)
        return
    keys = ["top1_acc", "top5_acc", "top10_acc", "map"]
    free = report["twin_free"]
    head = ["method", "n", *keys]
    if free:
        head += [f"{k} twin-free" for k in ("top1_acc", "top5_acc")]
    lines = []
    for i, r in enumerate(report["rows"]):
        line = [r["method"], r["n"], *(fmt_metric(k, r[k]) for k in keys)]
        if free:
            f = free["rows"][i]
            line += [fmt_metric(k, f[k]) for k in ("top1_acc", "top5_acc")]
        lines.append(line)
    title = f"location-only, split {split!r}: {report['n']:,} located points, ties {ties}"
    out.print(table(title, head, lines))
    if free:
        out.print(
            f"twin-free: {free['n']:,} of {report['n']:,} test points have no training point of "
            f"the same label within {free['km']:g} km ({free['twins']:,} have one).",
            highlight=False,
        )
    left = _left_out_sentence(report["dropped"])
    if left:
        out.print(left, highlight=False)


_REASONS = {
    "no_location": "had no location",
    "no_label": "had no label",
    "unknown_label": "have a label the model was not trained on",
}


def _left_out_sentence(dropped: dict[str, int]) -> str:
    """Say which rows were left out and why, in one sentence ('' when none were).

    Examples
    --------
    >>> _left_out_sentence({"no_location": 0, "unknown_label": 26})
    'Left out 26 rows: 26 have a label the model was not trained on.'
    """
    parts = [f"{n:,} {_REASONS.get(k, k.replace('_', ' '))}" for k, n in dropped.items() if n]
    if not parts:
        return ""
    total = sum(dropped.values())
    return f"Left out {total:,} rows: {'; '.join(parts)}."


@prior_app.command(
    epilog="Example: geoaware prior fuse prior-model --predictions scores.npz "
    "--catalog catalog.parquet --out fused.parquet --kaggle submission.csv.  "
    "A catalog without integer label ids (fg_geo) takes dense scores in the order of the "
    "model's vocabulary (config.json).  "
    "JSON keys: images, located, out, kaggle, classes_by, rows (each: group, subset, n, "
    "top1_image, top1_fused, top5_image, top5_fused).",
)
def fuse(
    model: ModelArg,
    predictions: Annotated[
        Path, typer.Option(help="Classifier probabilities (.parquet or .npz, dense or top-k).")
    ],
    catalog: Annotated[Path, typer.Option(help="Catalog holding the images' locations.")],
    out_file: Annotated[Path, typer.Option("--out", help="Fused predictions (.parquet or .npz).")],
    kaggle: Annotated[
        Path | None, typer.Option(help="Also write the iNat submission CSV here.")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split the predictions answer.")] = None,
    top: Annotated[int, typer.Option(help="Labels kept per image in --out.")] = 5,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Combine p(y | image) with the prior p(y | location, date); report with and without."""
    from geoaware.outputs import claim_output, record_output
    from geoaware.priors.fuse import fuse_predictions

    claim_output(out_file, overwrite=overwrite, suffixes=(".parquet", ".npz"))
    if kaggle is not None:
        claim_output(kaggle, overwrite=overwrite, suffixes=(".csv",), what="--kaggle")
    result = fuse_predictions(
        model, predictions, catalog, out=out_file, kaggle=kaggle, split=split, k=top
    )
    for written in (out_file, kaggle):
        if written is not None:
            record_output(written, inputs=[model, predictions, catalog])
    if json:
        emit_json(result.to_dict())
        return
    cols = ["top1_image", "top1_fused", "top5_image", "top5_fused"]
    out.print(
        table(
            f"fused {result.images:,} images ({result.located:,} located) -> {result.out}",
            ["group", "subset", "n", *(c.replace("_", " ") for c in cols)],
            [[r["group"], r["subset"], r["n"], *(_pct(r[c]) for c in cols)] for r in result.rows],
        )
    )
    if result.kaggle:
        out.print(f"[bold]submission[/] {result.kaggle}")


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


@prior_app.command(
    name="map",
    epilog="Example: geoaware prior map prior-model --label 'Vireo griseus' --out vireo.png "
    "--bounds=-100,20,-60,50.  "
    "JSON keys: label, class_index, png, points, max_prob, land_share_above_half, colour_max, "
    "bounds.",
)
def range_map_cmd(
    model: ModelArg,
    label: Annotated[str, typer.Option(help="Class to map (as in the vocabulary).")],
    out_png: Annotated[Path, typer.Option("--out", help="PNG to write.")],
    step: Annotated[int, typer.Option(help="Grid step in 0.25-degree cells.", min=1)] = 2,
    bounds: Annotated[
        str | None,
        typer.Option(help="Region drawn: WEST,SOUTH,EAST,NORTH degrees (default: the world)."),
    ] = None,
    scale: Annotated[
        str,
        typer.Option(
            help="Colours from 0 to: map (this map's largest p; the colour bar says so), "
            "absolute (1), or log (a log scale up to the map's largest p)."
        ),
    ] = "map",
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Draw a class's predicted range over the land grid, with its training points."""
    from geoaware.outputs import claim_output, record_output
    from geoaware.priors.plots import WORLD, parse_bounds, range_map

    claim_output(out_png, overwrite=overwrite, suffixes=(".png",))
    region = parse_bounds(bounds) if bounds else WORLD
    summary = range_map(model, label, out_png, step=step, bounds=region, scale=scale)
    record_output(out_png, inputs=[model])
    if json:
        emit_json(summary)
        return
    out.print(
        f"[bold]{summary['label']}[/]: {summary['points']:,} training points, "
        f"max p {summary['max_prob'] or 0:.3f} (colours scaled to {summary['colour_max']:.3g}) "
        f"-> {summary['png']}"
    )

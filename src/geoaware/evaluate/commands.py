"""The evaluation commands: the ``eval`` group (geo, classify, zeroshot, retrieval), ``submission``.

Each command parses its options and calls one function of :mod:`geoaware.evaluate`; ``cli.py``
adds this module's ``app`` (the ``eval`` and ``submission`` groups) to the top-level app.
pandas, pyarrow, encoders (torch, open_clip) and matplotlib are imported only inside the
commands, encoders only with ``--encoder``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from geoaware.clikit import (
    JsonOpt,
    OverwriteOpt,
    TiesOpt,
    emit_json,
    floats_option,
    fmt_metric,
    out,
    table,
)

if TYPE_CHECKING:
    from geoaware.runs import RunKind

__all__ = [
    "app",
    "eval_app",
    "eval_classify",
    "eval_geo",
    "retrieval",
    "submission_app",
    "submission_check",
    "submission_write",
    "zeroshot",
]

app = typer.Typer()

eval_app = typer.Typer(
    help="Evaluate predictions: geolocation (Im2GPS), classification (iNat), zero-shot "
    "classification and image-text retrieval.",
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
    "the hit rates), reference (with --reference: dataset, columns, rows), warnings (e.g. test "
    "photos that sit on training photos); with several files, "
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
        from geoaware.report.geo_run import write_geo_run

        write_geo_run([r for r, _ in reports], out_dir, geodesic=geodesic)
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
    data["warnings"] = list(report.warnings)
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


# ----------------------------------------------------------------------------------------------
# Image-text: zero-shot classification and retrieval over embeddings

EmbArg = Annotated[
    Path, typer.Argument(help="Image embeddings: a .parquet file or a folder of shards.")
]
EncoderOpt = Annotated[
    str | None,
    typer.Option(
        help="Image-text encoder for the text vectors (e.g. open_clip:ViT-B-32); it must be "
        "the encoder that made the image embeddings."
    ),
]
SplitOpt = Annotated[str | None, typer.Option(help="Use only the rows of this split.")]


def _ks(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"--k must be comma-separated integers, got {text!r}") from None


def _one_source(encoder: str | None, text_embeddings: Path | None) -> None:
    if (encoder is None) == (text_embeddings is None):
        raise typer.BadParameter("give exactly one of --encoder and --text-embeddings")


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


RunOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Run folder: also write <name>.<kind>.json there for `geoaware report`."
    ),
]
NameOpt = Annotated[
    str | None, typer.Option(help="Run name in the report (default: the embeddings' name).")
]


def _claim_run(run: Path | None) -> None:
    """Claim the ``--out`` run folder before the work (geoaware.outputs rules)."""
    if run is not None:
        from geoaware.outputs import claim_output

        claim_output(run, "run")


def _run_file(run: Path, kind: RunKind, name: str | None, embeddings: Path) -> tuple[Path, str]:
    """Return the run file and name for ``embeddings``; a rerun replaces its own file only.

    The default name is the embeddings' file or folder name; when that file in the run folder
    holds a run of other embeddings (``a/emb`` then ``b/emb``), the parent folder's name is put
    in front (``b-emb``). A name given with ``--name`` is used as it is.
    """
    import orjson

    from geoaware.outputs import OutputError
    from geoaware.runs import run_path

    if name is not None:
        return run_path(run, name, kind), name
    stem = embeddings.stem if embeddings.suffix else embeddings.name
    for candidate in (stem, f"{embeddings.resolve().parent.name}-{stem}"):
        path = run_path(run, candidate, kind)
        if not path.exists():
            return path, candidate
        try:
            earlier = orjson.loads(path.read_bytes()).get("embeddings")
        except (OSError, orjson.JSONDecodeError, AttributeError):
            earlier = None
        if earlier in (None, str(embeddings.resolve())):
            return path, candidate
    raise OutputError(
        f"{run_path(run, stem, kind)} holds a {kind} run of other embeddings; give --name"
    )


def _write_out(
    report: Any,
    kind: RunKind,
    run: Path | None,
    name: str | None,
    inputs: tuple[Path, Path],
    json: bool,
) -> bool:
    """Save the run document with ``--out``; print the JSON object with ``--json``.

    ``inputs`` are the embeddings (whose name is the run's default name) and the truth or
    captions (the run's source). Returns True when the JSON object was printed (the command
    is then done).
    """
    data = report.to_dict()
    if run is not None:
        from geoaware.outputs import record_output
        from geoaware.runs import write_run

        embeddings, source = inputs
        path, name = _run_file(run, kind, name, embeddings)
        doc = report.run_document(name, str(source))
        doc["embeddings"] = str(embeddings.resolve())
        data["run_file"] = str(write_run(path, doc))
        record_output(run, "run", inputs=list(inputs))
    if json:
        emit_json(data)
    return json


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)


@eval_app.command(
    "zeroshot",
    epilog="Example: geoaware eval zeroshot emb.parquet --texts classes.txt --truth "
    "catalog.parquet --encoder open_clip:ViT-B-32 --split test.  Without an encoder: "
    "--text-embeddings text.parquet (ids: class names, or '<class>|<prompt>' averaged per "
    "class).  JSON keys: n, classes, templates, top1_acc, top5_acc (one top<k>_acc per "
    "--k value; fractions 0..1), mean_per_class_acc, ties, truth_without_embedding, "
    "embeddings_without_truth, unlabelled, per_class (each: class, n, top<k>_acc), notes, "
    "and run_file with --out (then: geoaware report RUN --out report.html).",
)
def zeroshot(
    embeddings: EmbArg,
    texts: Annotated[Path, typer.Option(help="Class names, one per line.")],
    truth: Annotated[Path, typer.Option(help="Catalog (or CSV) with image_id and the class.")],
    label_column: Annotated[
        str, typer.Option(help="Truth column holding the class name.")
    ] = "label_name",
    templates: Annotated[
        Path | None,
        typer.Option(help="Prompt templates, one per line with {} for the class name."),
    ] = None,
    encoder: EncoderOpt = None,
    text_embeddings: Annotated[
        Path | None,
        typer.Option(
            help="Precomputed text vectors keyed by class name or '<class>|<prompt>', made by "
            "the same encoder as the image embeddings (the encoder name in both files' "
            "metadata must match)."
        ),
    ] = None,
    split: SplitOpt = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated k of top-k accuracy.")] = "1,5",
    ties: TiesOpt = "pessimistic",
    show: Annotated[int, typer.Option(help="Per-class rows shown in the terminal.")] = 30,
    run: RunOpt = None,
    name: NameOpt = None,
    json: JsonOpt = False,
) -> None:
    """Zero-shot top-k accuracy: images against prompt-averaged class text vectors."""
    from geoaware.evaluate.imagetext_files import evaluate_zeroshot

    _one_source(encoder, text_embeddings)
    _claim_run(run)
    report = evaluate_zeroshot(
        embeddings,
        texts,
        truth,
        label_column=label_column,
        templates=templates,
        encoder=encoder,
        text_embeddings=text_embeddings,
        split=split,
        ks=_ks(k),
        ties=ties,  # type: ignore[arg-type]
    )
    if _write_out(report, "zeroshot", run, name, (embeddings, truth), json):
        return
    s = report.summary
    tops = [key for key in s if key.startswith("top")]
    source = f"encoder {encoder}" if encoder else f"{text_embeddings}"
    out.print(
        table(
            f"zero-shot accuracy (%), text vectors from {source}, ties {s['ties']}",
            ["images", "classes", *(f"top-{key[3:-4]}" for key in tops), "mean per class"],
            [
                [
                    s["n"],
                    s["classes"],
                    *(_pct(s[key]) for key in tops),
                    _pct(s["mean_per_class_acc"]),
                ]
            ],
        )
    )
    rows = [[r["class"], r["n"], *(_pct(r[key]) for key in tops)] for r in report.per_class]
    more = f" (showing {show} of {len(rows)})" if len(rows) > show else ""
    headers = ["class", "images", *(f"top-{key[3:-4]}" for key in tops)]
    out.print(table(f"per class (%){more}", headers, rows[:show]))
    _print_notes(report.notes)


@eval_app.command(
    "retrieval",
    epilog="Example: geoaware eval retrieval emb.parquet --captions captions.csv "
    "--encoder open_clip:ViT-B-32.  Without an encoder: --text-embeddings text.parquet "
    "(ids: the captions' caption_id column, else <image_id>#<k>, k counting each image's "
    "captions from 0 in file order).  JSON keys: images, captions, i2t_r1, i2t_r5, "
    "i2t_r10, t2i_r1, t2i_r5, t2i_r10 (one per --k value; fractions 0..1), mean_recall, "
    "ties, images_without_embedding, embeddings_without_caption, empty_captions, notes, "
    "and run_file with --out.",
)
def retrieval(
    embeddings: EmbArg,
    captions: Annotated[
        Path,
        typer.Option(
            help="Catalog or CSV with image_id and caption (several rows per image allowed)."
        ),
    ],
    encoder: EncoderOpt = None,
    text_embeddings: Annotated[
        Path | None,
        typer.Option(
            help="Precomputed caption vectors keyed by caption id, made by the same encoder "
            "as the image embeddings (the encoder name in both files' metadata must match)."
        ),
    ] = None,
    split: SplitOpt = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated k of recall at k.")] = "1,5,10",
    ties: TiesOpt = "pessimistic",
    run: RunOpt = None,
    name: NameOpt = None,
    json: JsonOpt = False,
) -> None:
    """Image-to-text and text-to-image recall at 1/5/10 and their mean (mean recall)."""
    from geoaware.evaluate.imagetext_files import evaluate_retrieval

    _one_source(encoder, text_embeddings)
    _claim_run(run)
    report = evaluate_retrieval(
        embeddings,
        captions,
        encoder=encoder,
        text_embeddings=text_embeddings,
        split=split,
        ks=_ks(k),
        ties=ties,  # type: ignore[arg-type]
    )
    if _write_out(report, "retrieval", run, name, (embeddings, captions), json):
        return
    s = report.summary
    recalls = [key for key in s if key.startswith(("i2t_", "t2i_"))]
    out.print(
        table(
            f"retrieval, {s['images']:,} images, {s['captions']:,} captions "
            f"(recall %, ties {s['ties']})",
            [*(key.replace("_r", " R@") for key in recalls), "mean recall"],
            [[*(_pct(s[key]) for key in recalls), _pct(s["mean_recall"])]],
        )
    )
    _print_notes(report.notes)


# ----------------------------------------------------------------------------------------------
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

"""The image-text commands: ``geoaware zeroshot`` and ``geoaware retrieval``.

Each command parses its options and calls one function of :mod:`geoaware.evaluate.imagetext`;
``register(app)`` adds both as top-level commands. Encoders (and torch, open_clip) are loaded
only inside the commands, and only with ``--encoder``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geoaware.clikit import JsonOpt, emit_json, out, table

__all__ = ["register", "retrieval", "zeroshot"]

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
TiesOpt = Annotated[
    str,
    typer.Option(
        help="A wrong candidate scoring exactly like the right one counts against it "
        "(pessimistic) or not (optimistic)."
    ),
]
SplitOpt = Annotated[str | None, typer.Option(help="Use only the rows of this split.")]


def register(app: typer.Typer) -> None:
    """Add the ``zeroshot`` and ``retrieval`` commands to ``app``.

    Examples
    --------
    >>> app = typer.Typer()
    >>> register(app)
    >>> sorted(c.name for c in app.registered_commands)
    ['retrieval', 'zeroshot']
    """
    app.command(
        "zeroshot",
        epilog="Example: geoaware zeroshot emb.parquet --texts classes.txt --truth "
        "catalog.parquet --encoder open_clip:ViT-B-32 --split test.  Without an encoder: "
        "--text-embeddings text.parquet (ids: class names, or '<class>|<prompt>' averaged per "
        "class).  JSON keys: n, classes, templates, top1_acc, top5_acc (one top<k>_acc per "
        "--k value; fractions 0..1), mean_per_class_acc, ties, truth_without_embedding, "
        "embeddings_without_truth, unlabelled, per_class (each: class, n, top<k>_acc), notes, "
        "and run_file with --out (then: geoaware report RUN --out report.html).",
    )(zeroshot)
    app.command(
        "retrieval",
        epilog="Example: geoaware retrieval emb.parquet --captions captions.csv "
        "--encoder open_clip:ViT-B-32.  Without an encoder: --text-embeddings text.parquet "
        "(ids: the captions' caption_id column, else <image_id>#<k>, k counting each image's "
        "captions from 0 in file order).  JSON keys: images, captions, i2t_r1, i2t_r5, "
        "i2t_r10, t2i_r1, t2i_r5, t2i_r10 (one per --k value; fractions 0..1), mean_recall, "
        "ties, images_without_embedding, embeddings_without_caption, empty_captions, notes, "
        "and run_file with --out.",
    )(retrieval)


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


def _write_out(
    report: Any,
    kind: str,
    run: Path | None,
    name: str | None,
    embeddings: Path,
    source: str,
    json: bool,
) -> bool:
    """Save the run document with ``--out``; print the JSON object with ``--json``.

    Returns True when the JSON object was printed (the command is then done).
    """
    data = report.to_dict()
    if run is not None:
        name = name or (embeddings.stem if embeddings.suffix else embeddings.name)
        data["run_file"] = str(report.save(run / f"{name}.{kind}.json", name, source))
    if json:
        emit_json(data)
    return json


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)


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
        typer.Option(help="Precomputed text vectors keyed by class name or '<class>|<prompt>'."),
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
    if _write_out(report, "zeroshot", run, name, embeddings, str(truth), json):
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
        typer.Option(help="Precomputed caption vectors keyed by caption id."),
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
    report = evaluate_retrieval(
        embeddings,
        captions,
        encoder=encoder,
        text_embeddings=text_embeddings,
        split=split,
        ks=_ks(k),
        ties=ties,  # type: ignore[arg-type]
    )
    if _write_out(report, "retrieval", run, name, embeddings, str(captions), json):
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

"""The ``geoaware embed`` command: a catalog's images into a folder of embeddings shards.

The command parses its options and calls :func:`geoaware.vision.embed.embed_catalog`;
``cli.py`` adds this module's ``app`` to the top-level app. torch, simplejpeg and ray are
imported only when the command runs, so ``geoaware --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geoaware.clikit import CatalogArg, JsonOpt, emit_json, out, table

__all__ = ["JSON_KEYS", "app", "embed"]

JSON_KEYS = (
    "out, encoder, encoder_version, engine, dim, dtype, images, shards, shards_written, "
    "skipped_shards, embedded, failed, failed_file, seconds, images_per_second"
)

#: The stage's commands, added to the top-level app by ``cli.py``: ``embed``.
app = typer.Typer()


@app.command(
    name="embed",
    epilog="Example: geoaware embed catalog.parquet --images photos/ --out emb/ "
    "--encoder efficientnet-lite0 --dtype float16.  Rerun the same command to resume: "
    "finished shards are skipped.  Encoders: efficientnet-lite0 (offline default), "
    "open_clip:<arch>/<pretrained>, bioclip, timm:<name>, hf:<model folder or cached org/repo> "
    "(transformers: CLIP, SigLIP, ...; e.g. hf:openai/clip-vit-large-patch14 for GeoCLIP).  "
    f"JSON keys: {JSON_KEYS}.",
)
def embed(
    catalog: CatalogArg,
    images: Annotated[
        Path, typer.Option("--images", help="Folder the catalog's file_name paths start from.")
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Output folder: part-NNNNN.parquet shards, failed.csv.")
    ],
    encoder: Annotated[
        str,
        typer.Option(help="Encoder name (efficientnet-lite0, open_clip:..., timm:..., hf:...)."),
    ] = "efficientnet-lite0",
    batch: Annotated[
        int | None,
        typer.Option(help="Images per model call (default: 8 on a CPU, 64 on a GPU).", min=1),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Decoder processes (0: decode in the main process; default: cores - 1). "
            "With --engine ray: encoder actors (default 1).",
            min=0,
        ),
    ] = None,
    engine: Annotated[str, typer.Option(help="local (process pool) or ray (Ray Data).")] = "local",
    dtype: Annotated[str, typer.Option(help="Stored vector type: float16 or float32.")] = "float16",
    shard_size: Annotated[
        int, typer.Option(help="Catalog rows per shard (the unit of resuming).", min=1)
    ] = 10_000,
    overwrite: Annotated[
        bool, typer.Option(help="Rewrite shards made by another encoder or for other rows.")
    ] = False,
    device: Annotated[
        str | None, typer.Option(help="Torch device (default: cuda when available, else cpu).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Embed every image of a catalog; unreadable images are listed in failed.csv, skipped."""
    from geoaware.outputs import claim_output, record_output
    from geoaware.vision.embed import embed_catalog

    claim_output(out_dir, "run")  # a folder of ours is resumed; anything else is refused
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"--engine must be local or ray, got {engine!r}")
    if dtype not in ("float16", "float32"):
        raise typer.BadParameter(f"--dtype must be float16 or float32, got {dtype!r}")
    report = embed_catalog(
        catalog,
        images,
        out_dir,
        encoder,
        batch=batch,
        workers=workers,
        engine=engine,  # type: ignore[arg-type]  # checked above
        dtype=dtype,  # type: ignore[arg-type]
        shard_size=shard_size,
        overwrite=overwrite,
        device=device,
        progress=not json,
    )
    record_output(out_dir, "run", inputs=[catalog])
    if json:
        emit_json(report.to_dict())
        return
    out.print(
        table(
            f"embeddings: {report.out} ({report.encoder}, {report.dim}-d {report.dtype})",
            ["images", "embedded", "failed", "shards written", "shards skipped", "img/s"],
            [
                [
                    report.images,
                    report.embedded,
                    report.failed,
                    report.shards_written,
                    report.skipped_shards,
                    f"{report.images_per_second:.1f}",
                ]
            ],
        )
    )
    out.print(
        f"{report.seconds:.1f} s in all; img/s counts from the first image (model loading "
        "excluded), as on the progress bar",
        highlight=False,
    )
    if report.failures:
        shown = report.failures[:5]
        out.print(
            f"[bold]{report.failed:,} images skipped[/], listed in {report.failed_file}; first: "
            + "; ".join(f"{f.image_id} ({f.reason})" for f in shown),
            highlight=False,
        )

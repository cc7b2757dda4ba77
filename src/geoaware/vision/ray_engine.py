"""``engine="ray"``: the embedding job as a Ray Data pipeline.

rows (one block per ``batch`` rows) -> decode (Ray tasks running
:func:`~geoaware.vision.decode.decode_rows`) -> encode (an actor pool of ``actors`` encoder
instances, ``map_batches`` with a callable class; one GPU each when the cluster has GPUs) ->
the driver gathers each shard's rows and writes it with
:func:`~geoaware.vision.embeddings.write_embeddings`, exactly as the local engine does. The
driver writes because the output folder is a path on the driver's machine; pixels never
reach it, only ids and vectors.

An already running Ray instance (``ray.init(...)`` in your program, or ``RAY_ADDRESS``) is
used as it is; otherwise a local one is started and shut down at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from geoaware.errors import DependencyNotFoundError
from geoaware.vision.decode import decode_rows
from geoaware.vision.embeddings import EmbeddingInfo, shard_name, write_embeddings
from geoaware.vision.encoders.base import Encoder, Preprocessing
from geoaware.vision.shards import FailedImage

__all__ = ["run_ray"]


def _decode_block(batch: dict[str, np.ndarray], preprocessing: Preprocessing) -> dict[str, Any]:
    paths = [str(p) if p else None for p in batch["path"].tolist()]
    pixels, ok, failed = decode_rows(paths, preprocessing)
    size = preprocessing.size
    full = np.zeros((len(paths), size, size, 3), np.uint8)
    full[ok] = pixels
    good = np.zeros(len(paths), bool)
    good[ok] = True
    reasons = np.array([""] * len(paths), dtype=object)
    for i, reason in failed:
        reasons[i] = reason
    return {
        "row": batch["row"],
        "image_id": batch["image_id"],
        "path": batch["path"],
        "ok": good,
        "reason": reasons,
        "pixels": full,
    }


class _EncodeActor:
    """One encoder per actor; ``__call__`` embeds the decodable rows of a batch."""

    def __init__(self, encoder: str | Encoder, device: str | None) -> None:
        if isinstance(encoder, Encoder):
            self.encoder = encoder
        else:
            from geoaware.vision.encoders import load_encoder

            self.encoder = load_encoder(encoder, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        ok = np.asarray(batch["ok"], bool)
        vectors = np.zeros((len(ok), self.encoder.dim), np.float32)
        if ok.any():
            vectors[ok] = self.encoder.encode_images(np.asarray(batch["pixels"])[ok])
        return {
            "row": batch["row"],
            "image_id": batch["image_id"],
            "path": batch["path"],
            "ok": ok,
            "reason": batch["reason"],
            "vector": vectors,
        }


def run_ray(
    plan: Any,
    encoder: str | Encoder,
    info: EmbeddingInfo,
    out: Path,
    *,
    batch: int,
    actors: int,
    device: str | None,
    on_shard: Callable[[int, list[Any], int], None],
    advance: Callable[[int], None],
) -> None:
    """Run the pending shards of ``plan`` through Ray Data and write them to ``out``.

    ``plan`` is a :class:`~geoaware.vision.shards.ShardPlan`; ``on_shard(shard, failures,
    written)`` is called after each shard is written, ``advance(n)`` as rows come back.

    Examples
    --------
    >>> from geoaware.vision.embed import embed_catalog
    >>> embed_catalog("catalog.parquet", "photos", "emb", engine="ray")  # doctest: +SKIP
    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise DependencyNotFoundError(
            f"engine='ray' needs the package ray[data]: pip install 'ray[data]' ({exc})"
        ) from exc
    started = False
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        started = True
    context = ray.data.DataContext.get_current()
    bars = context.enable_progress_bars
    context.enable_progress_bars = False
    try:
        rows = [r for s in plan.pending for r in plan.rows(s)]
        expected = {s: len(plan.rows(s)) for s in plan.pending}
        for shard in [s for s, n in expected.items() if n == 0]:  # an empty catalog
            write_embeddings(out / shard_name(shard), [], np.zeros((0, info.dim)), info)
            on_shard(shard, [], 0)
            del expected[shard]
        if not rows:
            return
        blocks = [
            pa.table(
                {
                    "row": pa.array(rows[i : i + batch], pa.int64()),
                    "image_id": pa.array([plan.ids[r] for r in rows[i : i + batch]]),
                    "path": pa.array([plan.paths[r] or "" for r in rows[i : i + batch]]),
                }
            )
            for i in range(0, len(rows), batch)
        ]
        use_gpu = (device or "").startswith("cuda") or (
            device is None and ray.cluster_resources().get("GPU", 0) > 0  # type: ignore[no-untyped-call]
        )
        ds: Any = ray.data.from_arrow(blocks)
        ds = ds.map_batches(
            _decode_block,
            fn_kwargs={"preprocessing": info_preprocessing(info)},
            batch_size=None,
            batch_format="numpy",
            # A resource function keeps Ray from fusing decoding into the encoder actors:
            # decoding stays in tasks of its own, on every CPU, ahead of the model.
            ray_remote_args_fn=_decode_resources,
        )
        ds = ds.map_batches(
            _EncodeActor,
            fn_constructor_kwargs={"encoder": encoder, "device": device},
            batch_size=batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=max(1, actors)),
            num_gpus=1 if use_gpu else 0,
        )
        buffers: dict[int, list[dict[str, np.ndarray]]] = {s: [] for s in expected}
        seen = dict.fromkeys(expected, 0)
        part: dict[str, Any]
        for part in ds.iter_batches(batch_format="numpy", batch_size=None):
            shards = np.asarray(part["row"]) // plan.shard_size
            for shard in np.unique(shards).tolist():
                mask = shards == shard
                buffers[shard].append({k: np.asarray(v)[mask] for k, v in part.items()})
                seen[shard] += int(mask.sum())
                if seen[shard] == expected[shard]:
                    written, failures = _write_shard(buffers.pop(shard), out, shard, info)
                    on_shard(shard, [FailedImage(*f) for f in failures], written)
            advance(len(shards))
    finally:
        context.enable_progress_bars = bars
        if started:
            ray.shutdown()


def _decode_resources() -> dict[str, Any]:
    return {"num_cpus": 1}


def info_preprocessing(info: EmbeddingInfo) -> Preprocessing:
    """Rebuild the :class:`Preprocessing` stored in an :class:`EmbeddingInfo`.

    >>> p = Preprocessing(32)
    >>> info_preprocessing(EmbeddingInfo("x", 3, preprocessing=p.to_dict())) == p
    True
    """
    d = dict(info.preprocessing)
    d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
    return Preprocessing(**d)


def _write_shard(
    parts: list[dict[str, np.ndarray]], out: Path, shard: int, info: EmbeddingInfo
) -> tuple[int, list[tuple[str, str, str]]]:
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(cols["row"], kind="stable")
    ok = np.asarray(cols["ok"], bool)[order]
    ids = np.asarray(cols["image_id"]).astype(str)[order]
    vectors = np.asarray(cols["vector"], np.float32)[order]
    write_embeddings(out / shard_name(shard), ids[ok], vectors[ok], info)
    paths = np.asarray(cols["path"]).astype(str)[order]
    reasons = np.asarray(cols["reason"]).astype(str)[order]
    failures = [(ids[i], paths[i], reasons[i]) for i in np.flatnonzero(~ok).tolist()]
    return int(ok.sum()), failures

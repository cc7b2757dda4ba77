"""Embed every image of a catalog into a folder of embeddings shards.

:func:`embed_catalog` is the one library call behind ``geoaware embed``. The catalog's rows
are cut into shards of ``shard_size`` consecutive rows (shard ``i`` holds rows
``[i * shard_size, (i + 1) * shard_size)``, always the same ones), and each shard becomes one
``part-NNNNN.parquet`` file written atomically with
:func:`~geoaware.vision.embeddings.write_embeddings`. So a job that stops part-way leaves
whole shards only, and a rerun skips every shard whose file exists and was made by the same
encoder (name, version, preprocessing, dtype): a different encoder is an error unless
``overwrite=True``.

The local engine decodes in a pool of worker processes (JPEG downscale-on-decode, EXIF
orientation; see :mod:`~geoaware.vision.decode`) that runs several chunks ahead of the model,
so the encoder never waits for pixels; ``engine="ray"`` runs the same job as a Ray Data
pipeline (:mod:`~geoaware.vision.ray_engine`). Images that cannot be read (missing, corrupt,
no file name) are skipped and listed with their reason in ``failed.csv`` beside the shards.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geoaware.catalog.io import read_catalog
from geoaware.errors import GeoawareError, InputFileError, UsageError
from geoaware.typing import PathLike
from geoaware.vision.decode import OUTSIDE_ROOT, decode_rows
from geoaware.vision.embeddings import ID_COLUMN, EmbeddingInfo, read_info, shard_name
from geoaware.vision.encoders.base import Encoder, Preprocessing
from geoaware.vision.shards import (
    FailedImage,
    ShardPlan,
    plan_rows,
    read_failed,
    write_failed,
)

__all__ = [
    "FAILED_FILE",
    "EmbedReport",
    "EmbedResumeError",
    "FailedImage",
    "ShardPlan",
    "default_batch",
    "default_workers",
    "embed_catalog",
    "plan_rows",
    "plan_shards",
]

FAILED_FILE = "failed.csv"
"""The list of images that could not be embedded: ``image_id,path,reason``."""
_SHARD_GLOB = "part-*.parquet"
_EARLIER = "failed in an earlier run (reason not recorded)"

Engine = Literal["local", "ray"]


class EmbedResumeError(GeoawareError):
    """An output folder holds shards that this job would not have written (encoder, rows)."""


@dataclass
class EmbedReport:
    """What :func:`embed_catalog` did.

    Attributes
    ----------
    out : str
        The shards folder.
    encoder, encoder_version : str
        The encoder's name and version (as in every shard's metadata).
    engine : str
        ``local`` or ``ray``.
    dim : int
        Vector size.
    dtype : str
        ``float16`` or ``float32``.
    images : int
        Catalog rows.
    shards : int
        Shards of the whole catalog.
    shards_written, skipped_shards : int
        Shards written by this run, and shards already done (same encoder) and skipped.
    embedded : int
        Images embedded by this run.
    failed : int
        Images listed in ``failed.csv`` (this run's and those of skipped shards).
    failed_file : str
        Path of ``failed.csv``.
    seconds : float
        Wall-clock time of the call, model loading included.
    images_per_second : float
        ``embedded`` over the seconds since embedding began (after the model is loaded and the
        shards planned): the figure the progress bar shows.

    Examples
    --------
    >>> EmbedReport("emb", "x", "1", "local", 3, "float16").to_dict()["images_per_second"]
    0.0
    """

    out: str
    encoder: str
    encoder_version: str
    engine: str
    dim: int
    dtype: str
    images: int = 0
    shards: int = 0
    shards_written: int = 0
    skipped_shards: int = 0
    embedded: int = 0
    failed: int = 0
    failed_file: str = ""
    seconds: float = 0.0
    images_per_second: float = 0.0
    failures: list[FailedImage] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-ready values (without the list of failures)."""
        d = asdict(self)
        d.pop("failures")
        return d


def default_workers() -> int:
    """Return the decoder processes used when ``workers`` is None (cores - 1, 1 to 8).

    >>> default_workers() >= 1
    True
    """
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def default_batch(device: str) -> int:
    """Images per model call: 8 on a CPU, 64 on a GPU.

    On CPUs small batches are faster per image, because a batch's activations then stay in
    the cache: EfficientNet-Lite0 (channels-last, 2 threads) runs 70 images/s at batch 8,
    58 at 16 and 34 at 64 on the 2-core development machine. GPUs want large batches.

    >>> default_batch("cpu"), default_batch("cuda:0")
    (8, 64)
    """
    return 64 if device.startswith("cuda") else 8


def _image_rows(
    catalog: PathLike | pa.Table, images_root: PathLike
) -> tuple[list[str], list[str | None]]:
    if isinstance(catalog, pa.Table):
        table, where = catalog, "<table>"
    else:
        table, where = read_catalog(catalog, columns=["image_id", "file_name"]), str(catalog)
    for name in ("image_id", "file_name"):
        if name not in table.column_names:
            raise InputFileError(where, "the catalog has no such column", field=name)
    ids = [str(v) for v in table.column("image_id").to_pylist()]
    root = Path(images_root)
    paths = [_under(root, name) for name in table.column("file_name").to_pylist()]
    return ids, paths


def _under(root: Path, name: str | None) -> str | None:
    """``root / name``, or a marked name (:data:`OUTSIDE_ROOT`) if it would leave ``root``.

    Examples
    --------
    >>> _under(Path("photos"), "a/b.jpg"), _under(Path("photos"), "../etc/passwd")
    ('photos/a/b.jpg', '<outside --images> ../etc/passwd')
    """
    if not name:
        return None
    rel = os.path.normpath(name)
    if os.path.isabs(name) or rel == ".." or rel.startswith(".." + os.sep):
        return OUTSIDE_ROOT + name
    return str(root / name)


def plan_shards(
    ids: list[str],
    paths: list[str | None],
    out: PathLike,
    info: EmbeddingInfo,
    *,
    shard_size: int,
    overwrite: bool = False,
) -> ShardPlan:
    """Decide which shards of ``out`` are done and which must be (re)written.

    A shard is done when its file exists, its metadata equals ``info`` and its ids all
    belong to its rows. Stale shards (beyond the catalog's end) and mismatching ones are an
    :class:`EmbedResumeError`, or are removed/rewritten with ``overwrite=True``.

    Examples
    --------
    >>> import tempfile
    >>> plan = plan_shards(["a", "b", "c"], ["a.jpg", "b.jpg", None], tempfile.mkdtemp(),
    ...                    EmbeddingInfo("x", 4), shard_size=2)
    >>> plan.shards, plan.pending, list(plan.rows(1))
    (2, [0, 1], [2])
    """
    if shard_size <= 0:
        raise UsageError(f"shard_size must be positive, got {shard_size}")
    out = Path(out)
    n_shards = max(1, math.ceil(len(ids) / shard_size))
    existing: dict[int, Path] = {}
    if out.is_dir():
        for f in sorted(out.glob(_SHARD_GLOB)):
            stem = f.stem.removeprefix("part-")
            if stem.isdigit():
                existing[int(stem)] = f
    elif out.exists():
        raise InputFileError(out, "the output must be a folder of shards, not a file")
    pending, done = [], []
    have: dict[int, set[str]] = {}
    for shard in range(n_shards):
        if shard not in existing or overwrite:
            pending.append(shard)
            continue
        have[shard] = _check_shard(existing[shard], info, ids, shard, shard_size)
        done.append(shard)
    stale = sorted(i for i in existing if i >= n_shards)
    if stale and not overwrite:
        raise EmbedResumeError(
            f"{existing[stale[0]]}: shard {stale[0]} lies beyond the catalog's {len(ids):,} rows "
            f"at {shard_size:,} rows per shard: the catalog or the shard size changed; "
            "pass overwrite=True (--overwrite) or choose another output folder"
        )
    for i in stale:
        existing[i].unlink()
    carried: list[FailedImage] = []
    if done:
        earlier = {} if overwrite else read_failed(out / FAILED_FILE)
        for shard in done:
            for row in plan_rows(shard, shard_size, len(ids)):
                if ids[row] not in have[shard]:
                    carried.append(
                        earlier.get(ids[row]) or FailedImage(ids[row], paths[row] or "", _EARLIER)
                    )
    return ShardPlan(ids, paths, shard_size, pending, done, carried)


def _check_shard(
    file: Path, info: EmbeddingInfo, ids: list[str], shard: int, size: int
) -> set[str]:
    """Return the ids of a finished shard, or raise if another job wrote it."""
    have = read_info(file)
    if have != info:
        diff = {
            k: (v, getattr(info, k))
            for k, v in asdict(have).items()
            if v != getattr(info, k) and k != "preprocessing"
        }
        if have.preprocessing != info.preprocessing:
            diff["preprocessing"] = ("...", "...")
        raise EmbedResumeError(
            f"{file}: made by encoder {have.encoder!r} ({have.version}, {have.dtype}), "
            f"this run uses {info.encoder!r} ({info.version}, {info.dtype}); differing: "
            f"{sorted(diff)}. Pass overwrite=True (--overwrite) or choose another output folder"
        )
    wanted = set(ids[r] for r in plan_rows(shard, size, len(ids)))
    got = pq.read_table(file, columns=[ID_COLUMN]).column(ID_COLUMN).to_pylist()
    strange = [i for i in got if i not in wanted]
    if strange:
        raise EmbedResumeError(
            f"{file}, record {strange[0]!r}, field {ID_COLUMN!r}: this shard holds images that "
            f"are not in its catalog rows {shard * size:,}..{shard * size + size - 1:,}: the "
            "catalog or the shard size changed; pass overwrite=True (--overwrite) or choose "
            "another output folder"
        )
    return set(got)


def _resolve_encoder(encoder: str | Encoder, device: str | None) -> Encoder:
    if isinstance(encoder, Encoder):
        return encoder
    from geoaware.vision.encoders import load_encoder

    return load_encoder(encoder, device=device)


def embed_catalog(
    catalog: PathLike | pa.Table,
    images_root: PathLike,
    out: PathLike,
    encoder: str | Encoder = "efficientnet-lite0",
    *,
    batch: int | None = None,
    workers: int | None = None,
    engine: Engine = "local",
    dtype: Literal["float16", "float32"] = "float16",
    shard_size: int = 10_000,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = False,
) -> EmbedReport:
    """Embed every image of a catalog into ``out/part-NNNNN.parquet`` shards, resumably.

    Parameters
    ----------
    catalog
        A catalog path (file or folder of parts) or an Arrow table with ``image_id`` and
        ``file_name``.
    images_root
        The image of a row is ``images_root / file_name``.
    out
        Output folder: shards plus ``failed.csv``.
    encoder
        An encoder name (see :func:`~geoaware.vision.encoders.load_encoder`) or an
        :class:`~geoaware.vision.encoders.base.Encoder` instance.
    batch
        Images per model call; None: :func:`default_batch` for the encoder's device.
    workers
        Decoder processes (0: decode in this process; None: :func:`default_workers`). For
        ``engine="ray"``, the number of encoder actors (default 1).
    engine
        ``local`` (a process pool) or ``ray`` (Ray Data; uses a running Ray instance or
        starts a local one).
    dtype
        Stored vector type.
    shard_size
        Catalog rows per shard (the unit of resuming).
    overwrite
        Rewrite shards made by another encoder (or for other rows) instead of failing.
    device
        Torch device of the encoder (None: CUDA when available).
    progress
        Show a progress bar with images per second on stderr.

    Returns
    -------
    EmbedReport

    Raises
    ------
    EmbedResumeError
        When ``out`` holds shards of another encoder, dtype or row range (without
        ``overwrite``).

    Examples
    --------
    >>> report = embed_catalog("catalog.parquet", "photos", "emb")  # doctest: +SKIP
    >>> report.embedded, report.failed, report.failed_file  # doctest: +SKIP
    (31, 0, 'emb/failed.csv')
    """
    t0 = time.perf_counter()
    if batch is not None and batch <= 0:
        raise UsageError(f"batch must be positive, got {batch}")
    if engine not in ("local", "ray"):
        raise UsageError(f"engine must be 'local' or 'ray', got {engine!r}")
    if not Path(images_root).is_dir():
        raise InputFileError(images_root, "no such images folder (--images)")
    ids, paths = _image_rows(catalog, images_root)
    out = Path(out)
    enc = _resolve_encoder(encoder, "cpu" if engine == "ray" and device is None else device)
    info = EmbeddingInfo(
        enc.name,
        dim=enc.dim,
        dtype=dtype,
        version=enc.version,
        preprocessing=enc.preprocessing.to_dict(),
        normalized=enc.normalized,
    )
    plan = plan_shards(ids, paths, out, info, shard_size=shard_size, overwrite=overwrite)
    batch = batch or default_batch(str(getattr(enc, "device", "cpu")))
    out.mkdir(parents=True, exist_ok=True)
    report = EmbedReport(str(out), enc.name, enc.version, engine, enc.dim, dtype, images=len(ids))
    report.shards, report.skipped_shards = plan.shards, len(plan.done)
    failures = list(plan.carried)
    failed_file = out / FAILED_FILE

    def on_shard(shard: int, shard_failures: list[FailedImage], written: int) -> None:
        report.shards_written += 1
        report.embedded += written
        failures.extend(shard_failures)
        if shard_failures or not failed_file.exists():
            write_failed(failed_file, _by_row(failures, ids))

    total = sum(len(plan.rows(s)) for s in plan.pending)
    t_embed = time.perf_counter()
    with _progress_bar(progress, total, enc.name) as advance:
        if engine == "ray":
            from geoaware.vision.ray_engine import run_ray

            run_ray(
                plan,
                encoder if isinstance(encoder, Encoder) else enc.name,
                info,
                out,
                batch=batch,
                actors=workers or 1,
                device=device,
                on_shard=on_shard,
                advance=advance,
            )
        else:
            _run_local(plan, enc, info, out, batch, workers, on_shard, advance)
    failures = _by_row(failures, ids)
    write_failed(failed_file, failures)
    report.failures = failures
    report.failed, report.failed_file = len(failures), str(failed_file)
    embedding_seconds = time.perf_counter() - t_embed
    report.seconds = time.perf_counter() - t0
    report.images_per_second = report.embedded / embedding_seconds if embedding_seconds else 0.0
    return report


def _by_row(failures: list[FailedImage], ids: list[str]) -> list[FailedImage]:
    position = {k: i for i, k in enumerate(ids)}
    unique = {f.image_id: f for f in failures}
    return sorted(unique.values(), key=lambda f: position.get(f.image_id, len(ids)))


class _Chunk:
    """A run of consecutive rows of one shard, decoded together by one worker call."""

    __slots__ = ("last", "rows", "shard")

    def __init__(self, shard: int, rows: range, last: bool) -> None:
        self.shard, self.rows, self.last = shard, rows, last


def _chunks(plan: ShardPlan, size: int) -> Iterator[_Chunk]:
    for shard in plan.pending:
        rows = plan.rows(shard)
        if len(rows) == 0:
            yield _Chunk(shard, rows, True)
            continue
        for start in range(rows.start, rows.stop, size):
            stop = min(start + size, rows.stop)
            yield _Chunk(shard, range(start, stop), stop == rows.stop)


def _run_local(
    plan: ShardPlan,
    enc: Encoder,
    info: EmbeddingInfo,
    out: Path,
    batch: int,
    workers: int | None,
    on_shard: Callable[[int, list[FailedImage], int], None],
    advance: Callable[[int], None],
) -> None:
    from geoaware.vision.embeddings import write_embeddings

    n_workers = default_workers() if workers is None else max(0, workers)
    chunk_size = max(1, min(16, batch))
    decoded = _decoded_chunks(plan, enc.preprocessing, chunk_size, n_workers)
    pixels: list[np.ndarray] = []
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    failed: list[FailedImage] = []
    pending_n = 0

    def encode(final: bool) -> None:
        """Encode whole batches of the waiting pixels (and the remainder when ``final``)."""
        nonlocal pixels, pending_n
        if pending_n == 0:
            return
        stack = np.concatenate(pixels) if len(pixels) > 1 else pixels[0]
        done = 0
        while pending_n - done >= batch or (final and done < pending_n):
            take = stack[done : done + batch]
            vectors.append(np.asarray(enc.encode_images(take), dtype=np.float32))
            done += len(take)
        rest = stack[done:]
        pixels, pending_n = ([rest] if len(rest) else []), len(rest)

    for chunk, (pix, ok, bad) in decoded:
        rows = list(chunk.rows)
        ids.extend(plan.ids[rows[i]] for i in ok)
        failed.extend(
            FailedImage(plan.ids[rows[i]], plan.paths[rows[i]] or "", reason) for i, reason in bad
        )
        if len(pix):
            pixels.append(pix)
            pending_n += len(pix)
            encode(False)
        if chunk.last:
            encode(True)
            matrix = np.concatenate(vectors) if vectors else np.zeros((0, info.dim), np.float32)
            write_embeddings(out / shard_name(chunk.shard), ids, matrix, info)
            on_shard(chunk.shard, failed, len(ids))
            ids, vectors, failed = [], [], []
        advance(len(rows))


def _decoded_chunks(
    plan: ShardPlan, preprocessing: Preprocessing, chunk_size: int, workers: int
) -> Iterator[tuple[_Chunk, tuple[np.ndarray, list[int], list[tuple[int, str]]]]]:
    """Yield each chunk with its decoded pixels, in order, decoding ``workers`` ahead."""
    chunks = _chunks(plan, chunk_size)
    if workers == 0:
        for chunk in chunks:
            yield chunk, decode_rows([plan.paths[r] for r in chunk.rows], preprocessing)
        return
    # Forked workers start at the first submit; they only run Pillow/simplejpeg/numpy, never
    # torch. Elsewhere (macOS, Windows) the platform's default start method is used.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    ahead = max(4, 4 * workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        window: deque[tuple[_Chunk, Future[Any]]] = deque()

        def submit() -> bool:
            chunk = next(chunks, None)
            if chunk is None:
                return False
            paths = [plan.paths[r] for r in chunk.rows]
            window.append((chunk, pool.submit(decode_rows, paths, preprocessing)))
            return True

        try:
            while len(window) < ahead and submit():
                pass
            while window:
                chunk, future = window.popleft()
                submit()
                yield chunk, future.result()
        finally:  # stopped early (an error downstream): drop the work queued ahead
            for _, future in window:
                future.cancel()


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``: a rich bar on stderr with images per second, or a no-op."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from geoaware.clikit import err

    class SpeedColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            # The same definition as EmbedReport.images_per_second: images done over the
            # seconds since embedding began (not rich's recent-window speed).
            speed = task.completed / task.elapsed if task.elapsed else None
            return Text("-- img/s" if speed is None else f"{speed:,.1f} img/s")

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        SpeedColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(f"embed ({label})", total=total)
        yield lambda n: bar.advance(task, n)

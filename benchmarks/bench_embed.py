"""Embedding speed: ``geoaware embed`` against the plain loop of research code, on 12 MP photos.

Photos: the real reference photos in ``shared/data`` (OSV-5M street views and the EXIF
samples) upscaled to the resolution users' cameras give (default 4000 x 3000, 12 megapixels)
and saved as JPEG quality 90 in a temporary folder, cycling through them up to ``--images``.

Ours: :func:`geoaware.vision.embed.embed_catalog` with the offline encoder
(EfficientNet-Lite0): JPEG downscale-on-decode in worker processes running ahead of the model,
batches of ``--batch``, channels-last, float16 shards written. The whole call is timed: model
loading, pool start and writing included.

Baseline, in the same run on the same photos: the straightforward loop of research code:
Pillow full decode, EXIF transpose, resize of the shorter side to 256 (bicubic), centre crop
224, numpy normalisation, one image at a time through the same model (batch 1, default
contiguous memory format); the model is loaded before the clock starts.

The vectors of both are compared (mean cosine similarity), so the speed is not bought with
different features.

Run: ``.venv/bin/python benchmarks/bench_embed.py`` (``--images 40`` makes it smaller). The last
line is one JSON object; ``ratio`` is baseline seconds over ours.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from PIL import Image, ImageOps

from benchkit import add_quick, sized
from geoaware.vision.embed import default_batch, embed_catalog
from geoaware.vision.embeddings import read_embeddings
from geoaware.vision.encoders import load_encoder

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
SOURCES = ("osv5m/images", "exif_gps_samples")


def make_photos(folder: Path, n: int, width: int, height: int, quality: int) -> list[str]:
    sources = sorted(p for s in SOURCES for p in (SHARED / s).glob("*.jpg"))
    if not sources:
        raise SystemExit(f"no reference photos under {SHARED}")
    names: list[str] = []
    for i in range(n):
        name = f"photo_{i:05d}.jpg"
        if i < len(sources):
            img = Image.open(sources[i]).convert("RGB").resize((width, height), Image.BICUBIC)
            img.save(folder / name, "JPEG", quality=quality)
        else:  # the same pixels again: decoding cost does not depend on the content much
            shutil.copyfile(folder / names[i % len(sources)], folder / name)
        names.append(name)
    return names


def plain_loop(paths: list[Path], module: torch.nn.Module) -> tuple[float, np.ndarray]:
    out = []
    t = time.perf_counter()
    with torch.inference_mode():
        for path in paths:
            img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
            w, h = img.size
            s = 256 / min(w, h)
            img = img.resize((round(w * s), round(h * s)), Image.BICUBIC)
            w, h = img.size
            left, top = (w - 224) // 2, (h - 224) // 2
            x = np.asarray(img.crop((left, top, left + 224, top + 224)), np.float32)
            x = (x - 127.0) / 128.0
            tensor = torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)
            out.append(module(tensor).numpy()[0])
    return time.perf_counter() - t, np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=None, help="400 (160 quick)")
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--batch", type=int, default=None, help="default: embed's own (8 on CPU)")
    ap.add_argument("--workers", type=int, default=None, help="decoder processes (default: ours)")
    ap.add_argument(
        "--baseline-images", type=int, default=None, help="baseline sample, scaled (all; 32 quick)"
    )
    add_quick(ap)
    args = ap.parse_args()
    sized(args, images=(400, 160))
    if args.quick and args.baseline_images is None:
        args.baseline_images = 32

    with tempfile.TemporaryDirectory(prefix="bench_embed_") as tmp:
        root = Path(tmp) / "photos"
        root.mkdir()
        t = time.perf_counter()
        names = make_photos(root, args.images, args.width, args.height, args.quality)
        made_s = time.perf_counter() - t
        print(f"made {len(names)} photos of {args.width}x{args.height} in {made_s:.1f} s")
        catalog = pa.table(
            {"source": ["bench"] * len(names), "image_id": names, "file_name": names}
        )

        report = embed_catalog(
            catalog, root, Path(tmp) / "emb", batch=args.batch, workers=args.workers, device="cpu"
        )
        ours = read_embeddings(Path(tmp) / "emb", ids=names).vectors
        print(
            f"ours: {report.embedded} images in {report.seconds:.1f} s "
            f"({report.images_per_second:.1f} img/s)"
        )

        encoder: Any = load_encoder("efficientnet-lite0", device="cpu")
        module = encoder.module.to(memory_format=torch.contiguous_format)
        k = min(args.baseline_images or len(names), len(names))
        t_base, base = plain_loop([root / n for n in names[:k]], module)
        t_base_scaled = t_base * len(names) / k
        print(f"plain loop: {k} images in {t_base:.1f} s ({k / t_base:.1f} img/s)")

    a = ours[:k] / np.linalg.norm(ours[:k], axis=1, keepdims=True)
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    cosine = float((a * b).sum(axis=1).mean())
    ratio = t_base_scaled / report.seconds
    out: dict[str, Any] = {
        "benchmark": "embed",
        "quick": args.quick,
        "baseline": "plain loop: Pillow full decode, resize, numpy normalise, model at batch 1 "
        "without channels-last (same photos, same run)",
        "images": len(names),
        "megapixels": args.width * args.height / 1e6,
        "encoder": report.encoder,
        "batch": args.batch or default_batch("cpu"),
        "workers": args.workers,
        "ours_s": report.seconds,
        "ours_images_per_s": report.images_per_second,
        "baseline_images": k,
        "baseline_s_scaled": t_base_scaled,
        "baseline_images_per_s": k / t_base,
        "ratio": ratio,
        "mean_cosine_ours_vs_baseline": cosine,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "targets": {"ratio": 3.0},
        "meets_targets": bool(ratio >= 3.0),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

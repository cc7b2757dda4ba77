"""``hf:`` encoders and GeoCLIP: speed against the code a user writes from the documentation.

Part 1, embedding. A CLIP model of ViT-B/32 size built from ``CLIPConfig()`` (random weights:
speed does not depend on them) and saved with its slow image processor in a temporary folder.
Photos: the real reference photos in ``shared/data`` upscaled to 12 megapixels (as in
``bench_embed.py``). Ours: ``geoaware embed --encoder hf:DIR`` (:func:`embed_catalog`: JPEG
downscale-on-decode in worker processes, batches), the whole call timed. Baseline, same run,
same photos: the loop of the transformers documentation: ``Image.open``, the processor, the
model's ``get_image_features``, one image at a time (model loaded before the clock starts).
Both vectors are compared (cosine).

Part 2, GeoCLIP gallery search: ``--queries`` random CLIP-sized image features against the
published 100K gallery. Ours: :meth:`GalleryGeolocator.geoclip` (gallery encoded once, timed
separately) and ``predict``. Baseline: the ``geoclip`` package's own prediction code
(``GeoCLIP.forward`` with the gallery, softmax, top-k: what ``GeoCLIP.predict`` runs per
image, minus the CLIP backbone, which is the same for both), timed on ``--baseline-queries``
and scaled. Skipped when geoclip is not installed.

Run: ``.venv/bin/python benchmarks/bench_hf.py`` (``--images 40 --queries 1000`` is quicker).
The last line is one JSON object; ``ratio`` is the embedding ratio (baseline s / ours).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from PIL import Image

from bench_embed import make_photos
from benchkit import add_quick, sized
from geoaware.vision.embed import embed_catalog
from geoaware.vision.embeddings import read_embeddings


def build_model(folder: Path) -> None:
    import transformers

    torch.manual_seed(0)
    model = transformers.CLIPModel(transformers.CLIPConfig())  # ViT-B/32, 224 px
    model.eval().save_pretrained(folder)
    transformers.CLIPImageProcessorPil().save_pretrained(folder)


def docs_loop(folder: Path, paths: list[Path]) -> tuple[float, np.ndarray]:
    import transformers

    model = transformers.AutoModel.from_pretrained(folder).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(folder, backend="pil")
    out = []
    t = time.perf_counter()
    for path in paths:
        image = Image.open(path)
        inputs = processor(images=image, return_tensors="pt")
        with torch.no_grad():
            features = model.get_image_features(**inputs)
        out.append(getattr(features, "pooler_output", features)[0].numpy())
    return time.perf_counter() - t, np.stack(out)


def bench_embed(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_hf_") as tmp:
        folder, root = Path(tmp) / "clip-b32", Path(tmp) / "photos"
        root.mkdir()
        build_model(folder)
        names = make_photos(root, args.images, 4000, 3000, 90)
        catalog = pa.table({"image_id": names, "file_name": names})
        report = embed_catalog(
            catalog, root, Path(tmp) / "emb", f"hf:{folder}", dtype="float32", device="cpu"
        )
        ours = read_embeddings(Path(tmp) / "emb", ids=names).vectors
        print(f"ours: {report.embedded} images in {report.seconds:.1f} s")
        k = min(args.baseline_images, len(names))
        t_base, base = docs_loop(folder, [root / n for n in names[:k]])
        print(f"transformers docs loop: {k} images in {t_base:.1f} s")
    a = ours[:k] / np.linalg.norm(ours[:k], axis=1, keepdims=True)
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    cos = (a * b).sum(axis=1)
    scaled = t_base * len(names) / k
    return {
        "images": len(names),
        "ours_s": report.seconds,
        "ours_images_per_s": report.images_per_second,
        "baseline_images": k,
        "baseline_s_scaled": scaled,
        "baseline_images_per_s": k / t_base,
        "ratio": scaled / report.seconds,
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
    }


def bench_geoclip(args: argparse.Namespace) -> dict[str, Any] | None:
    if importlib.util.find_spec("geoclip") is None:
        print("geoclip not installed (pip install --no-deps geoclip): GeoCLIP part skipped")
        return None
    import geoclip

    from geoaware.geolocate.gallery import GalleryGeolocator
    from geoaware.geolocate.geoclip import geoclip_files

    x = (np.random.default_rng(0).normal(size=(args.queries, 768)) * 0.6).astype(np.float32)
    t = time.perf_counter()
    model = GalleryGeolocator.geoclip()
    t_gallery = time.perf_counter() - t
    t = time.perf_counter()
    model.predict(x, k=5)
    t_search = time.perf_counter() - t
    print(f"ours: gallery {t_gallery:.1f} s, {args.queries} queries in {t_search:.1f} s")

    files = geoclip_files()
    mlp = torch.nn.Sequential(torch.nn.Linear(768, 768), torch.nn.ReLU(), torch.nn.Linear(768, 512))
    mlp.load_state_dict(torch.load(files["image_mlp"], weights_only=True))
    pkg = SimpleNamespace(
        image_encoder=mlp.eval(),
        location_encoder=geoclip.LocationEncoder().eval(),
        logit_scale=torch.load(files["logit_scale"], weights_only=True),
    )
    gallery = geoclip.model.misc.load_gps_data(str(files["gallery"]))
    n = min(args.baseline_queries, args.queries)
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(n):  # GeoCLIP.predict, per image, after its CLIP backbone
            logits = geoclip.GeoCLIP.forward(pkg, torch.from_numpy(x[i : i + 1]), gallery)
            top = torch.topk(logits.softmax(dim=-1), 5, dim=1)
            gallery.index_select(0, top.indices[0])
    t_pkg = time.perf_counter() - t
    print(f"geoclip package predict loop: {n} queries in {t_pkg:.1f} s")
    qps = args.queries / t_search
    qps_all = args.queries / (t_search + t_gallery)
    pkg_qps = n / t_pkg
    return {
        "queries": args.queries,
        "gallery_points": int(model.gallery_lat.size),
        "gallery_encode_s": t_gallery,
        "search_s": t_search,
        "queries_per_s": qps,
        "queries_per_s_with_gallery": qps_all,
        "package_queries": n,
        "package_queries_per_s": pkg_qps,
        "ratio": qps / pkg_qps,
        "ratio_with_gallery": qps_all / pkg_qps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=None, help="120 (32 quick)")
    ap.add_argument("--baseline-images", type=int, default=None, help="40 (8 quick)")
    ap.add_argument("--queries", type=int, default=None, help="10k (2k quick)")
    add_quick(ap)
    ap.add_argument("--baseline-queries", type=int, default=None, help="2 (1 quick)")
    ap.add_argument("--skip-geoclip", action="store_true")
    args = ap.parse_args()
    sized(
        args,
        images=(120, 32),
        baseline_images=(40, 8),
        queries=(10_000, 2_000),
        baseline_queries=(2, 1),
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    emb = bench_embed(args)
    geo = None if args.skip_geoclip else bench_geoclip(args)
    out: dict[str, Any] = {
        "benchmark": "hf",
        "quick": args.quick,
        "baseline": "transformers docs loop: Image.open, slow processor, get_image_features, "
        "one image at a time (same photos, same run); GeoCLIP: the geoclip package's "
        "per-image predict code",
        "encoder": "CLIP ViT-B/32 from CLIPConfig() (random weights)",
        **emb,
        "geoclip": geo,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "targets": {"ratio": 3.0, "cosine_min": 0.999},
        "meets_targets": bool(emb["ratio"] >= 3.0 and emb["cosine_min"] >= 0.999),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""k-NN geolocation search: FAISS IVF-PQ (with exact re-ranking) against brute-force numpy.

Data: a synthetic clustered gallery (default 1,000,000 vectors of 512 float32 dimensions:
10,000 cluster centres, each point its centre plus noise, L2-normalised, as image embeddings
of many places are) and 10,000 queries, each a gallery point plus smaller noise, so every
query has one clear nearest neighbour and recall is meaningful.

Baseline: exact cosine search in numpy, a matrix product of a chunk of queries with the whole
gallery and an argmax (what a research script does; BLAS does the work, so it is not a
straw man). Ours: :class:`geoaware.geolocate.knn.KnnGeolocator` with its IVF-PQ index
(``nlist`` about 4 sqrt(n), PQ with ``m`` sub-quantisers, ``nprobe`` lists probed, PQ
candidates re-ranked exactly by ``IndexRefineFlat``). Recall@1 is the share of queries whose
approximate nearest neighbour is the exact one. Index build time is reported apart.

Run: ``.venv/bin/python benchmarks/bench_geolocate.py`` (``--gallery``/``--queries`` make it
smaller; 1M x 512 float32 is 2 GB, the refined index holds a second copy). The last line is
one JSON object; ``ratio`` is the search speed-up over numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import faiss
import numpy as np

from benchkit import add_quick, sized
from geoaware.geolocate.knn import KnnGeolocator


def make_data(
    n: int, q: int, dim: int, clusters: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32) / np.sqrt(dim)
    gallery = np.empty((n, dim), dtype=np.float32)
    assign = rng.integers(0, clusters, n)
    step = 100_000
    for s in range(0, n, step):
        e = min(s + step, n)
        noise = rng.standard_normal((e - s, dim), dtype=np.float32) * np.float32(0.5 / np.sqrt(dim))
        gallery[s:e] = centres[assign[s:e]] + noise
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    source = rng.choice(n, q, replace=False)
    queries = gallery[source] + rng.standard_normal((q, dim), dtype=np.float32) * np.float32(
        0.15 / np.sqrt(dim)
    )
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return gallery, queries, source


def brute_force(gallery: np.ndarray, queries: np.ndarray, chunk: int = 1024) -> np.ndarray:
    best = np.empty(len(queries), dtype=np.int64)
    for s in range(0, len(queries), chunk):
        best[s : s + chunk] = np.argmax(queries[s : s + chunk] @ gallery.T, axis=1)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--gallery", type=int, default=None, help="1M (200k quick)")
    ap.add_argument("--queries", type=int, default=None, help="10k (2k quick)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--clusters", type=int, default=None, help="10k (2k quick)")
    add_quick(ap)
    ap.add_argument("--nlist", type=int, default=None, help="default 4 sqrt(n)")
    ap.add_argument("--m", type=int, default=None, help="PQ sub-quantisers (default dim/8)")
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--refine", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sized(args, gallery=(1_000_000, 200_000), queries=(10_000, 2_000), clusters=(10_000, 2_000))

    t = time.perf_counter()
    gallery, queries, source = make_data(args.gallery, args.queries, args.dim, args.clusters)
    t_data = time.perf_counter() - t
    lat = np.zeros(len(gallery))
    lon = np.zeros(len(gallery))

    t = time.perf_counter()
    exact = brute_force(gallery, queries)
    t_numpy = time.perf_counter() - t

    t = time.perf_counter()
    model = KnnGeolocator.fit(
        gallery, lat, lon, k=1, index="ivfpq", nlist=args.nlist, m=args.m or args.dim // 8,
        nprobe=args.nprobe, refine=args.refine,
    )  # fmt: skip
    t_build = time.perf_counter() - t
    del gallery

    best = float("inf")
    found = np.empty(0)
    for _ in range(args.repeat):
        t = time.perf_counter()
        _, rows = model.search(queries, 1)
        best = min(best, time.perf_counter() - t)
        found = rows[:, 0]
    recall = float(np.mean(found == exact))
    out: dict[str, Any] = {
        "benchmark": "geolocate_knn_search",
        "quick": args.quick,
        "baseline": "exact cosine search in numpy: query chunk @ gallery.T, argmax (BLAS)",
        "gallery": args.gallery,
        "queries": args.queries,
        "dim": args.dim,
        "clusters": args.clusters,
        "index": "IVF-PQ + IndexRefineFlat" if args.refine else "IVF-PQ",
        "nlist": int(faiss.extract_index_ivf(model.index).nlist),
        "m": args.m or args.dim // 8,
        "nprobe": args.nprobe,
        "refine": args.refine,
        "numpy_s": t_numpy,
        "faiss_search_s": best,
        "faiss_build_s": t_build,
        "data_s": t_data,
        "queries_per_s": args.queries / best,
        "recall_at_1": recall,
        "exact_is_source": float(np.mean(exact == source)),
        "ratio": t_numpy / best,
    }
    out["targets"] = {"ratio": 10, "recall_at_1": 0.95}
    out["meets_targets"] = bool(out["ratio"] >= 10 and recall >= 0.95)
    out["cpus"] = os.cpu_count()
    print(
        f"{args.queries:,} queries x {args.gallery:,} x {args.dim}: numpy {t_numpy:.2f} s, "
        f"faiss {best:.3f} s ({out['ratio']:.0f}x), recall@1 {recall:.4f}, build {t_build:.1f} s"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()

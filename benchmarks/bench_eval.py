"""Evaluation speed: geoaware's vectorised metrics against the per-row loops of research code.

Geolocation: N predictions (default 10 million; truths drawn around the GeoCLIP MP-16 gallery,
where photos are; errors log-normal from metres to thousands of km) evaluated with
``evaluate_geo`` (Im2GPS accuracies at 1/25/200/750/2500 km, median, mean, GeoScore), then
again with the breakdown by continent (offline reverse geocoding of every true point).

Classification: M rows (default 1 million) of five ranked labels, top-1 and top-5 error with
``top_k_error`` (the competition's e = 1/N sum_i min_j d(l_ij, g_i)); the full
``evaluate_classification`` report (join on image id, per-class accuracy) is timed as well.

Baselines, measured in the same run on a sample and scaled linearly: the straightforward
per-row Python code of the research repositories (a ``haversine`` function with ``math``
called per prediction, one pass per accuracy threshold, ``statistics.median``; a loop over
rows checking whether the true label is among the first k).

Run: ``.venv/bin/python benchmarks/bench_eval.py`` (``--geo-rows``/``--classify-rows`` make
it smaller). The last line is one JSON object; ``ratio`` is the smaller of the two speed-ups.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from geoaware.evaluate import TopK, evaluate_classification, evaluate_geo, geo_summary, top_k_error
from geoaware.predictions.geo import GeoPredictions

GALLERY = Path(__file__).resolve().parents[2] / "shared/data/geoclip_gallery/coordinates_100K.csv"
THRESHOLDS = (1, 25, 200, 750, 2500)


def make_geo(n: int, seed: int = 0) -> GeoPredictions:
    rng = np.random.default_rng(seed)
    if GALLERY.exists():
        base = pd.read_csv(GALLERY).to_numpy(dtype=np.float64)
        pick = base[rng.integers(0, len(base), n)]
        lat = np.clip(pick[:, 0] + rng.normal(0, 0.05, n), -90, 90)
        lon = (pick[:, 1] + rng.normal(0, 0.05, n) + 180) % 360 - 180
    else:
        lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
        lon = rng.uniform(-180, 180, n)
    err_km = rng.lognormal(mean=np.log(300), sigma=2.0, size=n).clip(0, 19_000)
    bearing = rng.uniform(0, 2 * np.pi, n)
    # Destination at err_km along the bearing (on the sphere), so errors span every threshold.
    dr = err_km / 6371.0
    la, lo = np.radians(lat), np.radians(lon)
    plat = np.arcsin(np.sin(la) * np.cos(dr) + np.cos(la) * np.sin(dr) * np.cos(bearing))
    plon = lo + np.arctan2(
        np.sin(bearing) * np.sin(dr) * np.cos(la), np.cos(dr) - np.sin(la) * np.sin(plat)
    )
    plon = (np.degrees(plon) + 180) % 360 - 180
    cols = ("lat", "lon", "pred_lat", "pred_lon")
    return GeoPredictions("synthetic", lat, lon, np.degrees(plat), plon, None, cols, pd.DataFrame())


# ---- the research-code baselines ----------------------------------------------------------
def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = math.radians(lat2 - lat1)
    dlam = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * r * math.asin(math.sqrt(min(1.0, a)))


def loop_geo(rows: list[tuple[float, float, float, float]]) -> dict[str, float]:
    distances = [haversine(a, b, c, d) for a, b, c, d in rows]
    n = len(distances)
    out = {f"acc_{t}km": sum(1 for x in distances if x <= t) / n for t in THRESHOLDS}
    out["median_km"] = statistics.median(distances)
    out["mean_km"] = sum(distances) / n
    out["geoscore"] = sum(5000 * math.exp(-x / 1492.7) for x in distances) / n
    return out


def loop_topk(predicted: list[list[int]], truth: list[int], k: int) -> float:
    errors = 0
    for labels, g in zip(predicted, truth, strict=True):
        if g not in labels[:k]:
            errors += 1
    return errors / len(truth)


# ---- timing -------------------------------------------------------------------------------
def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def bench_geo(n: int, sample: int, repeat: int) -> dict[str, Any]:
    preds = make_geo(n)
    evaluate_geo(preds, by=["continent"], hit_rates=False)  # build the cached country grid once
    t_ours, report = best_of(lambda: evaluate_geo(preds, hit_rates=False), repeat)
    t_cont, _ = best_of(lambda: evaluate_geo(preds, by=["continent"], hit_rates=False), repeat)
    k = min(sample, n)
    rows = list(
        zip(
            *(
                a[:k].tolist()
                for a in (preds.true_lat, preds.true_lon, preds.pred_lat, preds.pred_lon)
            ),
            strict=True,
        )
    )
    t_loop_sample, ref = best_of(lambda: loop_geo(rows), 1)
    ours_sample = geo_summary(report.errors_km[:k])
    for key, value in ref.items():
        if not math.isclose(value, ours_sample[key], rel_tol=1e-9, abs_tol=1e-9):  # type: ignore[arg-type]
            raise SystemExit(f"MISMATCH geo {key}: ours {ours_sample[key]} loop {value}")
    t_loop = t_loop_sample * n / k
    return {
        "geo_rows": n,
        "geo_ours_s": t_ours,
        "geo_by_continent_s": t_cont,
        "geo_loop_s_scaled": t_loop,
        "geo_ratio": t_loop / t_ours,
        "geo_continent_over_plain": t_cont / t_ours,
    }


def bench_classify(m: int, sample: int, repeat: int, classes: int = 10_000) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, classes, m)
    predicted = rng.integers(0, classes, (m, 5))
    hit_at = rng.integers(0, 8, m)  # about 5/8 of images have their label somewhere in the top 5
    rows = np.flatnonzero(hit_at < 5)
    predicted[rows, hit_at[rows]] = truth[rows]
    ids = np.char.add("img", np.arange(m).astype(str))
    catalog = pa.table({"source": ["bench"] * m, "image_id": ids, "label": truth.astype(np.int32)})
    topk = TopK.from_lists(ids, predicted)  # as read_predictions returns it: column-major
    labels = topk.labels
    t_ours, errs = best_of(
        lambda: (top_k_error(labels, truth, 1), top_k_error(labels, truth, 5)), repeat
    )
    t_report, report = best_of(lambda: evaluate_classification(topk, catalog), 1)
    assert math.isclose(report.error(5), errs[1]) and math.isclose(report.error(1), errs[0])
    k = min(sample, m)
    p_list, g_list = predicted[:k].tolist(), truth[:k].tolist()
    t_loop_sample, ref = best_of(
        lambda: (loop_topk(p_list, g_list, 1), loop_topk(p_list, g_list, 5)), 1
    )
    mine = (top_k_error(predicted[:k], truth[:k], 1), top_k_error(predicted[:k], truth[:k], 5))
    if not (math.isclose(ref[0], mine[0]) and math.isclose(ref[1], mine[1])):
        raise SystemExit(f"MISMATCH classify: ours {mine} loop {ref}")
    t_loop = t_loop_sample * m / k
    return {
        "classify_rows": m,
        "classify_ours_s": t_ours,
        "classify_full_report_s": t_report,
        "classify_loop_s_scaled": t_loop,
        "classify_ratio": t_loop / t_ours,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--geo-rows", type=int, default=10_000_000)
    ap.add_argument("--geo-sample", type=int, default=200_000)
    ap.add_argument("--classify-rows", type=int, default=1_000_000)
    ap.add_argument("--classify-sample", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    out: dict[str, Any] = {
        "benchmark": "eval",
        "baseline": "per-row Python loops with math, as in research code (sample, scaled)",
    }
    out.update(bench_geo(args.geo_rows, args.geo_sample, args.repeat))
    print(
        f"geo: {args.geo_rows:,} predictions in {out['geo_ours_s']:.3f} s "
        f"(by continent {out['geo_by_continent_s']:.3f} s); loop {out['geo_loop_s_scaled']:.1f} s "
        f"scaled: {out['geo_ratio']:.0f}x"
    )
    out.update(bench_classify(args.classify_rows, args.classify_sample, args.repeat))
    print(
        f"classify: {args.classify_rows:,} rows top-1/top-5 error in "
        f"{out['classify_ours_s']:.4f} s "
        f"(full report {out['classify_full_report_s']:.2f} s); loop "
        f"{out['classify_loop_s_scaled']:.2f} s scaled: {out['classify_ratio']:.0f}x"
    )
    out["ratio"] = min(out["geo_ratio"], out["classify_ratio"])
    out["targets"] = {"ratio": 50, "geo_ours_s": 5.0, "geo_continent_over_plain": 3.0}
    out["meets_targets"] = bool(
        out["ratio"] >= 50 and out["geo_ours_s"] <= 5.0 and out["geo_continent_over_plain"] <= 3.0
    )
    out["cpus"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()

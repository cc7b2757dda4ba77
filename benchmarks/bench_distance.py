"""Benchmark great-circle distances: ``geoaware.geo.haversine_km`` against two baselines.

What is compared, all on the same random pairs and in the same run:

* **geopy**: ``geopy.distance.great_circle(p1, p2, radius=6371.0).km`` called in a plain
  Python loop over a sample (10,000 pairs by default); its time is scaled up linearly to N
  pairs. This is how distances are usually computed without a vectorised helper.
* **plain numpy**: the textbook vectorised haversine (radians, ``dlat``, ``dlon``,
  ``a = sin(dlat/2)**2 + cos(phi1)*cos(phi2)*sin(dlon/2)**2``, ``2*R*arcsin(sqrt(a))``), with no
  input checks, on all N pairs.
* **ours**: ``haversine_km`` on all N pairs with its default range validation switched on.

The points are uniform on the sphere (latitude via ``arcsin`` of a uniform variate), float64,
from a seeded ``numpy.random.default_rng``. Each vectorised timing is the best of ``--repeat``
runs. The results are checked: ours must match plain numpy to within 1e-6 km everywhere and
geopy to within 1e-3 km on the sample, or the script exits with status 1.

The output is a short table of pairs per second, then, as the last line, one JSON object with
the ratios (``ratio`` = geopy time / our time, ``ratio_vs_numpy`` = numpy time / our time) and
whether they meet the targets (at least 100x geopy, and no more than 1.5x slower than numpy).

Run it from the repository root::

    .venv/bin/python benchmarks/bench_distance.py
    .venv/bin/python benchmarks/bench_distance.py --pairs 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from geopy.distance import great_circle

from geoaware.geo import haversine_km

FloatArray = npt.NDArray[np.float64]

RADIUS_KM = 6371.0
TARGET_RATIO = 100
TARGET_RATIO_VS_NUMPY = 1.0 / 1.5
TOL_NUMPY_KM = 1e-6
TOL_GEOPY_KM = 1e-3
BASELINE = "geopy.distance.great_circle loop (10k sample scaled to N)"


def make_pairs(n: int, seed: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return ``lat1, lon1, lat2, lon2`` in degrees, uniform on the sphere."""
    rng = np.random.default_rng(seed)
    lat1 = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lon1 = rng.uniform(-180.0, 180.0, n)
    lat2 = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lon2 = rng.uniform(-180.0, 180.0, n)
    return lat1, lon1, lat2, lon2


def numpy_haversine_km(
    lat1: FloatArray,
    lon1: FloatArray,
    lat2: FloatArray,
    lon2: FloatArray,
    radius_km: float = RADIUS_KM,
) -> FloatArray:
    """Textbook vectorised haversine, no checks (the plain-numpy baseline)."""
    phi1 = np.radians(lat1)
    phi2 = np.radians(lat2)
    dphi = phi2 - phi1
    dlam = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    result: FloatArray = 2 * radius_km * np.arcsin(np.sqrt(a))
    return result


def geopy_loop_km(
    lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray
) -> list[float]:
    """Distances by geopy's great_circle, one pair at a time in a Python loop."""
    return [
        great_circle((a, b), (c, d), radius=RADIUS_KM).km
        for a, b, c, d in zip(
            lat1.tolist(), lon1.tolist(), lat2.tolist(), lon2.tolist(), strict=True
        )
    ]


def best_of(repeat: int, func: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``func`` ``repeat`` times; return the fastest wall time and the last result."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        result = None  # free the previous output before timing the next run
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def max_abs_diff(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Largest absolute difference; ``inf`` if either side has a non-finite value."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("inf")
    return float(np.max(np.abs(x - y)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000_000, help="N, pairs to time")
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs (default 3)")
    parser.add_argument(
        "--geopy-sample", type=int, default=10_000, help="pairs timed with geopy, scaled to N"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.repeat < 1 or args.geopy_sample < 1:
        parser.error("--pairs, --repeat and --geopy-sample must be positive")
    args.geopy_sample = min(args.geopy_sample, args.pairs)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and the JSON line; return the exit status."""
    args = parse_args(argv)
    n: int = args.pairs
    k: int = args.geopy_sample
    lat1, lon1, lat2, lon2 = make_pairs(n, args.seed)

    # Baseline 1: geopy in a Python loop over a sample, scaled linearly to N pairs.
    s = slice(0, k)
    geopy_sample_s, geopy_km = best_of(
        args.repeat, lambda: geopy_loop_km(lat1[s], lon1[s], lat2[s], lon2[s])
    )
    geopy_s = geopy_sample_s * n / k

    # Baseline 2: textbook numpy haversine on all N pairs.
    numpy_s, numpy_km = best_of(args.repeat, lambda: numpy_haversine_km(lat1, lon1, lat2, lon2))

    # Ours, with validation on (the default).
    ours_s, ours_km = best_of(args.repeat, lambda: haversine_km(lat1, lon1, lat2, lon2, RADIUS_KM))

    diff_numpy = max_abs_diff(ours_km, numpy_km)
    diff_geopy = max_abs_diff(ours_km[s], geopy_km)
    correct = diff_numpy < TOL_NUMPY_KM and diff_geopy < TOL_GEOPY_KM

    ratio = geopy_s / ours_s
    ratio_vs_numpy = numpy_s / ours_s
    meets = bool(correct and ratio >= TARGET_RATIO and ratio_vs_numpy >= TARGET_RATIO_VS_NUMPY)

    rows = [
        (f"geopy great_circle loop ({k:,} scaled)", geopy_s),
        ("plain numpy haversine", numpy_s),
        ("geoaware haversine_km (validate=True)", ours_s),
    ]
    print(f"great-circle distance, {n:,} pairs, best of {args.repeat}")
    print(f"{'method':<42} {'time (s)':>10} {'pairs/s':>14}")
    for name, secs in rows:
        print(f"{name:<42} {secs:>10.3f} {n / secs:>14,.0f}")
    print(
        f"ours vs geopy: {ratio:,.1f}x faster (target >= {TARGET_RATIO:g}x); "
        f"ours vs numpy: {ratio_vs_numpy:.3f} (target >= {TARGET_RATIO_VS_NUMPY:.3f}, "
        f"i.e. at most 1.5x slower)"
    )
    print(
        f"max |ours - numpy| = {diff_numpy:.3g} km (tol {TOL_NUMPY_KM:g}); "
        f"max |ours - geopy| = {diff_geopy:.3g} km on {k:,} pairs (tol {TOL_GEOPY_KM:g}): "
        f"{'OK' if correct else 'MISMATCH'}"
    )
    print(
        json.dumps(
            {
                "benchmark": "distance",
                "baseline": BASELINE,
                "ratio": ratio,
                "ratio_vs_numpy": ratio_vs_numpy,
                "pairs": n,
                "ours_pairs_per_s": n / ours_s,
                "numpy_pairs_per_s": n / numpy_s,
                "geopy_pairs_per_s": n / geopy_s,
                "target_ratio": TARGET_RATIO,
                "target_ratio_vs_numpy": TARGET_RATIO_VS_NUMPY,
                "meets_targets": meets,
            }
        )
    )
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())

"""The Im2GPS protocol: great-circle accuracy at 1/25/200/750/2500 km, errors, GeoScore.

Everything is vectorised: distances in one numpy pass, per-group figures with ``bincount``
and one ``lexsort`` (for medians), so 10 million predictions take seconds, not minutes.
Distances are haversine on a sphere of radius 6371.0 km (the published value) unless the
WGS84 geodesic is asked for. GeoScore is OSV-5M's ``5000 * exp(-d / 1492.7)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from geoaware.blocks import BLOCK, map_blocks
from geoaware.errors import EvaluationError
from geoaware.geo.distance import great_circle_km
from geoaware.predictions.geo import GeoPredictions, SkippedRow
from geoaware.runs import run_document, write_run
from geoaware.typing import Float64Array, IntArray, PathLike

__all__ = [
    "DEFAULT_THRESHOLDS_KM",
    "GEOSCORE_SCALE_KM",
    "GeoReport",
    "evaluate_geo",
    "geo_summary",
    "geoscore",
    "grouped_geo_summary",
    "median_from_counts",
]

DEFAULT_THRESHOLDS_KM: tuple[float, ...] = (1.0, 25.0, 200.0, 750.0, 2500.0)
"""Street, city, region, country and continent scales of Im2GPS (Hays & Efros 2008)."""
GEOSCORE_SCALE_KM = 1492.7
"""OSV-5M's GeoScore decay (km): 5000 points at 0 km, about half at 1,035 km."""


def geoscore(errors_km: npt.ArrayLike) -> Float64Array:
    """OSV-5M GeoScore per prediction: ``5000 * exp(-d / 1492.7)``.

    Examples
    --------
    >>> geoscore([0.0, 1492.7]).round(3).tolist()
    [5000.0, 1839.397]
    """
    return 5000.0 * np.exp(-np.asarray(errors_km, dtype=np.float64) / GEOSCORE_SCALE_KM)


def _acc_key(t: float) -> str:
    return f"acc_{t:g}km"


def geo_summary(
    errors_km: npt.ArrayLike,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS_KM,
    skipped_rows: int = 0,
) -> dict[str, float | int | None]:
    """Summary figures of a set of errors, with the keys of ``geoaware eval geo --json``.

    Keys: ``n``, ``acc_<t>km`` for each threshold (fractions 0..1), ``median_km``,
    ``mean_km``, ``geoscore`` (mean), ``skipped_rows``. A threshold is inclusive (d <= t).
    Counts, sums and GeoScore come from one pass over cache-sized blocks on all cores; the
    median then partitions only the values between the two thresholds around it.

    Examples
    --------
    >>> geo_summary([0.5, 10.0, 300.0, 5000.0])["acc_25km"]
    0.5
    """
    d = np.asarray(errors_km, dtype=np.float64).reshape(-1)
    n = int(d.size)
    if n == 0:
        empty = dict.fromkeys([*map(_acc_key, thresholds), "median_km", "mean_km", "geoscore"])
        return {"n": 0, **empty, "skipped_rows": int(skipped_rows)}
    *hits, total, score = _block_figures(d, thresholds)
    counts = {t: int(c) for t, c in zip(thresholds, hits, strict=True)}
    return {
        "n": n,
        **{_acc_key(t): counts[t] / n for t in thresholds},
        "median_km": median_from_counts(d, counts),
        "mean_km": float(total / n),
        "geoscore": float(5000.0 * score / n),
        "skipped_rows": int(skipped_rows),
    }


def _block_figures(d: Float64Array, thresholds: tuple[float, ...]) -> Float64Array:
    """Return ``[#(d <= t) for t in thresholds] + [sum(d), sum(exp(-d / 1492.7))]``."""
    decay = -1.0 / GEOSCORE_SCALE_KM

    def run(s: slice) -> Float64Array:
        x = d[s]
        row = np.empty(len(thresholds) + 2)
        for i, t in enumerate(thresholds):
            row[i] = np.count_nonzero(x <= t)
        row[-2] = x.sum()
        e = np.multiply(x, decay)
        row[-1] = np.exp(e, out=e).sum()
        return row

    return np.asarray(np.sum(map_blocks(run, d.size), axis=0))


def median_from_counts(d: Float64Array, counts: dict[float, int]) -> float:
    """Return the exact median of ``d``, given ``counts[t] = #(d <= t)`` for some pivots.

    The counts (already known from the accuracy thresholds) say between which pivots the
    middle elements lie, so only that slice is gathered and partitioned: the same value as
    ``numpy.median`` at a fraction of its cost on large arrays. NaN gives NaN.

    Examples
    --------
    >>> d = np.array([5.0, 1.0, 300.0, 30.0])
    >>> median_from_counts(d, {25.0: 2, 200.0: 3}) == float(np.median(d))
    True
    """
    n = d.size
    if n == 0 or np.isnan(d).any():
        return float(np.median(d))
    pivots = sorted(counts)
    below = [0, *(counts[p] for p in pivots)]
    edges = [-np.inf, *pivots, np.inf]
    a, b = (n - 1) // 2, n // 2
    # below[i] <= rank < below[i + 1]: the rank lies in (edges[i], edges[i + 1]]
    first, last = (int(np.searchsorted(below[1:], r, side="right")) for r in (a, b))
    lo, hi = edges[first], edges[last + 1]
    if np.isfinite(lo) or np.isfinite(hi):
        part = np.concatenate(map_blocks(lambda s: _between(d[s], lo, hi), n))
    else:
        part = d.copy()
    ja, jb = a - below[first], b - below[first]
    part.partition([ja, jb] if ja != jb else ja)
    return float((part[ja] + part[jb]) / 2.0)


def _between(x: Float64Array, lo: float, hi: float) -> Float64Array:
    """Return the values in (lo, hi]."""
    keep = np.greater(x, lo)
    keep &= x <= hi
    return x[keep]


def grouped_geo_summary(
    errors_km: npt.ArrayLike,
    groups: npt.ArrayLike,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS_KM,
) -> list[dict[str, Any]]:
    """Compute the same figures per group, vectorised; groups sorted by size (largest first).

    Groups are hashed (``pandas.factorize``); one pass over cache-sized blocks on all cores
    builds a histogram of (group, threshold bin) and the per-group sums with ``bincount``;
    medians come from the few bins that hold each group's middle, sorted by a radix sort on
    their small integer keys and partitioned per group.

    Examples
    --------
    >>> rows = grouped_geo_summary([1.0, 3.0, 100.0], ["a", "a", "b"])
    >>> [(r["group"], r["n"], r["median_km"]) for r in rows]
    [('a', 2, 2.0), ('b', 1, 100.0)]
    """
    d = np.asarray(errors_km, dtype=np.float64).reshape(-1)
    codes: npt.NDArray[np.integer[Any]]
    names: Any
    if isinstance(groups, pd.Categorical) and not (groups.codes < 0).any():
        codes, names = groups.codes, groups.categories  # its codes already number the groups
    else:
        codes, names = pd.factorize(np.asarray(groups), sort=False)
    k, ts = len(names), np.sort(np.asarray(thresholds, dtype=np.float64))
    nb = ts.size + 1
    key = np.empty(d.size, dtype=np.int64)  # group * nb + bin; bin i: ts[i-1] < d <= ts[i]
    decay = -1.0 / GEOSCORE_SCALE_KM

    def histogram(s: slice) -> Float64Array:
        x, c = d[s], codes[s].astype(np.int64)
        b = np.zeros(x.size, dtype=np.int64)
        for t in ts:
            b += ~(x <= t)  # NaN lands past the last threshold, as searchsorted puts it
        np.add(b, c * nb, out=key[s])
        e = np.multiply(x, decay)
        np.exp(e, out=e)
        return np.concatenate(
            [
                np.bincount(key[s], minlength=k * nb),
                np.bincount(c, weights=x, minlength=k),
                np.bincount(c, weights=e, minlength=k),
            ]
        )

    block = max(BLOCK, 64 * k * nb)  # amortise the per-block histograms over many groups
    total = np.sum(map_blocks(histogram, d.size, block=block), axis=0)
    cum = total[: k * nb].astype(np.int64).reshape(k, nb).cumsum(axis=1)
    sums, scores = total[k * nb : k * nb + k], total[k * nb + k :]
    counts = cum[:, -1]
    medians = _group_medians(d, key, cum, block)
    rows = []
    for g in np.argsort(-counts, kind="stable").tolist():
        if counts[g] == 0:  # a category with no rows
            continue
        row: dict[str, Any] = {"group": str(names[g]), "n": int(counts[g])}
        for t in thresholds:
            row[_acc_key(t)] = float(cum[g, int(np.searchsorted(ts, t))] / counts[g])
        row["median_km"] = medians[g]
        row["mean_km"] = float(sums[g] / counts[g])
        row["geoscore"] = float(5000.0 * scores[g] / counts[g])
        rows.append(row)
    return rows


def _group_medians(d: Float64Array, key: IntArray, cum: IntArray, block: int) -> list[float]:
    """Exact median per group, partitioning only the histogram bins that hold the middle."""
    k, nb = cum.shape
    n = cum[:, -1]
    below = np.concatenate([np.zeros((k, 1), dtype=cum.dtype), cum[:, :-1]], axis=1)
    ranks = np.stack([(n - 1) // 2, n // 2], axis=1)  # the two middle ranks per group
    bins = np.stack([(cum <= ranks[:, [j]]).sum(axis=1) for j in (0, 1)], axis=1)
    bins = np.minimum(bins, nb - 1)  # an empty group (an unused category) has no middle
    wanted = np.zeros(k * nb, dtype=bool)
    wanted[(np.arange(k)[:, None] * nb + bins).ravel()] = True

    def pick(s: slice) -> tuple[Float64Array, IntArray]:
        keep = wanted[key[s]]
        return d[s][keep], key[s][keep]

    picked = map_blocks(pick, d.size, block=block)
    sub = np.concatenate([p[0] for p in picked])
    sub_key = np.concatenate([p[1] for p in picked])
    # numpy's stable sort is a radix sort on 16-bit integers: linear in the number of values
    small = sub_key.astype(np.int16) if k * nb < 2**15 else sub_key
    order = np.argsort(small, kind="stable")
    sub, sub_key = sub[order], sub_key[order]
    cells = np.arange(k)[:, None] * nb + bins  # the (group, bin) key of each middle rank
    starts = np.searchsorted(sub_key, cells)
    ends = np.searchsorted(sub_key, cells + 1)
    offsets = ranks - np.take_along_axis(below, bins, axis=1)
    medians = []
    for g in range(k):
        if n[g] == 0:
            medians.append(float("nan"))
            continue
        (a, b), (ra, rb) = bins[g], offsets[g]
        if a == b:  # both middle ranks in one bin: one partition finds both
            part = np.partition(sub[starts[g, 0] : ends[g, 0]], [ra, rb] if ra != rb else ra)
            lo, hi = part[ra], part[rb]
        else:
            lo = np.partition(sub[starts[g, 0] : ends[g, 0]], ra)[ra]
            hi = np.partition(sub[starts[g, 1] : ends[g, 1]], rb)[rb]
        medians.append(float((lo + hi) / 2.0))
    return medians


@dataclass
class GeoReport:
    """A geolocation evaluation, in the run-folder contract shape (see :meth:`to_dict`).

    Attributes
    ----------
    name, source : str
        A short name (the file's stem) and the predictions file.
    summary : dict
        :func:`geo_summary` figures.
    errors_km : numpy.ndarray
        Per-prediction errors (for plots).
    true_lat, true_lon : numpy.ndarray
        The true points, aligned with ``errors_km`` (for maps).
    tables : dict
        Breakdowns and hit rates: title to ``{"columns": [...], "rows": [[...]]}``.
    skipped : list of SkippedRow
        Rows left out, with line numbers.
    figures : list of str
        PNGs written beside the report.
    footer : dict or None
        The summary block skipped at the end of the file: rows, first_line, reason.
    published : dict or None
        The file's own summary beside ours (see
        :func:`geoaware.predictions.geo_footer.compare_summary`).
    reference : dict or None
        Published results on a test set beside this run (``--reference``).
    warnings : list of str
        Sentences the report shows above the figures (e.g. test locations that sit on
        training locations, from ``geolocate predict``'s overlap file).
    """

    name: str
    source: str
    summary: dict[str, float | int | None]
    errors_km: Float64Array
    true_lat: Float64Array
    true_lon: Float64Array
    tables: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    skipped: list[SkippedRow] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    footer: dict[str, Any] | None = None
    published: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None

    def add_reference(self, dataset: str) -> dict[str, Any]:
        """Set the published results on ``dataset`` beside this run; return the table."""
        from geoaware.evaluate.reference import reference_table

        ours: dict[str, Any] = dict(self.summary)
        rates = self.tables.get("country and continent hit rates", {"rows": []})
        for measure, rate, _n in rates["rows"]:
            if measure == "country hit rate":
                ours["country_acc"] = rate
        self.reference = reference_table(dataset, ours, self.name, "geo")
        return self.reference

    def save(self, path: PathLike) -> Path:
        """Write :meth:`to_dict` to ``path`` (a ``<name>.geo.json``; see geoaware.runs)."""
        return write_run(path, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"kind": "geo", "name", "source", "summary", "tables", "figures"}``.

        Also ``footer``, ``published_summary`` and ``reference`` where there are any; the
        published summary and the reference rows are among the tables too (for the report).
        """
        tables = dict(self.tables)
        if self.published:
            tables["the file's own summary beside geoaware's"] = {
                "columns": ["measure", "label", "published", "ours", "difference", "agrees"],
                "rows": [
                    [r["measure"], r["label"], r["published"], r["ours"], r["difference"],
                     "yes" if r["agrees"] else "NO"]
                    for r in self.published["rows"]
                ],
            }  # fmt: skip
        if self.reference:
            tables[f"published results on {self.reference['dataset']}"] = {
                "columns": self.reference["columns"],
                "rows": self.reference["rows"],
            }
        if self.skipped:
            tables["skipped rows"] = {
                "columns": ["record", "field", "value", "reason"],
                "rows": [[s.record, s.field, s.value, s.reason] for s in self.skipped],
            }
        doc = run_document(
            "geo", self.name, self.source, self.summary, tables, self.figures,
            **({"warnings": list(self.warnings)} if self.warnings else {}),
        )  # fmt: skip
        if self.footer:
            doc["footer"] = self.footer
        if self.published:
            doc["published_summary"] = self.published
        if self.reference:
            doc["reference"] = self.reference
        return doc


def _table(rows: list[dict[str, Any]], label: str) -> dict[str, list[Any]]:
    if not rows:
        return {"columns": [label], "rows": []}
    columns = [label, *list(rows[0])[1:]]
    return {"columns": columns, "rows": [list(r.values()) for r in rows]}


def evaluate_geo(
    preds: GeoPredictions,
    *,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS_KM,
    geodesic: bool = False,
    by: list[str] | None = None,
    hit_rates: bool = True,
) -> GeoReport:
    """Evaluate predictions: summary, optional breakdowns, country/continent hit rates.

    Parameters
    ----------
    preds
        From :func:`geoaware.predictions.geo.read_geo_predictions`.
    thresholds
        Accuracy thresholds in km.
    geodesic
        Use the WGS84 geodesic instead of the 6371 km sphere.
    by
        Breakdowns: ``"continent"`` and ``"country"`` (reverse-geocoded from the true point),
        or a column of the prediction file or of the truth catalog.
    hit_rates
        Report the share of predictions in the true country and continent, and of truths on
        land (reverse geocoding both points).

    Examples
    --------
    >>> from geoaware.predictions.geo import GeoPredictions
    >>> import pandas as pd
    >>> p = GeoPredictions("x.csv", np.array([48.85]), np.array([2.35]), np.array([48.85]),
    ...                    np.array([2.36]), None, ("a", "b", "c", "d"), pd.DataFrame())
    >>> evaluate_geo(p, hit_rates=False).summary["acc_1km"]
    1.0
    """
    bad = [t for t in thresholds if not (np.isfinite(t) and t > 0)]
    if bad or not thresholds:
        raise EvaluationError(
            f"accuracy thresholds must be positive distances in km; got {list(thresholds)}"
        )
    wanted = list(by or [])
    for name in wanted:
        if name not in ("continent", "country") and name not in preds.extra.columns:
            have = ", ".join(map(str, preds.extra.columns)) or "none"
            raise EvaluationError(
                f"cannot break down by {name!r}: use continent, country, a column of the "
                f"prediction file or of the truth catalog ({have})"
            )
    d = great_circle_km(
        preds.true_lat,
        preds.true_lon,
        preds.pred_lat,
        preds.pred_lon,
        "geodesic" if geodesic else "haversine",
    )
    skipped = preds.skipped_rows
    report = GeoReport(
        name=_stem(preds.source),
        source=preds.source,
        summary=geo_summary(d, thresholds, skipped),
        errors_km=d,
        true_lat=preds.true_lat,
        true_lon=preds.true_lon,
        skipped=preds.skipped,
    )
    if preds.footer_rows:
        block = preds.footer
        report.footer = {
            "rows": preds.footer_rows,
            "first_line": block.first_line if block else None,
            "reason": block.reason if block else "trailing rows named like a summary",
        }
    if preds.footer is not None and preds.footer.summary is not None:
        from geoaware.predictions.geo_footer import compare_summary

        report.published = compare_summary(preds.footer.summary, report.summary)
    need_geocode = hit_rates or any(b in ("country", "continent") for b in wanted)
    regions: dict[str, Any] = {}
    if need_geocode and d.size:
        from geoaware.geo.geocode import is_land, region_codes

        rows = []
        levels = (
            ("country", "continent")
            if hit_rates
            else [b for b in wanted if b in ("country", "continent")]
        )
        for level in levels:
            true_codes, names = region_codes(preds.true_lat, preds.true_lon, level)
            labels = ["unknown" if n == "" else n for n in names.tolist()]
            regions[level] = pd.Categorical.from_codes(
                true_codes, dtype=pd.CategoricalDtype(labels)
            )
            if hit_rates:
                pred_codes, _ = region_codes(preds.pred_lat, preds.pred_lon, level)
                known = true_codes != names.size - 1
                hit = (
                    float(np.mean(true_codes[known] == pred_codes[known])) if known.any() else None
                )
                rows.append([f"{level} hit rate", hit, int(known.sum())])
        if hit_rates:
            rows.append(
                [
                    "truth on land",
                    float(np.mean(is_land(preds.true_lat, preds.true_lon))),
                    int(d.size),
                ]
            )
            report.tables["country and continent hit rates"] = {
                "columns": ["measure", "rate", "n"],
                "rows": rows,
            }
    for name in wanted:
        values: Any
        if name in regions:
            values = regions[name]
        elif name in preds.extra.columns:
            values = preds.extra[name].astype(str).to_numpy()
        else:  # pragma: no cover - checked above
            raise EvaluationError(f"cannot break down by {name!r}")
        report.tables[f"by {name}"] = _table(grouped_geo_summary(d, values, thresholds), name)
    return report


def _stem(path: str) -> str:
    return Path(path).stem

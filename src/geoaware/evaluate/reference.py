"""Published results of the field, shown beside a user's own figures.

The rows live in the package data file ``published_results.csv``: one row per method and test
set, accuracies in percent as the papers print them, and a ``source`` (paper and table) for
every row; ``checked_in`` says where else the figures were found. A value that could not be
traced to a source is left empty, never estimated.
"""

from __future__ import annotations

import csv
import io
import math
from importlib import resources
from typing import Any

from geoaware.errors import EvaluationError

__all__ = [
    "CLASSIFY_DATASETS",
    "GEO_DATASETS",
    "GEO_METRICS",
    "published_results",
    "reference_table",
]

GEO_DATASETS = ("im2gps", "im2gps3k", "yfcc4k", "yfcc26k", "osv5m")
CLASSIFY_DATASETS = ("inat2017", "inat2018")
GEO_METRICS = (
    "acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km", "mean_km", "geoscore",
    "country_acc",
)  # fmt: skip
CLASSIFY_METRICS = ("top1_acc", "top5_acc")
_PERCENT = {"acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km", "country_acc",
            "top1_acc", "top5_acc"}  # fmt: skip


def published_results() -> list[dict[str, Any]]:
    """Every published row: dataset, method, the figures (None where not reported), source.

    Accuracies are fractions 0..1 here (the file holds percent).

    Examples
    --------
    >>> rows = published_results()
    >>> r = next(r for r in rows if r["dataset"] == "im2gps3k" and r["method"] == "GeoCLIP")
    >>> r["acc_25km"], "NeurIPS 2023" in r["source"]
    (0.3447, True)
    """
    text = (
        resources.files("geoaware.evaluate")
        .joinpath("published_results.csv")
        .read_text(encoding="utf-8")
    )
    rows = []
    for line, raw in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        row: dict[str, Any] = {"dataset": raw["dataset"], "method": raw["method"]}
        for key in (*GEO_METRICS, *CLASSIFY_METRICS):
            cell = (raw.get(key) or "").strip()
            if not cell:
                row[key] = None
                continue
            value = float(cell)
            if not math.isfinite(value):
                raise EvaluationError(f"published_results.csv line {line}: {key} is {cell!r}")
            row[key] = round(value / 100.0, 6) if key in _PERCENT else value
        row["source"] = raw["source"].strip()
        row["checked_in"] = (raw.get("checked_in") or "").strip()
        rows.append(row)
    return rows


def reference_table(
    dataset: str, ours: dict[str, Any], name: str, kind: str = "geo"
) -> dict[str, Any]:
    """Return the user's row first, then the published rows on ``dataset``.

    Parameters
    ----------
    dataset
        One of :data:`GEO_DATASETS` (``kind="geo"``) or :data:`CLASSIFY_DATASETS`.
    ours
        The user's summary (``acc_<t>km``..., or ``top1_acc``...), fractions 0..1.
    name
        The user's row label.
    kind
        ``geo`` or ``classify``.

    Returns
    -------
    dict
        ``dataset``, ``columns`` (method, the metrics, source) and ``rows``; ``note`` when no
        published row could be traced for this test set yet.

    Examples
    --------
    >>> t = reference_table("im2gps3k", {"acc_1km": 0.12}, "mine")
    >>> t["rows"][0][:2], len(t["rows"]) > 2
    (['mine', 0.12], True)
    """
    known = GEO_DATASETS if kind == "geo" else CLASSIFY_DATASETS
    key = dataset.lower().replace("-", "").replace("_", "")
    if key not in known:
        raise EvaluationError(
            f"unknown reference {dataset!r} for eval {kind}; known: {', '.join(known)}"
        )
    rows = [r for r in published_results() if r["dataset"] == key]
    metrics = [
        m
        for m in (GEO_METRICS if kind == "geo" else CLASSIFY_METRICS)
        if any(r[m] is not None for r in rows) or (not rows and m in ours)
    ]
    table: dict[str, Any] = {
        "dataset": key,
        "columns": ["method", *metrics, "source"],
        "rows": [[name, *(ours.get(m) for m in metrics), "this run"]]
        + [[r["method"], *(r[m] for m in metrics), r["source"]] for r in rows],
    }
    if not rows:
        table["note"] = f"no published {key} figure could be traced to its paper yet"
    return table

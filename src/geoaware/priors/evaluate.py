"""Location-only evaluation of a prior (or any scorer): top-k accuracy and mean AP, in batches.

For each test observation the scorer ranks every class at its location; the rank of the true
class gives top-k accuracy and the average precision (one relevant class, so AP = 1 / rank;
its mean over observations is the mean average precision). Ranks follow
:func:`geoaware.ranking.true_class_ranks`: by default a class scoring the same as the true one
ranks above it (``ties="pessimistic"``; a nearest-neighbour count of zero for thousands of
classes is then no hit by the luck of the class order) and a NaN score is the lowest, as in
``fl simulate`` and the zero-shot evaluation. Points are scored
``batch_size`` at a time, so memory is ``batch_size x C`` whatever the number of points
(1M points x 5,000 classes runs in well under 4 GB).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from geoaware.priors.baselines import BASELINES, Scorer, fit_baselines
from geoaware.priors.checkpoint import LocationPrior, load_prior
from geoaware.priors.data import Observations, load_table, observations_from_table
from geoaware.ranking import Ties, check_ties, topk_from_ranks, true_class_ranks
from geoaware.typing import BoolArray, IntArray, PathLike

__all__ = ["evaluate_prior", "location_ranks", "rank_metrics", "same_class_twins"]


def location_ranks(
    scorer: Scorer,
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    labels: npt.ArrayLike,
    date_fraction: npt.ArrayLike | None = None,
    *,
    batch_size: int = 4096,
    ties: Ties = "pessimistic",
) -> IntArray:
    """Return the 1-based rank of each point's true class among the scorer's classes.

    ``ties="pessimistic"`` ranks classes scoring the same as the true one above it,
    ``"optimistic"`` below it (:func:`geoaware.ranking.true_class_ranks`).

    Examples
    --------
    >>> from geoaware.priors.baselines import ClassFrequency
    >>> location_ranks(ClassFrequency([0, 1, 1], 2), [0.0, 0.0], [0.0, 0.0], [1, 0]).tolist()
    [1, 2]
    >>> tied = ClassFrequency([0, 1], 2)  # both classes score 0.5
    >>> location_ranks(tied, [0.0], [0.0], [0]).tolist()
    [2]
    >>> location_ranks(tied, [0.0], [0.0], [0], ties="optimistic").tolist()
    [1]
    """
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    y = np.atleast_1d(np.asarray(labels, dtype=np.int64))
    dates = None if date_fraction is None else np.asarray(date_fraction, dtype=np.float64)
    check_ties(ties)
    ranks = np.empty(y.size, dtype=np.int64)
    for s in range(0, y.size, batch_size):
        sl = slice(s, s + batch_size)
        p = scorer.predict_proba(la[sl], lo[sl], None if dates is None else dates[sl])
        ranks[sl] = true_class_ranks(p, y[sl], ties=ties)
    return ranks


def same_class_twins(
    train_lat: npt.ArrayLike,
    train_lon: npt.ArrayLike,
    train_labels: npt.ArrayLike,
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    radius_km: float = 1.0,
) -> BoolArray:
    """Flag the points that have a training point of the same class within ``radius_km``.

    Such "twins" (often the very same coordinates: one photographer, one site, several
    photos) make a random split easy for memorising methods such as nearest neighbours;
    reporting the metrics on the points without a twin as well shows how far a method
    generalises to new places.

    Examples
    --------
    >>> same_class_twins([10.0, 10.0], [20.0, 20.0], [0, 1], [10.0, 10.0, 10.5],
    ...                  [20.0, 20.001, 20.0], [1, 2, 0]).tolist()
    [True, False, False]
    """
    from scipy.spatial import cKDTree

    from geoaware.geo.distance import chord_of_km
    from geoaware.geo.encode import unit_vector

    y_train = np.atleast_1d(np.asarray(train_labels, dtype=np.int64))
    y = np.atleast_1d(np.asarray(labels, dtype=np.int64))
    out = np.zeros(y.size, dtype=bool)
    if y_train.size == 0 or y.size == 0:
        return out
    chord = float(chord_of_km(radius_km)) * (1 + 1e-12)
    near = cKDTree(unit_vector(lat, lon)).sparse_distance_matrix(
        cKDTree(unit_vector(train_lat, train_lon)), chord, output_type="ndarray"
    )  # every (point, training point) pair within the radius, as arrays
    i, j = near["i"], near["j"]
    out[i[y_train[j] == y[i]]] = True
    return out


def rank_metrics(ranks: npt.ArrayLike, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Top-k accuracies and mean average precision from true-class ranks.

    Examples
    --------
    >>> m = rank_metrics([1, 2, 10], ks=(1, 5))
    >>> m["n"], round(m["top1_acc"], 3), round(m["top5_acc"], 3), round(m["map"], 3)
    (3, 0.333, 0.667, 0.533)
    """
    r = np.asarray(ranks, dtype=np.int64)
    out: dict[str, Any] = {"n": int(r.size), **topk_from_ranks(r, tuple(ks))}
    out["map"] = float(np.mean(1.0 / r)) if r.size else float("nan")
    return out


def evaluate_prior(
    model: PathLike | LocationPrior,
    catalog: PathLike | pa.Table,
    *,
    split: str | None = "test",
    train_split: str | None = "train",
    baselines: bool = True,
    ks: Sequence[int] = (1, 5, 10),
    exclude_within_km: float | None = 1.0,
    ties: Ties = "pessimistic",
) -> dict[str, Any]:
    """Evaluate a prior location-only on a catalog split, beside the baselines, in one table.

    The baselines are fitted on the catalog's ``train_split`` rows (all rows not in ``split``
    when the catalog has no such split, or the points stored with the model). With
    ``exclude_within_km``, every method is also scored on the test points that have no
    training point of the same class within that distance (:func:`same_class_twins`): the
    figure for new places, beside the one on all points. ``ties`` says how classes scoring the
    same as the true one count (:func:`location_ranks`).

    Returns
    -------
    dict
        ``split``, ``n`` (points evaluated), ``dropped`` (rows left out and why), ``rows``
        (one per method: ``method``, ``n``, ``top1_acc``, ``top5_acc``, ``top10_acc``, ``map``),
        ``baselines``, ``ties``, and ``twin_free`` (None without ``exclude_within_km``; else ``km``,
        ``n``, ``twins`` and ``rows`` as above, on the test points without a twin).
    """
    check_ties(ties)
    prior = model if isinstance(model, LocationPrior) else load_prior(model)
    where = "<table>" if isinstance(catalog, pa.Table) else str(catalog)
    table = load_table(catalog, prior.config.label_column)
    col = prior.config.label_column
    test = observations_from_table(
        table, col, split=split, vocabulary=prior.vocabulary, where=where
    )
    scorers: dict[str, Scorer] = {"prior": prior}
    train: Observations | None = None
    if baselines or exclude_within_km:
        train = _train_points(table, col, prior, split, train_split, where)
    if baselines and train is not None:
        scorers.update(fit_baselines(train.lat, train.lon, train.labels, prior.n_classes))
    keep = np.ones(len(test), dtype=bool)
    if exclude_within_km and train is not None:
        keep = ~same_class_twins(
            train.lat, train.lon, train.labels, test.lat, test.lon, test.labels,
            radius_km=exclude_within_km,
        )  # fmt: skip
    rows, free_rows = [], []
    for name, scorer in scorers.items():
        ranks = location_ranks(
            scorer, test.lat, test.lon, test.labels, test.date_fraction, ties=ties
        )
        rows.append({"method": name, **rank_metrics(ranks, ks)})
        free_rows.append({"method": name, **rank_metrics(ranks[keep], ks)})
    twin_free = None
    if exclude_within_km:
        twin_free = {
            "km": float(exclude_within_km),
            "n": int(keep.sum()),
            "twins": int((~keep).sum()),
            "rows": free_rows,
        }
    return {
        "split": split,
        "n": len(test),
        "dropped": test.dropped,
        "rows": rows,
        "baselines": list(BASELINES) if baselines else [],
        "ties": ties,
        "twin_free": twin_free,
    }


def _train_points(
    table: pa.Table,
    col: str,
    prior: LocationPrior,
    split: str | None,
    train_split: str | None,
    where: str,
) -> Observations:
    has_split = "split" in table.column_names and train_split is not None
    if has_split and train_split in set(table.column("split").to_pylist()):
        return observations_from_table(
            table, col, split=train_split, vocabulary=prior.vocabulary, where=where
        )
    if prior.points is not None:
        lat, lon, lab = prior.points
        n = len(lat)
        return Observations(
            [""] * n,
            np.asarray(lat, np.float64),
            np.asarray(lon, np.float64),
            np.full(n, np.nan),
            np.asarray(lab, np.int64),
            np.full(n, -1, np.int64),
            prior.vocabulary,
        )
    return observations_from_table(table, col, vocabulary=prior.vocabulary, where=where)

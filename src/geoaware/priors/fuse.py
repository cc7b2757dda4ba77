"""Fusing an image classifier with the prior: ``p(y | image) * p(y | location, date)``.

The classifier's predictions are read with :func:`geoaware.predictions.labels.read_predictions`
(Parquet or NPZ; dense per-class scores or top-k labels with scores; keyed by image id) and
joined to the catalog by image id. For an image with a location, each candidate class's
probability is multiplied by the prior's probability of that class at the image's location
(and date, if the model uses dates); an image without a location keeps its image-only scores.
With top-k sparse input only the k candidates are re-weighted (the others are unknown).

Classes are matched through the catalog's integer ``label`` column (class ids) and the
model's label column (names). A catalog without class ids (the fg_geo catalog has only
``label_name``) takes dense scores in the order of the model's vocabulary (``config.json``)
and scores them against the names.

Checked, with errors naming the file and the record: every predicted image id is in the
catalog and every catalog image of the evaluated split(s) has a prediction; a dense file has
as many classes as the model's vocabulary; every class id is in the vocabulary; every score is
a finite probability in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geoaware.geo.encode import year_fraction
from geoaware.predictions.labels import PAD, TopK, first_match_rank, read_predictions, write_top_k
from geoaware.predictions.submission import write_submission
from geoaware.priors.checkpoint import LocationPrior, load_prior
from geoaware.priors.data import load_table
from geoaware.priors.errors import PriorInputError
from geoaware.typing import BoolArray, Float64Array, IntArray, PathLike

__all__ = ["FuseResult", "fuse_predictions", "fuse_scores", "rerank"]


def fuse_scores(
    image_scores: npt.ArrayLike, prior_scores: npt.ArrayLike, located: npt.ArrayLike
) -> Float64Array:
    """Multiply image scores by prior scores on located rows; other rows keep their scores.

    Examples
    --------
    >>> fuse_scores([[0.6, 0.4], [0.6, 0.4]], [[0.1, 0.9], [0.1, 0.9]], [True, False]).tolist()
    [[0.06, 0.36000000000000004], [0.6, 0.4]]
    """
    s = np.asarray(image_scores, dtype=np.float64)
    p = np.asarray(prior_scores, dtype=np.float64)
    m = np.asarray(located, dtype=bool)
    out: Float64Array = np.where(m[:, None], s * p, s)
    return out


def rerank(labels: npt.ArrayLike, scores: npt.ArrayLike, k: int) -> tuple[IntArray, Float64Array]:
    """Order each row's labels by score (ties: lower class id first; PAD last); keep ``k``.

    Wide rows (dense scores) are first cut to their ``k`` best slots with ``np.argpartition``
    (every slot tied with the k-th is kept), so the sort touches ``n x k`` values only.

    Examples
    --------
    >>> lab, sc = rerank([[3, 1, -1]], [[0.2, 0.2, float("nan")]], 2)
    >>> lab.tolist(), sc.tolist()
    ([[1, 3]], [[0.2, 0.2]])
    """
    lab = np.asarray(labels, dtype=np.int64)
    sc = np.asarray(scores, dtype=np.float64)
    key = np.where((lab == PAD) | ~np.isfinite(sc), -np.inf, sc)
    if lab.shape[1] > 4 * k:
        part = np.argpartition(-key, k - 1, axis=1)
        kth = np.take_along_axis(key, part[:, k - 1 : k], axis=1)
        width = int((key >= kth).sum(axis=1).max())
        if width > k and width < lab.shape[1]:
            part = np.argpartition(-key, width - 1, axis=1)
        if width < lab.shape[1]:
            cols = part[:, :width]
            lab = np.take_along_axis(lab, cols, axis=1)
            key = np.take_along_axis(key, cols, axis=1)
    tie = np.where(lab == PAD, np.iinfo(np.int64).max, lab)
    order = np.lexsort((tie, -key), axis=-1)[:, :k]
    out_l = np.take_along_axis(lab, order, axis=1)
    out_s = np.take_along_axis(key, order, axis=1)
    out_s[out_l == PAD] = np.nan
    return out_l, out_s


@dataclass
class FuseResult:
    """What :func:`fuse_predictions` did.

    Attributes
    ----------
    images, located : int
        Images fused, and how many of them have a location (the others keep their scores).
    rows : list of dict
        Metrics: ``group`` (``all`` or a supercategory), ``subset`` (``all``/``located``),
        ``n`` (images with a true label), ``top1_image``, ``top1_fused``, ``top5_image``,
        ``top5_fused``.
    out, kaggle : str or None
        Files written.
    classes_by : str
        How classes were matched: ``"label ids"`` (the catalog's ``label`` column) or
        ``"vocabulary order"`` (dense columns in the model's class order; catalog names).
    """

    images: int
    located: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    out: str | None = None
    kaggle: str | None = None
    classes_by: str = "label ids"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return dict(self.__dict__)


def _dense_width(path: Path) -> int | None:
    """Return the score columns of a dense prediction file, or None for ranked labels."""
    name = path.name.lower()
    if name.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            if "labels" not in z.files and "scores" in z.files:
                return int(np.asarray(z["scores"]).reshape(len(z["scores"]), -1).shape[1])
        return None
    if name.endswith((".parquet", ".pq")) or path.is_dir():
        files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        if not files:
            return None
        schema = pq.read_schema(files[0])
        if "scores" not in schema.names or {"labels", "predicted"} & set(schema.names):
            return None
        t = schema.field("scores").type
        if pa.types.is_fixed_size_list(t):
            return int(t.list_size)
        first = pq.ParquetFile(files[0]).read_row_group(0, columns=["scores"]).column(0)
        return len(first[0]) if len(first) else None
    return None


def _class_map(prior: LocationPrior, table: pa.Table, where: str) -> dict[int, int]:
    """Map class ids (the catalog's integer ``label``) to the prior's vocabulary index."""
    col = prior.config.label_column
    index = {name: i for i, name in enumerate(prior.vocabulary)}
    if col == "label":
        return {int(name): i for name, i in index.items()}
    if "label" not in table.column_names or col not in table.column_names:
        raise PriorInputError(
            where, f"needs both 'label' and {col!r} columns to map class ids to the model's classes"
        )
    pairs = table.select(["label", col]).drop_null()
    frame = pd.DataFrame(
        {"label": pairs.column("label").to_numpy(), "name": pairs.column(col).to_pylist()}
    ).drop_duplicates()
    twice = frame[frame["label"].duplicated()]
    if len(twice):
        lab = int(twice["label"].iloc[0])
        raise PriorInputError(
            where, f"class id {lab} maps to more than one {col!r} value", field="label"
        )
    return {
        int(a): index[str(b)]
        for a, b in zip(frame["label"], frame["name"], strict=True)
        if str(b) in index
    }


def fuse_predictions(
    model: PathLike | LocationPrior,
    predictions: PathLike,
    catalog: PathLike | pa.Table,
    *,
    out: PathLike | None = None,
    kaggle: PathLike | None = None,
    split: str | None = None,
    k: int = 5,
) -> FuseResult:
    """Fuse a classifier's per-image probabilities with the prior; write and score the result.

    Parameters
    ----------
    model
        A prior checkpoint folder (or a loaded :class:`LocationPrior`).
    predictions
        The classifier's predictions (Parquet or NPZ, dense or top-k with scores).
    catalog
        The catalog holding the images (``image_id``, ``lat``, ``lon``; ``label`` and
        ``supercategory`` for the metrics; ``taken_at`` for dated models).
    out
        Write the fused top-``k`` predictions here (``.parquet``: ``image_id``, ``labels``,
        ``scores`` lists; ``.npz``: ``image_id``, ``labels``, ``scores`` arrays).
    kaggle
        Also write the iNat/Kaggle submission CSV (``id,predicted``, five ids).
    split
        The catalog split the predictions answer (default: the splits of the predicted ids).
    k
        Labels kept per image in ``out``.

    Raises
    ------
    PriorInputError
        Unknown or missing image ids, a class count or class id that disagrees with the
        vocabulary, a NaN or out-of-range probability, no scores in the file.
    """
    prior = model if isinstance(model, LocationPrior) else load_prior(model)
    pred_path = Path(predictions)
    cat_where = "<table>" if isinstance(catalog, pa.Table) else str(catalog)
    width = _dense_width(pred_path)
    if width is not None and width != prior.n_classes:
        raise PriorInputError(
            pred_path,
            f"has {width} class scores per image but the model's vocabulary has "
            f"{prior.n_classes} classes",
            field="scores",
        )
    topk = read_predictions(pred_path, k=max(prior.n_classes, 1))
    if topk.scores is None:
        raise PriorInputError(
            pred_path, "holds labels without scores; fusion needs per-class probabilities"
        )
    ids = topk.image_ids.to_pylist()
    labels, scores = topk.labels, topk.scores
    filled = labels != PAD
    bad = filled & ~np.isfinite(scores)
    if bad.any():
        r = int(np.flatnonzero(bad.any(axis=1))[0])
        raise PriorInputError(
            pred_path, "probability is NaN or infinite", record=f"image {ids[r]!r}", field="scores"
        )
    out_of_range = filled & ((scores < 0) | (scores > 1))
    if out_of_range.any():
        r, j = (int(v[0]) for v in np.nonzero(out_of_range))
        raise PriorInputError(
            pred_path,
            f"probability {scores[r, j]!r} is outside [0, 1] (apply a softmax first)",
            record=f"image {ids[r]!r}",
            field="scores",
        )
    table = load_table(catalog, prior.config.label_column)
    extra = [c for c in ("label", prior.config.label_column) if c in table.column_names]
    cat_ids = pd.Index(pc.cast(table.column("image_id"), pa.string()).to_pylist())
    if cat_ids.has_duplicates:
        raise PriorInputError(cat_where, "image ids repeat in the catalog", field="image_id")
    pos = cat_ids.get_indexer(pd.Index(ids))
    missing = np.flatnonzero(pos < 0)
    if missing.size:
        raise PriorInputError(
            pred_path,
            f"{missing.size:,} predicted image ids are not in the catalog {cat_where}",
            record=f"image {ids[int(missing[0])]!r}",
            field="image_id",
        )
    _check_coverage(table, pos, split, pred_path, cat_where)
    col = prior.config.label_column
    no_ids = "label" not in table.column_names or (
        table.column("label").null_count == table.num_rows
    )
    by_name = col != "label" and no_ids
    if by_name:
        # no class ids in the catalog: a dense file's columns are the model's classes in
        # vocabulary order (config.json "vocabulary"); the truth comes from the names
        if width is None:
            raise PriorInputError(
                cat_where,
                f"has no integer 'label' ids, so the class ids in {pred_path} cannot be "
                f"matched to the model's classes (names in {col!r}): add a 'label' column of "
                f"class ids, or give dense scores with one column per class in the order of "
                f"the model's vocabulary ({prior.n_classes} classes, config.json)",
                field="label",
            )
        cmap = {i: i for i in range(prior.n_classes)}
    else:
        cmap = _class_map(prior, table.select(extra) if extra else table, cat_where)
    top_id = max([*cmap, int(labels.max()) if labels.size else 0]) + 1
    lut = np.full(top_id, -1, dtype=np.int64)
    lut[np.fromiter(cmap.keys(), np.int64, len(cmap))] = np.fromiter(
        cmap.values(), np.int64, len(cmap)
    )
    cls = lut[np.where(filled, labels, 0)]
    unknown = filled & (cls < 0)
    if unknown.any():
        r, j = (int(v[0]) for v in np.nonzero(unknown))
        raise PriorInputError(
            pred_path,
            f"class id {int(labels[r, j])} is not in the model's vocabulary "
            f"({prior.n_classes} classes, label column {prior.config.label_column!r})",
            record=f"image {ids[r]!r}",
            field="labels",
        )
    cls = np.where(filled, cls, 0)
    lat = _col(table, "lat")[pos]
    lon = _col(table, "lon")[pos]
    located = np.isfinite(lat) & np.isfinite(lon)
    dates = None
    if prior.config.use_date and "taken_at" in table.column_names:
        t = table.column("taken_at").cast(pa.timestamp("s")).to_numpy(zero_copy_only=False)
        dates = year_fraction(np.asarray(t, dtype="datetime64[s]"))[pos]
    prior_g = np.ones(scores.shape, dtype=np.float64)
    rows_loc = np.flatnonzero(located)
    for sl, p in prior.iter_proba(
        lat[rows_loc], lon[rows_loc], None if dates is None else dates[rows_loc]
    ):
        at = rows_loc[sl]
        prior_g[at] = np.take_along_axis(p, cls[at], axis=1)
    fused = fuse_scores(scores, prior_g, located)
    f_lab, f_sc = rerank(labels, fused, max(k, 5))
    i_lab = labels[:, :5]  # read_predictions ranks them already (ties: lower id first)
    result = FuseResult(len(ids), int(located.sum()))
    if by_name:
        result.classes_by = "vocabulary order"
    fused_topk = TopK(topk.image_ids, f_lab[:, :k], f_sc[:, :k], str(pred_path))
    if out is not None:
        result.out = str(write_top_k(fused_topk, Path(out)))
    if kaggle is not None:
        result.kaggle = str(write_submission(TopK(topk.image_ids, f_lab[:, :5]), kaggle, k=5))
    truth = None
    if by_name and col in table.column_names:
        index = {name: float(i) for i, name in enumerate(prior.vocabulary)}
        names = table.column(col).to_pylist()
        truth = np.array([index.get(str(v), np.nan) for v in names], dtype=np.float64)[pos]
    elif "label" in table.column_names:
        truth = table.column("label").to_numpy(zero_copy_only=False).astype(np.float64)[pos]
    if truth is not None:
        sup = None
        if "supercategory" in table.column_names:
            sup = np.asarray(table.column("supercategory").to_pylist(), dtype=object)[pos]
        result.rows = _metrics(truth, i_lab, f_lab, located, sup)
    return result


def _check_coverage(
    table: pa.Table, pos: IntArray, split: str | None, pred_path: Path, where: str
) -> None:
    if "split" not in table.column_names:
        return
    splits = np.asarray(table.column("split").to_pylist(), dtype=object)
    chosen = {split} if split is not None else set(splits[pos].tolist())
    if split is not None:
        wrong = np.flatnonzero(splits[pos] != split)
        if wrong.size:
            raise PriorInputError(
                pred_path,
                f"{wrong.size:,} predicted images are not in split {split!r} of {where}",
                record=f"row {int(wrong[0])}",
                field="image_id",
            )
    expected = np.flatnonzero(np.isin(splits, list(chosen)))
    have = np.zeros(splits.size, dtype=bool)
    have[pos] = True
    lacking = expected[~have[expected]]
    if lacking.size:
        first = table.column("image_id")[int(lacking[0])].as_py()
        raise PriorInputError(
            where,
            f"{lacking.size:,} catalog images of split(s) {sorted(map(str, chosen))} have no "
            f"prediction in {pred_path}",
            record=f"image {first!r}",
            field="image_id",
        )


def _col(table: pa.Table, name: str) -> Float64Array:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _metrics(
    truth: Float64Array,
    image_labels: IntArray,
    fused_labels: IntArray,
    located: BoolArray,
    supercategory: npt.NDArray[Any] | None,
) -> list[dict[str, Any]]:
    has = np.isfinite(truth)
    g = np.where(has, truth, PAD).astype(np.int64)
    r_img = first_match_rank(image_labels, g)
    r_fus = first_match_rank(fused_labels, g)
    groups: list[tuple[str, BoolArray]] = [("all", np.ones(g.size, dtype=bool))]
    if supercategory is not None:
        for name in sorted({str(s) for s in supercategory if s is not None}):
            groups.append((name, supercategory == name))
    rows = []
    for name, member in groups:
        for subset, mask in (("all", member & has), ("located", member & has & located)):
            n = int(mask.sum())
            row: dict[str, Any] = {"group": name, "subset": subset, "n": n}
            for k in (1, 5):
                for tag, r in (("image", r_img), ("fused", r_fus)):
                    hit = (r[mask] >= 1) & (r[mask] <= k)
                    row[f"top{k}_{tag}"] = float(hit.mean()) if n else None
            rows.append(row)
    return rows

r"""The iNaturalist / Kaggle classification protocol: top-k error, by group, rank and frequency.

The error is the competition's: for N truth images with true label ``g_i`` and predicted
labels ``l_i1 .. l_ik`` (best first),

.. math:: e = \frac{1}{N} \sum_i \min_j d(l_{ij}, g_i), \quad d = 0 \text{ on a match, else 1}

so an image counts as correct at k when any of its first k labels is right. A label repeated
within a row counts once (it still uses up its slot). A truth image with **no prediction counts
as an error** (it is in N and matches nothing); predictions for ids that are not among the
evaluated truth images (another split, or not in the catalog) are left out and counted as
``unknown_ids``.

Everything is vectorised: predictions are joined to the truth by image id in one hash join, the
(n, k) match matrix is one comparison, and each row's first correct rank (0 if none) answers
every k at once. Per-group figures are ``bincount`` sums.

The report (:class:`ClassificationReport`) gives the error and accuracy overall, per
supercategory, per taxonomic level (a prediction is right at genus level when its label's genus
is the true genus; the label-to-taxon tables come from the truth and train rows), the mean
per-class accuracy, and the accuracy by class frequency bucket (few/medium/many training
images, as in long-tail papers).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.catalog.schema import TAXONOMY_COLUMNS
from geoaware.predictions.ids import IdIndex, IntMap, factorize, load_table, np_int
from geoaware.predictions.labels import (
    PAD,
    EvaluationError,
    TopK,
    first_match_rank,
    read_predictions,
)
from geoaware.runs import run_document, write_run
from geoaware.typing import IntArray, PathLike

__all__ = [
    "DEFAULT_BUCKETS",
    "Bucket",
    "ClassificationReport",
    "evaluate_classification",
    "first_match_rank",
    "top_k_error",
]

Table = dict[str, list[Any]]

_TRUTH_COLUMNS = ("image_id", "split", "label", "supercategory", *TAXONOMY_COLUMNS)
_LEVELS = tuple(reversed(TAXONOMY_COLUMNS))  # species first, kingdom last
_MAX_EXAMPLES = 5


class Bucket(NamedTuple):
    """A class-frequency bucket: classes with ``min_train``..``max_train`` training images.

    Both bounds are inclusive; ``max_train=None`` means no upper bound.
    """

    name: str
    min_train: int
    max_train: int | None

    def describe(self) -> str:
        """Return the range as text, e.g. ``"20-100"`` or ``">100"``.

        Examples
        --------
        >>> Bucket("many", 101, None).describe(), Bucket("few", 0, 19).describe()
        ('>100', '<20')
        """
        if self.max_train is None:
            return f">{self.min_train - 1}" if self.min_train > 0 else "any"
        if self.min_train <= 0:
            return f"<{self.max_train + 1}"
        return f"{self.min_train}-{self.max_train}"


DEFAULT_BUCKETS: tuple[Bucket, ...] = (
    Bucket("few", 0, 19),
    Bucket("medium", 20, 100),
    Bucket("many", 101, None),
)
"""Few (<20), medium (20-100) and many (>100) training images, as in long-tail papers."""


# ----------------------------------------------------------------------------------------------
def top_k_error(predicted: npt.ArrayLike, truth: npt.ArrayLike, k: int = 5) -> float:
    """Return the competition error: the share of images with no right label in the first k.

    Examples
    --------
    >>> top_k_error([[4, 2, 9], [1, 1, -1], [5, 6, 7]], [2, 1, 0], k=1)
    0.6666666666666666
    >>> top_k_error([[4, 2, 9], [1, 1, -1], [5, 6, 7]], [2, 1, 0], k=5)
    0.3333333333333333
    """
    p = np.asarray(predicted, dtype=np.int64)
    g = np.asarray(truth, dtype=np.int64).ravel()
    if p.ndim != 2 or p.shape[0] != g.size:
        raise EvaluationError(f"predicted must be (n, k) with n = {g.size}; got {p.shape}")
    if g.size == 0:
        return float("nan")
    width = min(k, p.shape[1])
    if width == 0:
        return 1.0
    # One contiguous compare per rank (labels are column-major), OR-ed into the first.
    hit = np.equal(p[:, 0], g)
    match = np.empty(g.size, dtype=bool)
    for j in range(1, width):
        np.logical_or(hit, np.equal(p[:, j], g, out=match), out=hit)
    if g.min() < 0:  # an unknown truth (PAD) must not match a padded slot
        hit &= g != PAD
    return float((g.size - np.count_nonzero(hit)) / g.size)


# ----------------------------------------------------------------------------------------------
@dataclass
class ClassificationReport:
    """A classification evaluation, in the run-folder contract shape (see :meth:`to_dict`).

    Attributes
    ----------
    name, source : str
        A short name (the predictions file's stem) and where the predictions came from.
    summary : dict
        ``n``, ``top<k>_error`` and ``top<k>_acc`` for each k, ``mean_per_class_acc`` (top-1,
        macro over the truth classes), ``missing_predictions``, ``unknown_ids``.
    tables : dict
        Title to ``{"columns": [...], "rows": [[...], ...]}``: ``overall``,
        ``by supercategory``, ``by taxonomic level``, ``by train frequency`` and ``notes``
        (those the catalog allows).
    image_ids : pyarrow.StringArray
        The evaluated truth images.
    rank : numpy.ndarray of int64
        Per truth image, the 1-based rank of the first correct label; 0 if none was right.
    figures : list of str
        Image files written beside the report (none yet).
    """

    name: str
    source: str
    summary: dict[str, float | int | None]
    tables: dict[str, Table]
    image_ids: Any
    rank: IntArray
    figures: list[str] = field(default_factory=list)

    def accuracy(self, k: int) -> float:
        """Top-``k`` accuracy over the evaluated images.

        Examples
        --------
        >>> p = TopK.from_lists(["1", "2"], [[5, 3], [4, 4]])
        >>> t = pa.table({"image_id": ["1", "2"], "label": [3, 9]})
        >>> evaluate_classification(p, t).accuracy(2)
        0.5
        """
        hit = (self.rank >= 1) & (self.rank <= k)
        return float(hit.mean()) if self.rank.size else float("nan")

    def error(self, k: int) -> float:
        """Top-``k`` error (``1 - accuracy``), the competition's figure."""
        return 1.0 - self.accuracy(k)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"kind": "classify", "name", "source", "summary", "tables", "figures"}``."""
        return run_document(
            "classify",
            self.name,
            self.source,
            self.summary,
            {title: dict(t) for title, t in self.tables.items()},
            self.figures,
        )

    def save(self, path: PathLike) -> Path:
        """Write :meth:`to_dict` to ``path`` (a ``<name>.classify.json``; see geoaware.runs)."""
        return write_run(path, self.to_dict())


# ----------------------------------------------------------------------------------------------
def evaluate_classification(
    predictions: TopK | PathLike,
    truth_catalog_table: Any,
    *,
    split: str | None = None,
    ks: Sequence[int] = (1, 5),
    train_table: Any = None,
    buckets: Sequence[Bucket] = DEFAULT_BUCKETS,
    name: str | None = None,
) -> ClassificationReport:
    """Score ranked class predictions against a catalog with the iNat/Kaggle top-k protocol.

    Parameters
    ----------
    predictions
        A :class:`~geoaware.predictions.labels.TopK`, or a file for
        :func:`~geoaware.predictions.labels.read_predictions` (Kaggle CSV, Parquet or NPZ).
    truth_catalog_table
        The catalog (an Arrow table, or a catalog path): ``image_id`` and ``label`` are needed;
        ``split``, ``supercategory`` and the taxonomy columns are used where present.
    split
        Evaluate only the rows of this split (``"val"``, say). ``None`` takes every labelled
        row, so pass the split when the catalog also holds training rows.
    ks
        The k of the top-k figures; the summary has ``top<k>_error``/``top<k>_acc`` for each.
    train_table
        Catalog rows whose labels give the training-image count per class (for the frequency
        buckets) and extend the label-to-taxon tables. Default: the truth catalog's rows with
        ``split == "train"``; the buckets are skipped, with a note, when there are none.
    buckets
        The class-frequency buckets (default: few <20, medium 20-100, many >100).
    name
        The report's name (default: the predictions file's stem).

    Returns
    -------
    ClassificationReport

    Raises
    ------
    EvaluationError
        If no truth row is labelled, the split has no rows, an id repeats in the truth or the
        predictions, or ``ks``/``buckets`` are invalid.

    Examples
    --------
    >>> truth = pa.table({"image_id": ["1", "2", "3", "4"], "label": [3, 5, 5, 7],
    ...                   "split": ["val"] * 4, "genus": ["A", "B", "B", "B"]})
    >>> preds = TopK.from_lists(["1", "2", "3", "9"], [[3], [7, 5], [3, 1], [4]])
    >>> r = evaluate_classification(preds, truth, split="val")
    >>> s = r.summary
    >>> s["top1_error"], s["top5_error"], s["missing_predictions"], s["unknown_ids"]
    (0.75, 0.5, 1, 1)
    >>> r.tables["by taxonomic level"]["rows"][1][:4]  # image 2 (genus B) guessed 7 (genus B)
    ['genus', 4, 2, 0.5]
    """
    ks = _check_ks(ks)
    _check_buckets(buckets)
    preds = (
        predictions if isinstance(predictions, TopK) else read_predictions(predictions, k=max(ks))
    )
    truth_all = load_table(truth_catalog_table, _TRUTH_COLUMNS)
    if "image_id" not in truth_all.column_names or "label" not in truth_all.column_names:
        raise EvaluationError("the truth catalog needs 'image_id' and 'label' columns")
    notes: list[str] = []
    truth = _evaluated_rows(truth_all, split, notes)
    n = truth.num_rows
    truth_ids = truth.column("image_id").combine_chunks().cast(pa.string())
    truth_index, pred_index = IdIndex(truth_ids), IdIndex(preds.image_ids)
    dup = truth_index.first_duplicate()
    if dup is not None:
        raise EvaluationError(f"image id {truth_ids[dup[1]].as_py()!r} repeats in the catalog")
    dup = pred_index.first_duplicate()
    if dup is not None:
        raise EvaluationError(
            f"image id {preds.image_ids[dup[1]].as_py()!r} has two predictions ({preds.source})"
        )
    g = np_int(truth.column("label").combine_chunks())

    # Join: where each truth image's prediction is (-1: none).
    where = pred_index.positions(truth_index)
    width = min(preds.k, max(ks))
    if len(preds) == n and np.array_equal(where, np.arange(n)):  # same ids, same order
        predicted = preds.labels[:, :width]
        missing = unknown = 0
        unknown_mask = np.zeros(n, dtype=bool)
    else:
        has = where >= 0
        predicted = np.full((n, width), PAD, dtype=np.int64)
        predicted[has] = preds.labels[where[has], :width]
        missing = int(n - np.count_nonzero(has))
        unknown_mask = np.ones(len(preds), dtype=bool)
        unknown_mask[where[has]] = False
        unknown = int(np.count_nonzero(unknown_mask))
    if missing:
        notes.append(f"{missing:,} of {n:,} truth images have no prediction; they count as errors")
    if unknown:
        examples = preds.image_ids.filter(pa.array(unknown_mask))[:_MAX_EXAMPLES].to_pylist()
        notes.append(
            f"{unknown:,} predictions are for ids not among the evaluated images (another split, "
            "unlabelled, or not in the catalog) and were left out; e.g. "
            + ", ".join(map(repr, examples))
        )
    if preds.k < max(ks):
        notes.append(
            f"the predictions hold at most {preds.k} labels per image; top-{max(ks)} uses those"
        )

    rank = first_match_rank(predicted, g)
    classes, cls = factorize(g)
    overall = _group_figures(np.zeros(n, np.int64), 1, cls, classes.size, rank, ks)[0]

    summary: dict[str, float | int | None] = {"n": n}
    for k in ks:
        summary[f"top{k}_error"] = overall[f"top{k}_error"]
    for k in ks:
        summary[f"top{k}_acc"] = overall[f"top{k}_acc"]
    summary["mean_per_class_acc"] = overall["mean_per_class_acc"]
    summary["missing_predictions"] = missing
    summary["unknown_ids"] = unknown

    tables: dict[str, Table] = {"overall": _table("images", [{"images": "all", **overall}])}
    if "supercategory" in truth.column_names and truth.column("supercategory").null_count < n:
        groups = pc.dictionary_encode(
            truth.column("supercategory").combine_chunks().fill_null("(none)")
        )
        codes = np_int(groups.indices)
        names = groups.dictionary.to_pylist()
        rows = _group_figures(codes, len(names), cls, classes.size, rank, ks)
        order = sorted(range(len(names)), key=lambda i: (-int(rows[i]["n"]), names[i]))
        tables["by supercategory"] = _table(
            "supercategory", [{"supercategory": names[i], **rows[i]} for i in order]
        )
    else:
        notes.append("no supercategory in the catalog; the per-supercategory table is skipped")

    train = None if train_table is None else load_table(train_table, ("label", *_LEVELS))
    train_labels = _train_labels(truth_all, train, notes)
    levels = _level_rows(truth_all, train, g, predicted, rank, ks, notes)
    tables["by taxonomic level"] = _table("level", levels)

    if train_labels is not None:
        tables["by train frequency"] = _bucket_table(train_labels, classes, cls, rank, ks, buckets)
    tables["notes"] = {"columns": ["note"], "rows": [[note] for note in notes]}
    return ClassificationReport(
        name=name or _stem(preds.source),
        source=preds.source,
        summary=summary,
        tables=tables,
        image_ids=truth_ids,
        rank=rank,
    )


# ----------------------------------------------------------------------------------------------
def _check_ks(ks: Sequence[int]) -> list[int]:
    out = sorted({int(k) for k in ks})
    if not out or out[0] < 1:
        raise EvaluationError(f"ks must be positive integers; got {list(ks)}")
    return out


def _check_buckets(buckets: Sequence[Bucket]) -> None:
    for b in buckets:
        if b.min_train < 0 or (b.max_train is not None and b.max_train < b.min_train):
            raise EvaluationError(f"bucket {b.name!r} has an empty or negative range")
    spans = sorted((b.min_train, b.max_train, b.name) for b in buckets)
    for (_, hi, name), (lo, _, other) in itertools.pairwise(spans):
        if hi is None or hi >= lo:
            raise EvaluationError(f"buckets {name!r} and {other!r} overlap")


def _evaluated_rows(table: Any, split: str | None, notes: list[str]) -> Any:
    if split is not None:
        if "split" not in table.column_names:
            raise EvaluationError(f"split {split!r} asked for, but the catalog has no split column")
        chosen = table.filter(pc.fill_null(pc.equal(table.column("split"), split), False))
        if chosen.num_rows == 0:
            present = sorted(s for s in pc.unique(table.column("split")).to_pylist() if s)
            raise EvaluationError(
                f"the catalog has no rows with split {split!r}"
                + (f"; its splits: {', '.join(present)}" if present else "")
            )
        table = chosen
    elif "split" in table.column_names:
        present = sorted(s for s in pc.unique(table.column("split")).to_pylist() if s)
        if len(present) > 1:
            notes.append(
                f"no split given: the labelled rows of every split ({', '.join(present)}) are "
                "evaluated; pass split= to score one"
            )
    unlabelled = table.column("label").null_count
    if unlabelled == table.num_rows:
        where = f" of split {split!r}" if split else ""
        raise EvaluationError(f"no truth row{where} has a label")
    if unlabelled:
        notes.append(f"{unlabelled:,} truth images without a label were left out")
        table = table.filter(pc.is_valid(table.column("label")))
    return table


def _group_figures(
    group: IntArray,
    n_groups: int,
    cls: IntArray,
    n_classes: int,
    rank: IntArray,
    ks: Sequence[int],
) -> list[dict[str, Any]]:
    """Per group: images, classes, top-k accuracy and error, mean per-class top-1 accuracy."""
    n = np.bincount(group, minlength=n_groups)
    rows: list[dict[str, Any]] = [{"n": int(c)} for c in n]
    top1 = (rank == 1).astype(np.float64)
    if n_groups * n_classes < 1 << 24:  # (group, class) counts in one dense table
        key = group * n_classes + cls
        pair_n = np.bincount(key, minlength=n_groups * n_classes).reshape(n_groups, n_classes)
        pair_hit = np.bincount(key, weights=top1, minlength=n_groups * n_classes)
        seen = pair_n > 0
        class_acc = pair_hit.reshape(n_groups, n_classes)[seen] / pair_n[seen]
        n_cls = seen.sum(axis=1)
        macro = np.bincount(np.nonzero(seen)[0], weights=class_acc, minlength=n_groups)
    else:
        pair, pair_inv, counts = np.unique(
            group * n_classes + cls, return_inverse=True, return_counts=True
        )
        acc = np.bincount(pair_inv.ravel(), weights=top1, minlength=pair.size) / counts
        n_cls = np.bincount(pair // n_classes, minlength=n_groups)
        macro = np.bincount(pair // n_classes, weights=acc, minlength=n_groups)
    for k in ks:
        hit = np.bincount(group, weights=(rank >= 1) & (rank <= k), minlength=n_groups)
        for i, row in enumerate(rows):
            acc_k = float(hit[i] / n[i]) if n[i] else None
            row[f"top{k}_acc"] = acc_k
            row[f"top{k}_error"] = None if acc_k is None else 1.0 - acc_k
    for i, row in enumerate(rows):
        row["classes"] = int(n_cls[i])
        row["mean_per_class_acc"] = float(macro[i] / n_cls[i]) if n_cls[i] else None
    return rows


def _table(label: str, rows: list[dict[str, Any]]) -> Table:
    if not rows:
        return {"columns": [label], "rows": []}
    first = rows[0]
    ordered = [label, "n", "classes"] if "classes" in first else [label, "n"]
    columns = ordered + [c for c in first if c not in ordered]
    return {"columns": columns, "rows": [[r.get(c) for c in columns] for r in rows]}


def _train_labels(truth_all: Any, train_table: Any, notes: list[str]) -> IntArray | None:
    if train_table is not None:
        train = train_table
        if "label" not in train.column_names:
            raise EvaluationError("train_table has no 'label' column")
        source = "train_table"
    elif "split" in truth_all.column_names:
        mask = pc.fill_null(pc.equal(truth_all.column("split"), "train"), False)
        train = truth_all.filter(mask)
        source = "the catalog's split == 'train' rows"
    else:
        train = None
        source = ""
    if train is None or train.num_rows == 0 or train.column("label").null_count == train.num_rows:
        why = (
            "train_table has no labelled row"
            if train_table is not None
            else "no train_table and no labelled split == 'train' rows in the catalog"
        )
        notes.append(f"train counts unavailable ({why}): accuracy by class frequency is skipped")
        return None
    notes.append(f"class frequency buckets count training images in {source}")
    return np_int(train.column("label").combine_chunks().drop_null())


def _bucket_table(
    train_labels: IntArray,
    classes: IntArray,
    cls: IntArray,
    rank: IntArray,
    ks: Sequence[int],
    buckets: Sequence[Bucket],
) -> Table:
    train_ids, train_codes = factorize(train_labels)
    train_n = np.bincount(train_codes, minlength=train_ids.size)
    per_class = np.maximum(IntMap(train_ids, train_n)(classes), 0)
    class_bucket = np.full(classes.size, len(buckets), dtype=np.int64)  # unbucketed: last
    for i, b in enumerate(buckets):
        hi = np.iinfo(np.int64).max if b.max_train is None else b.max_train
        class_bucket[(per_class >= b.min_train) & (per_class <= hi)] = i
    rows = _group_figures(class_bucket[cls], len(buckets) + 1, cls, classes.size, rank, ks)
    out = [
        {"bucket": b.name, "train_images": b.describe(), **rows[i]} for i, b in enumerate(buckets)
    ]
    if rows[-1]["n"]:
        out.append({"bucket": "(outside every bucket)", "train_images": "", **rows[-1]})
    return _table("bucket", out)


def _label_taxa(rows: Any, rank: str) -> tuple[IntArray, IntArray, int]:
    """Label -> taxon code table for one rank: sorted labels, their codes, conflicting labels."""
    pairs = (
        rows.select(["label", rank])
        .filter(pc.and_(pc.is_valid(rows.column("label")), pc.is_valid(rows.column(rank))))
        .group_by(["label", rank])
        .aggregate([])
        .sort_by([("label", "ascending"), (rank, "ascending")])
    )
    labels = np_int(pairs.column("label").combine_chunks())
    encoded = pc.dictionary_encode(pairs.column(rank).combine_chunks())
    codes = np_int(encoded.indices)
    first = np.ones(labels.size, dtype=bool)
    first[1:] = labels[1:] != labels[:-1]
    conflicts = int(labels.size - np.count_nonzero(first))
    return labels[first], codes[first], conflicts


def _taxonomy_rows(truth_all: Any, train_table: Any, ranks: list[str]) -> Any:
    """(label, rank...) rows of the truth catalog and of the train table, one schema."""
    schema = pa.schema([("label", pa.int64())] + [(r, pa.string()) for r in ranks])
    parts = [truth_all]
    if train_table is not None:
        parts.append(train_table)
    tables = []
    for part in parts:
        columns = {
            name: part.column(name).cast(typ)
            if name in part.column_names
            else pa.nulls(part.num_rows, typ)
            for name, typ in zip(schema.names, schema.types, strict=True)
        }
        tables.append(pa.table(columns, schema=schema))
    return pa.concat_tables(tables)


def _level_rows(
    truth_all: Any,
    train_table: Any,
    g: IntArray,
    predicted: IntArray,
    rank: IntArray,
    ks: Sequence[int],
    notes: list[str],
) -> list[dict[str, Any]]:
    """Exact-label figures, then one row per taxonomic rank the catalog fills."""
    taxa = int(factorize(g)[0].size)
    rows = [{"level": "label", "n": g.size, "taxa": taxa, **_hits(rank, ks)}]
    ranks = [r for r in _LEVELS if r in truth_all.column_names]
    if not ranks:
        notes.append("no taxonomy columns in the catalog; only exact-label figures are given")
        return rows
    taxonomy = _taxonomy_rows(truth_all, train_table, ranks)
    for level in ranks:
        lab, codes, conflicts = _label_taxa(taxonomy, level)
        if lab.size == 0:
            continue
        if conflicts:
            notes.append(
                f"{conflicts:,} labels have more than one {level} in the catalog; the first "
                "(alphabetically) is used"
            )
        taxon_of = IntMap(lab, codes)
        truth_taxon = taxon_of(g)
        known = truth_taxon >= 0
        if np.all(known):
            level_rank = first_match_rank(taxon_of(predicted), truth_taxon)
        else:
            level_rank = first_match_rank(taxon_of(predicted[known]), truth_taxon[known])
        rows.append(
            {
                "level": level,
                "n": int(np.count_nonzero(known)),
                "taxa": int(factorize(truth_taxon[known])[0].size),
                **_hits(level_rank, ks),
            }
        )
    return rows


def _hits(rank: IntArray, ks: Sequence[int]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in ks:
        acc = float(np.count_nonzero((rank >= 1) & (rank <= k)) / rank.size) if rank.size else None
        out[f"top{k}_acc"] = acc
        out[f"top{k}_error"] = None if acc is None else 1.0 - acc
    return out


def _stem(source: str) -> str:
    name = Path(source).name
    for suffix in (".csv.gz", ".csv", ".parquet", ".npz", ".txt"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(source).stem or "predictions"

"""Reading classification prediction files into one compact structure, :class:`TopK`.

A prediction file (the "Predictions" contract of ``DESIGN.md``) is keyed by image id and holds
either ranked labels or per-class scores. Four layouts are read, all vectorised:

* **Kaggle CSV** (``.csv``, ``.csv.gz``): header ``id,predicted`` (``image_id`` is accepted for
  ``id``), then one row per image with up to five space-separated category ids, best first.
  Blank lines are skipped; whitespace around cells and one pair of double quotes around a cell
  are removed. Parsed with ``pyarrow.csv`` with quoting off, so every line is one row and
  errors name the right line (a cell cannot hold a comma or a line break, which ids and label
  lists never need); the id is read as text, so ``007`` stays ``007``; the labels are split
  and cast with ``pyarrow.compute``.
* **Parquet, top-k sparse**: ``image_id`` plus ``labels`` (a list of ints, best first) and an
  optional ``scores`` list; or ``image_id`` plus a Kaggle-style ``predicted`` string column.
* **Parquet, dense**: ``image_id`` plus ``scores``, a fixed-size (or equal-length) list of
  per-class scores. The class id of each position is the JSON list stored under the
  ``geoaware.class_ids`` key of the file's (or the field's) metadata, else the position itself.
* **NPZ**: ``image_id`` (a string or integer array) plus either ``labels`` (n, k), padded with
  ``-1``, with optional ``scores`` (n, k), or dense ``scores`` (n, C) with an optional
  ``class_ids`` (C,) array.

Dense scores are cut to the top ``k`` with ``np.partition`` and a stable ``argsort``: a higher
score ranks first, ties go to the lower class id, NaN ranks last. Ranked labels keep the file's
order (a duplicate label stays where it is and uses up its slot, as in Kaggle's scorer).
Class ids are non-negative; :data:`PAD` (``-1``) marks an empty slot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geoaware.errors import EvaluationError, InputFileError
from geoaware.fileio import atomic_path
from geoaware.predictions.ids import (
    PAD,
    np_int,
    pad,
    refuse_duplicates,
    string_ids,
)
from geoaware.predictions.kaggle import (
    clean_cells,
    file_bytes,
    int_tokens,
    read_kaggle,
    split_labels,
)
from geoaware.typing import Float64Array, IntArray, PathLike

__all__ = [
    "CLASS_IDS_KEY",
    "DEFAULT_K",
    "PAD",
    "EvaluationError",
    "TopK",
    "first_match_rank",
    "read_predictions",
    "top_k_from_scores",
    "write_top_k",
]


DEFAULT_K = 5
"""Labels kept per image from dense scores, and the most a Kaggle submission may hold."""
CLASS_IDS_KEY = b"geoaware.class_ids"
"""Parquet metadata key (file or ``scores`` field) holding the JSON list of class ids."""
ID_COLUMNS = ("image_id", "id", "image_ids")
_BLOCK_ELEMENTS = 1 << 22  # scores handled per block when cutting dense scores to top k


# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopK:
    """Ranked labels per image: the compact form every prediction file is read into.

    Attributes
    ----------
    image_ids : pyarrow.StringArray
        One id per image, unique (any sequence of ids given is converted to text).
    labels : numpy.ndarray of int64, shape (n, k)
        Class ids, best first, padded on the right with :data:`PAD` where an image has fewer;
        stored column-major, so each rank is one contiguous array.
    scores : numpy.ndarray of float64, shape (n, k), or None
        The score of each label (NaN in padded slots), where the file had scores.
    source : str
        Where the predictions came from (a path, or ``"<memory>"``).

    Examples
    --------
    >>> p = TopK.from_lists(["a", "b"], [[3, 1], [2]])
    >>> p.labels.tolist(), p.k, len(p)
    ([[3, 1], [2, -1]], 2, 2)
    """

    image_ids: Any
    labels: IntArray
    scores: Float64Array | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_ids", string_ids(self.image_ids))
        # Column-major: the metrics read one rank (column) for all images at a time.
        object.__setattr__(self, "labels", np.asfortranarray(self.labels, dtype=np.int64))
        if self.scores is not None:
            object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64))
        if self.labels.ndim != 2 or self.labels.shape[0] != len(self.image_ids):
            raise EvaluationError(
                f"labels must have shape (n, k) with n = {len(self.image_ids)} image ids; "
                f"got {self.labels.shape}"
            )
        if self.scores is not None and self.scores.shape != self.labels.shape:
            raise EvaluationError(
                f"scores must have the labels' shape {self.labels.shape}; got {self.scores.shape}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def k(self) -> int:
        """Slots per image (the most labels any image has)."""
        return int(self.labels.shape[1])

    @classmethod
    def from_scores(
        cls,
        image_ids: Any,
        scores: npt.ArrayLike,
        class_ids: npt.ArrayLike | None = None,
        k: int = DEFAULT_K,
        source: str = "<memory>",
    ) -> TopK:
        """Keep the ``k`` best-scored classes of each row of a dense (n, C) score matrix.

        See :func:`top_k_from_scores` for the ranking and tie rule.

        Examples
        --------
        >>> p = TopK.from_scores(["a"], [[0.1, 0.7, 0.2]], class_ids=[10, 11, 12], k=2)
        >>> p.labels.tolist(), p.scores.tolist()
        ([[11, 12]], [[0.7, 0.2]])
        """
        labels, top = top_k_from_scores(scores, k, class_ids)
        return cls(image_ids, labels, top, source)

    @classmethod
    def from_lists(
        cls,
        image_ids: Any,
        labels: Sequence[Sequence[int]],
        scores: Sequence[Sequence[float]] | None = None,
        source: str = "<memory>",
    ) -> TopK:
        """Build from ragged lists of labels (best first) and optional matching scores.

        Examples
        --------
        >>> TopK.from_lists(["x"], [[]]).labels.shape
        (1, 0)
        """
        lab = pa.array(list(labels), pa.list_(pa.int64()))
        n = len(lab)
        parent = np_int(pc.list_parent_indices(lab))
        values = np_int(pc.list_flatten(lab))
        matrix = pad(parent, values, n, None, PAD)
        top = None
        if scores is not None:
            sc = pa.array(list(scores), pa.list_(pa.float64()))
            if pc.list_value_length(sc).to_pylist() != pc.list_value_length(lab).to_pylist():
                raise EvaluationError("scores must have as many entries as labels, row by row")
            flat = np.asarray(pc.list_flatten(sc).to_numpy(zero_copy_only=False), np.float64)
            top = pad(parent, flat, n, matrix.shape[1], np.nan)
        return cls(image_ids, matrix, top, source)


def top_k_from_scores(
    scores: npt.ArrayLike, k: int = DEFAULT_K, class_ids: npt.ArrayLike | None = None
) -> tuple[IntArray, Float64Array]:
    """Return the ``k`` best class ids of each row of an (n, C) score matrix, and their scores.

    Vectorised: ``np.partition`` finds each row's k-th best score, then the chosen columns are
    ordered with a stable ``argsort``. A higher score ranks first; equal scores rank the lower
    class id first (also at the cut-off, so the result never depends on partition order); NaN
    ranks below every number. Rows are handled in blocks of about four million scores, so memory
    stays bounded for large matrices. With ``k >= C`` every class is returned, ranked.

    Parameters
    ----------
    scores
        Array of shape (n, C).
    k
        Classes kept per row.
    class_ids
        The class id of each column (default: the column index).

    Returns
    -------
    labels : numpy.ndarray of int64, shape (n, min(k, C))
    top_scores : numpy.ndarray of float64, same shape (NaN scores come back as ``-inf``)

    Examples
    --------
    Ties: classes 1 and 2 share the best score, so the lower id comes first.

    >>> labels, top = top_k_from_scores([[0.1, 0.4, 0.4, 0.2]], k=3)
    >>> labels.tolist(), top.tolist()
    ([[1, 2, 3]], [[0.4, 0.4, 0.2]])
    """
    s = np.asarray(scores)
    if s.ndim != 2:
        raise EvaluationError(f"scores must be a 2-D (images, classes) array; got shape {s.shape}")
    if k < 1:
        raise EvaluationError(f"k must be at least 1; got {k}")
    n, c = s.shape
    ids = np.arange(c, dtype=np.int64)
    if class_ids is not None:
        ids = np.asarray(class_ids, dtype=np.int64).ravel()
        if ids.size != c:
            raise EvaluationError(f"{ids.size} class ids given for {c} score columns")
        if np.any(ids[1:] <= ids[:-1]):  # order columns by class id so ties favour lower ids
            order = np.argsort(ids, kind="stable")
            if np.any(ids[order][1:] == ids[order][:-1]):
                raise EvaluationError("class ids must be unique")
            ids, s = ids[order], s[:, order]
    kk = min(k, c)
    labels = np.empty((n, kk), dtype=np.int64)
    top = np.empty((n, kk), dtype=np.float64)
    step = max(1, _BLOCK_ELEMENTS // max(c, 1))
    for start in range(0, n, step):
        cols, vals = _top_k_block(s[start : start + step], kk)
        labels[start : start + step] = ids[cols]
        top[start : start + step] = vals
    return labels, top


def _top_k_block(block: npt.NDArray[Any], k: int) -> tuple[IntArray, Float64Array]:
    s = np.asarray(block, dtype=np.float64)
    s = np.where(np.isnan(s), -np.inf, s)
    n, c = s.shape
    neg = -s
    if k < c:
        kth = np.partition(neg, k - 1, axis=1)[:, k - 1 : k]
        better = neg < kth
        tie = neg == kth
        need = k - better.sum(axis=1)
        take = better | tie
        over = np.flatnonzero(tie.sum(axis=1) > need)  # more ties at the cut than slots left
        if over.size:
            sub = tie[over]
            take[over] = better[over] | (sub & (np.cumsum(sub, axis=1) <= need[over, None]))
        cols = np.nonzero(take)[1].reshape(n, k).astype(np.int64)  # ascending within a row
    else:
        cols = np.tile(np.arange(c, dtype=np.int64), (n, 1))
    vals = np.take_along_axis(s, cols, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1), np.take_along_axis(vals, order, axis=1)


# ----------------------------------------------------------------------------------------------
def read_predictions(path: PathLike, *, k: int | None = None) -> TopK:
    r"""Read a prediction file (Kaggle CSV, Parquet or NPZ; see the module docs) as a :class:`TopK`.

    Parameters
    ----------
    path
        ``.csv`` / ``.csv.gz``, ``.parquet`` (file or folder) or ``.npz``.
    k
        Keep at most ``k`` labels per image. Dense scores need a cut: ``None`` keeps
        :data:`DEFAULT_K` (5) there, and every label of ranked-label files.

    Raises
    ------
    InputFileError
        Naming the file, the line (CSV) or row (Parquet, NPZ) and the field, for: an unknown
        format, a missing column, a label that is not an integer, a row with the wrong number of
        fields, an empty or duplicate image id.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "sub.csv"
    >>> _ = f.write_text("id,predicted\n7,3 1 4\n8,2\n")
    >>> p = read_predictions(f)
    >>> p.image_ids.to_pylist(), p.labels.tolist()
    (['7', '8'], [[3, 1, 4], [2, -1, -1]])
    """
    p = Path(path)
    if k is not None and k < 1:
        raise EvaluationError(f"k must be at least 1; got {k}")
    if not p.exists():
        raise InputFileError(p, "no such file or folder")
    name = p.name.lower()
    if name.endswith((".csv", ".csv.gz", ".txt")):
        return _read_csv(p, k)
    if name.endswith((".parquet", ".pq")) or p.is_dir():
        return _read_parquet(p, k)
    if name.endswith(".npz"):
        return _read_npz(p, k)
    raise InputFileError(p, "unknown predictions format; expected .csv, .parquet or .npz")


def first_match_rank(predicted: npt.ArrayLike, truth: npt.ArrayLike) -> IntArray:
    """Return, per image, the 1-based rank of the first correct label, or 0 if none is right.

    ``predicted`` is (n, k), best first, padded with ``-1``; ``truth`` is (n,). A duplicate of
    the true label counts once (only the first match matters). One comparison of the whole
    matrix, no per-row Python.

    Examples
    --------
    >>> first_match_rank([[4, 2, 9], [1, 1, -1], [5, 6, 7]], [2, 1, 0]).tolist()
    [2, 1, 0]
    """
    p = np.asarray(predicted, dtype=np.int64)
    g = np.asarray(truth, dtype=np.int64).ravel()
    if p.ndim != 2 or p.shape[0] != g.size:
        raise EvaluationError(f"predicted must be (n, k) with n = {g.size}; got {p.shape}")
    rank = np.zeros(g.size, dtype=np.int64)
    for j in range(p.shape[1] - 1, -1, -1):  # column by column, so the first match wins
        rank[p[:, j] == g] = j + 1
    rank[g == PAD] = 0
    return rank


def write_top_k(topk: TopK, path: PathLike) -> Path:
    """Write ranked labels and their scores as ``.npz``, else Parquet, for ``read_predictions``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "p.parquet"
    >>> read_predictions(write_top_k(TopK.from_lists(["a"], [[2, 7]]), out)).labels.tolist()
    [[2, 7]]
    """
    path = Path(path)
    if path.name.lower().endswith(".npz"):
        with atomic_path(path, suffix=".npz") as tmp, tmp.open("wb") as fh:
            np.savez(
                fh,
                image_id=np.asarray(topk.image_ids.to_pylist(), dtype=str),
                labels=np.ascontiguousarray(topk.labels),
                scores=np.asarray(topk.scores),
            )
        return path
    lab = [[int(v) for v in row if v != PAD] for row in topk.labels]
    scores = np.full(topk.labels.shape, np.nan) if topk.scores is None else topk.scores
    sc = [
        [float(s) for s, v in zip(srow, lrow, strict=True) if v != PAD]
        for srow, lrow in zip(scores, topk.labels, strict=True)
    ]
    t = pa.table(
        {
            "image_id": topk.image_ids,
            "labels": pa.array(lab, pa.list_(pa.int64())),
            "scores": pa.array(sc, pa.list_(pa.float64())),
        }
    )
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(t, tmp)
    return path


# --- files -------------------------------------------------------------------------------------
def _read_csv(path: Path, k: int | None) -> TopK:
    data = file_bytes(path)
    if not data or data.isspace():
        raise InputFileError(path, "file is empty; expected a header 'id,predicted'")
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).decode("utf-8", "replace")
    names = [c.strip().strip('"').strip() for c in first.lstrip("\ufeff").split(",")]
    id_col = next((c for c in ID_COLUMNS if c in names), None)
    if id_col is None or "predicted" not in names or len(set(names)) != len(names):
        raise InputFileError(
            path, f"header must be 'id,predicted'; found {first.strip()!r}", record="line 1"
        )
    rows = read_kaggle(data, path, names, id_col, "predicted")
    if rows.bad_rows:
        line, text, n = rows.bad_rows[0]
        more = f" (and {len(rows.bad_rows) - 1} more such rows)" if len(rows.bad_rows) > 1 else ""
        raise InputFileError(
            path,
            f"expected {len(names)} fields, found {n}: {text!r}{more}",
            record=f"line {line}",
        )
    empty = np.flatnonzero(np.asarray(pc.equal(rows.ids, "").to_numpy(zero_copy_only=False)))
    if empty.size:
        raise InputFileError(
            path, "empty image id", record=f"line {rows.lines[empty[0]]}", field=id_col
        )
    values, bad = int_tokens(rows.tokens)
    if bad is not None:
        where = np.flatnonzero(bad)
        more = f" (and {where.size - 1} more)" if where.size > 1 else ""
        raise InputFileError(
            path,
            f"label {rows.tokens[int(where[0])].as_py()!r} is not an integer{more}",
            record=f"line {rows.lines[rows.parent[where[0]]]}",
            field="predicted",
        )
    refuse_duplicates(path, rows.ids, lambda i: f"line {rows.lines[i]}", id_col)
    labels = pad(rows.parent, values, len(rows.ids), k, PAD)
    return TopK(rows.ids, labels, None, str(path))


# --- Parquet ----------------------------------------------------------------------------------
def _read_parquet(path: Path, k: int | None) -> TopK:
    try:
        dataset = pq.ParquetDataset(path)
        schema = dataset.schema
    except (OSError, pa.ArrowException) as exc:
        raise InputFileError(path, f"not a readable Parquet file ({exc})") from exc
    names = schema.names
    id_col = next((c for c in ID_COLUMNS if c in names), None)
    if id_col is None:
        raise InputFileError(path, f"no image id column (one of {', '.join(ID_COLUMNS)})")
    if "labels" in names or "predicted" in names:
        wanted = [id_col, "labels" if "labels" in names else "predicted"]
        if "labels" in names and "scores" in names:
            wanted.append("scores")
        table = _read_table(path, wanted)
        ids = _ids_column(path, table.column(id_col), id_col)
        if "predicted" in wanted:
            return _from_predicted_strings(path, ids, table.column("predicted"), k)
        return _from_label_lists(path, ids, table, k)
    if "scores" in names:
        return _read_dense_parquet(path, schema, id_col, k or DEFAULT_K)
    raise InputFileError(
        path, "expected a 'labels' list, a 'predicted' string or a dense 'scores' column"
    )


def _read_table(path: Path, columns: list[str]) -> Any:
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise InputFileError(path, f"not a readable Parquet file ({exc})") from exc


def _ids_column(path: Path, column: Any, name: str) -> Any:
    ids = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if ids.null_count:
        row = int(np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputFileError(path, "image id is null", record=f"row {row}", field=name)
    try:
        return ids.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputFileError(
            path, f"image ids of type {ids.type} are not text", field=name
        ) from exc


def _from_predicted_strings(path: Path, ids: Any, column: Any, k: int | None) -> TopK:
    pred = column.combine_chunks().cast(pa.string()).fill_null("")
    tokens, parent = split_labels(clean_cells(pred))
    values, bad = int_tokens(tokens)
    if bad is not None:
        first = int(np.flatnonzero(bad)[0])
        raise InputFileError(
            path,
            f"label {tokens[first].as_py()!r} is not an integer",
            record=f"row {parent[first]}",
            field="predicted",
        )
    refuse_duplicates(path, ids, lambda i: f"row {i}", "image_id")
    return TopK(ids, pad(parent, values, len(ids), k, PAD), None, str(path))


def _from_label_lists(path: Path, ids: Any, table: Any, k: int | None) -> TopK:
    col = table.column("labels").combine_chunks()
    if not _is_list(col.type):
        raise InputFileError(path, f"must be a list of integers, not {col.type}", field="labels")
    flat = pc.list_flatten(col)
    if not pa.types.is_integer(flat.type):
        raise InputFileError(path, f"must hold integers, not {flat.type}", field="labels")
    parent = np_int(pc.list_parent_indices(col))
    if flat.null_count:
        at = int(np.flatnonzero(flat.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputFileError(path, "null label in list", record=f"row {parent[at]}", field="labels")
    labels = pad(parent, np_int(flat), len(ids), k, PAD)
    scores = None
    if "scores" in table.column_names:
        sc = table.column("scores").combine_chunks()
        lab_len = pc.list_value_length(col).fill_null(0)
        sc_len = pc.list_value_length(sc).fill_null(0)
        if not pc.all(pc.equal(lab_len, sc_len)).as_py():
            row = int(np.flatnonzero(~pc.equal(lab_len, sc_len).to_numpy(zero_copy_only=False))[0])
            raise InputFileError(
                path, "scores and labels differ in length", record=f"row {row}", field="scores"
            )
        flat_s = np.asarray(pc.list_flatten(sc).to_numpy(zero_copy_only=False), np.float64)
        scores = pad(parent, flat_s, len(ids), labels.shape[1], np.nan)
    refuse_duplicates(path, ids, lambda i: f"row {i}", "image_id")
    return TopK(ids, labels, scores, str(path))


def _is_list(t: Any) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def _class_ids_from_metadata(path: Path, schema: Any) -> IntArray | None:
    for meta in (schema.field("scores").metadata, schema.metadata):
        if meta and CLASS_IDS_KEY in meta:
            try:
                return np.asarray(json.loads(meta[CLASS_IDS_KEY]), dtype=np.int64)
            except (ValueError, TypeError) as exc:
                raise InputFileError(
                    path, f"metadata {CLASS_IDS_KEY.decode()} is not a JSON list of ints"
                ) from exc
    return None


def _read_dense_parquet(path: Path, schema: Any, id_col: str, k: int) -> TopK:
    class_ids = _class_ids_from_metadata(path, schema)
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*.parquet"))
    id_parts, label_parts, score_parts = [], [], []
    row0 = 0
    for file in files:
        try:
            batches = pq.ParquetFile(file).iter_batches(
                batch_size=65_536, columns=[id_col, "scores"]
            )
            for batch in batches:
                ids = _ids_column(file, batch.column(0), id_col)
                block = _dense_block(file, batch.column(1), row0)
                lab, top = top_k_from_scores(block, k, class_ids)
                id_parts.append(ids)
                label_parts.append(lab)
                score_parts.append(top)
                row0 += batch.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise InputFileError(file, f"not a readable Parquet file ({exc})") from exc
        except EvaluationError as exc:
            raise InputFileError(file, str(exc), field="scores") from exc
    if not id_parts:
        return TopK(pa.array([], pa.string()), np.empty((0, 0), np.int64), None, str(path))
    ids = pa.concat_arrays(id_parts)
    refuse_duplicates(path, ids, lambda i: f"row {i}", id_col)
    return TopK(ids, np.concatenate(label_parts), np.concatenate(score_parts), str(path))


def _dense_block(path: Path, col: Any, row0: int) -> Float64Array:
    if not _is_list(col.type):
        raise InputFileError(path, f"must be a list of scores, not {col.type}", field="scores")
    if col.null_count:
        row = row0 + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputFileError(path, "scores are null", record=f"row {row}", field="scores")
    lengths = np_int(pc.list_value_length(col))
    width = int(lengths[0]) if lengths.size else 0
    if lengths.size and np.any(lengths != width):
        row = row0 + int(np.flatnonzero(lengths != width)[0])
        raise InputFileError(
            path,
            f"expected {width} scores as on the first row",
            record=f"row {row}",
            field="scores",
        )
    flat = np.asarray(pc.list_flatten(col).to_numpy(zero_copy_only=False), dtype=np.float64)
    return flat.reshape(len(col), width)


# --- NPZ --------------------------------------------------------------------------------------
def _read_npz(path: Path, k: int | None) -> TopK:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
    except ValueError as exc:
        raise InputFileError(
            path, f"holds Python objects or is damaged ({exc}); save ids as a str array"
        ) from exc
    except OSError as exc:
        raise InputFileError(path, f"not a readable .npz file ({exc})") from exc
    id_key = next((c for c in ID_COLUMNS if c in arrays), None)
    if id_key is None:
        raise InputFileError(path, f"no image id array (one of {', '.join(ID_COLUMNS)})")
    raw_ids = arrays[id_key].ravel()
    ids = _ids_column(path, pa.array(raw_ids), id_key)
    if "labels" in arrays:
        lab = np.asarray(arrays["labels"])
        if lab.ndim == 1:
            lab = lab[:, None]
        if lab.ndim != 2 or lab.shape[0] != len(ids) or not np.issubdtype(lab.dtype, np.integer):
            raise InputFileError(
                path,
                f"must be an integer array of shape ({len(ids)}, k); got {lab.dtype} {lab.shape}",
                field="labels",
            )
        labels = lab.astype(np.int64)
        scores = None
        if "scores" in arrays:
            scores = np.asarray(arrays["scores"], dtype=np.float64)
            if scores.ndim == 1:
                scores = scores[:, None]
            if scores.shape != labels.shape:
                raise InputFileError(
                    path, f"scores shape {scores.shape} differs from labels'", field="scores"
                )
            scores = np.where(labels == PAD, np.nan, scores)
        if k is not None:
            labels = labels[:, :k]
            scores = None if scores is None else scores[:, :k]
        labels = np.where(labels < 0, PAD, labels)
        refuse_duplicates(path, ids, lambda i: f"row {i}", id_key)
        return TopK(ids, np.ascontiguousarray(labels), scores, str(path))
    if "scores" in arrays:
        scores = np.asarray(arrays["scores"])
        if scores.ndim != 2 or scores.shape[0] != len(ids):
            raise InputFileError(
                path, f"must have shape ({len(ids)}, classes); got {scores.shape}", field="scores"
            )
        class_ids = arrays.get("class_ids")
        try:
            labels, top = top_k_from_scores(scores, k or DEFAULT_K, class_ids)
        except EvaluationError as exc:
            raise InputFileError(path, str(exc), field="class_ids") from exc
        refuse_duplicates(path, ids, lambda i: f"row {i}", id_key)
        return TopK(ids, labels, top, str(path))
    raise InputFileError(path, "expected a 'labels' or a 'scores' array")

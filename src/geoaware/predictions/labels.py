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

import gzip
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geoaware.errors import EvaluationError, InputFileError

__all__ = [
    "CLASS_IDS_KEY",
    "DEFAULT_K",
    "PAD",
    "EvaluationError",
    "TopK",
    "read_predictions",
    "top_k_from_scores",
]

PathLike = str | os.PathLike[str]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

PAD = -1
"""Label id of an empty slot in :attr:`TopK.labels`."""
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
    scores: FloatArray | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_ids", _string_ids(self.image_ids))
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
        parent = _np_int(pc.list_parent_indices(lab))
        values = _np_int(pc.list_flatten(lab))
        matrix = _pad(parent, values, n, None, PAD)
        top = None
        if scores is not None:
            sc = pa.array(list(scores), pa.list_(pa.float64()))
            if pc.list_value_length(sc).to_pylist() != pc.list_value_length(lab).to_pylist():
                raise EvaluationError("scores must have as many entries as labels, row by row")
            flat = np.asarray(pc.list_flatten(sc).to_numpy(zero_copy_only=False), np.float64)
            top = _pad(parent, flat, n, matrix.shape[1], np.nan)
        return cls(image_ids, matrix, top, source)


def top_k_from_scores(
    scores: npt.ArrayLike, k: int = DEFAULT_K, class_ids: npt.ArrayLike | None = None
) -> tuple[IntArray, FloatArray]:
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


def _top_k_block(block: npt.NDArray[Any], k: int) -> tuple[IntArray, FloatArray]:
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


# --- Kaggle CSV -------------------------------------------------------------------------------
@dataclass
class _KaggleRows:
    """A Kaggle-style CSV split into rows and label tokens, with file line numbers."""

    header: str  # the first line as written, without its line break
    ids: Any  # pa.StringArray, trimmed, blank lines dropped
    lines: IntArray  # file line of each row (the header is line 1)
    tokens: Any  # pa.StringArray of every label token, row after row
    parent: IntArray  # row of each token
    bad_rows: list[tuple[int, str, int]]  # (line, text, fields) of rows with a wrong field count


def _file_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if path.name.lower().endswith(".gz") else data
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputFileError(path, f"cannot be read ({exc})") from exc


def _read_kaggle(
    data: bytes, where: object, names: list[str], id_col: str, pred_col: str
) -> _KaggleRows:
    """Parse ``data`` (header on line 1, then rows of ``names``) into :class:`_KaggleRows`.

    Quoting is off, so each physical line is one row and line numbers are exact; a cell wrapped
    in double quotes has them removed afterwards. A row with the wrong number of fields is
    set aside (with its line); blank and whitespace-only lines are dropped.
    """
    end = data.find(b"\n")
    header = (data if end < 0 else data[:end]).decode("utf-8", "replace").rstrip("\r\n")
    if end < 0:
        data += b"\n"
    table, bad = _parse_csv(data, where, names, id_col, pred_col, threads=True)
    if bad and any(line is None for line, _, _ in bad):  # line numbers need a serial read
        table, bad = _parse_csv(data, where, names, id_col, pred_col, threads=False)
    n_rows = table.num_rows
    lines = np.arange(2, n_rows + 2, dtype=np.int64)
    if bad:
        skipped = np.array([line for line, _, _ in bad], dtype=np.int64)
        every = np.arange(2, n_rows + len(bad) + 2, dtype=np.int64)
        lines = every[~np.isin(every, skipped)]
    ids = _clean_cells(_as_text(table.column(id_col), lines, where, id_col))
    pred = _clean_cells(_as_text(table.column(pred_col), lines, where, pred_col))
    blank = pc.and_(pc.equal(ids, ""), pc.equal(pred, ""))
    if pc.any(blank).as_py():
        keep = pc.invert(blank)
        ids, pred = ids.filter(keep), pred.filter(keep)
        lines = lines[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
    tokens, parent = _split_labels(pred)
    real_bad = [(int(line), text, n) for line, text, n in bad if text.strip()]
    return _KaggleRows(header, ids, lines, tokens, parent, real_bad)


def _split_labels(cells: Any) -> tuple[Any, IntArray]:
    """Split cleaned label cells on whitespace: every token, and the row it comes from."""
    split = pc.ascii_split_whitespace(cells)
    tokens = pc.list_flatten(split)
    parent = _np_int(pc.list_parent_indices(split))
    empty = pc.equal(tokens, "")  # an empty cell splits into one empty token
    if pc.any(empty).as_py():
        keep = pc.invert(empty)
        tokens = tokens.filter(keep)
        parent = parent[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
    return tokens, parent


def _as_text(column: Any, lines: IntArray, where: object, field: str) -> Any:
    """Cast a binary column to UTF-8 text; on failure name the first bad line (bisection)."""
    cells = column.combine_chunks()
    try:
        return cells.cast(pa.string())
    except pa.ArrowInvalid:
        lo, hi = 0, len(cells)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                cells.slice(lo, mid - lo).cast(pa.string())
                lo = mid
            except pa.ArrowInvalid:
                hi = mid
        raise InputFileError(
            where, "not valid UTF-8 text", record=f"line {lines[lo]}", field=field
        ) from None


def _clean_cells(cells: Any) -> Any:
    """Trim whitespace, then one pair of surrounding double quotes (and whitespace inside)."""
    cells = pc.ascii_trim_whitespace(cells)
    opens = pc.starts_with(cells, '"')
    if not pc.any(opens).as_py():
        return cells
    quoted = pc.and_(opens, pc.ends_with(cells, '"'))
    quoted = pc.and_(quoted, pc.greater_equal(pc.binary_length(cells), 2))
    if pc.any(quoted).as_py():
        inner = pc.ascii_trim_whitespace(pc.utf8_slice_codeunits(cells, 1, -1))
        cells = pc.if_else(quoted, inner, cells)
    return cells


def _parse_csv(
    data: bytes, where: object, names: list[str], id_col: str, pred_col: str, *, threads: bool
) -> tuple[Any, list[tuple[Any, str, int]]]:
    bad: list[tuple[Any, str, int]] = []

    def on_bad(row: Any) -> str:
        bad.append((row.number, row.text, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=threads),
            parse_options=pacsv.ParseOptions(
                quote_char=False, ignore_empty_lines=False, invalid_row_handler=on_bad
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={id_col: pa.binary(), pred_col: pa.binary()},
                include_columns=[id_col, pred_col],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputFileError(where, f"not a readable CSV file ({exc})") from exc
    return table, bad


def _int_tokens(tokens: Any) -> tuple[IntArray, BoolArray | None]:
    """Cast label tokens to int64; on failure, also return the mask of the bad ones."""
    try:
        return _np_int(pc.cast(tokens, pa.int64())), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ok = pc.match_substring_regex(tokens, r"^-?[0-9]{1,18}$")
        okn = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
        values = np.full(len(tokens), PAD, dtype=np.int64)
        values[okn] = _np_int(pc.cast(tokens.filter(ok), pa.int64()))
        return values, ~okn


def _read_csv(path: Path, k: int | None) -> TopK:
    data = _file_bytes(path)
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
    rows = _read_kaggle(data, path, names, id_col, "predicted")
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
    values, bad = _int_tokens(rows.tokens)
    if bad is not None:
        where = np.flatnonzero(bad)
        more = f" (and {where.size - 1} more)" if where.size > 1 else ""
        raise InputFileError(
            path,
            f"label {rows.tokens[int(where[0])].as_py()!r} is not an integer{more}",
            record=f"line {rows.lines[rows.parent[where[0]]]}",
            field="predicted",
        )
    _refuse_duplicates(path, rows.ids, lambda i: f"line {rows.lines[i]}", id_col)
    labels = _pad(rows.parent, values, len(rows.ids), k, PAD)
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
    tokens, parent = _split_labels(_clean_cells(pred))
    values, bad = _int_tokens(tokens)
    if bad is not None:
        first = int(np.flatnonzero(bad)[0])
        raise InputFileError(
            path,
            f"label {tokens[first].as_py()!r} is not an integer",
            record=f"row {parent[first]}",
            field="predicted",
        )
    _refuse_duplicates(path, ids, lambda i: f"row {i}", "image_id")
    return TopK(ids, _pad(parent, values, len(ids), k, PAD), None, str(path))


def _from_label_lists(path: Path, ids: Any, table: Any, k: int | None) -> TopK:
    col = table.column("labels").combine_chunks()
    if not _is_list(col.type):
        raise InputFileError(path, f"must be a list of integers, not {col.type}", field="labels")
    flat = pc.list_flatten(col)
    if not pa.types.is_integer(flat.type):
        raise InputFileError(path, f"must hold integers, not {flat.type}", field="labels")
    parent = _np_int(pc.list_parent_indices(col))
    if flat.null_count:
        at = int(np.flatnonzero(flat.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputFileError(path, "null label in list", record=f"row {parent[at]}", field="labels")
    labels = _pad(parent, _np_int(flat), len(ids), k, PAD)
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
        scores = _pad(parent, flat_s, len(ids), labels.shape[1], np.nan)
    _refuse_duplicates(path, ids, lambda i: f"row {i}", "image_id")
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
    _refuse_duplicates(path, ids, lambda i: f"row {i}", id_col)
    return TopK(ids, np.concatenate(label_parts), np.concatenate(score_parts), str(path))


def _dense_block(path: Path, col: Any, row0: int) -> FloatArray:
    if not _is_list(col.type):
        raise InputFileError(path, f"must be a list of scores, not {col.type}", field="scores")
    if col.null_count:
        row = row0 + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputFileError(path, "scores are null", record=f"row {row}", field="scores")
    lengths = _np_int(pc.list_value_length(col))
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
        _refuse_duplicates(path, ids, lambda i: f"row {i}", id_key)
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
        _refuse_duplicates(path, ids, lambda i: f"row {i}", id_key)
        return TopK(ids, labels, top, str(path))
    raise InputFileError(path, "expected a 'labels' or a 'scores' array")


# --- shared helpers ---------------------------------------------------------------------------
def _np_int(array: Any) -> IntArray:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def _string_ids(ids: Any) -> Any:
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not isinstance(ids, pa.Array):
        arr = np.asarray(ids)
        if arr.dtype.kind == "O":
            ids = pa.array(arr.tolist())  # None stays null, and is refused below
        elif arr.dtype.kind in "iu":
            ids = pa.array(arr).cast(pa.string())
        else:
            ids = pa.array(arr.astype(str))
    if ids.null_count:
        raise EvaluationError("image ids must not be null")
    return ids.cast(pa.string())


def _pad(parent: IntArray, values: npt.NDArray[Any], n: int, k: int | None, fill: Any) -> Any:
    """Scatter flat per-row ``values`` (rows given by sorted ``parent``) into an (n, k) matrix."""
    counts = np.bincount(parent, minlength=n) if parent.size else np.zeros(n, np.int64)
    width = int(counts.max()) if n else 0
    if k is not None:
        width = min(width, k)
    if n and parent.size == n * width and np.all(counts == width):
        return np.ascontiguousarray(values.reshape(n, width))
    out = np.full((n, width), fill, dtype=values.dtype if values.size else np.asarray(fill).dtype)
    starts = np.cumsum(counts) - counts
    pos = np.arange(parent.size, dtype=np.int64) - starts[parent]
    keep = pos < width
    out[parent[keep], pos[keep]] = values[keep]
    return out


def _int_ids(ids: Any) -> IntArray | None:
    """Return the ids as int64 if each is a canonical decimal integer (fast joins), else None."""
    if pa.types.is_integer(ids.type):
        return _np_int(ids)
    try:
        ints = pc.cast(ids, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not pc.all(pc.equal(pc.cast(ints, ids.type), ids)).as_py():
        return None  # "007" and "7" must stay different ids
    return _np_int(ints)


class _IdIndex:
    """Image ids ready for joins: int64 keys when every id is a canonical integer, else text.

    Integer keys take pandas' int64 hash table (built once, shared by the uniqueness check and
    the lookups); other ids use ``pyarrow.compute``.
    """

    def __init__(self, ids: Any) -> None:
        self.ids = ids
        self.ints = _int_ids(ids)
        self._index: pd.Index[Any] | None = None

    @property
    def index(self) -> pd.Index[Any]:
        if self._index is None:
            if self.ints is not None:
                self._index = pd.Index(self.ints)
            else:
                self._index = pd.Index(self.ids.to_numpy(zero_copy_only=False), dtype=object)
        return self._index

    def first_duplicate(self) -> tuple[int, int] | None:
        """Return (first, repeat) positions of the first repeated id, or None."""
        if self.ints is None and pc.count_distinct(self.ids).as_py() == len(self.ids):
            return None
        if self.index.is_unique:
            return None
        repeat = int(np.flatnonzero(self.index.duplicated(keep="first"))[0])
        first = int(np.flatnonzero(self.index == self.index[repeat])[0])
        return first, repeat

    def positions(self, queries: _IdIndex) -> IntArray:
        """Position of each query id among these (unique) ids, -1 where absent."""
        n = len(self.ids)
        if n == len(queries.ids):  # the usual case: predictions in catalog order
            if self.ints is not None and queries.ints is not None:
                same = bool(np.array_equal(self.ints, queries.ints))
            else:
                same = n == 0 or bool(pc.all(pc.equal(self.ids, queries.ids)).as_py())
            if same:
                return np.arange(n, dtype=np.int64)
        if self.ints is not None and queries.ints is not None:
            return np.asarray(self.index.get_indexer(pd.Index(queries.ints)), dtype=np.int64)
        found = pc.index_in(queries.ids.cast(pa.string()), value_set=self.ids.cast(pa.string()))
        return _np_int(found.fill_null(-1))


def _first_duplicate(ids: Any) -> tuple[int, int] | None:
    return _IdIndex(ids).first_duplicate()


def _refuse_duplicates(where: object, ids: Any, record: Any, field: str) -> None:
    found = _first_duplicate(ids)
    if found is not None:
        first, repeat = found
        raise InputFileError(
            where,
            f"image id {ids[repeat].as_py()!r} appears again (first at {record(first)})",
            record=record(repeat),
            field=field,
        )


_DENSE_SPAN = 1 << 24  # int keys spanning less than this are mapped through a dense table


class _IntMap:
    """A vectorised int -> int map; unknown keys give -1.

    A dense table when the keys span a small range (class ids do), else a binary search.
    """

    def __init__(self, keys: IntArray, values: IntArray) -> None:
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], values[order]
        self.table: IntArray | None = None
        if keys.size:
            self.lo = int(self.keys[0])
            span = int(self.keys[-1]) - self.lo + 1
            if span < _DENSE_SPAN:
                self.table = np.full(span + 2, -1, dtype=np.int64)  # -1 at both ends
                self.table[self.keys - self.lo + 1] = self.values

    def __call__(self, queries: IntArray) -> IntArray:
        q = np.asarray(queries, dtype=np.int64)
        if self.keys.size == 0:
            return np.full(q.shape, -1, dtype=np.int64)
        if self.table is not None:
            return self.table[np.clip(q - (self.lo - 1), 0, self.table.size - 1)]
        pos = np.clip(np.searchsorted(self.keys, q), 0, self.keys.size - 1)
        return np.where(self.keys[pos] == q, self.values[pos], -1)


def _factorize(values: IntArray) -> tuple[IntArray, IntArray]:
    """Return (sorted distinct values, the code of each value), by counting when possible."""
    if values.size:
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < _DENSE_SPAN:
            present = np.bincount(values - lo, minlength=hi - lo + 1) > 0
            codes = np.cumsum(present) - 1
            return np.flatnonzero(present).astype(np.int64) + lo, codes[values - lo]
    uniques, inverse = np.unique(values, return_inverse=True)
    return uniques.astype(np.int64), inverse.ravel().astype(np.int64)


def _load_table(obj: Any, columns: Sequence[str]) -> Any:
    """Return the ``columns`` (those that exist) of a catalog given as a table or a path."""
    if isinstance(obj, pa.Table):
        return obj.select([c for c in columns if c in obj.column_names])
    from geoaware.catalog.io import catalog_files, read_catalog

    present = set(pq.read_schema(catalog_files(obj)[0]).names)
    return read_catalog(obj, columns=[c for c in columns if c in present])

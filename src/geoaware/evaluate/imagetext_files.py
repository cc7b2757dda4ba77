r"""Image-text evaluation from files: class names, templates, captions, text vectors.

:func:`evaluate_zeroshot` and :func:`evaluate_retrieval` read an image embeddings file, the
truth (a catalog or CSV) and the text side (an encoder's text tower, or precomputed text
vectors), match them by id, and run the metrics of :mod:`geoaware.evaluate.imagetext`.

Text embedding files (``--text-embeddings``) are ordinary embeddings files
(:func:`~geoaware.vision.embeddings.write_embeddings`) whose ids name texts instead of images:

- for zero-shot, an id is either a class name (its vector is that class's text vector, used as
  is after normalisation) or ``<class>|<prompt>`` (one vector per prompt; the vectors of a class
  are averaged like an encoder's). A class given both ways is an error. Class names cannot
  contain ``|`` in the second form.
- for retrieval, an id is a caption id: the captions file's ``caption_id`` column where it has
  one, else ``<image_id>#<k>``, ``k`` counting the image's captions from 0 in file order (the
  Flickr30k convention, see :func:`caption_ids`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.errors import EvaluationError, GeoawareError, InputFileError, SchemaError
from geoaware.evaluate.imagetext import (  # the helpers are shared within the package
    DEFAULT_TEMPLATES,
    MAX_BLOCK,
    RetrievalReport,
    TextEncoder,
    Ties,
    ZeroShotReport,
    _check_ks,
    _check_ties,
    _zeroshot_from_ranks,
    class_ranks,
    class_text_embeddings,
    l2_normalize,
    retrieval_report,
)
from geoaware.typing import BoolArray, Float32Array, IntArray, PathLike

__all__ = [
    "caption_ids",
    "class_vectors_from_file",
    "evaluate_retrieval",
    "evaluate_zeroshot",
    "read_captions",
    "read_class_names",
    "read_templates",
]

_EXAMPLES = 3


def _read_lines(path: PathLike, what: str) -> list[tuple[int, str]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(p, f"no such {what} file") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(p, f"not UTF-8 text ({exc})") from None
    except OSError as exc:
        raise InputFileError(p, f"cannot read: {exc}") from None
    lines = [(i + 1, s.strip()) for i, s in enumerate(text.splitlines()) if s.strip()]
    if not lines:
        raise InputFileError(p, f"empty: expected one {what} per line")
    return lines


def read_class_names(path: PathLike) -> list[str]:
    r"""Read a class file: one class name per line; blank lines skipped, ends stripped.

    Raises
    ------
    InputFileError
        If the file is missing, empty, not UTF-8, or a name repeats (naming both lines).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "classes.txt"
    >>> _ = p.write_text("beach\n\n  dense forest \n")
    >>> read_class_names(p)
    ['beach', 'dense forest']
    """
    lines = _read_lines(path, "class name")
    first: dict[str, int] = {}
    for line, name in lines:
        if name in first:
            raise InputFileError(
                path, f"class {name!r} repeats (first on line {first[name]})", record=f"line {line}"
            )
        first[name] = line
    return [name for _, name in lines]


def read_templates(path: PathLike) -> list[str]:
    r"""Read a template file: one prompt template per line, each with ``{}`` for the class.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.txt"
    >>> _ = p.write_text("a satellite image of {}.\nno slot\n")
    >>> read_templates(p)
    Traceback (most recent call last):
    ...
    geoaware.errors.InputFileError: ...t.txt, record line 2: template 'no slot' has no '{}'
    """
    lines = _read_lines(path, "template")
    for line, t in lines:
        if "{}" not in t:
            raise InputFileError(path, f"template {t!r} has no '{{}}'", record=f"line {line}")
    return [t for _, t in lines]


def caption_ids(image_ids: Sequence[str] | npt.ArrayLike) -> list[str]:
    """Return ``<image_id>#<k>`` per caption row, ``k`` counting each image's rows from 0.

    Examples
    --------
    >>> caption_ids(["a", "b", "a", "a"])
    ['a#0', 'b#0', 'a#1', 'a#2']
    """
    ids = np.asarray(image_ids).astype(str)
    if ids.size == 0:
        return []
    _, code = np.unique(ids, return_inverse=True)
    order = np.argsort(code, kind="stable")
    sorted_code = code[order]
    start = np.flatnonzero(np.r_[True, sorted_code[1:] != sorted_code[:-1]])
    group_start = np.repeat(start, np.diff(np.r_[start, ids.size]))
    k = np.empty(ids.size, dtype=np.int64)
    k[order] = np.arange(ids.size) - group_start
    out: list[str] = np.char.add(np.char.add(ids, "#"), k.astype(str)).tolist()
    return out


def _read_table(path: PathLike, columns: Sequence[str], optional: Sequence[str] = ()) -> pa.Table:
    """Read ``columns`` (required) and ``optional`` ones of a CSV, Parquet file or folder."""
    p = Path(path)
    if p.suffix.lower() in (".csv", ".tsv", ".txt") and p.is_file():
        import pyarrow.csv as pacsv

        types = dict.fromkeys((*columns, *optional), pa.string())
        try:
            table = pacsv.read_csv(
                p,
                parse_options=pacsv.ParseOptions(delimiter="\t" if p.suffix == ".tsv" else ","),
                convert_options=pacsv.ConvertOptions(column_types=types),
            )
        except pa.ArrowInvalid as exc:
            raise InputFileError(p, f"not a readable CSV file ({exc})") from None
        names = table.column_names
    else:
        import pyarrow.parquet as pq

        from geoaware.catalog.io import catalog_files, read_catalog

        files = catalog_files(p)
        try:
            names = pq.read_schema(files[0]).names
        except (OSError, pa.ArrowException) as exc:
            raise InputFileError(files[0], f"not a readable Parquet file ({exc})") from None
        table = None
    for c in columns:
        if c not in names:
            raise SchemaError(p, f"no {c!r} column (columns: {', '.join(names)})", field=c)
    keep = [c for c in (*columns, *optional) if c in names]
    if table is None:
        table = read_catalog(p, columns=keep)
    return table.select(keep)


def read_captions(path: PathLike, *, split: str | None = None) -> pa.Table:
    r"""Read captions (``image_id``, ``caption``) from a catalog or a CSV; add ``caption_id``.

    Several rows per image are allowed. Rows with an empty or null caption are dropped; how
    many is in the returned table's schema metadata (``b"empty_captions"``). ``caption_id`` is
    kept where the file has it, else made by
    :func:`caption_ids` over the kept rows, in file order.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "caps.csv"
    >>> _ = p.write_text("image_id,caption\n007,a port\n007,ships\n8,\n")
    >>> read_captions(p).column("caption_id").to_pylist()
    ['007#0', '007#1']
    """
    table = _read_table(path, ["image_id", "caption"], ["caption_id", "split"])
    if split is not None:
        if "split" not in table.column_names:
            raise SchemaError(
                path, "--split given but the file has no 'split' column", field="split"
            )
        table = table.filter(pc.equal(table.column("split"), split))
    caption = table.column("caption").cast(pa.string())
    keep = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(caption)), 0), False)
    empty = table.num_rows - pc.sum(keep.cast(pa.int64())).as_py() if table.num_rows else 0
    table = table.filter(keep)
    ids = table.column("image_id").cast(pa.string())
    if ids.null_count:
        raise InputFileError(path, "image id is null", field="image_id")
    if "caption_id" in table.column_names:
        cid = table.column("caption_id").cast(pa.string())
    else:
        cid = pa.chunked_array([pa.array(caption_ids(ids.to_numpy(zero_copy_only=False)))])
    out = pa.table({"image_id": ids, "caption": table.column("caption"), "caption_id": cid})
    return out.replace_schema_metadata({b"empty_captions": str(int(empty or 0)).encode()})


def _unique_or_fail(ids: np.ndarray, path: PathLike, what: str, column: str) -> None:
    values, counts = np.unique(ids, return_counts=True)
    if values.size < ids.size:
        raise InputFileError(
            path,
            f"{what} {values[counts > 1][0]!r} repeats",
            record=values[counts > 1][0],
            field=column,
        )


def _example(values: np.ndarray) -> str:
    return ", ".join(repr(str(v)) for v in values[:_EXAMPLES])


def _join_ids(wanted: np.ndarray, have: np.ndarray) -> tuple[IntArray, BoolArray, BoolArray]:
    """Position of each ``wanted`` id in ``have`` (-1 if absent) and both sides' unmatched."""
    pos = pc.index_in(
        pa.array(wanted.tolist(), pa.string()), value_set=pa.array(have.tolist(), pa.string())
    )
    where = np.asarray(pos.fill_null(-1), dtype=np.int64)
    used = np.zeros(have.size, dtype=bool)
    used[where[where >= 0]] = True
    return where, where < 0, ~used


def _check_encoder_names(a: str, b: str, a_where: PathLike, b_what: str) -> None:
    if a != "unknown" and b != "unknown" and a != b:
        raise InputFileError(
            a_where, f"vectors made by encoder {a!r}, but {b_what} {b!r}", field="encoder"
        )


def _check_text_encoder(text_embeddings: PathLike, image_encoder: str, images: PathLike) -> None:
    """Refuse text vectors made by another encoder than the image vectors."""
    from geoaware.vision.embeddings import read_info

    _check_encoder_names(
        read_info(text_embeddings).encoder,
        image_encoder,
        text_embeddings,
        f"the image vectors of {images} were made by",
    )


def _text_encoder(
    encoder: str | TextEncoder, made_by: str, embeddings: PathLike, notes: list[str]
) -> TextEncoder:
    """Load ``encoder`` (a name) lazily and check it made the image embeddings."""
    if not isinstance(encoder, str):
        _check_encoder_names(made_by, encoder.name, embeddings, "the text encoder is")
        return encoder
    try:
        from geoaware.vision.encoders import load_encoder  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.startswith("geoaware"):
            raise GeoawareError(
                "this geoaware has no image-text encoders (geoaware.vision.encoders); "
                "pass precomputed --text-embeddings instead"
            ) from None
        raise
    loaded: TextEncoder = load_encoder(encoder)
    if made_by != "unknown" and made_by not in (encoder, loaded.name):
        raise InputFileError(
            embeddings,
            f"image vectors made by encoder {made_by!r}, not by {encoder!r}; text and image "
            "vectors must come from the same model",
            field="encoder",
        )
    if made_by == "unknown":
        notes.append(f"{embeddings} does not name its encoder; assumed to be {encoder!r}")
    return loaded


def class_vectors_from_file(path: PathLike, class_names: Sequence[str]) -> tuple[Float32Array, int]:
    """Read per-class text vectors from an embeddings file; return them and templates per class.

    Ids are class names (vectors used as given; templates = 0) or ``<class>|<prompt>`` (each
    class's prompt vectors averaged as by :func:`average_template_vectors`; templates = the
    largest number of prompts of a class).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geoaware.vision.embeddings import EmbeddingInfo, write_embeddings
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "text.parquet"
    >>> ids = ["x|a {}", "x|b {}", "y|a {}", "y|b {}"]
    >>> vecs = np.array([[1, 0], [1, 0], [0, 1], [1, 0]])
    >>> _ = write_embeddings(p, ids, vecs, EmbeddingInfo("m", 2))
    >>> vecs, t = class_vectors_from_file(p, ["x", "y"])
    >>> vecs.astype(float).round(4).tolist(), t
    ([[1.0, 0.0], [0.7071, 0.7071]], 2)
    """
    from geoaware.vision.embeddings import ID_COLUMN, read_embeddings

    emb = read_embeddings(path)
    ids = emb.ids.astype(str)
    _unique_or_fail(ids, path, "text id", ID_COLUMN)
    vectors = l2_normalize(emb.vectors, f"{path}")
    wanted = np.asarray(list(class_names), dtype=str)
    where, missing, _ = _join_ids(wanted, ids)
    head = np.array([s.partition("|")[0] if "|" in s else "" for s in ids.tolist()])
    prompted = head != ""
    both = np.isin(wanted, head[prompted]) & ~missing
    if both.any():
        name = wanted[both][0]
        raise InputFileError(
            path,
            f"class {name!r} has both a class vector and prompt vectors",
            record=name,
            field=ID_COLUMN,
        )
    out = np.empty((wanted.size, emb.dim), dtype=np.float32)
    out[~missing] = vectors[where[~missing]]
    templates = 0
    if missing.any():
        cls_of = pc.index_in(pa.array(head.tolist()), value_set=pa.array(wanted.tolist()))
        code = np.asarray(cls_of.fill_null(-1), dtype=np.int64)
        code[~prompted] = -1
        counts = np.bincount(code[code >= 0], minlength=wanted.size)
        absent = missing & (counts == 0)
        if absent.any():
            raise InputFileError(
                path,
                f"{int(absent.sum())} classes have no text vector (ids are '<class>' or "
                f"'<class>|<prompt>'), e.g. {_example(wanted[absent])}",
                record=str(wanted[absent][0]),
                field=ID_COLUMN,
            )
        sums = np.zeros_like(out)
        np.add.at(sums, code[code >= 0], vectors[code >= 0])
        out[missing] = l2_normalize(sums[missing], f"{path}: averaged prompt vectors")
        templates = int(counts.max())
    return l2_normalize(out, f"{path}"), templates


def _image_vectors(vectors: np.ndarray, ids: np.ndarray, path: PathLike) -> Float32Array:
    """Normalise image vectors; a zero or non-finite one is an error naming its image."""
    norm = np.linalg.norm(vectors, axis=1)
    bad = ~np.isfinite(norm) | (norm == 0)
    if bad.any():
        raise InputFileError(
            path,
            f"{int(bad.sum())} vectors have zero length or are not finite",
            record=str(ids[np.argmax(bad)]),
            field="embedding",
        )
    out: Float32Array = (vectors / norm[:, None]).astype(np.float32, copy=False)
    return out


def _check_text_dim(text: np.ndarray, image: np.ndarray, text_where: str, images: PathLike) -> None:
    if text.shape[1] != image.shape[1]:
        raise InputFileError(
            text_where,
            f"text vectors have {text.shape[1]} dimensions but the image vectors of {images} "
            f"have {image.shape[1]}; both must come from one image-text model",
            field="embedding",
        )


def _unmatched_notes(
    notes: list[str], n: int, examples: np.ndarray, what: str, total: int, where: PathLike
) -> None:
    if n:
        notes.append(f"{where}: {n:,} of {total:,} {what}; left out, e.g. {_example(examples)}")


def evaluate_zeroshot(
    embeddings: PathLike,
    classes: PathLike,
    truth: PathLike,
    *,
    label_column: str = "label_name",
    templates: PathLike | Sequence[str] | None = None,
    encoder: str | TextEncoder | None = None,
    text_embeddings: PathLike | None = None,
    split: str | None = None,
    ks: Sequence[int] = (1, 5),
    ties: Ties = "pessimistic",
    max_block: int = MAX_BLOCK,
) -> ZeroShotReport:
    r"""Zero-shot classification of an embeddings file against a class list and a catalog.

    Parameters
    ----------
    embeddings
        Image embeddings file (or folder of shards).
    classes
        Text file, one class name per line; the truth's ``label_column`` values must be among
        them.
    truth
        Catalog (or CSV) with ``image_id`` and ``label_column``; rows with a null label are
        left out and counted (``unlabelled``).
    label_column
        The class column of the truth (``label_name`` by default; ``label`` works too).
    templates
        Prompt templates: a file (one per line) or a list; default :data:`DEFAULT_TEMPLATES`.
        Ignored with ``text_embeddings``.
    encoder, text_embeddings
        Exactly one: an encoder (a name for ``geoaware.vision.encoders.load_encoder``, or an
        object with ``name`` and ``encode_text``), which must be the one that made the image
        vectors; or a text embeddings file keyed by class name or ``<class>|<prompt>``.
    split
        Evaluate only the truth rows of this split.
    ks, ties, max_block
        The k of the accuracies, the tie rule and the block size (see the module notes).

    Raises
    ------
    InputFileError
        Naming the file, record and field: a class repeats, a truth class is not in the class
        file, an id repeats, the text and image vectors differ in size or encoder, no truth
        image has a vector.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geoaware.vision.embeddings import EmbeddingInfo, write_embeddings
    >>> from geoaware.catalog import write_catalog
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "classes.txt").write_text("beach\nforest\n")
    >>> info = EmbeddingInfo("m", 2)
    >>> _ = write_embeddings(d / "img.parquet", ["1", "2"], np.array([[1, 0.2], [0.1, 1]]), info)
    >>> _ = write_embeddings(d / "txt.parquet", ["beach", "forest"], np.eye(2), info)
    >>> _ = write_catalog(pa.table({"source": ["s", "s"], "image_id": ["1", "2"],
    ...                             "label_name": ["beach", "beach"]}), d / "c.parquet")
    >>> r = evaluate_zeroshot(d / "img.parquet", d / "classes.txt", d / "c.parquet",
    ...                       text_embeddings=d / "txt.parquet")
    >>> r.summary["top1_acc"], r.per_class[0]["n"]
    (0.5, 2)
    """
    from geoaware.vision.embeddings import read_embeddings

    kk = _check_ks(ks)
    _check_ties(ties)
    if (encoder is None) == (text_embeddings is None):
        raise EvaluationError("give exactly one of an encoder or a text embeddings file")
    class_names = read_class_names(classes)
    if templates is None:
        tmpl = list(DEFAULT_TEMPLATES)
    elif isinstance(templates, str | os.PathLike):
        tmpl = read_templates(templates)
    else:
        tmpl = list(templates)
    notes: list[str] = []

    emb = read_embeddings(embeddings)
    emb_ids = emb.ids.astype(str)
    _unique_or_fail(emb_ids, embeddings, "image id", "image_id")

    table = _read_table(truth, ["image_id", label_column], ["split"])
    if split is not None:
        if "split" not in table.column_names:
            raise SchemaError(truth, "a split was asked for but there is no column", field="split")
        table = table.filter(pc.equal(table.column("split"), split))
    labels = table.column(label_column).cast(pa.string())
    unlabelled = labels.null_count
    if unlabelled:
        table, labels = table.filter(labels.is_valid()), labels.drop_null()
    ids = np.asarray(table.column("image_id").cast(pa.string()).to_pylist(), dtype=str)
    if ids.size == 0:
        raise InputFileError(truth, "no labelled row to evaluate", field=label_column)
    _unique_or_fail(ids, truth, "image id", "image_id")
    code = pc.index_in(labels, value_set=pa.array(class_names, pa.string()))
    if code.null_count:
        row = int(np.argmax(np.asarray(code.is_null())))
        raise InputFileError(
            truth,
            f"class {labels[row].as_py()!r} is not in the class file {classes} "
            f"({code.null_count:,} rows have unknown classes)",
            record=f"image {ids[row]}",
            field=label_column,
        )
    cls = np.asarray(code, dtype=np.int64)

    where, no_vec, no_truth = _join_ids(ids, emb_ids)
    if no_vec.all():
        raise EvaluationError(
            f"no image of {truth} has a vector in {embeddings}: truth ids e.g. "
            f"{_example(ids)}, embedding ids e.g. {_example(emb_ids)}"
        )
    _unmatched_notes(
        notes, int(no_vec.sum()), ids[no_vec], "truth images have no vector", ids.size, truth
    )
    _unmatched_notes(
        notes,
        int(no_truth.sum()),
        emb_ids[no_truth],
        "vectors have no labelled truth row",
        emb_ids.size,
        embeddings,
    )
    has = ~no_vec
    img = _image_vectors(emb.vectors[where[has]], ids[has], embeddings)
    truth_cls = cls[has]

    if text_embeddings is not None:
        _check_text_encoder(text_embeddings, emb.info.encoder, embeddings)
        class_vecs, n_templates = class_vectors_from_file(text_embeddings, class_names)
        text_where = str(text_embeddings)
    elif encoder is not None:
        enc = _text_encoder(encoder, emb.info.encoder, embeddings, notes)
        class_vecs = class_text_embeddings(enc.encode_text, class_names, tmpl)
        n_templates = len(tmpl)
        text_where = f"encoder {enc.name!r}"
    _check_text_dim(class_vecs, img, text_where, embeddings)

    step = max(1, max_block // len(class_names))
    rank = np.concatenate(
        [
            class_ranks(img[a : a + step] @ class_vecs.T, truth_cls[a : a + step], ties=ties)
            for a in range(0, img.shape[0], step)
        ]
    )
    report = _zeroshot_from_ranks(rank, truth_cls, class_names, kk, ties, n_templates)
    report.summary["truth_without_embedding"] = int(no_vec.sum())
    report.summary["embeddings_without_truth"] = int(no_truth.sum())
    report.summary["unlabelled"] = int(unlabelled)
    if unlabelled:
        notes.append(f"{truth}: {unlabelled:,} rows have no {label_column}; left out")
    report.notes = [*notes, *report.notes]  # the inputs' notes, then the figures'
    return report


def evaluate_retrieval(
    embeddings: PathLike,
    captions: PathLike,
    *,
    encoder: str | TextEncoder | None = None,
    text_embeddings: PathLike | None = None,
    split: str | None = None,
    ks: Sequence[int] = (1, 5, 10),
    ties: Ties = "pessimistic",
    max_block: int = MAX_BLOCK,
    batch_size: int = 1024,
) -> RetrievalReport:
    r"""Image-text retrieval recall of an embeddings file against a captions file.

    Parameters
    ----------
    embeddings
        Image embeddings file (or folder of shards).
    captions
        Catalog or CSV with ``image_id`` and ``caption`` (several rows per image allowed; an
        optional ``caption_id``); see :func:`read_captions`.
    encoder, text_embeddings
        Exactly one: an encoder that made the image vectors (name or object), or a text
        embeddings file keyed by caption id.
    split
        Use only the caption rows of this split.
    ks, ties, max_block
        The k of the recalls, the tie rule and the block size (see the module notes).
    batch_size
        Captions per ``encode_text`` call.

    The evaluated images are those with both a caption and a vector; captions of images
    without a vector and vectors of images without a caption are left out and counted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geoaware.vision.embeddings import EmbeddingInfo, write_embeddings
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "caps.csv").write_text("image_id,caption\n1,a port\n1,ships\n2,a field\n")
    >>> info = EmbeddingInfo("m", 2)
    >>> _ = write_embeddings(d / "img.parquet", ["1", "2"], np.eye(2), info)
    >>> txt = np.array([[1, 0], [0.9, 0.1], [0.2, 1]])
    >>> _ = write_embeddings(d / "txt.parquet", ["1#0", "1#1", "2#0"], txt, info)
    >>> r = evaluate_retrieval(d / "img.parquet", d / "caps.csv", text_embeddings=d / "txt.parquet")
    >>> r.summary["i2t_r1"], r.summary["t2i_r1"], r.summary["captions"]
    (1.0, 1.0, 3)
    """
    from geoaware.vision.embeddings import read_embeddings

    kk = _check_ks(ks)
    _check_ties(ties)
    if (encoder is None) == (text_embeddings is None):
        raise EvaluationError("give exactly one of an encoder or a text embeddings file")
    notes: list[str] = []
    caps = read_captions(captions, split=split)
    empty = int((caps.schema.metadata or {}).get(b"empty_captions", b"0"))
    if empty:
        notes.append(f"{captions}: {empty:,} rows have an empty caption; left out")
    if caps.num_rows == 0:
        raise InputFileError(captions, "no non-empty caption to evaluate", field="caption")
    cap_img = np.asarray(caps.column("image_id").to_pylist(), dtype=str)
    cap_id = np.asarray(caps.column("caption_id").to_pylist(), dtype=str)
    _unique_or_fail(cap_id, captions, "caption id", "caption_id")

    emb = read_embeddings(embeddings)
    emb_ids = emb.ids.astype(str)
    _unique_or_fail(emb_ids, embeddings, "image id", "image_id")
    where, no_vec, no_caption = _join_ids(cap_img, emb_ids)
    if no_vec.all():
        raise EvaluationError(
            f"no image of {captions} has a vector in {embeddings}: caption image ids e.g. "
            f"{_example(cap_img)}, embedding ids e.g. {_example(emb_ids)}"
        )
    lost_images = np.unique(cap_img[no_vec])
    _unmatched_notes(
        notes,
        lost_images.size,
        lost_images,
        f"captioned images have no vector (their {int(no_vec.sum()):,} captions too)",
        np.unique(cap_img).size,
        captions,
    )
    _unmatched_notes(
        notes,
        int(no_caption.sum()),
        emb_ids[no_caption],
        "vectors have no caption",
        emb_ids.size,
        embeddings,
    )
    used = np.flatnonzero(~no_caption)
    new_index = np.full(emb_ids.size, -1, dtype=np.int64)
    new_index[used] = np.arange(used.size)
    keep = ~no_vec
    owner = new_index[where[keep]]
    img = _image_vectors(emb.vectors[used], emb_ids[used], embeddings)
    kept_ids = cap_id[keep]

    if text_embeddings is not None:
        _check_text_encoder(text_embeddings, emb.info.encoder, embeddings)
        temb = read_embeddings(text_embeddings)
        t_ids = temb.ids.astype(str)
        _unique_or_fail(t_ids, text_embeddings, "caption id", "image_id")
        t_where, t_missing, _ = _join_ids(kept_ids, t_ids)
        if t_missing.any():
            raise InputFileError(
                text_embeddings,
                f"{int(t_missing.sum()):,} captions of {captions} have no text vector "
                f"(ids are caption ids, e.g. {_example(kept_ids[t_missing])})",
                record=str(kept_ids[t_missing][0]),
                field="image_id",
            )
        txt = _image_vectors(temb.vectors[t_where], kept_ids, text_embeddings)
        text_where = str(text_embeddings)
    elif encoder is not None:
        enc = _text_encoder(encoder, emb.info.encoder, embeddings, notes)
        texts = np.asarray(caps.column("caption").to_pylist(), dtype=object)[keep].tolist()
        parts = []
        for a in range(0, len(texts), batch_size):
            got = np.asarray(enc.encode_text(texts[a : a + batch_size]), dtype=np.float32)
            if got.ndim != 2 or got.shape[0] != len(texts[a : a + batch_size]):
                raise EvaluationError(
                    f"encoder {enc.name!r} returned shape {got.shape} for "
                    f"{len(texts[a : a + batch_size])} captions"
                )
            parts.append(got)
        txt = l2_normalize(np.concatenate(parts), f"encoder {enc.name!r} caption vectors")
        text_where = f"encoder {enc.name!r}"
    _check_text_dim(txt, img, text_where, embeddings)

    report = retrieval_report(img, txt, owner, kk, ties=ties, max_block=max_block)
    report.summary["images_without_embedding"] = int(lost_images.size)
    report.summary["embeddings_without_caption"] = int(no_caption.sum())
    report.summary["empty_captions"] = empty
    report.notes = [*notes, *report.notes]  # the inputs' notes, then the figures'
    return report

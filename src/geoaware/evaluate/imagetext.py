r"""Image-text evaluation: zero-shot classification and caption retrieval, as CLIP papers print.

Both protocols work on vectors (an embeddings file of images, one of texts or an encoder's text
tower) and compare them by cosine similarity.

**Zero-shot classification.** Every class name is put in every prompt template (``"a satellite
image of {}."``, ...), the prompts are encoded and L2-normalised, averaged per class over the
templates and normalised again (the CLIP recipe); an image is assigned the class whose vector
is closest. The report gives top-k accuracy, the mean per-class accuracy and per-class accuracy
with counts (no confusion matrix).

**Retrieval.** Each caption belongs to one image; an image may have several captions (RSICD,
UCM-captions and Sydney-captions have five). Image-to-text recall at k is the share of images
with at least one of their captions among the k best captions; text-to-image recall at k is the
share of captions whose image is among the k best images; the mean recall is the mean of all of
them (``R@1, R@5, R@10`` both ways: the six numbers remote-sensing papers average).

**Ranks are exact.** The rank of a query is 1 plus the number of *wrong* candidates that score
at least as high as the best right one (``ties="pessimistic"``, the default), or strictly
higher (``ties="optimistic"``). Other right candidates never count against a query. The
pessimistic rule is the honest one: an encoder whose vectors are all equal ranks every query
last rather than first. No sorting is done: each block of the similarity matrix is compared
with the right candidates' scores and counted, block by block, so memory stays bounded
(``max_block`` similarity values at a time, 16 M by default, about 64 MB) whatever the number of
images and captions.

Reading the inputs from files and running both protocols end to end:
:mod:`geoaware.evaluate.imagetext_files`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.errors import EvaluationError
from geoaware.ranking import Ties, check_ties, true_class_ranks
from geoaware.runs import RunKind, run_document, write_run
from geoaware.typing import Float32Array, IntArray, PathLike

__all__ = [
    "DEFAULT_TEMPLATES",
    "RetrievalReport",
    "TextEncoder",
    "Ties",
    "ZeroShotReport",
    "average_template_vectors",
    "class_ranks",
    "class_text_embeddings",
    "fill_templates",
    "l2_normalize",
    "retrieval_ranks",
    "retrieval_report",
    "zeroshot_report",
    "zeroshot_scores",
]


DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a satellite image of {}.",
    "an aerial photo of {}.",
    "a remote sensing image of {}.",
    "a satellite photo of {}.",
    "an aerial image of {}.",
    "an overhead view of {}.",
    "a top-down view of {}.",
)
"""Prompt templates for remote-sensing zero-shot classification; ``{}`` is the class name."""

MAX_BLOCK = 1 << 24
"""Similarity values held at once by the chunked rank computations (64 MB of float32)."""

_EXAMPLES = 3


class TextEncoder(Protocol):
    """What the evaluations need of an encoder: its name and its text tower."""

    name: str

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Return one float32 vector per text, shape ``(len(texts), dim)``."""
        ...


# ----------------------------------------------------------------------------------------------
# Vectors and prompts
def l2_normalize(vectors: npt.ArrayLike, what: str = "vectors") -> Float32Array:
    """Return the rows scaled to unit length (float32); refuse zero or non-finite rows.

    Raises
    ------
    EvaluationError
        Naming ``what`` and the first bad row, if a row is all zeros or holds NaN/inf, or the
        input is not 2-D.

    Examples
    --------
    >>> l2_normalize([[3.0, 4.0]]).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    >>> l2_normalize([[0.0, 0.0]], "image vectors")
    Traceback (most recent call last):
    ...
    geoaware.errors.EvaluationError: image vectors, row 0: zero length or not finite
    """
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise EvaluationError(f"{what}: expected a 2-D array (n, dim), got shape {v.shape}")
    norm = np.linalg.norm(v, axis=1)
    bad = ~np.isfinite(norm) | (norm == 0)
    if bad.any():
        raise EvaluationError(f"{what}, row {int(np.argmax(bad))}: zero length or not finite")
    out: Float32Array = v / norm[:, None]
    return out


def fill_templates(class_names: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Return every template filled with every class name, class by class.

    ``{}`` is replaced literally (other braces are left alone), so the prompt of class ``c``
    and template ``t`` is at ``c * len(templates) + t``.

    Examples
    --------
    >>> fill_templates(["beach", "forest"], ["a photo of {}.", "{} from above"])
    ['a photo of beach.', 'beach from above', 'a photo of forest.', 'forest from above']
    """
    if not templates:
        raise EvaluationError("no prompt templates given")
    for i, t in enumerate(templates):
        if "{}" not in t:
            raise EvaluationError(f"template {i} ({t!r}) has no '{{}}' for the class name")
    return [t.replace("{}", name) for name in class_names for t in templates]


def average_template_vectors(vectors: npt.ArrayLike, n_classes: int) -> Float32Array:
    """Normalise prompt vectors, average each class's templates, renormalise: ``(n_classes, d)``.

    ``vectors`` holds ``n_classes * n_templates`` rows, class by class (the order of
    :func:`fill_templates`).

    Examples
    --------
    >>> v = average_template_vectors([[2, 0], [0, 5], [0, 1], [0, 3]], 2)
    >>> v.astype(float).round(4).tolist()
    [[0.7071, 0.7071], [0.0, 1.0]]
    """
    v = l2_normalize(vectors, "prompt vectors")
    if n_classes <= 0 or v.shape[0] % n_classes:
        raise EvaluationError(
            f"{v.shape[0]} prompt vectors cannot be split into {n_classes} classes"
        )
    mean = v.reshape(n_classes, v.shape[0] // n_classes, v.shape[1]).mean(axis=1)
    return l2_normalize(mean, "class vectors (templates cancel out)")


def class_text_embeddings(
    encode_text: Callable[[list[str]], np.ndarray],
    class_names: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    *,
    batch_size: int = 1024,
) -> Float32Array:
    """Encode every prompt, normalise, average per class over the templates, renormalise.

    Parameters
    ----------
    encode_text
        An encoder's text tower: a list of texts to a ``(n, dim)`` array.
    class_names, templates
        The classes and the prompt templates (``{}`` is the class name).
    batch_size
        Prompts passed to ``encode_text`` per call.

    Returns
    -------
    numpy.ndarray
        ``(len(class_names), dim)`` float32 unit vectors.

    Examples
    --------
    >>> table = {"a x": [1.0, 0.0], "b x": [1.0, 0.0], "a y": [0.0, 1.0], "b y": [1.0, 0.0]}
    >>> enc = lambda texts: np.array([table[t] for t in texts])
    >>> class_text_embeddings(enc, ["x", "y"], ["a {}", "b {}"]).astype(float).round(4).tolist()
    [[1.0, 0.0], [0.7071, 0.7071]]
    """
    if not class_names:
        raise EvaluationError("no class names given")
    prompts = fill_templates(class_names, templates)
    parts = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        got = np.asarray(encode_text(batch), dtype=np.float32)
        if got.ndim != 2 or got.shape[0] != len(batch):
            raise EvaluationError(
                f"the text encoder returned shape {got.shape} for {len(batch)} prompts"
            )
        parts.append(got)
    return average_template_vectors(np.concatenate(parts), len(class_names))


def zeroshot_scores(image_vecs: npt.ArrayLike, class_vecs: npt.ArrayLike) -> Float32Array:
    """Return the cosine similarity of every image to every class, ``(n_images, n_classes)``.

    Examples
    --------
    >>> zeroshot_scores([[1, 0], [1, 1]], [[2, 0], [0, 1]]).astype(float).round(4).tolist()
    [[1.0, 0.0], [0.7071, 0.7071]]
    """
    img, cls = l2_normalize(image_vecs, "image vectors"), l2_normalize(class_vecs, "class vectors")
    _check_dims(img, cls)
    return img @ cls.T


def _check_dims(image: np.ndarray, text: np.ndarray) -> None:
    if image.shape[1] != text.shape[1]:
        raise EvaluationError(
            f"image vectors have {image.shape[1]} dimensions but text vectors {text.shape[1]}"
        )


def _check_ties(ties: str) -> None:
    try:
        check_ties(ties)
    except ValueError as e:
        raise EvaluationError(str(e)) from None


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(k) for k in ks)
    if not out or min(out) < 1:
        raise EvaluationError(f"k values must be positive integers, got {list(ks)}")
    return tuple(sorted(set(out)))


def _beaten(block: np.ndarray, right: np.ndarray, ties: Ties) -> IntArray:
    """Per row, how many entries of ``block`` score at least (or above) ``right``."""
    cmp = np.greater_equal if ties == "pessimistic" else np.greater
    out: IntArray = np.count_nonzero(cmp(block, right[:, None]), axis=1).astype(np.int64)
    return out


# ----------------------------------------------------------------------------------------------
# Zero-shot
def class_ranks(
    scores: npt.ArrayLike,
    truth: npt.ArrayLike,
    *,
    ties: Ties = "pessimistic",
    max_block: int = MAX_BLOCK,
) -> IntArray:
    """Return each image's 1-based rank of its true class among the class scores.

    The rank is 1 plus the number of other classes scoring at least as high as the true one
    (``ties="pessimistic"``) or strictly higher (``"optimistic"``); computed by blocks of rows.

    Examples
    --------
    >>> s = [[0.9, 0.1, 0.5], [0.2, 0.2, 0.7]]
    >>> class_ranks(s, [2, 0]).tolist(), class_ranks(s, [2, 0], ties="optimistic").tolist()
    ([2, 3], [2, 2])
    """
    _check_ties(ties)
    s = np.asarray(scores, dtype=np.float32)
    t = np.asarray(truth, dtype=np.int64).ravel()
    if s.ndim != 2 or s.shape[0] != t.size:
        raise EvaluationError(f"scores must be (n, classes) with n = {t.size}; got {s.shape}")
    if t.size and (t.min() < 0 or t.max() >= s.shape[1]):
        bad = int(np.argmax((t < 0) | (t >= s.shape[1])))
        raise EvaluationError(f"truth row {bad}: class index {t[bad]} not in 0..{s.shape[1] - 1}")
    rank = np.empty(t.size, dtype=np.int64)
    step = max(1, max_block // max(s.shape[1], 1))
    for a in range(0, t.size, step):
        rank[a : a + step] = true_class_ranks(s[a : a + step], t[a : a + step], ties=ties)
    return rank


@dataclass
class ZeroShotReport:
    """A zero-shot classification evaluation.

    Attributes
    ----------
    summary : dict
        ``n`` (images), ``classes``, ``templates`` (per class; 0 when class vectors were given),
        ``top<k>_acc`` per k (fractions 0..1), ``mean_per_class_acc`` (top-1, over the classes
        with at least one image), ``ties``, and, from files, ``truth_without_embedding``,
        ``embeddings_without_truth`` and ``unlabelled``.
    per_class : list of dict
        Per class, in class-file order: ``class``, ``n``, ``top<k>_acc`` (``None`` when n = 0).
    rank : numpy.ndarray
        Per image, the 1-based rank of its true class.
    notes : list of str
        What was left out, with examples.
    """

    summary: dict[str, Any]
    per_class: list[dict[str, Any]]
    rank: IntArray
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary's keys plus ``per_class`` and ``notes`` (the ``--json`` object)."""
        return {**self.summary, "per_class": list(self.per_class), "notes": list(self.notes)}

    def run_document(self, name: str, source: str) -> dict[str, Any]:
        """Return the run-folder document (``<name>.zeroshot.json``) that ``report`` reads.

        Examples
        --------
        >>> r = ZeroShotReport({"n": 2, "top1_acc": 0.5, "ties": "pessimistic"},
        ...                    [{"class": "forest", "n": 2, "top1_acc": 0.5}], np.array([1, 2]))
        >>> r.run_document("clip", "test")["tables"]["per class"]["rows"]
        [['forest', 2, 0.5]]
        """
        columns = list(self.per_class[0]) if self.per_class else ["class", "n"]
        rows = [[row.get(c) for c in columns] for row in self.per_class]
        tables = {"per class": {"columns": columns, "rows": rows}}
        return _run_document("zeroshot", name, source, self.summary, tables, self.notes)

    def save(self, path: PathLike, name: str, source: str) -> Path:
        """Write :meth:`run_document` as JSON to ``path`` atomically; return the path."""
        return write_run(path, self.run_document(name, source))


def _class_indices(truth: npt.ArrayLike, class_names: Sequence[str]) -> IntArray:
    t = np.asarray(truth)
    if t.dtype.kind in "iu":
        return t.astype(np.int64).ravel()
    names = pa.array(t.ravel().astype(str).tolist(), pa.string())
    index = pc.index_in(names, value_set=pa.array(list(class_names), pa.string()))
    if index.null_count:
        row = int(np.argmax(np.asarray(index.is_null())))
        raise EvaluationError(f"truth row {row}: class {names[row].as_py()!r} is not a known class")
    return np.asarray(index, dtype=np.int64)


def zeroshot_report(
    scores: npt.ArrayLike,
    truth: npt.ArrayLike,
    class_names: Sequence[str],
    k: Sequence[int] = (1, 5),
    *,
    ties: Ties = "pessimistic",
) -> ZeroShotReport:
    """Top-k accuracy, mean per-class accuracy and per-class accuracy of class scores.

    Parameters
    ----------
    scores
        ``(n_images, n_classes)`` similarities (:func:`zeroshot_scores`).
    truth
        Per image, its class: an index into ``class_names`` or the class name itself.
    class_names
        The classes, in the order of the score columns.
    k
        The k of the ``top<k>_acc`` figures.
    ties
        How a wrong class scoring exactly as the true one counts (see the module notes).

    Raises
    ------
    EvaluationError
        If a truth class is unknown (naming the row and the class), shapes disagree, or
        there is no image.

    Examples
    --------
    >>> s = [[0.9, 0.1, 0.5], [0.2, 0.3, 0.7], [0.1, 0.8, 0.0]]
    >>> r = zeroshot_report(s, ["c", "c", "b"], ["a", "b", "c"], k=(1, 2))
    >>> r.summary["top1_acc"], r.summary["top2_acc"], r.summary["mean_per_class_acc"]
    (0.6666666666666666, 1.0, 0.75)
    >>> r.per_class[2]
    {'class': 'c', 'n': 2, 'top1_acc': 0.5, 'top2_acc': 1.0}
    """
    ks = _check_ks(k)
    s = np.asarray(scores, dtype=np.float32)
    if s.ndim != 2 or s.shape[1] != len(class_names):
        raise EvaluationError(
            f"scores must have one column per class ({len(class_names)}); got shape {s.shape}"
        )
    t = _class_indices(truth, class_names)
    rank = class_ranks(s, t, ties=ties)
    return _zeroshot_from_ranks(rank, t, class_names, ks, ties)


def _zeroshot_from_ranks(
    rank: IntArray,
    truth: IntArray,
    class_names: Sequence[str],
    ks: tuple[int, ...],
    ties: Ties,
    templates: int = 0,
) -> ZeroShotReport:
    n, c = rank.size, len(class_names)
    if n == 0:
        raise EvaluationError("no image to evaluate")
    counts = np.bincount(truth, minlength=c)
    summary: dict[str, Any] = {"n": n, "classes": c, "templates": templates}
    per_k = {}
    for k in ks:
        hit = rank <= k
        summary[f"top{k}_acc"] = float(np.count_nonzero(hit) / n)
        per_k[k] = np.bincount(truth, weights=hit, minlength=c)
    seen = counts > 0
    top1 = per_k[1] if 1 in per_k else np.bincount(truth, weights=rank <= 1, minlength=c)
    summary["mean_per_class_acc"] = float(np.mean(top1[seen] / counts[seen]))
    summary["ties"] = ties
    per_class = []
    for i, name in enumerate(class_names):
        row: dict[str, Any] = {"class": name, "n": int(counts[i])}
        for k in ks:
            row[f"top{k}_acc"] = float(per_k[k][i] / counts[i]) if counts[i] else None
        per_class.append(row)
    return ZeroShotReport(summary, per_class, rank, _k_notes(ks, c, "classes"))


def _k_notes(ks: Sequence[int], n: int, what: str) -> list[str]:
    """Say where a k is at least the number of candidates: every query is then a hit.

    Examples
    --------
    >>> _k_notes((1, 5), 3, "classes")
    ['top-5: k is at least the number of classes (3), so every query counts as a hit']
    """
    return [
        f"top-{k}: k is at least the number of {what} ({n:,}), so every query counts as a hit"
        for k in ks
        if k >= n
    ]


# ----------------------------------------------------------------------------------------------
# Retrieval
def retrieval_ranks(
    image_vecs: npt.ArrayLike,
    text_vecs: npt.ArrayLike,
    image_of_text: npt.ArrayLike,
    *,
    ties: Ties = "pessimistic",
    max_block: int = MAX_BLOCK,
) -> tuple[IntArray, IntArray]:
    """Return the exact 1-based ranks of image-to-text and text-to-image retrieval.

    An image's rank is that of its best caption among all captions; a caption's rank is that
    of its image among all images. Wrong candidates scoring like the right one count against
    it (``"pessimistic"``) or not (``"optimistic"``); the image's other captions never do.
    Images without a caption get rank 0 (they are candidates for text-to-image only). The
    cosine similarity is computed block by block, ``max_block`` values at a time.

    Examples
    --------
    >>> img = [[1, 0], [0, 1]]
    >>> txt = [[1, 0.1], [0.1, 1], [1, 0]]
    >>> i2t, t2i = retrieval_ranks(img, txt, [0, 1, 1])
    >>> i2t.tolist(), t2i.tolist()
    ([2, 1], [1, 1, 2])
    """
    _check_ties(ties)
    img = l2_normalize(image_vecs, "image vectors")
    txt = l2_normalize(text_vecs, "text vectors")
    _check_dims(img, txt)
    owner = np.asarray(image_of_text, dtype=np.int64).ravel()
    n_img, n_txt = img.shape[0], txt.shape[0]
    if owner.size != n_txt:
        raise EvaluationError(f"image_of_text has {owner.size} entries for {n_txt} texts")
    if n_txt and (owner.min() < 0 or owner.max() >= n_img):
        bad = int(np.argmax((owner < 0) | (owner >= n_img)))
        raise EvaluationError(f"text {bad}: image index {owner[bad]} not in 0..{n_img - 1}")

    # image -> text: rows are images; the captions of images a..b are a slice of `by_image`
    by_image = np.argsort(owner, kind="stable")
    sorted_owner = owner[by_image]
    i2t = np.zeros(n_img, dtype=np.int64)
    step = max(1, max_block // max(n_txt, 1))
    for a in range(0, n_img, step):
        b = min(a + step, n_img)
        block = img[a:b] @ txt.T
        lo, hi = np.searchsorted(sorted_owner, [a, b])
        cols = by_image[lo:hi]
        rows = owner[cols] - a
        best = np.full(b - a, -np.inf, dtype=np.float32)
        np.maximum.at(best, rows, block[rows, cols])
        block[rows, cols] = -np.inf  # right captions never count against their image
        has = np.isfinite(best)
        i2t[a:b] = np.where(has, _beaten(block, best, ties) + 1, 0)

    # text -> image: rows are captions
    t2i = np.zeros(n_txt, dtype=np.int64)
    step = max(1, max_block // max(n_img, 1))
    for a in range(0, n_txt, step):
        b = min(a + step, n_txt)
        block = txt[a:b] @ img.T
        rows = np.arange(b - a)
        right = block[rows, owner[a:b]].copy()
        block[rows, owner[a:b]] = -np.inf
        t2i[a:b] = _beaten(block, right, ties) + 1
    return i2t, t2i


@dataclass
class RetrievalReport:
    """An image-text retrieval evaluation.

    Attributes
    ----------
    summary : dict
        ``images`` (image queries: images with a caption), ``captions``, ``i2t_r<k>`` and
        ``t2i_r<k>`` per k (fractions 0..1), ``mean_recall`` (their mean), ``ties``, and, from
        files, ``images_without_embedding`` (captioned images with no vector, left out),
        ``embeddings_without_caption`` (left out) and ``empty_captions``.
    i2t_rank, t2i_rank : numpy.ndarray
        The ranks of :func:`retrieval_ranks` (0 for an image without a caption).
    notes : list of str
        What was left out, with examples.
    """

    summary: dict[str, Any]
    i2t_rank: IntArray
    t2i_rank: IntArray
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary's keys plus ``notes`` (the ``--json`` object)."""
        return {**self.summary, "notes": list(self.notes)}

    def run_document(self, name: str, source: str) -> dict[str, Any]:
        """Return the run-folder document (``<name>.retrieval.json``) that ``report`` reads.

        ``n`` is the number of image queries (the summary's ``images``).

        >>> r = RetrievalReport({"images": 3, "captions": 15, "i2t_r1": 1.0}, np.ones(3, int),
        ...                     np.ones(15, int))
        >>> r.run_document("clip", "rsicd")["summary"]
        {'n': 3, 'captions': 15, 'i2t_r1': 1.0}
        """
        summary = {"n": self.summary.get("images"), **self.summary}
        summary.pop("images", None)
        return _run_document("retrieval", name, source, summary, {}, self.notes)

    def save(self, path: PathLike, name: str, source: str) -> Path:
        """Write :meth:`run_document` as JSON to ``path`` atomically; return the path."""
        return write_run(path, self.run_document(name, source))


def _run_document(
    kind: RunKind,
    name: str,
    source: str,
    summary: dict[str, Any],
    tables: dict[str, Any],
    notes: Sequence[str],
) -> dict[str, Any]:
    """Build a run-folder document: numbers in the summary, settings and notes as a table."""
    numbers = {
        k: v
        for k, v in summary.items()
        if v is None or (isinstance(v, int | float) and not isinstance(v, bool))
    }
    other = [[k, str(v)] for k, v in summary.items() if k not in numbers]
    other += [["note", note] for note in notes]
    if other:
        tables = {**tables, "settings and notes": {"columns": ["item", "value"], "rows": other}}
    return run_document(kind, name, source, numbers, tables)


def retrieval_report(
    image_vecs: npt.ArrayLike,
    text_vecs: npt.ArrayLike,
    image_of_text: npt.ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
    *,
    ties: Ties = "pessimistic",
    max_block: int = MAX_BLOCK,
) -> RetrievalReport:
    """Image-to-text and text-to-image recall at k, and their mean (the "mean recall").

    Parameters
    ----------
    image_vecs, text_vecs
        ``(n_images, d)`` and ``(n_texts, d)`` vectors (normalised here).
    image_of_text
        Per text, the index of its image; several texts per image are allowed. Images with no
        text are only text-to-image candidates (distractors), not image queries.
    ks
        The k of the recalls.
    ties, max_block
        See :func:`retrieval_ranks`.

    Examples
    --------
    >>> img = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    >>> r = retrieval_report(img, img, [0, 1, 2], ks=(1,))
    >>> r.summary["i2t_r1"], r.summary["t2i_r1"], r.summary["mean_recall"]
    (1.0, 1.0, 1.0)
    """
    kk = _check_ks(ks)
    i2t, t2i = retrieval_ranks(image_vecs, text_vecs, image_of_text, ties=ties, max_block=max_block)
    queries = i2t[i2t > 0]
    if queries.size == 0:
        raise EvaluationError("no caption to evaluate")
    summary: dict[str, Any] = {"images": int(queries.size), "captions": int(t2i.size)}
    recalls = []
    for direction, r in (("i2t", queries), ("t2i", t2i)):
        for k in kk:
            summary[f"{direction}_r{k}"] = float(np.count_nonzero(r <= k) / r.size)
            recalls.append(summary[f"{direction}_r{k}"])
    summary["mean_recall"] = float(np.mean(recalls))
    summary["ties"] = ties
    n_images = int(np.asarray(image_vecs).shape[0])
    notes = [
        f"{direction} R@{k}: k is at least the number of candidate {what} ({n:,}), so every "
        "query counts as a hit"
        for direction, what, n in (("image→text", "captions", t2i.size),
                                   ("text→image", "images", n_images))
        for k in kk
        if k >= n
    ]  # fmt: skip
    return RetrievalReport(summary, i2t, t2i, notes)

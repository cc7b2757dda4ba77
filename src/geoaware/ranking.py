"""The rank of the true class among a model's class scores, with one rule for ties and NaN.

Every top-k figure geoaware reports (``prior eval``, ``fl simulate``, zero-shot evaluation)
comes from :func:`true_class_ranks`, so the same scores give the same figure everywhere.

* **Ties.** With ``ties="pessimistic"`` (the default) every other class scoring as high as the
  true one ranks above it: a model that gives thousands of classes the same score (a
  nearest-neighbour count of zero, all-zero weights) is right only where the true class is
  strictly ahead, never by the luck of the class order. ``"optimistic"`` ranks the true class
  first among its ties (the upper bound). Breaking ties by class index, what a stable
  ``argsort`` does, makes a figure depend on how the classes happen to be numbered.
* **NaN.** A NaN score counts as the lowest: another class's NaN never ranks above the true
  class, and a NaN true score ranks last (a diverged model's all-NaN rows are never right
  below ``k`` = the number of classes).

Examples
--------
>>> import numpy as np
>>> s = np.array([[0.9, 0.1, 0.5], [0.2, 0.2, 0.7]])
>>> true_class_ranks(s, [2, 0]).tolist()
[2, 3]
>>> true_class_ranks(s, [2, 0], ties="optimistic").tolist()
[2, 2]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from geoaware.typing import IntArray

__all__ = ["Ties", "check_ties", "topk_from_ranks", "true_class_ranks"]

Ties = Literal["pessimistic", "optimistic"]
"""How classes scoring the same as the true class count: above it, or below it."""


def check_ties(ties: str) -> Ties:
    """Return ``ties`` if it names a rule, else raise ``ValueError``.

    Examples
    --------
    >>> check_ties("optimistic")
    'optimistic'
    """
    if ties not in ("pessimistic", "optimistic"):
        raise ValueError(f"ties must be 'pessimistic' or 'optimistic', got {ties!r}")
    return ties  # type: ignore[return-value]


def true_class_ranks(
    scores: npt.ArrayLike, truth: npt.ArrayLike, *, ties: Ties = "pessimistic"
) -> IntArray:
    """Return each row's 1-based rank of its true class among the class scores.

    The rank is 1 plus the number of other classes scoring higher, plus those scoring the same
    with ``ties="pessimistic"``; NaN scores count as the lowest. Callers with many rows pass
    blocks of them (the comparison holds one boolean per score).

    Examples
    --------
    >>> true_class_ranks([[0.0, 0.0, 0.0]], [1]).tolist()
    [3]
    >>> true_class_ranks([[np.nan, 0.5], [np.nan, np.nan]], [0, 1]).tolist()
    [2, 2]
    """
    check_ties(ties)
    s = np.asarray(scores)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    t = np.asarray(truth, dtype=np.int64).ravel()
    right = s[np.arange(t.size), t][:, None]
    # NaN compares false: another class's NaN is neither higher nor the same; with ">=" the
    # true class counts itself, which is the 1 of a 1-based rank
    if ties == "pessimistic":
        rank = np.count_nonzero(s >= right, axis=1)
    else:
        rank = 1 + np.count_nonzero(s > right, axis=1)
    rank[np.isnan(right[:, 0])] = s.shape[1]  # a NaN true score ranks last
    out: IntArray = rank.astype(np.int64)
    return out


def topk_from_ranks(ranks: npt.ArrayLike, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Return ``top<k>_acc`` per k: the share of ranks at most k (NaN without rows).

    Examples
    --------
    >>> topk_from_ranks([1, 2, 7], ks=(1, 5))
    {'top1_acc': 0.3333333333333333, 'top5_acc': 0.6666666666666666}
    """
    r = np.asarray(ranks)
    if not r.size:
        return {f"top{k}_acc": float("nan") for k in ks}
    return {f"top{k}_acc": float((r <= k).mean()) for k in ks}

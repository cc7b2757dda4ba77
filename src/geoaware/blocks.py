"""Long arrays in cache-sized blocks, shared among the cores.

numpy releases the GIL inside its ufuncs, so a pool of threads can work on different parts
of one array at once. Working block by block also keeps a computation's temporary arrays in
the CPU cache instead of streaming full-size temporaries through memory, which alone can
halve the time of a chain of ufuncs. :func:`map_blocks` does both; the distance kernel and
the evaluation's summary pass use it.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["BLOCK", "PARALLEL_MIN", "block_slices", "map_blocks"]

T = TypeVar("T")

BLOCK = 32_768
"""Elements per block: a few float64 working arrays of this size fit in a core's L2 cache."""

PARALLEL_MIN = 1_000_000
"""From this many elements on, :func:`map_blocks` uses every core."""


def block_slices(n: int, block: int = BLOCK) -> list[slice]:
    """Split ``range(n)`` into consecutive slices of at most ``block`` elements.

    Examples
    --------
    >>> block_slices(5, 2)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    return [slice(a, min(a + block, n)) for a in range(0, n, block)]


def map_blocks(
    fn: Callable[[slice], T], n: int, *, block: int = BLOCK, parallel_min: int = PARALLEL_MIN
) -> list[T]:
    """Call ``fn`` on every block of ``range(n)``; return the results in block order.

    From ``parallel_min`` elements on, each core takes one contiguous run of blocks (``fn``
    must then be thread-safe: write only to its own slice).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(10.0)
    >>> sum(map_blocks(lambda s: float(x[s].sum()), x.size, block=3))
    45.0
    """
    slices = block_slices(n, block)
    workers = _cores() if n >= parallel_min else 1
    if workers == 1 or len(slices) == 1:
        return [fn(s) for s in slices]
    bounds = [len(slices) * i // workers for i in range(workers + 1)]
    runs = [slices[a:b] for a, b in itertools.pairwise(bounds)]

    def run(part: list[slice]) -> list[T]:
        return [fn(s) for s in part]

    return [r for part in _executor().map(run, runs) for r in part]


def _cores() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_cores(), thread_name_prefix="geoaware-blocks")

"""Seeded, vectorised 64-bit hashing of keys: the same key gives the same value in every run.

Splits and partitions assign rows by a hash of a key (image, user or cell id), so the result
is a pure function of the key and the seed: adding rows never moves old ones, and the same
user lands on the same side in every file.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from geoaware.typing import Float64Array, UInt64Array

__all__ = ["hash_keys", "unit_hash"]


def _hash_key(seed: int) -> str:
    """Derive pandas' 16-character SipHash key from ``seed``."""
    return hashlib.sha256(f"geoaware-{seed}".encode()).hexdigest()[:16]


def hash_keys(keys: pa.Array | pa.ChunkedArray | npt.ArrayLike, seed: int = 0) -> UInt64Array:
    """Return a seeded 64-bit SipHash of each key (strings, numbers; null hashes alike).

    The hash depends only on the key's value and ``seed``, never on the other rows.

    Examples
    --------
    >>> a = hash_keys(["u1", "u2", "u1"], seed=0)
    >>> bool(a[0] == a[2]), bool(a[0] == a[1])
    (True, False)
    >>> bool(hash_keys(["u1"], seed=0)[0] == hash_keys(["u1", "zz"], seed=0)[0])
    True
    """
    if isinstance(keys, pa.ChunkedArray | pa.Array):
        values = np.asarray(keys.to_numpy(zero_copy_only=False), dtype=object)
    else:
        values = np.asarray(keys, dtype=object)
    hashed = pd.util.hash_array(values, hash_key=_hash_key(seed), categorize=True)
    return np.asarray(hashed, dtype=np.uint64)


def unit_hash(keys: pa.Array | pa.ChunkedArray | npt.ArrayLike, seed: int = 0) -> Float64Array:
    """Map each key to a seeded pseudo-uniform number in ``[0, 1)``.

    Examples
    --------
    >>> u = unit_hash(["a", "b", "c"], seed=3)
    >>> bool(((u >= 0) & (u < 1)).all())
    True
    """
    h = hash_keys(keys, seed)
    # the top 53 bits give an exactly representable float in [0, 1)
    return np.asarray((h >> np.uint64(11)).astype(np.float64) / float(1 << 53))

"""Type aliases for arrays and paths, defined once for every module of geoaware.

Array aliases name their element type: ``Float32Array`` (embeddings, model outputs) and
``Float64Array`` (coordinates, scores) are different types, so a function says which it takes.

Examples
--------
>>> import numpy as np
>>> from geoaware.typing import Float64Array
>>> def mean(x: Float64Array) -> float:
...     return float(x.mean())
>>> mean(np.array([1.0, 2.0]))
1.5
"""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

__all__ = [
    "ArrayLike",
    "BoolArray",
    "Float32Array",
    "Float64Array",
    "IntArray",
    "ObjectArray",
    "PathLike",
    "StrArray",
    "UInt64Array",
]

ArrayLike = npt.ArrayLike
"""Anything numpy turns into an array (lists, scalars, arrays)."""
Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
UInt64Array = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]
ObjectArray = npt.NDArray[np.object_]
PathLike = str | os.PathLike[str]
"""A file path as a string or a path object (``pathlib.Path``)."""

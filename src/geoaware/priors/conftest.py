"""Doctest collection: skip the torch modules where the optional torch is not installed."""

from __future__ import annotations

import importlib.util

_TORCH_MODULES = [
    "checkpoint.py",
    "evaluate.py",
    "fuse.py",
    "losses.py",
    "model.py",
    "plots.py",
    "train.py",
]

collect_ignore = [] if importlib.util.find_spec("torch") else _TORCH_MODULES

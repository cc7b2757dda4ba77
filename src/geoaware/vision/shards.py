"""The shard plan of an embedding job and its failure records, shared by both engines.

:class:`ShardPlan` cuts a catalog's rows into fixed shards (shard ``i`` holds rows
``[i * shard_size, (i + 1) * shard_size)``, always the same ones); :class:`FailedImage` is one
image that could not be embedded, as listed in ``failed.csv``. The local engine
(:mod:`geoaware.vision.embed`) and the Ray engine (:mod:`geoaware.vision.ray_engine`) both
import these, so neither imports the other's module for them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from geoaware.errors import InputFileError
from geoaware.fileio import atomic_write_csv

__all__ = ["FailedImage", "ShardPlan", "plan_rows", "read_failed", "write_failed"]


@dataclass(frozen=True)
class FailedImage:
    """An image that was skipped, with the reason (``"FileNotFoundError: no such file"``)."""

    image_id: str
    path: str
    reason: str


@dataclass(frozen=True)
class ShardPlan:
    """The rows of a catalog cut into shards, and which shards still have to be written.

    Attributes
    ----------
    ids, paths : list of str
        Image id and image path (None where the catalog has no file name) of every row.
    shard_size : int
        Rows per shard; shard ``i`` holds rows ``[i * shard_size, (i + 1) * shard_size)``.
    pending, done : list of int
        Shards to write, and shards already written by the same encoder.
    carried : list of FailedImage
        Failures of the done shards (from the earlier ``failed.csv``).
    """

    ids: list[str]
    paths: list[str | None]
    shard_size: int
    pending: list[int]
    done: list[int]
    carried: list[FailedImage]

    @property
    def shards(self) -> int:
        """Number of shards (at least one, so an empty catalog still gives a readable file)."""
        return max(1, math.ceil(len(self.ids) / self.shard_size))

    def rows(self, shard: int) -> range:
        """Return the catalog rows of ``shard``."""
        return plan_rows(shard, self.shard_size, len(self.ids))


def plan_rows(shard: int, shard_size: int, n_rows: int) -> range:
    """Return the catalog rows of ``shard``.

    >>> plan_rows(2, 10, 25)
    range(20, 25)
    """
    start = shard * shard_size
    return range(start, min(start + shard_size, n_rows))


def read_failed(path: Path) -> dict[str, FailedImage]:
    """Return the failures listed in a ``failed.csv`` by image id (none when it is absent)."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "image_id" not in reader.fieldnames:
            raise InputFileError(path, "not a failed-images list: no image_id column")
        return {
            r["image_id"]: FailedImage(r["image_id"], r.get("path") or "", r.get("reason") or "")
            for r in reader
        }


def write_failed(path: Path, failures: Sequence[FailedImage]) -> None:
    """Write ``failures`` as ``failed.csv`` (``image_id,path,reason``), atomically."""
    atomic_write_csv(path, ["image_id", "path", "reason"],
                     ([f.image_id, f.path, f.reason] for f in failures))  # fmt: skip

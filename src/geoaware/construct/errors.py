"""The errors of the dataset-construction stage."""

from __future__ import annotations

from geoaware.errors import GeoawareError

__all__ = ["BuildError", "PartitionError", "SplitError", "UnknownPartitionError"]


class BuildError(GeoawareError, ValueError):
    """A split, partition or recipe cannot be built from the given input and options.

    Examples
    --------
    >>> str(BuildError("catalog.parquet: column 'user_id' does not exist"))
    "catalog.parquet: column 'user_id' does not exist"
    """


class SplitError(BuildError):
    """A split request is invalid (unknown column, ratios that do not sum to one, ...)."""


class PartitionError(BuildError):
    """A partition request is invalid or cannot be satisfied (e.g. Dirichlet ``min_size``)."""


class UnknownPartitionError(PartitionError, KeyError):
    """A partition id outside ``0 .. num_partitions - 1``; still a :class:`KeyError`.

    Examples
    --------
    >>> str(UnknownPartitionError("partition_id 7 is not in 0..2"))
    'partition_id 7 is not in 0..2'
    """

    __str__ = Exception.__str__  # KeyError's would quote the message

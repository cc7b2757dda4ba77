"""Dataset construction: the fg_geo recipe, splits, leakage checks and federated partitions.

Everything here reads a catalog (or the YFCC100M metadata) and writes a catalog with a plain
column added (``split``) or a partition file beside it. Training on the partitions (Flower)
lives in :mod:`geoaware.federated`.
"""

from __future__ import annotations

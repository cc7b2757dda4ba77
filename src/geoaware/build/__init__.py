"""Dataset construction: the fg_geo recipe, splits, leakage checks and federated partitions.

Everything here reads a catalog (or the YFCC100M metadata) and writes a catalog with a plain
column added (``split``) or a partition file beside it. Heavy optional dependencies (``flwr``,
``flwr_datasets``, ``ray``) are imported only inside :mod:`geoaware.build.federated`.
"""

from __future__ import annotations

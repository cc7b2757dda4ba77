"""The catalog: one Parquet schema for every source, with validation, stats and SQL.

>>> from geoaware.catalog import SCHEMA
>>> SCHEMA.field("lat").type
DataType(double)
"""

from geoaware.catalog.io import catalog_files, read_catalog, write_catalog
from geoaware.catalog.query import query_catalog, write_result
from geoaware.catalog.schema import (
    REQUIRED_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    TAXONOMY_COLUMNS,
    conform,
)
from geoaware.catalog.stats import CatalogStats, UserStats, catalog_stats
from geoaware.catalog.validate import Finding, ValidationReport, validate_table

__all__ = [
    "REQUIRED_COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "TAXONOMY_COLUMNS",
    "CatalogStats",
    "Finding",
    "UserStats",
    "ValidationReport",
    "catalog_files",
    "catalog_stats",
    "conform",
    "query_catalog",
    "read_catalog",
    "validate_table",
    "write_catalog",
    "write_result",
]

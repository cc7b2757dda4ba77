"""The catalog: one Parquet schema for every source, with validation, stats and SQL.

>>> from geoaware.catalog import SCHEMA
>>> SCHEMA.field("lat").type
DataType(double)
"""

from typing import TYPE_CHECKING

from geoaware.lazy import lazy_exports

if TYPE_CHECKING:  # the names load on first use (geoaware --help stays fast)
    from geoaware.catalog.io import (
        catalog_files as catalog_files,
    )
    from geoaware.catalog.io import (
        read_catalog as read_catalog,
    )
    from geoaware.catalog.io import (
        write_catalog as write_catalog,
    )
    from geoaware.catalog.query import (
        query_catalog as query_catalog,
    )
    from geoaware.catalog.query import (
        write_result as write_result,
    )
    from geoaware.catalog.schema import (
        REQUIRED_COLUMNS as REQUIRED_COLUMNS,
    )
    from geoaware.catalog.schema import (
        SCHEMA as SCHEMA,
    )
    from geoaware.catalog.schema import (
        SCHEMA_VERSION as SCHEMA_VERSION,
    )
    from geoaware.catalog.schema import (
        TAXONOMY_COLUMNS as TAXONOMY_COLUMNS,
    )
    from geoaware.catalog.schema import (
        conform as conform,
    )
    from geoaware.catalog.stats import (
        CatalogStats as CatalogStats,
    )
    from geoaware.catalog.stats import (
        UserStats as UserStats,
    )
    from geoaware.catalog.stats import (
        catalog_stats as catalog_stats,
    )
    from geoaware.catalog.validate import (
        Finding as Finding,
    )
    from geoaware.catalog.validate import (
        ValidationReport as ValidationReport,
    )
    from geoaware.catalog.validate import (
        validate_table as validate_table,
    )

_EXPORTS = {
    "CatalogStats": "stats",
    "Finding": "validate",
    "REQUIRED_COLUMNS": "schema",
    "SCHEMA": "schema",
    "SCHEMA_VERSION": "schema",
    "TAXONOMY_COLUMNS": "schema",
    "UserStats": "stats",
    "ValidationReport": "validate",
    "catalog_files": "io",
    "catalog_stats": "stats",
    "conform": "schema",
    "query_catalog": "query",
    "read_catalog": "io",
    "validate_table": "validate",
    "write_catalog": "io",
    "write_result": "query",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

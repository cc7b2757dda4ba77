"""The main job behind ``make demo``: the fg_geo YFCC file to a validated catalog, stats, map."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from geoaware.catalog import catalog_stats, read_catalog, validate_table, write_catalog
from geoaware.geo.maps import world_map
from geoaware.paths import cache_dir
from geoaware.sources import FgGeoYfcc

__all__ = ["run_demo"]


def run_demo(
    out: str | os.PathLike[str] = "demo-output", *, progress: bool = True
) -> dict[str, Any]:
    """Fetch (or find in the mirror) the fg_geo YFCC file, build and check its catalog.

    Writes ``catalog.parquet`` and ``map.png`` under ``out`` and returns a summary with the
    paths, the validation report and the stats.

    Examples
    --------
    >>> summary = run_demo("demo-output")  # doctest: +SKIP
    >>> summary["stats"]["rows"]  # doctest: +SKIP
    36143
    """
    out_dir = Path(out)
    source = FgGeoYfcc(cache_dir("data"))
    source.fetch(progress=progress)
    catalog_path = write_catalog(source.read(), out_dir / "catalog.parquet")
    table = read_catalog(catalog_path)
    report = validate_table(table, str(catalog_path))
    stats = catalog_stats(table)
    lat = table.column("lat").to_numpy(zero_copy_only=False)
    lon = table.column("lon").to_numpy(zero_copy_only=False)
    map_path = world_map(lat, lon, out_dir / "map.png", title="fg_geo YFCC100M species subset")
    return {
        "catalog": str(catalog_path),
        "map": str(map_path),
        "validation": report.to_dict(),
        "stats": stats.to_dict(),
    }

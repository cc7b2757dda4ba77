"""Sources: one small class per dataset release that knows its files and reads them.

>>> sorted(SOURCES)
['fg_geo_yfcc']
"""

from geoaware.sources.base import Source
from geoaware.sources.download import RemoteFile, fetch, verify
from geoaware.sources.fg_geo_yfcc import FgGeoYfcc

SOURCES: dict[str, type[Source]] = {cls.name: cls for cls in (FgGeoYfcc,)}
"""Every source by its command-line name."""

__all__ = ["SOURCES", "FgGeoYfcc", "RemoteFile", "Source", "fetch", "verify"]

"""Sources: one small class per dataset release that knows its files and reads them.

>>> from geoaware.sources import SOURCES
>>> sorted(SOURCES)  # doctest: +NORMALIZE_WHITESPACE
['fg_geo_yfcc', 'git10m', 'gps_gallery', 'im2gps', 'im2gps3k', 'inat2017', 'inat2018',
 'inat2021', 'mp16', 'osv5m', 'osv5m_select', 'yfcc26k', 'yfcc4k']

The names load on first use (``geoaware --help`` stays fast); ``SOURCES`` lives in
:mod:`geoaware.sources.registry`.
"""

from typing import TYPE_CHECKING

from geoaware.lazy import lazy_exports

if TYPE_CHECKING:
    from geoaware.sources.base import Source as Source
    from geoaware.sources.download import RemoteFile as RemoteFile
    from geoaware.sources.download import fetch as fetch
    from geoaware.sources.download import verify as verify
    from geoaware.sources.fg_geo_yfcc import FgGeoYfcc as FgGeoYfcc
    from geoaware.sources.gallery import GpsGallery as GpsGallery
    from geoaware.sources.git10m import Git10M as Git10M
    from geoaware.sources.im2gps import Im2gps as Im2gps
    from geoaware.sources.im2gps import Im2gps3k as Im2gps3k
    from geoaware.sources.im2gps import Mp16 as Mp16
    from geoaware.sources.im2gps import Yfcc4k as Yfcc4k
    from geoaware.sources.im2gps import Yfcc26k as Yfcc26k
    from geoaware.sources.inat import Inat2017 as Inat2017
    from geoaware.sources.inat import Inat2018 as Inat2018
    from geoaware.sources.inat import Inat2021 as Inat2021
    from geoaware.sources.osv5m import Osv5m as Osv5m
    from geoaware.sources.osv5m import Osv5mSelect as Osv5mSelect
    from geoaware.sources.registry import SOURCES as SOURCES

_EXPORTS = {
    "FgGeoYfcc": "fg_geo_yfcc",
    "Git10M": "git10m",
    "GpsGallery": "gallery",
    "Im2gps": "im2gps",
    "Im2gps3k": "im2gps",
    "Inat2017": "inat",
    "Inat2018": "inat",
    "Inat2021": "inat",
    "Mp16": "im2gps",
    "Osv5m": "osv5m",
    "Osv5mSelect": "osv5m",
    "RemoteFile": "download",
    "SOURCES": "registry",
    "Source": "base",
    "Yfcc26k": "im2gps",
    "Yfcc4k": "im2gps",
    "fetch": "download",
    "verify": "download",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Every source by its command-line name (``geoaware sources`` lists them).

>>> sorted(SOURCES)  # doctest: +NORMALIZE_WHITESPACE
['fg_geo_yfcc', 'git10m', 'gps_gallery', 'im2gps', 'im2gps3k', 'inat2017', 'inat2018',
 'inat2021', 'mp16', 'osv5m', 'osv5m_select', 'yfcc26k', 'yfcc4k']
"""

from geoaware.sources.base import Source
from geoaware.sources.fg_geo_yfcc import FgGeoYfcc
from geoaware.sources.gallery import GpsGallery
from geoaware.sources.git10m import Git10M
from geoaware.sources.im2gps import Im2gps, Im2gps3k, Mp16, Yfcc4k, Yfcc26k
from geoaware.sources.inat import Inat2017, Inat2018, Inat2021
from geoaware.sources.osv5m import Osv5m, Osv5mSelect

__all__ = ["SOURCES"]

SOURCES: dict[str, type[Source]] = {
    cls.name: cls
    for cls in (
        FgGeoYfcc,
        Git10M,
        GpsGallery,
        Im2gps,
        Im2gps3k,
        Inat2017,
        Inat2018,
        Inat2021,
        Mp16,
        Osv5m,
        Osv5mSelect,
        Yfcc4k,
        Yfcc26k,
    )
}
"""Every source by its command-line name."""

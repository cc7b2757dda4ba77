"""Where geoaware keeps downloads and caches, and where it looks for a local mirror.

* ``GEOAWARE_CACHE``: the cache folder (default ``~/.cache/geoaware``).
* ``GEOAWARE_MIRROR``: a folder holding the same relative paths as the public releases
  (for example ``fg_geo_yfcc/yfcc100m_geolocated_inat2017species.csv.zip``). When set, a file
  found there is used instead of the network, after its checksum is verified.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "mirror_dir"]


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the geoaware cache.

    Examples
    --------
    >>> cache_dir("downloads").name
    'downloads'
    """
    root = os.environ.get("GEOAWARE_CACHE") or Path.home() / ".cache" / "geoaware"
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror_dir() -> Path | None:
    """Return the mirror folder named by ``GEOAWARE_MIRROR``, or None when unset or empty.

    Examples
    --------
    >>> import os
    >>> os.environ.get("GEOAWARE_MIRROR") is None or isinstance(mirror_dir(), Path)
    True
    """
    value = os.environ.get("GEOAWARE_MIRROR", "").strip()
    return Path(value).expanduser() if value else None

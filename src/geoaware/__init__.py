"""geoaware: clean, checked geotagged image datasets, geo-aware models and honest benchmarks."""

from __future__ import annotations

__all__ = ["package_version"]


def package_version() -> str:
    """Return the installed geoaware version (``"unknown"`` when run from an uninstalled tree).

    Examples
    --------
    >>> package_version() != ""
    True
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("geoaware")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "unknown"

"""Lazy package exports: a package's public names are imported on first use, not at import.

``geoaware --help`` must not pay for pandas, pyarrow or torch, yet ``from geoaware.catalog
import read_catalog`` should keep working. A package lists its public names and the submodule
that holds each; :func:`lazy_exports` returns the module-level ``__getattr__`` and ``__dir__``
of PEP 562 that import the submodule when a name is first asked for.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``__getattr__`` and ``__dir__`` for a package whose names load on first use.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name -> the submodule that defines it (relative to the package, or a full
        ``geoaware.`` module name for a name another package owns).

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("geoaware", {"atomic_write_text": "fileio"})
    >>> getattr_("atomic_write_text").__module__
    'geoaware.fileio'
    >>> getattr_("nothing")
    Traceback (most recent call last):
    ...
    AttributeError: module 'geoaware' has no attribute 'nothing'
    """

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = module if module.startswith("geoaware.") else f"{package}.{module}"
        value = getattr(importlib.import_module(full), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def dir_() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return getattr_, dir_

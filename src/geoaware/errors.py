"""The exceptions geoaware raises.

Every error that reaches a user names what went wrong and where: the file, the record (row or
line) and the field. All derive from :class:`GeoawareError`, so a caller can catch them in one
place; the narrow subclasses say which kind of input was at fault.
"""

from __future__ import annotations

import re

__all__ = [
    "CatalogError",
    "ChecksumError",
    "DatasetNotFoundError",
    "DependencyNotFoundError",
    "DownloadError",
    "EvaluationError",
    "GeoawareError",
    "InputFileError",
    "InvalidCoordinateError",
    "InvalidTileError",
    "QueryError",
    "SchemaError",
    "UnsafeArchiveError",
    "UsageError",
]


class GeoawareError(Exception):
    """Base class of every error geoaware raises on purpose."""


class InvalidCoordinateError(GeoawareError, ValueError):
    """A latitude, longitude or date is outside its valid range or not a number."""


class InvalidTileError(GeoawareError, ValueError):
    """A web-mercator tile (``Z_X_Y`` string or z/x/y triple) is malformed or out of range."""


class InputFileError(GeoawareError):
    """A file geoaware reads is missing, truncated or has the wrong layout.

    The message always starts with the file's path, then names the record and the field.
    """

    def __init__(
        self,
        path: object,
        problem: str,
        *,
        record: object | None = None,
        field: str | None = None,
    ) -> None:
        # One line: a library's reason (pyarrow's end in a newline) is joined up.
        problem = re.sub(r"\s*\n\s*", " ", problem.strip())
        where = str(path)
        if record is not None:
            where += f", record {record}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.record = record
        self.field = field
        self.problem = problem


class CatalogError(InputFileError):
    """A catalog file cannot be read as a geoaware catalog."""


class SchemaError(CatalogError):
    """A catalog lacks a required column or a column has the wrong type."""


class EvaluationError(GeoawareError, ValueError):
    """An evaluation cannot run: no labelled truth rows, duplicate ids, a bad argument."""


class QueryError(GeoawareError):
    """A SQL query over a catalog failed."""


class DownloadError(GeoawareError):
    """A download failed after its retries."""


class ChecksumError(DownloadError):
    """A downloaded or mirrored file does not match its published checksum."""


class UnsafeArchiveError(GeoawareError):
    """An archive member would be written outside the extraction folder, or is a link out."""


class DatasetNotFoundError(GeoawareError, FileNotFoundError):
    """A dataset's files are not under ``root`` and downloading was not asked for."""


class DependencyNotFoundError(GeoawareError, ImportError):
    """An optional dependency is not installed; the message names the pip extra to install."""


class UsageError(GeoawareError, ValueError):
    """An argument or option is not valid: an unknown name, a number out of range, ...

    The message names the option or path and says what is accepted.
    """

"""Errors of the priors package; all derive from :class:`geoaware.errors.GeoawareError`."""

from __future__ import annotations

from geoaware.errors import GeoawareError, InputFileError

__all__ = ["PriorConfigError", "PriorError", "PriorInputError"]


class PriorError(GeoawareError, ValueError):
    """A prior cannot be trained, loaded or applied (too few classes, no located rows, ...)."""


class PriorConfigError(PriorError):
    """A :class:`~geoaware.priors.config.PriorConfig` field has an invalid value.

    The message names the field, the value given and what is allowed.
    """


class PriorInputError(InputFileError, ValueError):
    """A file given to a prior command is inconsistent: unknown ids, NaN scores, bad dates.

    The message starts with the file's path, then names the record and the field.
    """

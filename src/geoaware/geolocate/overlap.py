"""Honest numbers: how many test locations sit (almost) on a training or gallery location.

Retrieval geolocators predict a stored location. When a test photo was taken within a
kilometre of a training photo (the same landmark, the same photographer's outing), "accuracy
at 1 km" measures memory, not recognition: published retrieval results on Im2GPS3k fell from
21 % to 7 % at 1 km once such near-duplicates were removed. :func:`overlap_report` counts them;
:func:`exclude_within` drops the reference points that cause them, so both numbers can be
quoted.

Both work on 3-D unit vectors in a KD-tree (``scipy.spatial.cKDTree``): a great-circle
distance ``d`` on the sphere of radius ``R`` is the chord ``2 sin(d / 2R)``, so a radius query
in chord length is exact, poles and the antimeridian included.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from geoaware.errors import InputFileError, UsageError
from geoaware.fileio import atomic_write_bytes
from geoaware.geo.distance import check_coordinates, km_of_chord
from geoaware.geo.encode import unit_vector
from geoaware.typing import ArrayLike, BoolArray, Float64Array, IntArray, PathLike

__all__ = [
    "OverlapReport",
    "exclude_within",
    "overlap_file",
    "overlap_report",
    "overlap_warnings",
    "read_overlap",
    "write_overlap",
]


def _points(lat: ArrayLike, lon: ArrayLike, name: str) -> Float64Array:
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    if la.shape != lo.shape or la.ndim != 1:
        raise UsageError(f"{name}: latitude {la.shape} and longitude {lo.shape} differ in shape")
    check_coordinates(la, lo, name=name)
    if np.isnan(la).any() or np.isnan(lo).any():
        first = int(np.flatnonzero(np.isnan(la) | np.isnan(lo))[0])
        raise UsageError(f"{name}: coordinate at index {first} is NaN; drop unlocated rows first")
    return unit_vector(la, lo)


def _nearest_km(
    points: Float64Array, reference: Float64Array
) -> tuple[Float64Array, npt.NDArray[Any]]:
    """Distance (km) and index of each point's nearest reference point (inf, -1 if none)."""
    if len(reference) == 0 or len(points) == 0:
        return np.full(len(points), np.inf), np.full(len(points), -1, dtype=np.int64)
    from scipy.spatial import cKDTree

    chord, index = cKDTree(reference).query(points, k=1, workers=-1)
    return km_of_chord(chord), np.asarray(index, dtype=np.int64)


@dataclass(frozen=True)
class OverlapReport:
    """How many query locations lie within ``km`` of a reference location.

    Attributes
    ----------
    km : float
        The radius.
    n_query, n_reference : int
        Points compared.
    within : int
        Query points with a reference point at most ``km`` away.
    fraction : float
        ``within / n_query`` (0 when there are no queries).
    nearest_km : numpy.ndarray
        Each query point's distance to its nearest reference point (inf when none).
    nearest : numpy.ndarray
        The index of that reference point (-1 when none).
    """

    km: float
    n_query: int
    n_reference: int
    within: int
    fraction: float
    nearest_km: Float64Array
    nearest: IntArray

    @property
    def mask(self) -> BoolArray:
        """Per query point: is a reference point within ``km``."""
        return np.asarray(self.nearest_km <= self.km)

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as plain JSON values (no per-point arrays).

        Examples
        --------
        >>> sorted(overlap_report([0.0], [0.0], [0.0], [0.001]).to_dict())
        ['fraction', 'km', 'median_nearest_km', 'n_query', 'n_reference', 'within']
        """
        finite = self.nearest_km[np.isfinite(self.nearest_km)]
        return {
            "km": self.km,
            "n_query": self.n_query,
            "n_reference": self.n_reference,
            "within": self.within,
            "fraction": self.fraction,
            "median_nearest_km": float(np.median(finite)) if finite.size else None,
        }


def overlap_report(
    query_lat: ArrayLike,
    query_lon: ArrayLike,
    ref_lat: ArrayLike,
    ref_lon: ArrayLike,
    km: float = 1.0,
) -> OverlapReport:
    """Count query (test) locations within ``km`` of a reference (training/gallery) location.

    Parameters
    ----------
    query_lat, query_lon
        The test locations, degrees.
    ref_lat, ref_lon
        The training or gallery locations, degrees.
    km
        The radius (great-circle, 6371 km sphere); inclusive.

    Raises
    ------
    geoaware.errors.InvalidCoordinateError
        A coordinate out of range.
    geoaware.errors.UsageError
        Mismatched lengths, a NaN coordinate (drop unlocated rows first) or a negative ``km``.

    Examples
    --------
    >>> r = overlap_report([0.0, 10.0], [179.9999, 0.0], [0.0], [-179.9999], km=1.0)
    >>> r.within, r.fraction, round(float(r.nearest_km[0]), 3)
    (1, 0.5, 0.022)
    """
    if not km >= 0:
        raise UsageError(f"km must be a non-negative number, got {km}")
    q = _points(query_lat, query_lon, "query")
    ref = _points(ref_lat, ref_lon, "reference")
    nearest_km, nearest = _nearest_km(q, ref)
    within = int(np.count_nonzero(nearest_km <= km))
    return OverlapReport(
        km=float(km),
        n_query=len(q),
        n_reference=len(ref),
        within=within,
        fraction=within / len(q) if len(q) else 0.0,
        nearest_km=nearest_km,
        nearest=nearest,
    )


def exclude_within(
    ref_lat: ArrayLike,
    ref_lon: ArrayLike,
    query_lat: ArrayLike,
    query_lon: ArrayLike,
    km: float,
) -> BoolArray:
    """Return a keep mask over the reference points: False where a query point is within ``km``.

    Use it to drop training images (or gallery coordinates) near any test location before
    fitting or predicting, so 1 km accuracy no longer rewards memorised places.

    Examples
    --------
    >>> exclude_within([0.0, 0.0, 45.0], [0.0, 0.005, 90.0], [0.0], [0.0], km=1.0).tolist()
    [False, False, True]
    """
    if not km >= 0:
        raise UsageError(f"km must be a non-negative number, got {km}")
    ref = _points(ref_lat, ref_lon, "reference")
    q = _points(query_lat, query_lon, "query")
    nearest_km, _ = _nearest_km(ref, q)
    return np.asarray(nearest_km > km)


#: Suffix of the overlap file ``geolocate predict`` writes beside its predictions.
OVERLAP_SUFFIX = ".overlap.json"


def overlap_file(predictions: PathLike) -> Path:
    """Return the overlap file that goes with a predictions file: ``pred.csv.overlap.json``.

    Examples
    --------
    >>> overlap_file("runs/pred.csv").name
    'pred.csv.overlap.json'
    """
    p = Path(predictions)
    return p.with_name(p.name + OVERLAP_SUFFIX)


def write_overlap(predictions: PathLike, record: dict[str, Any]) -> Path:
    r"""Write ``record`` (the overlap reports of a predict run) beside ``predictions``.

    The predictions file's SHA-256 goes with it, so that a later ``eval geo`` uses the record
    only while the predictions are the ones it describes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> pred = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
    >>> _ = pred.write_text("image_id,pred_lat,pred_lon\n")
    >>> write_overlap(pred, {"overlap": {}}).name
    'p.csv.overlap.json'
    """
    doc = {**record, "predictions_sha256": _sha256(predictions)}
    return atomic_write_bytes(overlap_file(predictions), orjson.dumps(doc, option=_JSON) + b"\n")


def read_overlap(predictions: PathLike) -> dict[str, Any] | None:
    r"""Return the overlap record written beside ``predictions``, or None.

    None when there is no such file or it describes another version of the predictions
    (their SHA-256 differs).

    Raises
    ------
    InputFileError
        The overlap file is not valid JSON.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> pred = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
    >>> _ = pred.write_text("image_id,pred_lat,pred_lon\n")
    >>> read_overlap(pred) is None
    True
    >>> _ = write_overlap(pred, {"overlap": {"training": {"within": 1}}})
    >>> read_overlap(pred)["overlap"]["training"]["within"]
    1
    >>> _ = pred.write_text("image_id,pred_lat,pred_lon\na,1,2\n")  # rewritten since
    >>> read_overlap(pred) is None
    True
    """
    path = overlap_file(predictions)
    if not path.is_file():
        return None
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("predictions_sha256") != _sha256(predictions):
        return None
    return doc


def overlap_warnings(record: dict[str, Any] | None) -> list[str]:
    """Sentences warning that test locations sit on reference locations (empty: none do).

    Examples
    --------
    >>> rec = {"km": 1.0, "overlap": {"training": {"within": 5, "n_query": 5, "fraction": 1.0}}}
    >>> overlap_warnings(rec)[0][:62]
    '5 of 5 test locations (100.0%) lie within 1 km of a training l'
    """
    if not record:
        return []
    km = record.get("km", 1.0)
    out = []
    for name, o in (record.get("overlap") or {}).items():
        within, n = o.get("within") or 0, o.get("n_query") or 0
        if not within or name.endswith("_after_exclusion"):
            continue
        after = (record.get("overlap") or {}).get(f"{name}_after_exclusion")
        tail = (
            f"; after --exclude-within, {after['within']:,} do"
            if after and after.get("within") is not None
            else ""
        )
        out.append(
            f"{within:,} of {n:,} test locations ({100 * within / n:.1f}%) lie within {km:g} km "
            f"of a {name} location: there the figures measure recall of a known place, not "
            f"geolocation (geolocate fit/predict --exclude-within {km:g} removes them){tail}"
        )
    return out


_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY


def _sha256(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

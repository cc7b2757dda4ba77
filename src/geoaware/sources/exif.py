r"""Scan any folder of photos into a catalog table: EXIF GPS, capture time, size, orientation.

:func:`scan_images` walks a folder (JPEG, PNG, TIFF, WebP; HEIC/HEIF when ``pillow-heif`` is
installed), reads each file's EXIF with Pillow (``Image.getexif()``, the Exif IFD ``0x8769``
and the GPS IFD ``0x8825``) in a process pool, and returns one row per readable image plus a
:class:`ScanReport`. Quirks handled:

* GPS latitude and longitude are unsigned degree/minute/second rationals with hemisphere refs:
  ``S`` and ``W`` make them negative. Refs may be bytes, lower case or padded with NULs; a
  missing ref keeps the value's sign (``extra["gps_ref_missing"]``), and a negative value is
  never made positive (no double negation). A single decimal-degree number, or decimal minutes
  with zero seconds, read right too.
* "No fix" is not a place: a rational with a zero denominator (``0/0``, NaN in Pillow),
  exactly (0, 0), or a value out of range leaves the location null; the row is kept and
  counted in ``ScanReport.invalid_gps`` with the reason in ``extra["gps_problem"]``.
* ``GPSHPositioningError`` (metres) becomes ``location_uncertainty_m``; ``GPSDOP`` has no unit
  and goes to ``extra``, as does the altitude (negative below sea level).
* Capture time: ``DateTimeOriginal``, else ``DateTimeDigitized``, else IFD0 ``DateTime``
  (``extra["taken_at_tag"]`` says which), with ``SubSecTime*`` fractions. The matching
  ``OffsetTime*`` (``+02:00``) converts it to UTC; without one the camera's clock time is
  taken as UTC (``extra["taken_at_offset"]`` is null). Blank or zero dates
  (``0000:00:00 00:00:00``) are null. IFD0 ``DateTime`` is the time software last wrote the
  file: in the nine reference photos (``shared/data/exif_gps_samples``) Nikon Transfer set it
  to 2008-11-01, ten days after ``DateTimeOriginal``; it is kept in ``extra["exif_datetime"]``.
* ``GPSDateStamp`` + ``GPSTimeStamp`` are UTC by definition and kept in
  ``extra["gps_time_utc"]``, but are used for ``taken_at`` only with ``prefer_gps_time=True``:
  they give the time of the last fix, which may be stale, many devices write the time without
  the date, and in the reference photos the GPS date is a day later than the camera's (the
  clock difference is 1 day minus 1.5 minutes, so neither an offset nor a clock drift).
* Orientation 5 to 8 turns the picture by 90 degrees: ``width``/``height`` are the displayed
  size; ``extra["orientation"]`` holds the tag and ``extra["stored_size"]`` the size as
  stored. Values outside 1..8 count as 1 (the raw value is kept).
* A file Pillow cannot identify, or whose pixels end early (truncated), is reported in
  ``ScanReport.corrupt_files`` with the reason, and skipped. Pixels are decoded to catch
  truncation (JPEG at 1/8 scale, which still reads every byte); ``check_pixels=False`` reads
  headers only (much faster, but truncated files pass). Images over Pillow's decompression
  bomb limit are reported the same way. An image whose EXIF alone is malformed keeps its row
  with ``extra["exif_error"]``; Pillow's warnings go to ``extra["warnings"]``, not stderr.
* A file name that is not valid UTF-8 (possible on Linux) cannot be stored so that
  ``embed`` opens the file again: it is listed in ``ScanReport.corrupt_files`` (its name
  with ``\xNN`` escapes, the reason says to rename it) and skipped.
* A GPS ref that is not ``N``/``S`` (latitude) or ``E``/``W`` (longitude) leaves the
  location null with ``extra["gps_problem"]``: the hemisphere is unknown.
* Hidden files and folders (names starting with ``.``, including the ``._IMG_0001.JPG``
  AppleDouble files macOS leaves on foreign disks) and files with other extensions are
  skipped and counted in ``ScanReport.ignored``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from PIL import Image, JpegImagePlugin

from geoaware.errors import InputFileError
from geoaware.typing import PathLike

__all__ = [
    "IMAGE_EXTENSIONS",
    "CorruptFile",
    "PhotoInfo",
    "ScanReport",
    "gps_degrees",
    "parse_exif_time",
    "read_photo",
    "scan_images",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})
"""File extensions scanned (lower case); ``.heic``/``.heif`` are added when supported."""

try:  # optional: HEIC/HEIF photos from phones
    from pillow_heif import register_heif_opener  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    HEIF_SUPPORTED = False
else:  # pragma: no cover - depends on the environment
    register_heif_opener()
    IMAGE_EXTENSIONS = IMAGE_EXTENSIONS | {".heic", ".heif"}
    HEIF_SUPPORTED = True

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_ORIENTATION, _DATETIME, _MAKE, _MODEL = 0x0112, 0x0132, 0x010F, 0x0110
_TIME_TAGS = (  # (name, time tag, sub-second tag, offset tag), in order of preference
    ("DateTimeOriginal", 0x9003, 0x9291, 0x9011),
    ("DateTimeDigitized", 0x9004, 0x9292, 0x9012),
    ("DateTime", _DATETIME, 0x9290, 0x9010),
)
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4
_GPS_ALT_REF, _GPS_ALT, _GPS_TIME, _GPS_DOP, _GPS_DATE, _GPS_HERROR = 5, 6, 7, 11, 29, 31
_ROTATED = frozenset({5, 6, 7, 8})
_DMS = (1.0, 60.0, 3600.0)
_POOL_MIN_FILES = 64
"""Below this many files the scan runs in this process (a pool costs more than it saves)."""

_TIME_RE = re.compile(
    r"^\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?"
    r"(?:\.(\d+))?\s*(Z|[+-]\d{1,2}:?\d{2})?\s*$"
)
_OFFSET_RE = re.compile(r"^\s*(?:(Z)|([+-])(\d{1,2}):?(\d{2}))\s*$")
_DATE_RE = re.compile(r"^\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})\s*$")


@dataclass(frozen=True)
class CorruptFile:
    """A file that could not be read as an image.

    Attributes
    ----------
    path : str
        Path relative to the scanned folder (POSIX separators).
    reason : str
        The error, e.g. ``"OSError: image file is truncated"``.
    """

    path: str
    reason: str


@dataclass
class ScanReport:
    """What :func:`scan_images` found.

    ``scanned == with_gps + without_gps + corrupt``: every image file is either a row (with or
    without a location) or a corrupt file.

    Attributes
    ----------
    folder : str
        The folder scanned.
    scanned : int
        Image files looked at (by extension), corrupt ones included.
    with_gps, without_gps : int
        Rows with a usable location, and rows without one.
    invalid_gps : int
        Of ``without_gps``: rows whose GPS tags were present but unusable (no fix, out of
        range, unreadable).
    without_time : int
        Rows with no capture time.
    corrupt : int
        Files skipped as unreadable; each is listed in ``corrupt_files``.
    ignored : int
        Files skipped without opening: hidden, or another extension.
    corrupt_files : list of CorruptFile
        Each corrupt file with its reason.

    Examples
    --------
    >>> r = ScanReport("photos", scanned=2, with_gps=1, corrupt=1,
    ...                corrupt_files=[CorruptFile("a.jpg", "OSError: truncated")])
    >>> r.to_dict()["corrupt_files"]
    [{'path': 'a.jpg', 'reason': 'OSError: truncated'}]
    """

    folder: str
    scanned: int = 0
    with_gps: int = 0
    without_gps: int = 0
    invalid_gps: int = 0
    without_time: int = 0
    corrupt: int = 0
    ignored: int = 0
    corrupt_files: list[CorruptFile] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True)
class PhotoInfo:
    """The metadata of one photo, as read by :func:`read_photo`.

    Attributes
    ----------
    width, height : int
        Displayed size in pixels (after the EXIF orientation).
    lat, lon : float or None
        WGS84 degrees from the GPS IFD; None when absent or unusable.
    location_uncertainty_m : float or None
        ``GPSHPositioningError`` in metres.
    taken_at : datetime or None
        Capture time in UTC (timezone-aware).
    gps_tags : bool
        Whether the GPS IFD held a latitude and a longitude at all.
    extra : dict
        Everything else worth keeping (see the module docstring), JSON-ready.
    """

    width: int
    height: int
    lat: float | None
    lon: float | None
    location_uncertainty_m: float | None
    taken_at: datetime | None
    gps_tags: bool
    extra: dict[str, Any]


def gps_degrees(value: object, ref: object = None, *, negative: str = "SW") -> float | None:
    r"""Convert an EXIF GPS coordinate (degrees, minutes, seconds) and its ref to degrees.

    Parameters
    ----------
    value
        A tuple of one to three numbers (Pillow's ``IFDRational``, floats, or raw
        ``(numerator, denominator)`` pairs), or one number of decimal degrees.
    ref
        ``"N"``/``"S"`` or ``"E"``/``"W"`` (str or bytes, any case, NUL-padded); letters in
        ``negative`` make the result negative, others keep the value's sign.

    Returns
    -------
    float or None
        None when the value cannot be read or is NaN (a zero denominator).

    Examples
    --------
    >>> gps_degrees((33, 52, 7.68), "S")
    -33.8688
    >>> gps_degrees((58.0, 22.5, 0.0), b"W\x00")
    -58.375
    >>> gps_degrees(((1, 0), 0, 0), "N") is None  # 1/0: no fix
    True
    """
    if value is None:
        return None
    try:
        if isinstance(value, (tuple, list)):
            if not 1 <= len(value) <= 3:
                return None
            parts = [_number(v) for v in value]
            sign = -1.0 if any(p < 0 for p in parts) else 1.0
            degrees = sign * sum(abs(p) / w for p, w in zip(parts, _DMS[: len(parts)], strict=True))
        else:
            degrees = _number(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not math.isfinite(degrees):
        return None
    letter = _text(ref).upper()[:1]
    if letter and letter in negative.upper():
        degrees = -abs(degrees)
    return degrees


def parse_exif_time(
    text: object, subsec: object = None, offset: object = None
) -> tuple[datetime | None, str | None]:
    """Parse an EXIF date-time (``"2008:10:22 16:28:39"``) into UTC.

    Parameters
    ----------
    text
        The ``DateTime*`` value (str or bytes); ``-`` or ``/`` separators and a trailing
        offset are accepted.
    subsec
        The matching ``SubSecTime*`` digits (``"25"`` is 0.25 s).
    offset
        The matching ``OffsetTime*`` (``"+02:00"``); an offset inside ``text`` wins.

    Returns
    -------
    (datetime or None, str or None)
        The time as an aware UTC datetime (a naive clock time is taken as UTC), and the offset
        used (``"+02:00"``), None when there was none.

    Examples
    --------
    >>> parse_exif_time("2020:06:01 12:00:00", "5", "+09:00")
    (datetime.datetime(2020, 6, 1, 3, 0, 0, 500000, tzinfo=datetime.timezone.utc), '+09:00')
    >>> parse_exif_time("0000:00:00 00:00:00")
    (None, None)
    """
    m = _TIME_RE.match(_text(text))
    if m is None:
        return None, None
    year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
    second = int(m.group(6) or 0)
    digits = m.group(7) or re.sub(r"\D", "", _text(subsec))
    micro = int((digits + "000000")[:6]) if digits else 0
    try:
        local = datetime(year, month, day, hour, minute, min(second, 59), micro)
    except ValueError:
        return None, None
    if second == 60:  # a leap second
        local += timedelta(seconds=1)
    delta, label = _offset(m.group(8) or offset)
    return (local - delta).replace(tzinfo=timezone.utc), label


def read_photo(
    path: PathLike, *, check_pixels: bool = True, prefer_gps_time: bool = False
) -> PhotoInfo:
    """Read one photo's location, time, size and orientation.

    Parameters
    ----------
    path
        The image file.
    check_pixels
        Decode the pixels (JPEG at 1/8 scale) so that a truncated file raises.
    prefer_gps_time
        Use ``GPSDateStamp``/``GPSTimeStamp`` (UTC) for ``taken_at`` when both are present.

    Raises
    ------
    OSError, ValueError, ...
        Whatever Pillow raises for an unreadable or truncated image
        (``PIL.UnidentifiedImageError`` for a non-image).

    Examples
    --------
    >>> info = read_photo("../shared/data/exif_gps_samples/DSCN0010.jpg")  # doctest: +SKIP
    >>> round(info.lat, 6), round(info.lon, 6), info.taken_at.isoformat()  # doctest: +SKIP
    (43.467448, 11.885127, '2008-10-22T16:28:39+00:00')
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Image.open(path) as img:
            width, height = img.size
            extra: dict[str, Any] = {"format": img.format}
            try:
                ifd0, exif, gps = _ifds(img)
            except Exception as exc:  # malformed EXIF in a readable image: keep the pixels
                ifd0, exif, gps = {}, {}, {}
                extra["exif_error"] = f"{type(exc).__name__}: {exc}"
            if check_pixels:
                if isinstance(img, JpegImagePlugin.JpegImageFile):  # JPEG and MPO
                    img.draft(None, (max(1, width // 8), max(1, height // 8)))
                img.load()
    orientation = _int(ifd0.get(_ORIENTATION))
    if orientation is not None:
        extra["orientation"] = orientation
    if orientation in _ROTATED:
        extra["stored_size"] = [width, height]
        width, height = height, width
    for key, tag in (("make", _MAKE), ("model", _MODEL)):
        if text := _text(ifd0.get(tag)):
            extra[key] = text

    lat, lon, gps_tags = _location(gps, extra)
    uncertainty = _positive(gps.get(_GPS_HERROR))
    altitude = _positive(gps.get(_GPS_ALT), allow_zero=True)
    if altitude is not None:
        extra["altitude_m"] = -altitude if _int(gps.get(_GPS_ALT_REF)) == 1 else altitude
    if (dop := _positive(gps.get(_GPS_DOP))) is not None:
        extra["gps_dop"] = dop

    taken_at = _camera_time(ifd0, exif, extra)
    gps_time = _gps_time(gps)
    if gps_time is not None:
        extra["gps_time_utc"] = gps_time.isoformat()
        if prefer_gps_time:
            taken_at = gps_time
            extra["taken_at_tag"] = "GPSDateStamp+GPSTimeStamp"
            extra["taken_at_offset"] = "+00:00"
    if caught:
        extra["warnings"] = sorted({str(w.message) for w in caught})
    return PhotoInfo(width, height, lat, lon, uncertainty, taken_at, gps_tags, extra)


def scan_images(
    folder: PathLike,
    *,
    recursive: bool = True,
    workers: int | None = None,
    source: str = "images",
    progress: bool = True,
    check_pixels: bool = True,
    prefer_gps_time: bool = False,
    extensions: Iterable[str] | None = None,
) -> tuple[pa.Table, ScanReport]:
    """Scan a folder of photos into catalog columns and a report.

    Parameters
    ----------
    folder
        The folder to scan.
    recursive
        Walk sub-folders too (hidden ones are skipped).
    workers
        Processes to use; default ``min(os.cpu_count(), 8)``. ``1`` (or fewer than 64 files)
        reads in this process. Where processes are spawned rather than forked (macOS,
        Windows), call this from under ``if __name__ == "__main__":``.
    source
        The catalog's ``source`` value for every row.
    progress
        Show a progress bar (rich).
    check_pixels, prefer_gps_time
        As in :func:`read_photo`.
    extensions
        File extensions to read (default :data:`IMAGE_EXTENSIONS`), any case.

    Returns
    -------
    (pyarrow.Table, ScanReport)
        One row per readable image, sorted by path: ``source``, ``image_id`` and
        ``file_name`` (the path relative to ``folder``, POSIX separators), ``lat``, ``lon``,
        ``location_uncertainty_m``, ``taken_at`` (UTC), ``width``, ``height`` and ``extra``
        (JSON), ready for :func:`geoaware.catalog.conform`; and what was found.

    Raises
    ------
    InputFileError
        If ``folder`` is not a folder.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> Image.new("RGB", (4, 3)).save(f"{folder}/no_gps.jpg")
    >>> table, report = scan_images(folder, progress=False)
    >>> table.column("image_id").to_pylist(), report.without_gps, report.corrupt
    (['no_gps.jpg'], 1, 0)
    >>> table, report = scan_images("../shared/data/exif_gps_samples")  # doctest: +SKIP
    >>> report.with_gps, report.without_gps, report.corrupt  # doctest: +SKIP
    (9, 0, 0)
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputFileError(root, "not a folder")
    wanted = frozenset(e.lower() for e in (IMAGE_EXTENSIONS if extensions is None else extensions))
    files, ignored = _list_images(root, recursive, wanted)
    report = ScanReport(str(root), scanned=len(files), ignored=ignored)
    read = partial(
        _scan_one, root=str(root), check_pixels=check_pixels, prefer_gps_time=prefer_gps_time
    )
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    columns: dict[str, list[Any]] = {
        k: []
        for k in (
            "image_id",
            "lat",
            "lon",
            "location_uncertainty_m",
            "taken_at",
            "width",
            "height",
            "extra",
        )
    }
    for rel, result in _run(read, files, n_workers, progress, f"scan {root.name or root}"):
        if _printable(rel) != rel and not isinstance(result, str):
            result = (
                "UnicodeError: the file name is not valid UTF-8, so the catalog cannot store a "
                "name that opens it again; rename the file"
            )
        rel = _printable(rel)
        if isinstance(result, str):
            report.corrupt += 1
            report.corrupt_files.append(CorruptFile(rel, _printable(result)))
            continue
        located = result.lat is not None and result.lon is not None
        report.with_gps += located
        report.without_gps += not located
        report.invalid_gps += result.gps_tags and not located
        report.without_time += result.taken_at is None
        for key, value in (
            ("image_id", rel),
            ("lat", result.lat),
            ("lon", result.lon),
            ("location_uncertainty_m", result.location_uncertainty_m),
            ("taken_at", result.taken_at),
            ("width", result.width),
            ("height", result.height),
            ("extra", orjson.dumps(result.extra).decode()),
        ):
            columns[key].append(value)
    ids = pa.array(columns["image_id"], pa.string())
    table = pa.table(
        {
            "source": pa.array([source] * len(ids), pa.string()),
            "image_id": ids,
            "file_name": ids,
            "lat": pa.array(columns["lat"], pa.float64()),
            "lon": pa.array(columns["lon"], pa.float64()),
            "location_uncertainty_m": pa.array(columns["location_uncertainty_m"], pa.float64()),
            "taken_at": pa.array(columns["taken_at"], pa.timestamp("us", tz="UTC")),
            "width": pa.array(columns["width"], pa.int32()),
            "height": pa.array(columns["height"], pa.int32()),
            "extra": pa.array(columns["extra"], pa.string()),
        }
    )
    return table, report


def _scan_one(
    rel: str, *, root: str, check_pixels: bool, prefer_gps_time: bool
) -> tuple[str, PhotoInfo | str]:
    """Read one file; a failure comes back as its reason (a string), never as a crash."""
    try:
        info = read_photo(
            os.path.join(root, rel), check_pixels=check_pixels, prefer_gps_time=prefer_gps_time
        )
    except Exception as exc:
        return rel, f"{type(exc).__name__}: {exc}"
    return rel, info


def _run(
    read: Callable[[str], tuple[str, PhotoInfo | str]],
    files: list[str],
    workers: int,
    progress: bool,
    label: str,
) -> Iterator[tuple[str, PhotoInfo | str]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    # A transient bar on stderr, and none when stderr is not a terminal: a finished transient
    # bar leaves an empty line behind in piped or logged output.
    console = Console(stderr=True)
    progress = progress and console.is_terminal
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    pooled = workers > 1 and len(files) >= _POOL_MIN_FILES
    if not pooled:
        with Progress(*columns, console=console, disable=not progress, transient=True) as bar:
            task = bar.add_task(label, total=len(files))
            for rel in files:
                yield read(rel)
                bar.advance(task)
        return
    # On Linux the workers are forked, and all of them at the first submit: map() submits
    # eagerly, so they start before the progress bar's refresh thread does. Elsewhere
    # (macOS, Windows) the platform's default start method (spawn) is used.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    chunk = max(1, min(64, len(files) // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        results = pool.map(read, files, chunksize=chunk)
        with Progress(*columns, console=console, disable=not progress, transient=True) as bar:
            task = bar.add_task(label, total=len(files))
            for result in results:
                yield result
                bar.advance(task)


def _list_images(root: Path, recursive: bool, wanted: frozenset[str]) -> tuple[list[str], int]:
    found: list[str] = []
    ignored = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")] if recursive else []
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in wanted:
                ignored += 1
                continue
            rel = Path(os.path.relpath(os.path.join(dirpath, name), root)).as_posix()
            found.append(rel)
    return sorted(found), ignored


def _printable(rel: str) -> str:
    r"""Return a path as valid UTF-8: undecodable bytes in a file name become ``\xNN``."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return rel


def _ifds(img: Image.Image) -> tuple[Mapping[int, Any], Mapping[int, Any], Mapping[int, Any]]:
    ifd0 = img.getexif()
    return ifd0, ifd0.get_ifd(_EXIF_IFD), ifd0.get_ifd(_GPS_IFD)


def _location(
    gps: Mapping[int, Any], extra: dict[str, Any]
) -> tuple[float | None, float | None, bool]:
    if _GPS_LAT not in gps or _GPS_LON not in gps:
        return None, None, False
    lat_ref, lon_ref = _text(gps.get(_GPS_LAT_REF)), _text(gps.get(_GPS_LON_REF))
    lat = gps_degrees(gps[_GPS_LAT], lat_ref if lat_ref[:1].upper() in ("N", "S") else None)
    lon = gps_degrees(gps[_GPS_LON], lon_ref if lon_ref[:1].upper() in ("E", "W") else None)
    if not lat_ref or not lon_ref:
        extra["gps_ref_missing"] = True
    problem = None
    if lat_ref and lat_ref[:1].upper() not in ("N", "S"):
        problem = f"GPS latitude ref {lat_ref!r} is not N or S: the hemisphere is unknown"
    elif lon_ref and lon_ref[:1].upper() not in ("E", "W"):
        problem = f"GPS longitude ref {lon_ref!r} is not E or W: the hemisphere is unknown"
    elif lat is None or lon is None:
        problem = "unreadable GPS coordinate (e.g. a zero denominator: no fix)"
    elif lat == 0 and lon == 0:
        problem = "GPS position is exactly (0, 0): no fix"
    elif abs(lat) > 90 or abs(lon) > 180:
        problem = f"GPS position ({lat}, {lon}) out of range"
    if problem is not None:
        extra["gps_problem"] = problem
        return None, None, True
    return lat, lon, True


def _camera_time(
    ifd0: Mapping[int, Any], exif: Mapping[int, Any], extra: dict[str, Any]
) -> datetime | None:
    raw_datetime, _ = parse_exif_time(ifd0.get(_DATETIME))
    if raw_datetime is not None:
        extra["exif_datetime"] = raw_datetime.replace(tzinfo=None).isoformat()
    for name, tag, subsec_tag, offset_tag in _TIME_TAGS:
        value = exif.get(tag, ifd0.get(tag))
        taken, offset = parse_exif_time(value, exif.get(subsec_tag), exif.get(offset_tag))
        if taken is not None:
            extra["taken_at_tag"] = name
            extra["taken_at_offset"] = offset
            return taken
    return None


def _gps_time(gps: Mapping[int, Any]) -> datetime | None:
    date = _DATE_RE.match(_text(gps.get(_GPS_DATE)))
    stamp = gps.get(_GPS_TIME)
    if date is None or not isinstance(stamp, (tuple, list)) or len(stamp) != 3:
        return None
    try:
        h, m, s = (_number(v) for v in stamp)
        year, month, day_of_month = (int(g) for g in date.groups())
        day = datetime(year, month, day_of_month, tzinfo=timezone.utc)
        moment = timedelta(hours=h, minutes=m, seconds=s)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if not timedelta(0) <= moment < timedelta(days=1, seconds=1):
        return None
    return day + moment


def _offset(value: object) -> tuple[timedelta, str | None]:
    m = _OFFSET_RE.match(_text(value))
    if m is None:
        return timedelta(0), None
    if m.group(1):
        return timedelta(0), "+00:00"
    hours, minutes = int(m.group(3)), int(m.group(4))
    if hours > 14 or minutes >= 60:
        return timedelta(0), None
    sign = -1 if m.group(2) == "-" else 1
    return sign * timedelta(hours=hours, minutes=minutes), f"{m.group(2)}{hours:02d}:{minutes:02d}"


def _text(value: object) -> str:
    """EXIF ASCII as clean text: bytes decoded, NULs and surrounding spaces dropped."""
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return _text(value[0]) if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "").strip()


def _number(value: object) -> float:
    """Read a rational (Pillow's IFDRational, a raw (num, den) pair) or number as float."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        num, den = float(value[0]), float(value[1])
        return num / den if den else math.nan
    if isinstance(value, (int, float)):
        return float(value)
    return float(value)  # type: ignore[arg-type]  # IFDRational and other numbers


def _int(value: object) -> int | None:
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value[0] if value else None
    try:
        return int(value) if value is not None else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _positive(value: object, *, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    try:
        number = _number(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        return None
    return number

"""Vectorised parsing of iNaturalist date strings into UTC timestamps."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.typing import IntArray

__all__ = ["num_at", "parse_timestamps"]

_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
_MAX_OFFSET_S = 18 * 3600
_FALLBACK_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d", "%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S %Z")


def parse_timestamps(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, int, int]:
    """Parse iNaturalist date strings into UTC timestamps, vectorised.

    Accepted: ``YYYY-MM-DD``, then optionally ``[ T]hh:mm[:ss[.ffffff]]``, then optionally a
    zone ``Z``, ``+hh``, ``+hhmm``, ``+hh:mm`` or ``+hh:mm:ss`` (any offset up to 18 hours;
    a date without zone is UTC, a date alone is 00:00 UTC); also ``YYYY/MM/DD`` and EXIF-style
    ``YYYY:MM:DD hh:mm:ss``. Anything else, or an impossible date, gives null.

    Returns
    -------
    timestamps : pyarrow.Array
        ``timestamp[us, tz=UTC]``, null where the input is null, empty or unparseable.
    missing : int
        How many inputs were null or empty.
    unparseable : int
        How many non-empty inputs could not be parsed.

    Examples
    --------
    >>> ts, missing, bad = parse_timestamps(pa.array(
    ...     ["2017-05-01 10:23:00+00:00", "2011-06-03 08:32:21", "2010-07-17",
    ...      "2012-01-01 05:00:00-05:30", "31/12/2010", None]))
    >>> [t.isoformat() if t else None for t in ts.to_pylist()]  # doctest: +NORMALIZE_WHITESPACE
    ['2017-05-01T10:23:00+00:00', '2011-06-03T08:32:21+00:00', '2010-07-17T00:00:00+00:00',
     '2012-01-01T10:30:00+00:00', None, None]
    >>> missing, bad
    (1, 1)
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    values = values.cast(pa.string())
    if len(values) and _has_outer_space(values):
        values = pc.utf8_trim_whitespace(values)
    n = len(values)
    valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    offsets_buf, data_buf = values.buffers()[1], values.buffers()[2]
    offsets = np.frombuffer(offsets_buf, np.int32)[values.offset : values.offset + n + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    data = np.concatenate((data, np.zeros(64, np.uint8)))
    start = offsets[:-1].astype(np.int64)
    length = (offsets[1:] - offsets[:-1]).astype(np.int64)
    length[~valid] = 0
    missing = int(np.count_nonzero(length == 0))

    def ch(k: int | IntArray) -> IntArray:
        out: IntArray = data[start + k].astype(np.int64)
        return out

    def num(k: int, width: int) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        return num_at(data, start + k, width)

    year, ok = num(0, 4)
    month, g = num(5, 2)
    ok &= g & (ch(4) == 0x2D) & (ch(7) == 0x2D) & (length >= 10)
    day, g = num(8, 2)
    ok &= g
    sep = ch(10)
    has_time = (length >= 16) & ((sep == 0x20) | (sep == 0x54))
    hour, g1 = num(11, 2)
    minute, g2 = num(14, 2)
    ok &= ~has_time | (g1 & g2 & (ch(13) == 0x3A))
    has_sec = has_time & (length >= 19) & (ch(16) == 0x3A)
    second, g = num(17, 2)
    ok &= ~has_sec | g
    rest = np.where(has_sec, 19, np.where(has_time, 16, 10))
    # fractional seconds: '.' then digits
    frac_us = np.zeros(n, np.int64)
    has_frac = (length > rest) & (data[start + rest] == 0x2E)
    if has_frac.any():
        cursor = rest + 1
        digits = np.zeros(n, np.int64)
        scale = np.full(n, 100_000, np.int64)
        for _ in range(9):
            d = data[start + cursor].astype(np.int64) - 48
            more = has_frac & (cursor < length) & (d >= 0) & (d <= 9)
            frac_us += np.where(more & (scale > 0), d * scale, 0)
            scale = np.where(more, scale // 10, scale)
            cursor = np.where(more, cursor + 1, cursor)
            digits += more
        ok &= ~has_frac | (digits > 0)
        rest = np.where(has_frac, cursor, rest)
    tail = length - rest
    tz_char = data[start + rest].astype(np.int64)
    signed = (tz_char == 0x2B) | (tz_char == 0x2D)
    sign = np.where(tz_char == 0x2D, -1, 1)
    oh, gh = num_at(data, start + rest + 1, 2)
    om_colon, gm_colon = num_at(data, start + rest + 4, 2)
    om_plain, gm_plain = num_at(data, start + rest + 3, 2)
    os_, gs = num_at(data, start + rest + 7, 2)
    colon1 = data[start + rest + 3] == 0x3A
    colon2 = data[start + rest + 6] == 0x3A
    offset_s = np.zeros(n, np.int64)
    zone_ok = tail == 0
    zone_ok |= (tail == 1) & ((tz_char == 0x5A) | (tz_char == 0x7A))
    hh = signed & (tail == 3) & gh
    hhmm = signed & (tail == 5) & gh & gm_plain
    hh_mm = signed & (tail == 6) & gh & colon1 & gm_colon
    hh_mm_ss = signed & (tail == 9) & gh & colon1 & gm_colon & colon2 & gs
    offset_s = np.where(hh, oh * 3600, offset_s)
    offset_s = np.where(hhmm, oh * 3600 + om_plain * 60, offset_s)
    offset_s = np.where(hh_mm | hh_mm_ss, oh * 3600 + om_colon * 60, offset_s)
    offset_s = np.where(hh_mm_ss, offset_s + os_, offset_s)
    offset_s *= sign
    zone_ok |= hh | hhmm | hh_mm | hh_mm_ss
    ok &= zone_ok & (np.abs(offset_s) <= _MAX_OFFSET_S)
    ok &= ((om_colon < 60) | ~(hh_mm | hh_mm_ss)) & ((om_plain < 60) | ~hhmm)
    hour = np.where(has_time, hour, 0)
    minute = np.where(has_time, minute, 0)
    second = np.where(has_sec, second, 0)
    ok &= (month >= 1) & (month <= 12) & (year >= 1) & (hour < 24) & (minute < 60)
    ok &= second < 60
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_c = np.clip(month, 1, 12)
    dim = _DAYS_IN_MONTH[month_c - 1]
    dim = np.where((month_c == 2) & leap, 29, dim)
    ok &= (day >= 1) & (day <= dim)
    ok &= length > 0
    days = _days_from_civil(
        np.where(ok, year, 1970), np.where(ok, month_c, 1), np.where(ok, day, 1)
    )
    micros = ((days * 24 + hour) * 60 + minute) * 60 + second - offset_s
    micros = micros * 1_000_000 + frac_us
    # the rare layouts the vector path does not know: try Python, row by row
    retry = np.flatnonzero(~ok & (length > 0))
    good = ok.copy()
    if retry.size:
        texts = values.take(pa.array(retry)).to_pylist()
        for i, text in zip(retry.tolist(), texts, strict=True):
            parsed = _parse_one(text)
            if parsed is not None:
                micros[i] = parsed
                good[i] = True
    unparseable = int(np.count_nonzero(~good & (length > 0)))
    result = pa.array(micros, pa.int64(), mask=~good).cast(pa.timestamp("us", tz="UTC"))
    return result, missing, unparseable


def _has_outer_space(values: pa.Array) -> bool:
    """Whether any string starts or ends with white space (checked on the raw buffers)."""
    offsets = np.frombuffer(values.buffers()[1], np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    data_buf = values.buffers()[2]
    if data_buf is None or not len(data_buf):
        return False
    data = np.frombuffer(data_buf, np.uint8)
    nonempty = offsets[1:] > offsets[:-1]
    first = data[offsets[:-1][nonempty]]
    last = data[offsets[1:][nonempty] - 1]
    space = np.zeros(256, bool)
    space[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20]] = True
    return bool(space[first].any() or space[last].any())


def num_at(
    data: npt.NDArray[np.uint8], at: IntArray, width: int
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Read ``width`` decimal digits at each offset of ``at``; also say where all are digits."""
    total = np.zeros(at.shape, np.int64)
    good = np.ones(at.shape, bool)
    for j in range(width):
        d = data[np.minimum(at + j, data.size - 1)].astype(np.int64) - 48
        good &= (d >= 0) & (d <= 9)
        total = total * 10 + d
    return total, good


def _days_from_civil(y: IntArray, m: IntArray, d: IntArray) -> IntArray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    result: IntArray = era * 146097 + doe - 719468
    return result


def _parse_one(text: str) -> int | None:
    """Parse one date the vector path refused; microseconds since the epoch, or None."""
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _FALLBACK_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    offset = parsed.utcoffset()
    if offset is not None and abs(offset.total_seconds()) > _MAX_OFFSET_S:
        return None
    try:
        delta = parsed - datetime(1970, 1, 1, tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        return None
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds

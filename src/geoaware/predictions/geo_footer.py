"""Summary blocks at the end of published per-image result files: found, read, compared.

Peer projects publish one row per image followed by a summary of the whole file, e.g. the
GeoEstimation layout::

    img_id,gt_lat,predicted_lat,gt_long,predicted_long,great_circle_distance
    <photo>.jpg,37.31,43.66,-121.95,-79.41,3624.88
    ...
                                             (a blank line, or none)
    street acc (1km),city acc (25km),region acc (200km),country acc (750km),...
    0.17,0.43,0.52,0.67,0.80,1732.9

Only the last lines of the file are looked at (a summary is a few lines), so the cost does
not grow with the file. A trailing block is a summary when it follows a blank line or a row of
names (no cell a number) and its rows are names, numbers, ``name,value`` pairs or rows with
another number of fields than the header. The block is cut off before the rows are parsed, so
its values never count as predictions, however they parse.

Its figures are read by name: ``... (1km)`` / ``acc@25 km`` is the accuracy at that distance,
``mean ...`` and ``median ...`` (deviation, error, distance) the mean and median error in km,
``geoscore`` the mean GeoScore, ``n`` / ``count`` / ``images`` the number of images.
Accuracies are fractions or percentages: a cell ending in ``%``, or any accuracy above 1,
makes them percentages.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Footer", "PublishedSummary", "compare_summary", "split_footer"]

MAX_FOOTER_LINES = 20
"""The most lines a summary block may have."""
_TAIL_BYTES = 1 << 16
_KM = re.compile(r"(\d+(?:\.\d+)?)\s*km", re.IGNORECASE)
_ACC_TOL = 5e-4
_KM_TOL = 0.05


@dataclass
class PublishedSummary:
    """The figures a file's own summary block states.

    Attributes
    ----------
    values : dict
        Our key (``acc_25km``, ``mean_km``, ``median_km``, ``geoscore``, ``n``) -> value, with
        accuracies as fractions 0..1.
    labels : dict
        Our key -> the name as written in the file.
    decimals : dict
        Our key -> decimals written (the precision a comparison can expect).
    scale : str
        ``fraction`` or ``percent``: how the file wrote its accuracies.
    unread : list of str
        Names in the block that geoaware does not know.
    """

    values: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    decimals: dict[str, int] = field(default_factory=dict)
    scale: str = "fraction"
    unread: list[str] = field(default_factory=list)


@dataclass
class Footer:
    """A summary block cut from the end of a file.

    Attributes
    ----------
    rows : int
        Non-blank lines in the block.
    first_line : int
        File line (1-based) where the block starts.
    reason : str
        Why it was taken as a summary.
    summary : PublishedSummary or None
        Its figures, when it names any that geoaware computes.
    """

    rows: int
    first_line: int
    reason: str
    summary: PublishedSummary | None = None


def _cells(line: str) -> list[str]:
    return [c.strip().strip('"').strip() for c in line.split(",")]


def _number(cell: str) -> float | None:
    text = cell.strip().rstrip("%").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _is_blank(line: str) -> bool:
    return not line.replace(",", "").strip()


def _is_names(cells: list[str]) -> bool:
    filled = [c for c in cells if c]
    return len(filled) >= 1 and all(_number(c) is None for c in filled)


def _is_numbers(cells: list[str]) -> bool:
    filled = [c for c in cells if c]
    return bool(filled) and all(_number(c) is not None for c in filled)


def _is_pair(cells: list[str]) -> bool:
    filled = [c for c in cells if c]
    return len(filled) == 2 and _number(filled[0]) is None and _number(filled[1]) is not None


def _summary_like(cells: list[str], n_fields: int) -> bool:
    return _is_names(cells) or _is_numbers(cells) or _is_pair(cells) or len(cells) != n_fields


def split_footer(data: bytes) -> tuple[bytes, Footer | None]:
    r"""Cut a trailing summary block off a CSV's bytes; return the rows' bytes and the block.

    Parameters
    ----------
    data
        The whole file (header on the first line). Line endings may be ``\n`` or ``\r\n``.

    Returns
    -------
    (bytes, Footer or None)
        The file up to the block (unchanged when there is none), and the block.

    Examples
    --------
    >>> body, footer = split_footer(
    ...     b"img_id,gt_lat,gt_long,predicted_lat,predicted_long\n"
    ...     b"a.jpg,1,2,1,2\n\nstreet acc (1km),mean deviation (km)\n0.5,12.5\n")
    >>> body.count(b"\n"), footer.rows, footer.summary.values
    (2, 2, {'acc_1km': 0.5, 'mean_km': 12.5})
    """
    head_end = data.find(b"\n")
    if head_end < 0:
        return data, None
    n_fields = len(_cells(data[:head_end].decode("utf-8", "replace")))
    start = max(head_end + 1, len(data) - _TAIL_BYTES)
    if start > head_end + 1:  # begin at a line start
        start = data.find(b"\n", start - 1) + 1 or len(data)
    tail = data[start:].decode("utf-8", "replace")
    lines = tail.split("\n")
    offsets = [start]
    for line in lines[:-1]:
        offsets.append(offsets[-1] + len(line.encode("utf-8", "replace")) + 1)
    lines = [line.rstrip("\r") for line in lines]
    end = len(lines)
    while end and _is_blank(lines[end - 1]):
        end -= 1
    if end == 0:
        return data, None
    cut: int | None = None
    reason = ""
    seen = 0
    i = end - 1
    while i >= 0 and seen <= MAX_FOOTER_LINES:
        line = lines[i]
        if _is_blank(line):
            block = [_cells(x) for x in lines[i + 1 : end] if not _is_blank(x)]
            marked = any(_is_names(c) or _is_pair(c) or len(c) != n_fields for c in block)
            if block and marked and all(_summary_like(c, n_fields) for c in block):
                cut, reason = i, "after a blank line"
            break
        cells = _cells(line)
        if not _summary_like(cells, n_fields):
            break
        if _is_names(cells) and len([c for c in cells if c]) >= 2 and i < end - 1:
            cut, reason = i, "introduced by a row of names"
        seen += 1
        i -= 1
    if cut is None:
        return data, None
    first_body = cut
    while first_body > 0 and _is_blank(lines[first_body - 1]):
        first_body -= 1
    first = cut
    while _is_blank(lines[first]):
        first += 1
    block_lines = [x for x in lines[first:end] if not _is_blank(x)]
    byte_cut = offsets[first_body]
    footer = Footer(
        rows=len(block_lines),
        first_line=data[: offsets[first]].count(b"\n") + 1,
        reason=f"a summary block {reason}",
        summary=_read_summary([_cells(x) for x in block_lines]),
    )
    return data[:byte_cut], footer


def _pairs(block: list[list[str]]) -> list[tuple[str, str]]:
    """(name, value text) pairs: a names row over a numbers row, or ``name,value`` rows."""
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(block):
        cells = block[i]
        if _is_pair(cells):
            filled = [c for c in cells if c]
            pairs.append((filled[0], filled[1]))
        elif _is_names(cells) and i + 1 < len(block) and _is_numbers(block[i + 1]):
            pairs.extend(
                (name, value)
                for name, value in zip(cells, block[i + 1], strict=False)
                if name and value
            )
            i += 1
        i += 1
    return pairs


def _key(name: str) -> str | None:
    low = name.lower()
    km = _KM.search(low)
    if "median" in low:
        return "median_km"
    if re.search(r"\b(mean|avg|average)\b", low) and re.search(r"dev|err|dist|km", low):
        return "mean_km"
    if "geoscore" in low or re.fullmatch(r"\s*score\s*", low):
        return "geoscore"
    if km and ("acc" in low or "@" in low or re.search(r"street|city|region|country|contin", low)):
        return f"acc_{float(km.group(1)):g}km"
    if re.fullmatch(r"\s*(n|count|images|num\w*)\s*", low):
        return "n"
    return None


def _decimals(text: str) -> int:
    text = text.strip().rstrip("%").strip().lower()
    if "e" in text:
        return 6
    return len(text.split(".", 1)[1]) if "." in text else 0


def _read_summary(block: list[list[str]]) -> PublishedSummary | None:
    out = PublishedSummary()
    percent_cells = False
    for name, text in _pairs(block):
        key = _key(name)
        value = _number(text)
        if key is None or value is None:
            out.unread.append(name)
            continue
        out.values[key] = value
        out.labels[key] = name
        out.decimals[key] = _decimals(text)
        if key.startswith("acc_") and text.strip().endswith("%"):
            percent_cells = True
    if not out.values:
        return None
    accs = [k for k in out.values if k.startswith("acc_")]
    if percent_cells or any(out.values[k] > 1.0 for k in accs):
        out.scale = "percent"
        for k in accs:
            out.values[k] /= 100.0
            out.decimals[k] += 2
    return out


def compare_summary(published: PublishedSummary, ours: dict[str, Any]) -> dict[str, Any]:
    """Set the file's own summary beside geoaware's figures.

    Each figure agrees when it is within the accepted tolerance (accuracies 5e-4, kilometres
    0.05 km, ``n`` exactly) or within half a unit of the last digit the file wrote.

    Returns
    -------
    dict
        ``rows`` (each: measure, label, published, ours, difference, tolerance, agrees),
        ``agrees`` (all rows do), ``largest_difference`` (the row furthest off, relative to its
        tolerance), ``scale`` and ``unread`` names.

    Examples
    --------
    >>> s = PublishedSummary({"acc_1km": 0.17}, {"acc_1km": "street acc (1km)"}, {"acc_1km": 2})
    >>> c = compare_summary(s, {"acc_1km": 0.1688})
    >>> c["agrees"], round(c["rows"][0]["difference"], 4)
    (True, -0.0012)
    """
    rows: list[dict[str, Any]] = []
    for key, value in published.values.items():
        if key not in ours or ours[key] is None:
            continue
        mine = float(ours[key])
        digits = published.decimals.get(key, 6)
        half_unit = 0.5 * 10.0 ** (-digits) + 1e-12
        if key == "n":
            tol = 0.0
        elif key.startswith("acc_"):
            tol = max(_ACC_TOL, half_unit)
        else:
            tol = max(_KM_TOL, half_unit)
        diff = mine - value
        rows.append(
            {
                "measure": key,
                "label": published.labels.get(key, key),
                "published": value,
                "ours": mine,
                "difference": diff,
                "tolerance": tol,
                "agrees": bool(abs(diff) <= tol),
            }
        )
    largest = max(
        rows,
        key=lambda r: (
            abs(r["difference"]) / r["tolerance"]
            if r["tolerance"]
            else (math.inf if r["difference"] else 0.0)
        ),
        default=None,
    )
    return {
        "rows": rows,
        "agrees": all(r["agrees"] for r in rows),
        "largest_difference": largest,
        "scale": published.scale,
        "unread": list(published.unread),
    }

"""Evaluation figures and the one-file HTML report of a run folder.

:mod:`geoaware.report.plots` draws error CDFs, error maps and per-group accuracy bars as PNGs;
:mod:`geoaware.report.html` reads a run folder's evaluation files and writes one self-contained
HTML page. matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

from geoaware.report.html import (
    EvaluationRun,
    ResultTable,
    build_report,
    format_value,
    read_run,
    read_runs,
)
from geoaware.report.plots import empirical_cdf, error_cdf, error_map, group_bars

__all__ = [
    "EvaluationRun",
    "ResultTable",
    "build_report",
    "empirical_cdf",
    "error_cdf",
    "error_map",
    "format_value",
    "group_bars",
    "read_run",
    "read_runs",
]

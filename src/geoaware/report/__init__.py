"""Evaluation figures and the one-file HTML report of a run folder.

:mod:`geoaware.report.plots` draws error CDFs, error maps and per-group accuracy bars as PNGs;
:mod:`geoaware.report.html` reads a run folder's evaluation files and writes one self-contained
HTML page. matplotlib is imported only when a figure is drawn, and the names load on first use.
"""

from typing import TYPE_CHECKING

from geoaware.lazy import lazy_exports

if TYPE_CHECKING:
    from geoaware.report.html import EvaluationRun as EvaluationRun
    from geoaware.report.html import ResultTable as ResultTable
    from geoaware.report.html import build_report as build_report
    from geoaware.report.html import format_value as format_value
    from geoaware.report.html import read_run as read_run
    from geoaware.report.html import read_runs as read_runs
    from geoaware.report.plots import empirical_cdf as empirical_cdf
    from geoaware.report.plots import error_cdf as error_cdf
    from geoaware.report.plots import error_map as error_map
    from geoaware.report.plots import group_bars as group_bars

_EXPORTS = {
    "EvaluationRun": "html",
    "ResultTable": "html",
    "build_report": "html",
    "empirical_cdf": "plots",
    "error_cdf": "plots",
    "error_map": "plots",
    "format_value": "html",
    "group_bars": "plots",
    "read_run": "html",
    "read_runs": "html",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

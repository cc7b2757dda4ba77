"""MkDocs hook: pages may hold ``{{ published_results }}``, replaced by the package's table.

The table of published results lives in the package (``geoaware.evaluate.reference``); the
documentation shows that same file, so the two never disagree.
"""

from __future__ import annotations

from typing import Any

MARKER = "{{ published_results }}"


def _cell(value: Any, percent: bool) -> str:
    if value is None:
        return ""
    return f"{100 * value:.2f}".rstrip("0").rstrip(".") if percent else f"{value:g}"


def published_results_markdown() -> str:
    """Return the published-results table as Markdown, one section per test set."""
    from geoaware.evaluate.reference import (
        CLASSIFY_DATASETS,
        CLASSIFY_METRICS,
        GEO_DATASETS,
        GEO_METRICS,
        published_results,
    )

    rows = published_results()
    parts = []
    for dataset in (*GEO_DATASETS, *CLASSIFY_DATASETS):
        mine = [r for r in rows if r["dataset"] == dataset]
        if not mine:
            continue
        metrics = GEO_METRICS if dataset in GEO_DATASETS else CLASSIFY_METRICS
        shown = [m for m in metrics if any(r.get(m) is not None for r in mine)]
        header = ["method", *shown, "source"]
        lines = [f"### {dataset}", "", "| " + " | ".join(header) + " |",
                 "|" + "---|" * len(header)]  # fmt: skip
        for r in mine:
            cells = [_cell(r.get(m), m.endswith("acc") or m.startswith("acc_")) for m in shown]
            lines.append("| " + " | ".join([r["method"], *cells, r["source"]]) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the marker with the table (MkDocs calls this for every page)."""
    if MARKER in markdown:
        return markdown.replace(MARKER, published_results_markdown())
    return markdown

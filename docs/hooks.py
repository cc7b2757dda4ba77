"""MkDocs hook: pages may hold ``{{ published_results }}``, replaced by the package's table.

The table of published results lives in the package (``geoaware.evaluate.reference``); the
documentation shows that same file, so the two never disagree.
"""

from __future__ import annotations

from typing import Any

MARKER = "{{ published_results }}"
BENCHMARKS = "{{ readme_benchmarks }}"


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


def readme_section(title: str) -> str:
    """Return the body of the README's ``## title`` section (the latest measured figures)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}\n") + len(f"## {title}\n")
    end = text.find("\n## ", start)
    return text[start : end if end != -1 else None].strip()


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the markers with the tables (MkDocs calls this for every page)."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, published_results_markdown())
    if BENCHMARKS in markdown:
        markdown = markdown.replace(BENCHMARKS, readme_section("Benchmarks"))
    return markdown

"""One self-contained HTML report of a run folder: summary tables, per-run tables and figures.

A run folder holds one ``<name>.<kind>.json`` file per evaluation, in the format that
:mod:`geoaware.runs` owns (its readers and the summary keys of each kind are re-exported
here), plus the PNG files they list. The report shows whatever summary keys are there (geo:
``n, acc_1km, acc_25km, acc_200km, acc_750km, acc_2500km, median_km, mean_km, geoscore,
skipped_rows`` by default; classify: ``n, top1_error, top5_error, top1_acc, top5_acc,
mean_per_class_acc, ...``). :func:`read_runs` reads and checks the files; :func:`build_report`
writes one HTML file that needs nothing else to be read offline: the CSS is inline, the images
are embedded as base64 ``data:`` URIs, and there are no scripts, fonts or outside links.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import orjson

from geoaware import package_version
from geoaware.errors import InputFileError
from geoaware.fileio import atomic_write_text
from geoaware.outputs import MANIFEST_NAME, read_manifest
from geoaware.runs import (
    CLASSIFY_SUMMARY_KEYS,
    CONTRACT_KEYS,
    FEDERATED_SUMMARY_KEYS,
    GEO_SUMMARY_KEYS,
    KINDS,
    REQUIRED_SUMMARY_KEYS,
    SUMMARY_KEYS,
    EvaluationRun,
    ResultTable,
    read_run,
    read_runs,
    scan_runs,
)
from geoaware.typing import PathLike

__all__ = [
    "CLASSIFY_SUMMARY_KEYS",
    "CONTRACT_KEYS",
    "FEDERATED_SUMMARY_KEYS",
    "GEO_SUMMARY_KEYS",
    "REQUIRED_SUMMARY_KEYS",
    "EvaluationRun",
    "ResultTable",
    "build_report",
    "format_value",
    "read_run",
    "read_runs",
]

_RECALL = re.compile(r"(?:i2t|t2i)_r\d+|mean_recall")
_ACC_KM = re.compile(r"acc_(\d+(?:\.\d+)?)km")
_SCALES = {1.0: "street", 25.0: "city", 200.0: "region", 750.0: "country", 2500.0: "continent"}
_KIND_TITLES = {
    "catalog": "Catalogs",
    "split": "Splits and their leakage",
    "prior": "Geographic priors",
    "geo": "Geolocation",
    "classify": "Classification",
    "zeroshot": "Zero-shot classification",
    "retrieval": "Image-text retrieval",
    "federated": "Federated training",
}
_NOTES = {
    "catalog": "Rows of the catalog, its labels and located rows, and the rows that validation "
    "flagged as errors and warnings.",
    "split": "Each split's train and test rows and what crosses between them.",
    "prior": "Location-only top-k accuracy: share of test points whose species is among the k "
    "species the prior ranks highest at that place.",
    "geo": "Accuracy: share of images whose predicted location is within that distance of the "
    "truth. GeoScore: mean per-image score, 0 to 5000 (higher is better).",
    "classify": "Top-k accuracy: share of images whose true label is among the k best-scored "
    "labels; error = 1 - accuracy.",
    "zeroshot": "Top-k accuracy: share of images whose class is among the k classes whose "
    "prompt-averaged text vectors are closest.",
    "retrieval": "Recall@k: share of image queries with one of their captions among the k best "
    "captions (image to text), and of caption queries with their image among the k best images "
    "(text to image); mean recall averages them.",
    "federated": "FedAvg over the clients of a partition against the same model trained centrally "
    "on the union of their training rows for the same epochs; top-k accuracy on held-out rows "
    "after the last round; fed − central is what federation costs (negative: federated is "
    "behind), in percentage points; the baselines are those of `prior eval`, fitted on the "
    "same rows. Each run's section has its accuracy by round and its client sizes.",
}
_HEADERS: dict[str, tuple[str, str]] = {  # key -> (label, second line)
    "n": ("images", ""),
    "median_km": ("median error", "km"),
    "mean_km": ("mean error", "km"),
    "geoscore": ("GeoScore", "0-5000"),
    "skipped_rows": ("skipped rows", ""),
    "top1_acc": ("top-1", "accuracy"),
    "top5_acc": ("top-5", "accuracy"),
    "top1_error": ("top-1", "error"),
    "top5_error": ("top-5", "error"),
    "mean_per_class_acc": ("per-class", "mean accuracy"),
    **{
        f"{d}_r{k}": (name, f"R@{k}")
        for d, name in (("i2t", "image→text"), ("t2i", "text→image"))
        for k in (1, 5, 10)
    },
    "mean_recall": ("mean", "recall"),
    "classes": ("classes", ""),
    "templates": ("prompts", "per class"),
    "captions": ("captions", ""),
    "unlabelled": ("unlabelled", "truth rows"),
    "truth_without_embedding": ("no vector", "truth rows"),
    "embeddings_without_truth": ("no truth", "vectors"),
    "images_without_embedding": ("no vector", "images"),
    "embeddings_without_caption": ("no caption", "vectors"),
    "empty_captions": ("empty", "captions"),
    "fed_top1_acc": ("federated", "top-1"),
    "central_top1_acc": ("centralised", "top-1"),
    "fed_top5_acc": ("federated", "top-5"),
    "central_top5_acc": ("centralised", "top-5"),
    "best_baseline_top5_acc": ("best baseline", "top-5"),
    "fed_minus_central_top1_acc": ("fed − central", "top-1, points"),
    "fed_minus_central_top5_acc": ("fed − central", "top-5, points"),
    "median_client": ("median client", "training rows"),
    "largest_client": ("largest client", "training rows"),
}
_LONG_TABLE_ROWS = 25


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_float(value: object) -> float | None:
    """Return the value as a finite float, or None for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# ----------------------------------------------------------------------------------------------
# Formatting


def _is_percent(column: str) -> bool:
    c = column.lower()
    if c.endswith("_km"):
        return False
    return (
        c.startswith(("acc_", "acc@"))
        or c.endswith(("_acc", "_error", "accuracy", "_rate"))
        or c in ("rate", "share", "fraction")
        or _RECALL.fullmatch(c) is not None
    )


def format_value(column: str, value: object) -> str:
    """Format one summary value or table cell for the report (plain text, not escaped).

    Fractions in accuracy, error and rate columns (names starting ``acc_``; ending ``_acc``,
    ``_error``, ``accuracy`` or ``_rate``; or ``rate``, ``share``, ``fraction``; never ``_km``)
    become percentages with one decimal; integers get
    thousands separators; distances in ``_km`` columns and other floats of 1,000 or more get
    one decimal, smaller floats four significant digits; None and NaN become an en dash.

    Parameters
    ----------
    column
        The column or summary key the value belongs to.
    value
        A JSON value.

    Returns
    -------
    str
        The text shown in the report.

    Examples
    --------
    >>> format_value("acc_25km", 0.4123), format_value("top1_error", 0.25)
    ('41.2%', '25.0%')
    >>> format_value("n", 12345), format_value("median_km", 412.345), format_value("x", 0.123456)
    ('12,345', '412.3', '0.1235')
    >>> format_value("geoscore", 3210.55), format_value("continent", "Europe")
    ('3,210.6', 'Europe')
    >>> format_value("acc_1km", None), format_value("mean_km", float("nan"))
    ('–', '–')
    """
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if _is_percent(column):
            return f"{100 * value:.1f}%"
        if isinstance(value, int):
            return f"{value:,}"
        if column.lower().endswith("_km") or abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    return orjson.dumps(value).decode()


def _better(column: str) -> Literal[1, -1, 0]:
    """Return +1 when higher is better, -1 when lower is better, 0 when neither (counts)."""
    c = column.lower()
    if c.endswith(("_km", "_error")):
        return -1
    if _is_percent(column) or c == "geoscore":
        return 1
    return 0


def _best(column: str, values: Sequence[object]) -> str | None:
    """Return the best value's text, or None where the shown values do not differ."""
    direction = _better(column)
    numbers = [f for f in map(_as_float, values) if f is not None]
    if direction == 0 or len(numbers) < 2:
        return None
    shown = {format_value(column, f) for f in numbers}
    if len(shown) < 2:  # 0.0% against 0.0%: nothing to point out
        return None
    return format_value(column, max(numbers) if direction > 0 else min(numbers))


# ----------------------------------------------------------------------------------------------
# HTML

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1f2328;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 48px; background: #fff;
  min-height: 100vh; box-shadow: 0 0 0 1px #e3e5e8; }
h1 { font-size: 1.75rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 36px 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid #e3e5e8; }
h3 { font-size: 1.05rem; margin: 22px 0 8px; }
.meta, .note, figcaption, footer { color: #59636e; font-size: 0.87rem; }
.meta { margin: 0 0 8px; }
code { font: 0.85em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #f0f1f3; padding: 1px 4px; border-radius: 3px; }
nav ul { margin: 6px 0 0; padding-left: 20px; columns: 2; }
a { color: #0b5cad; text-decoration: none; }
a:hover { text-decoration: underline; }
.badge { display: inline-block; font-size: 0.72rem; font-weight: 600; letter-spacing: 0.04em;
  text-transform: uppercase; padding: 2px 8px; border-radius: 10px; vertical-align: middle;
  margin-left: 8px; }
.badge.geo { background: #dff3e4; color: #1a7f37; }
.badge.classify { background: #ddebff; color: #0b5cad; }
.scroll { overflow: auto; margin: 0 0 6px; border: 1px solid #e3e5e8; border-radius: 6px; }
.scroll.long { max-height: 30em; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem;
  font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0 0 6px; }
th, td { padding: 6px 8px; border-bottom: 1px solid #eceef1; white-space: nowrap; }
th { white-space: normal; }
th .label { white-space: nowrap; }
td.text { white-space: normal; max-width: 24em; overflow-wrap: break-word; }
td.run { min-width: 10em; }
td .sub { display: block; font-size: 0.8em; color: #59636e; overflow-wrap: anywhere; }
th .sub { display: block; font-weight: 400; font-size: 0.8em; color: #59636e; }
thead th { position: sticky; top: 0; background: #f6f8fa; font-weight: 600;
  border-bottom: 1px solid #d0d7de; vertical-align: bottom; }
td.num, th.num { text-align: right; }
td.text, th.text { text-align: left; }
td.na { color: #8c959f; text-align: right; }
tbody tr:nth-child(even) td { background: #fafbfc; }
tbody tr:hover td { background: #f1f6fd; }
td strong { color: #1a7f37; }
.figures { display: grid; grid-template-columns: 1fr; gap: 18px; margin-top: 14px; }
figure { margin: 0; padding: 10px; border: 1px solid #e3e5e8; border-radius: 6px;
  background: #fff; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { margin-top: 6px; text-align: center; }
figcaption .file { display: block; font-size: 0.8em; color: #8c959f; }
.warning { background: #fff4e5; border-left: 4px solid #d97706; padding: 8px 12px;
  color: #6b3d00; border-radius: 4px; }
.warn-mark { color: #b45309; font-size: 0.8em; white-space: nowrap; }
footer { margin-top: 40px; padding-top: 10px; border-top: 1px solid #e3e5e8; }
@media print { body { background: #fff; } main { box-shadow: none; max-width: none; }
  .scroll.long { max-height: none; } section.run { break-before: page; } }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cell(column: str, value: object, best: str | None = None) -> str:
    shown = format_value(column, value)
    text = _esc(shown)
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if missing:
        return f'<td class="na">{text}</td>'
    if _is_number(value):
        if best is not None and shown == best:
            text = f"<strong>{text}</strong>"
        return f'<td class="num">{text}</td>'
    return f'<td class="text">{text}</td>'


def _header(column: str, summary: bool) -> tuple[str, str]:
    """Return a column's label and its second line."""
    if summary and column == "run":
        return ("run", "and its source")
    if column in _HEADERS:
        return _HEADERS[column]
    match = _ACC_KM.fullmatch(column)
    if match:
        d = float(match.group(1))
        return (f"≤ {d:g} km", _SCALES.get(d, "accuracy"))
    # any other key: its first word as the label, the rest below it (no word cut off)
    first, _, rest = column.replace("_", " ").partition(" ")
    return (first, rest)


def _head(columns: Iterable[str], numeric: Mapping[str, bool], summary: bool = False) -> str:
    cells = []
    for c in columns:
        label, sub = _header(c, summary)
        cls = "num" if numeric.get(c, False) else "text"
        sub_html = f'<span class="sub">{_esc(sub)}</span>' if sub else ""
        cells.append(
            f'<th class="{cls}" scope="col" title="{_esc(c)}">'
            f'<span class="label">{_esc(label)}</span>{sub_html}</th>'
        )
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


def _summary_columns(kind: str, summaries: Sequence[Mapping[str, object]]) -> list[str]:
    """Return the keys of any of the summaries, in the report's column order."""
    present: dict[str, None] = {}
    for summary in summaries:
        present.update(dict.fromkeys(summary))
    order = SUMMARY_KEYS[kind]
    acc_at = order.index("acc_1km") if "acc_1km" in order else len(order)

    def rank(item: tuple[int, str]) -> tuple[float, float, int]:
        seen, key = item
        match = _ACC_KM.fullmatch(key) if kind == "geo" else None
        if match:  # every accuracy threshold, by distance, where the default ones go
            return (acc_at, float(match.group(1)), seen)
        if key in order:
            return (order.index(key), 0.0, seen)
        return (len(order), 0.0, seen)

    return [key for _, key in sorted(enumerate(present), key=rank)]


def _summary_section(kind: str, runs: list[tuple[str, EvaluationRun]]) -> str:
    keys = _summary_columns(kind, [run.summary for _, run in runs])
    best = {k: _best(k, [run.summary.get(k) for _, run in runs]) for k in keys}
    header = _head(["run", *keys], dict.fromkeys(keys, True), summary=True)
    body = []
    for anchor, run in runs:
        mark = (
            f' <span class="warn-mark" title="{_esc(" ".join(run.warnings))}">⚠ see warning</span>'
            if run.warnings
            else ""
        )
        cells = [
            f'<td class="text run"><a href="#{anchor}">{_esc(run.name)}</a>{mark}'
            f'<span class="sub">{_esc(run.source)}</span></td>',
            *(_cell(k, run.summary.get(k), best[k]) for k in keys),
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    title = f"{_KIND_TITLES[kind]} runs"
    note = _NOTES[kind]
    return (
        f'<section id="summary-{kind}"><h2>{_esc(title)}</h2>'
        f'<div class="scroll"><table>{header}<tbody>{"".join(body)}</tbody></table></div>'
        f'<p class="note">{_esc(note)} The best value of each column is in bold.</p></section>'
    )


def _table_html(table: ResultTable, max_rows: int | None, source: str) -> str:
    rows = table.rows if max_rows is None else table.rows[:max_rows]
    numeric = {c: any(_is_number(row[j]) for row in rows) for j, c in enumerate(table.columns)}
    body = "".join(
        "<tr>" + "".join(_cell(c, v) for c, v in zip(table.columns, row, strict=True)) + "</tr>"
        for row in rows
    )
    long = " long" if len(rows) > _LONG_TABLE_ROWS else ""
    rows_note = f" ({len(table.rows):,} rows)" if long else ""
    cut = (
        f'<p class="note">The first {len(rows):,} of {len(table.rows):,} rows; the whole table '
        f"is in <code>{_esc(source)}</code>.</p>"
        if len(rows) < len(table.rows)
        else ""
    )
    if not table.rows:
        body = f'<tr><td class="na" colspan="{len(table.columns)}">no rows</td></tr>'
    return (
        f"<h3>{_esc(table.title)}{_esc(rows_note)}</h3>"
        f'<div class="scroll{long}"><table>{_head(table.columns, numeric)}'
        f"<tbody>{body}</tbody></table></div>{cut}"
    )


#: Captions of the figures geoaware writes, by the end of their file name.
_CAPTIONS = {
    "error_cdf": "Share of images whose error is at most each distance (cumulative)",
    "error_map": "Where the test images are, coloured by their error",
    "by_continent": "Accuracy at each distance, by continent of the true location",
    "by_country": "Accuracy at each distance, by country of the true location",
    "samples_per_client": "Images per client",
    "labels_per_client": "Labels per client",
    "accuracy_by_round": "Held-out accuracy after each round, federated beside centralised",
    "client_sizes": "Training rows per client",
}
#: Descriptions by the file name's pattern (``{}``: the part the pattern captured).
_CAPTION_PATTERNS = (
    (re.compile(r"reference_(\w+)"),
     "Accuracy by distance threshold on {}: this run beside the published methods"),
    (re.compile(r"range[-_](.+)"), "Predicted range of {} with its training points"),
    (re.compile(r"leakage[-_](.+)"),
     "Where the {} split leaks: images with a same-outing twin on another side"),
)  # fmt: skip
#: A description by the run's kind, for a figure whose name says nothing known.
_KIND_CAPTIONS = {
    "catalog": "Where the catalog's located images are",
    "split": "Where the split leaks: images with a same-outing twin on another side",
    "prior": "Predicted range with its training points",
}


def figure_caption(figure: Path, run_name: str, kind: str | None = None) -> str:
    """Return a sentence describing a figure from its name (and its run's kind).

    Known endings (``error_map``, ``by_continent``, ...) and patterns (``range-<species>``,
    ``leakage-<split>``, ``reference_<dataset>``) get their description; any other figure of
    a catalog, split or prior run gets its kind's; the rest their file name's words.

    Examples
    --------
    >>> figure_caption(Path("pred.error_map.png"), "pred")
    'Where the test images are, coloured by their error (pred)'
    >>> figure_caption(Path("range-danaus-plexippus.png"), "prior")
    'Predicted range of Danaus plexippus with its training points (prior)'
    >>> figure_caption(Path("map.png"), "fg_geo", "catalog")
    "Where the catalog's located images are (fg_geo)"
    >>> figure_caption(Path("loss_curve.png"), "m")
    'Loss curve (m)'
    """
    stem = figure.stem  # "<run>.<what>" or "<what>"
    what = stem.rsplit(".", 1)[-1]
    text = _CAPTIONS.get(what)
    for pattern, sentence in _CAPTION_PATTERNS:
        match = None if text else pattern.fullmatch(what)
        if match:
            words = match.group(1).replace("-", " ").replace("_", " ").strip()
            if pattern.pattern.startswith("range"):
                words = words.capitalize()  # a binomial: "Danaus plexippus"
            text = sentence.format(words)
    if text is None and kind in _KIND_CAPTIONS:
        text = _KIND_CAPTIONS[kind]
    if text is None:
        text = what.replace("_", " ").replace("-", " ").strip().capitalize()
    return f"{text} ({run_name})"


def run_caption(run: EvaluationRun, figure: Path) -> str:
    """Return the sentence under ``figure``: the run file's own caption, else a description.

    Examples
    --------
    >>> from geoaware.runs import EvaluationRun
    >>> run = EvaluationRun(Path("r/p.geo.json"), "geo", "p", "p.csv", {"n": 1}, (), ())
    >>> run_caption(run, Path("r/p.error_cdf.png"))
    'Share of images whose error is at most each distance (cumulative) (p)'
    """
    own = dict(run.captions)
    for key in (figure.name, str(figure)):
        if key in own:
            return own[key]
    return figure_caption(figure, run.name, run.kind)


def _figure_html(figure: Path, run: EvaluationRun) -> str:
    data = base64.b64encode(figure.read_bytes()).decode("ascii")
    caption = run_caption(run, figure)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(caption)}">'
        f'<figcaption>{_esc(caption)} <span class="file">{_esc(figure.name)}</span>'
        "</figcaption></figure>"
    )


def _run_section(anchor: str, run: EvaluationRun, max_table_rows: int | None) -> str:
    parts = [
        f'<section class="run" id="{anchor}">',
        f'<h2>{_esc(run.name)}<span class="badge {run.kind}">{_esc(run.kind)}</span></h2>',
        f'<p class="meta">source <code>{_esc(run.source)}</code> · file '
        f"<code>{_esc(run.path.name)}</code></p>",
        *(f'<p class="warning"><strong>Warning:</strong> {_esc(w)}</p>' for w in run.warnings),
    ]
    parts.extend(_table_html(t, max_table_rows, run.path.name) for t in run.tables)
    if run.figures:
        parts.append('<div class="figures">')
        parts.extend(_figure_html(f, run) for f in run.figures)
        parts.append("</div>")
    if not run.tables and not run.figures:
        parts.append('<p class="note">This run has no tables or figures.</p>')
    parts.append("</section>")
    return "".join(parts)


def _provenance_section(run_dir: Path) -> str:
    """Return the commands that wrote into the run folder, from its manifest (or "")."""
    doc = read_manifest(run_dir)
    if doc is None:
        return ""
    rows = []
    for entry in doc.get("history") or [doc]:
        inputs = "; ".join(
            f"{i.get('path')}" + (f" (sha256 {i['sha256'][:12]}…)" if i.get("sha256") else "")
            for i in entry.get("inputs", [])
        )
        rows.append(
            f'<tr><td class="text">{_esc(entry.get("time"))}</td>'
            f'<td class="text"><code>{_esc(entry.get("command"))}</code></td>'
            f'<td class="text">{_esc(inputs)}</td></tr>'
        )
    return (
        '<section id="provenance"><h2>Provenance</h2>'
        f'<p class="meta">geoaware {_esc(doc.get("version"))}'
        + (f", git {_esc(doc['git_revision'][:12])}" if doc.get("git_revision") else "")
        + f" · the folder's manifest: <code>{MANIFEST_NAME}</code></p>"
        '<div class="scroll"><table><thead><tr><th class="text">time</th>'
        '<th class="text">command</th><th class="text">inputs</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _unique_names(runs: list[EvaluationRun]) -> list[EvaluationRun]:
    """Rename runs that share a name: ``emb`` becomes ``emb (zeroshot)``, or its file name."""
    from collections import Counter
    from dataclasses import replace

    count = Counter(r.name for r in runs)
    with_kind = Counter(f"{r.name} ({r.kind})" for r in runs)
    named = []
    for r in runs:
        if count[r.name] > 1:
            label = f"{r.name} ({r.kind})"
            r = replace(r, name=label if with_kind[label] == 1 else f"{r.name} ({r.path.name})")
        named.append(r)
    return named


def build_report(
    run_dir: PathLike,
    out_html: PathLike,
    title: str | None = None,
    *,
    max_table_rows: int | None = 1000,
) -> Path:
    """Write one self-contained HTML report of every evaluation in a run folder.

    The report has a title, a table comparing all geolocation runs side by side (one row per
    run; accuracies as percentages, the best value of each column in bold), the same for
    classification runs, then for each run its tables and figures. Images are embedded as
    base64 ``data:`` URIs and the CSS is inline: the file has no scripts, fonts or links to
    anything outside itself, so it can be mailed or opened offline. Every string from the run
    folder is HTML-escaped.

    Parameters
    ----------
    run_dir
        A folder of ``<name>.<kind>.json`` evaluation files (see :func:`read_runs`) and the PNGs
        they list.
    out_html
        The HTML file to write (atomically).
    title
        The report's title; by default ``"Evaluation report: <folder name>"``.
    max_table_rows
        Longer tables show their first rows and say where the whole table is (None: all).

    Returns
    -------
    Path
        ``out_html``.

    Raises
    ------
    InputFileError
        ``run_dir`` is not a folder or holds no evaluation file, or an evaluation file breaks
        the contract (the message names the file and the key).
    ValueError
        ``max_table_rows`` is below 1.

    Examples
    --------
    >>> import tempfile, pathlib, orjson
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> summary = {"n": 2, "acc_1km": 0.5, "acc_25km": 0.5, "acc_200km": 1.0, "acc_750km": 1.0,
    ...            "acc_2500km": 1.0, "median_km": 12.5, "mean_km": 12.5, "geoscore": 4900.1,
    ...            "skipped_rows": 0}
    >>> doc = {"kind": "geo", "name": "m", "source": "im2gps3k", "summary": summary,
    ...        "tables": {"by continent": {"columns": ["continent", "n"], "rows": [["Europe", 2]]}},
    ...        "figures": []}
    >>> _ = (folder / "m.geo.json").write_bytes(orjson.dumps(doc))
    >>> page = build_report(folder, folder / "report.html").read_text()
    >>> "by continent" in page and "50.0%" in page and "4,900.1" in page
    True
    """
    if max_table_rows is not None and max_table_rows < 1:
        raise ValueError(f"max_table_rows must be None or at least 1, but given {max_table_rows}")
    run_dir = Path(run_dir)
    runs, skipped = scan_runs(run_dir)
    if not runs:
        raise InputFileError(
            run_dir,
            "no evaluation results here (expected <name>.<kind>.json files, kind one of "
            f"{', '.join(KINDS)})",
        )
    title = title if title is not None else f"Evaluation report: {run_dir.resolve().name}"
    runs = _unique_names(sorted(runs, key=lambda r: KINDS.index(r.kind)))  # stable sort
    anchored = [(f"run-{i + 1}", run) for i, run in enumerate(runs)]
    by_kind = {k: [(a, r) for a, r in anchored if r.kind == k] for k in KINDS}
    counts = ", ".join(
        f"{len(v)} {_KIND_TITLES[k].lower()} run{'s' if len(v) != 1 else ''}"
        for k, v in by_kind.items()
        if v
    )

    toc = "".join(
        f'<li><a href="#{a}">{_esc(r.name)}</a> <span class="note">({_esc(r.kind)}, '
        f"{_esc(r.source)})</span></li>"
        for a, r in anchored
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<header><h1>{_esc(title)}</h1>",
        f'<p class="meta">{_esc(counts)} from <code>{_esc(run_dir.resolve())}</code></p>',
        "</header>",
        f"<nav><h2>Runs</h2><ul>{toc}</ul></nav>",
    ]
    parts.extend(_summary_section(k, v) for k, v in by_kind.items() if v)
    parts.extend(_run_section(a, r, max_table_rows) for a, r in anchored)
    parts.append(_provenance_section(run_dir))
    skipped_note = (
        " Other JSON files, not evaluation results, were skipped: "
        + ", ".join(p.name for p in skipped)
        + "."
        if skipped
        else ""
    )
    parts.append(
        f"<footer>Generated by geoaware {_esc(package_version())} from "
        f"{len(runs)} evaluation file{'s' if len(runs) != 1 else ''}.{_esc(skipped_note)}"
        "</footer></main></body></html>"
    )
    return atomic_write_text(out_html, "\n".join(parts) + "\n")

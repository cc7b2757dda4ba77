"""The run folder: one ``<name>.<kind>.json`` file per result, the format evaluators write.

Every evaluator (``eval geo``, ``eval classify``, ``eval zeroshot``, ``eval retrieval``), the
demo (catalog, split and prior runs) and the federated simulation write one JSON file per
result into a *run folder*; :mod:`geoaware.report` reads them back and renders one HTML page.
This module owns that format, on the ground floor so that every stage may use it::

    {"kind": "catalog" | "split" | "prior" | "geo" | "classify" | "zeroshot" | "retrieval"
     | "federated", "name": str, "source": str,
     "summary": {key: number or null},
     "tables": {title: {"columns": [str, ...], "rows": [[cell, ...], ...]}},
     "figures": [PNG paths relative to the folder]}

plus the PNG files it lists, and optional keys of the evaluator's (``warnings``, a list of
strings shown above the run's tables; ``captions``, figure path -> a sentence describing it,
without which a figure is described from its name; anything else is kept but not shown).
Only ``n`` is required in a summary: the accuracy thresholds and the top-k are the
evaluator's choice.

:func:`run_document` builds a document, :func:`write_run` writes it atomically
(:mod:`geoaware.fileio`) as ``<name>.<kind>.json``, :func:`read_run` reads and checks one
file and :func:`read_runs` a whole folder. A command that writes into a run folder claims
it first with ``geoaware.outputs.claim_output(folder, "run")`` (a folder of geoaware's is
added to, anything else is refused) and records it afterwards with ``record_output``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from geoaware.errors import InputFileError
from geoaware.fileio import atomic_write_bytes
from geoaware.outputs import MANIFEST_NAME
from geoaware.typing import PathLike

__all__ = [
    "CLASSIFY_SUMMARY_KEYS",
    "CONTRACT_KEYS",
    "FEDERATED_SUMMARY_KEYS",
    "GEO_SUMMARY_KEYS",
    "KINDS",
    "REQUIRED_SUMMARY_KEYS",
    "SUMMARY_KEYS",
    "EvaluationRun",
    "ResultTable",
    "RunKind",
    "kind_from_name",
    "read_run",
    "read_runs",
    "run_document",
    "run_path",
    "scan_runs",
    "write_run",
]

#: The top-level keys of every evaluation file.
CONTRACT_KEYS: tuple[str, ...] = ("kind", "name", "source", "summary", "tables", "figures")
#: The summary keys of a ``geo`` evaluation with the default thresholds, in the report's column
#: order (accuracies are fractions 0 to 1). Other ``acc_<d>km`` keys (other thresholds) are
#: placed among them by distance; any other key follows.
GEO_SUMMARY_KEYS: tuple[str, ...] = (
    "n",
    "acc_1km",
    "acc_25km",
    "acc_200km",
    "acc_750km",
    "acc_2500km",
    "median_km",
    "mean_km",
    "geoscore",
    "skipped_rows",
)
#: The summary keys of a ``classify`` evaluation with ``ks=(1, 5)``, in column order; any other
#: key follows.
CLASSIFY_SUMMARY_KEYS: tuple[str, ...] = (
    "n",
    "top1_error",
    "top5_error",
    "top1_acc",
    "top5_acc",
    "mean_per_class_acc",
)
#: The summary keys of a ``zeroshot`` evaluation (image-text zero-shot classification).
ZEROSHOT_SUMMARY_KEYS: tuple[str, ...] = (
    "n",
    "top1_acc",
    "top5_acc",
    "mean_per_class_acc",
    "classes",
    "templates",
)
#: The summary keys of a ``retrieval`` evaluation (``n``: image queries), in column order.
RETRIEVAL_SUMMARY_KEYS: tuple[str, ...] = (
    "n",
    "captions",
    "i2t_r1",
    "i2t_r5",
    "i2t_r10",
    "t2i_r1",
    "t2i_r5",
    "t2i_r10",
    "mean_recall",
)
#: The summary keys of a ``federated`` run (``geoaware fl simulate --out``; ``n``: held-out
#: rows), in column order: final federated and centralised top-1/top-5, their difference
#: (federated minus centralised, in percentage points: what federation costs), the best
#: baseline, and the clients with the median and largest client's training rows.
FEDERATED_SUMMARY_KEYS: tuple[str, ...] = (
    "n",
    "fed_top1_acc",
    "central_top1_acc",
    "fed_minus_central_top1_acc",
    "fed_top5_acc",
    "central_top5_acc",
    "fed_minus_central_top5_acc",
    "best_baseline_top5_acc",
    "clients",
    "median_client",
    "largest_client",
    "rounds",
)
#: The summary keys every evaluation file must have (thresholds and k are the evaluator's choice).
REQUIRED_SUMMARY_KEYS: tuple[str, ...] = ("n",)
#: The summary keys of the stages before evaluation, as ``geoaware demo`` writes them: a
#: catalog (rows, labels, validation), splits (their leakage side by side) and a prior.
CATALOG_SUMMARY_KEYS: tuple[str, ...] = ("n", "labels", "located", "errors", "warnings")
SPLIT_SUMMARY_KEYS: tuple[str, ...] = ("n", "splits")
PRIOR_SUMMARY_KEYS: tuple[str, ...] = ("n", "top1_acc", "top5_acc", "epochs")
#: What a result is of; its file is ``<name>.<kind>.json``.
RunKind = Literal[
    "catalog", "split", "prior", "geo", "classify", "zeroshot", "retrieval", "federated"
]
KINDS: tuple[RunKind, ...] = (
    "catalog", "split", "prior", "geo", "classify", "zeroshot", "retrieval", "federated",
)  # fmt: skip
#: Each kind's usual summary keys, in the report's column order.
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "catalog": CATALOG_SUMMARY_KEYS,
    "split": SPLIT_SUMMARY_KEYS,
    "prior": PRIOR_SUMMARY_KEYS,
    "geo": GEO_SUMMARY_KEYS,
    "classify": CLASSIFY_SUMMARY_KEYS,
    "zeroshot": ZEROSHOT_SUMMARY_KEYS,
    "retrieval": RETRIEVAL_SUMMARY_KEYS,
    "federated": FEDERATED_SUMMARY_KEYS,
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ResultTable:
    """One table of an evaluation file.

    Attributes
    ----------
    title : str
        The table's title (its key in the file).
    columns : tuple of str
        Column names.
    rows : tuple of tuple
        The cells, one tuple per row, as long as ``columns``.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class EvaluationRun:
    """One checked evaluation file of a run folder.

    Attributes
    ----------
    path : Path
        The JSON file.
    kind : str
        One of :data:`KINDS`: a catalog, a split, a prior, predicted coordinates (geo),
        predicted labels (classify), zero-shot labels, image-text retrieval, or a federated
        training run.
    name : str
        The run's name (the model or prediction file).
    source : str
        What it was evaluated on (the prediction file or benchmark).
    summary : dict
        Key -> number, or None where undefined.
    tables : tuple of ResultTable
        In the file's order.
    figures : tuple of Path
        The PNG files, resolved against the run folder; each exists and is a PNG.
    warnings : tuple of str
        From the file's optional ``warnings`` list: shown above the run's tables and marked
        in the summary (e.g. test photos that sit on training photos).
    captions : tuple of (str, str)
        From the file's optional ``captions`` object (figure file name -> a sentence
        describing it); the report describes figures without one from their kind and name.
    """

    path: Path
    kind: RunKind
    name: str
    source: str
    summary: dict[str, float | int | None]
    tables: tuple[ResultTable, ...]
    figures: tuple[Path, ...]
    warnings: tuple[str, ...] = ()
    captions: tuple[tuple[str, str], ...] = ()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def kind_from_name(path: PathLike) -> str | None:
    """Return the kind a file's name ends in (``<name>.<kind>.json``), or None.

    Examples
    --------
    >>> kind_from_name("runs/m.geo.json"), kind_from_name("runs/config.json")
    ('geo', None)
    """
    path = Path(path)
    for kind in KINDS:
        if path.name.endswith(f".{kind}.json"):
            return kind
    return None


def read_run(path: PathLike) -> EvaluationRun:
    """Read and check one evaluation file against the run-folder contract.

    Parameters
    ----------
    path
        A ``<name>.<kind>.json`` file; its figure paths are resolved against its folder.

    Returns
    -------
    EvaluationRun
        The checked contents.

    Raises
    ------
    InputFileError
        The file is not valid JSON, lacks a key or has a value of the wrong type (the message
        names the file and the key, e.g. ``summary.acc_1km`` or ``figures[0]``), or a figure
        is missing, not a PNG, or outside the folder.

    Examples
    --------
    >>> import tempfile, pathlib, orjson
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> doc = {"kind": "classify", "name": "m", "source": "val.csv", "tables": {},
    ...        "figures": [], "summary": {"n": 10, "top1_error": 0.3, "top5_error": 0.1,
    ...                                   "top1_acc": 0.7, "top5_acc": 0.9,
    ...                                   "mean_per_class_acc": None}}
    >>> _ = (folder / "m.classify.json").write_bytes(orjson.dumps(doc))
    >>> run = read_run(folder / "m.classify.json")
    >>> run.kind, run.name, run.summary["top1_acc"]
    ('classify', 'm', 0.7)
    >>> del doc["source"]
    >>> _ = (folder / "m.classify.json").write_bytes(orjson.dumps(doc))
    >>> read_run(folder / "m.classify.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoaware.errors.InputFileError: ...m.classify.json, field 'source': missing key ...
    """
    path = Path(path)
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputFileError(path, f"cannot read the file ({exc})") from exc
    except orjson.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc})") from exc
    return _check_run(path, doc)


def _check_run(path: Path, doc: object) -> EvaluationRun:
    if not isinstance(doc, dict):
        raise InputFileError(
            path, f"expected a JSON object with keys {list(CONTRACT_KEYS)}, got {type(doc)}"
        )
    for key in CONTRACT_KEYS:
        if key not in doc:
            raise InputFileError(
                path,
                f"missing key (an evaluation file has the keys {', '.join(CONTRACT_KEYS)})",
                field=key,
            )
    kind = doc["kind"]
    if kind not in KINDS:
        raise InputFileError(path, f"kind must be one of {list(KINDS)}, got {kind!r}", field="kind")
    named = kind_from_name(path)
    if named is not None and named != kind:
        raise InputFileError(
            path, f"the file name says {named!r} but the file says {kind!r}", field="kind"
        )
    for key in ("name", "source"):
        if not isinstance(doc[key], str):
            raise InputFileError(path, f"expected a string, got {doc[key]!r}", field=key)

    summary = doc["summary"]
    if not isinstance(summary, dict):
        raise InputFileError(path, f"expected an object, got {type(summary)}", field="summary")
    for key in REQUIRED_SUMMARY_KEYS:
        if key not in summary:
            raise InputFileError(
                path,
                f"missing key (every summary has {', '.join(REQUIRED_SUMMARY_KEYS)}; a {kind} "
                f"summary usually has {', '.join(SUMMARY_KEYS[kind])})",
                field=f"summary.{key}",
            )
    for key, value in summary.items():
        if value is not None and not _is_number(value):
            raise InputFileError(
                path, f"expected a number or null, got {value!r}", field=f"summary.{key}"
            )

    tables_doc = doc["tables"]
    if not isinstance(tables_doc, dict):
        raise InputFileError(path, f"expected an object, got {type(tables_doc)}", field="tables")
    tables = tuple(_check_table(path, title, t) for title, t in tables_doc.items())

    figures_doc = doc["figures"]
    if not isinstance(figures_doc, list):
        raise InputFileError(path, f"expected a list, got {type(figures_doc)}", field="figures")
    figures = tuple(_check_figure(path, i, f) for i, f in enumerate(figures_doc))
    warnings = doc.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise InputFileError(
            path, f"expected a list of strings, got {warnings!r}", field="warnings"
        )
    captions = doc.get("captions", {})
    if not isinstance(captions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in captions.items()
    ):
        raise InputFileError(
            path,
            f"expected an object of figure path -> sentence, got {captions!r}",
            field="captions",
        )
    listed = {f for f in figures_doc if isinstance(f, str)}
    for key in captions:
        if key not in listed:
            raise InputFileError(
                path, f"caption for {key!r}, which is not among the figures", field="captions"
            )

    return EvaluationRun(
        path=path,
        kind=kind,
        name=doc["name"],
        source=doc["source"],
        summary=dict(summary),
        tables=tables,
        figures=figures,
        warnings=tuple(warnings),
        captions=tuple((Path(k).name, v) for k, v in captions.items()),
    )


def _check_table(path: Path, title: str, table: object) -> ResultTable:
    where = f"tables[{title!r}]"
    if not isinstance(table, dict):
        raise InputFileError(path, f"expected an object, got {type(table)}", field=where)
    for key in ("columns", "rows"):
        if key not in table:
            raise InputFileError(
                path, "missing key (a table has columns and rows)", field=f"{where}.{key}"
            )
    columns, rows = table["columns"], table["rows"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InputFileError(path, "expected a list of strings", field=f"{where}.columns")
    if not isinstance(rows, list):
        raise InputFileError(path, "expected a list of rows", field=f"{where}.rows")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise InputFileError(
                path,
                f"expected a list of {len(columns)} cells (one per column), got {row!r}",
                record=i,
                field=f"{where}.rows",
            )
    return ResultTable(str(title), tuple(columns), tuple(tuple(r) for r in rows))


def _check_figure(path: Path, index: int, figure: object) -> Path:
    field = f"figures[{index}]"
    if not isinstance(figure, str) or not figure:
        raise InputFileError(path, f"expected a relative PNG path, got {figure!r}", field=field)
    folder = path.parent.resolve()
    target = (folder / figure).resolve()
    if Path(figure).is_absolute() or not target.is_relative_to(folder):
        raise InputFileError(
            path, f"{figure!r} must be a path inside the run folder {folder}", field=field
        )
    try:
        with target.open("rb") as fh:
            head = fh.read(len(_PNG_SIGNATURE))
    except OSError as exc:
        raise InputFileError(path, f"cannot read figure {figure!r} ({exc})", field=field) from exc
    if head != _PNG_SIGNATURE:
        raise InputFileError(path, f"figure {figure!r} is not a PNG file", field=field)
    return target


def scan_runs(run_dir: PathLike) -> tuple[list[EvaluationRun], list[Path]]:
    """Read every evaluation file of ``run_dir``; also return the other JSON files, skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "config.json").write_text('{"seed": 0}')
    >>> runs, skipped = scan_runs(folder)
    >>> runs, [p.name for p in skipped]
    ([], ['config.json'])
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputFileError(run_dir, "not a folder (expected a run folder of evaluation files)")
    runs: list[EvaluationRun] = []
    skipped: list[Path] = []
    for path in sorted(run_dir.glob("*.json")):
        if not path.is_file() or path.name == MANIFEST_NAME:
            continue
        if kind_from_name(path) is not None:
            runs.append(read_run(path))
            continue
        # Any other JSON is an evaluation file only if it says so; the rest is left alone.
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            skipped.append(path)
            continue
        if isinstance(doc, dict) and doc.get("kind") in KINDS:
            runs.append(_check_run(path, doc))
        else:
            skipped.append(path)
    return runs, skipped


def read_runs(run_dir: PathLike) -> list[EvaluationRun]:
    """Read every evaluation file of a run folder, sorted by file name.

    A ``*.json`` file is an evaluation file when its name ends in ``.<kind>.json`` or its
    top-level ``kind`` is one of :data:`KINDS`; other JSON files (configurations, caches) are
    skipped. Evaluation files are checked with :func:`read_run`, and a bad one stops the
    reading with its error.

    Parameters
    ----------
    run_dir
        The run folder (not searched recursively).

    Returns
    -------
    list of EvaluationRun
        Possibly empty.

    Raises
    ------
    InputFileError
        ``run_dir`` is not a folder, or an evaluation file breaks the contract.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "config.json").write_text('{"seed": 0}')
    >>> read_runs(folder)
    []
    """
    return scan_runs(run_dir)[0]


def run_path(run_dir: PathLike, name: str, kind: str) -> Path:
    """Return where a run folder keeps the result ``name`` of ``kind``: ``<name>.<kind>.json``.

    Examples
    --------
    >>> run_path("runs/exp1", "im2gps3k", "geo").as_posix()
    'runs/exp1/im2gps3k.geo.json'
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    return Path(run_dir) / f"{name}.{kind}.json"


def run_document(
    kind: RunKind,
    name: str,
    source: str,
    summary: Mapping[str, Any],
    tables: Mapping[str, Any] | None = None,
    figures: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Build one result document in the run-folder format (the contract keys first).

    Parameters
    ----------
    kind
        One of :data:`KINDS`.
    name, source
        The run's name (the model or prediction file) and what it was evaluated on.
    summary
        Key -> number or None; ``n`` is required by :func:`read_run`.
    tables
        Title -> ``{"columns": [...], "rows": [[...], ...]}``.
    figures
        PNG paths relative to the run folder.
    **extra
        The evaluator's own keys (``warnings``, ``reference``, ...), after the contract keys.

    Examples
    --------
    >>> doc = run_document("classify", "m", "val.csv", {"n": 3, "top1_acc": 0.5})
    >>> list(doc), doc["kind"]
    (['kind', 'name', 'source', 'summary', 'tables', 'figures'], 'classify')
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    return {
        "kind": kind,
        "name": name,
        "source": source,
        "summary": dict(summary),
        "tables": dict(tables or {}),
        "figures": list(figures),
        **extra,
    }


def write_run(path: PathLike, document: Mapping[str, Any]) -> Path:
    """Write a result document as indented JSON to ``path`` atomically; return the path.

    ``path`` is a ``<name>.<kind>.json`` file (see :func:`run_path`) whose kind is the
    document's; its folder is made if needed. numpy numbers and arrays are written as JSON
    numbers and lists. Claiming the run folder (``geoaware.outputs.claim_output(folder,
    "run")``) is the command's job, before the work starts.

    Raises
    ------
    ValueError
        The document lacks a contract key, its kind is unknown, or the file name names
        another kind.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> doc = run_document("classify", "m", "val.csv", {"n": 3, "top1_acc": 0.5})
    >>> read_run(write_run(run_path(folder, "m", "classify"), doc)).summary
    {'n': 3, 'top1_acc': 0.5}
    """
    path = Path(path)
    missing = [k for k in CONTRACT_KEYS if k not in document]
    if missing:
        raise ValueError(f"a run document needs the keys {list(CONTRACT_KEYS)}; missing {missing}")
    kind = document["kind"]
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    named = kind_from_name(path)
    if named is not None and named != kind:
        raise ValueError(f"{path}: the file name says {named!r} but the document says {kind!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    return atomic_write_bytes(path, data + b"\n")

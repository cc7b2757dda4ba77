"""The run document of a federated simulation, for ``geoaware report``.

:func:`write_federated_run` writes ``<name>.federated.json`` into a run folder through
:mod:`geoaware.runs` (:func:`~geoaware.runs.run_document`, :func:`~geoaware.runs.write_run`)
with two PNG figures: accuracy by round (federated against centralised, with the best baseline
as a line) and the distribution of client sizes
(:func:`geoaware.construct.stats.client_histogram`, titled with the partition scheme). The
full simulation report, with every setting, is kept under the extra key ``simulation`` so the
run can be redone.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from geoaware.runs import run_document, run_path, write_run
from geoaware.typing import PathLike

__all__ = ["federated_document", "write_federated_run"]

_ROUND_COLUMNS = [
    "round",
    "fed_top1_acc",
    "central_top1_acc",
    "fed_top5_acc",
    "central_top5_acc",
    "client_loss",
]


def federated_document(report: dict[str, Any], name: str) -> dict[str, Any]:
    """Turn a :func:`~geoaware.federated.simulate.simulate_fedavg` report into a run document.

    Examples
    --------
    >>> r = {"rows_heldout": 10, "clients": 2, "rounds": 1, "model": "softmax",
    ...      "partitions": "parts", "client_sizes": [3, 5], "per_round": [{"round": 1,
    ...      "federated_accuracy": 0.5, "centralised_accuracy": 0.6, "federated_top5": 0.7,
    ...      "centralised_top5": 0.8, "train_loss": 1.0}], "baselines": {}}
    >>> d = federated_document(r, "fedavg")
    >>> d["kind"], d["summary"]["fed_top1_acc"], d["tables"]["client sizes"]["rows"][0]
    ('federated', 0.5, ['clients', 2])
    >>> round(d["summary"]["fed_minus_central_top1_acc"], 3), d["summary"]["median_client"]
    (-0.1, 4)
    """
    last = report["per_round"][-1]
    sizes = np.asarray(report["client_sizes"], dtype=np.float64)
    baselines = report.get("baselines", {})
    best = max(baselines.items(), key=lambda kv: kv[1]["top5_acc"], default=None)

    def gap(fed: float | None, central: float | None) -> float | None:
        return None if fed is None or central is None else fed - central

    summary: dict[str, Any] = {
        "n": report["rows_heldout"],
        "fed_top1_acc": last["federated_accuracy"],
        "central_top1_acc": last["centralised_accuracy"],
        "fed_minus_central_top1_acc": gap(last["federated_accuracy"], last["centralised_accuracy"]),
        "fed_top5_acc": last["federated_top5"],
        "central_top5_acc": last["centralised_top5"],
        "fed_minus_central_top5_acc": gap(last["federated_top5"], last["centralised_top5"]),
        "best_baseline_top5_acc": None if best is None else best[1]["top5_acc"],
        "clients": report["clients"],
        "median_client": _whole(float(np.median(sizes))) if sizes.size else None,
        "largest_client": int(sizes.max()) if sizes.size else None,
        "rounds": report["rounds"],
    }
    rounds = [
        [r["round"], r["federated_accuracy"], r["centralised_accuracy"], r["federated_top5"],
         r["centralised_top5"], r["train_loss"]]
        for r in report["per_round"]
    ]  # fmt: skip
    size_rows = [["clients", int(sizes.size)]]
    if sizes.size:
        size_rows += [
            ["smallest", int(sizes.min())],
            ["median", _whole(float(np.median(sizes)))],
            ["mean", float(sizes.mean())],
            ["largest", int(sizes.max())],
            ["empty", int((sizes == 0).sum())],
        ]
    tables = {
        "accuracy by round": {"columns": _ROUND_COLUMNS, "rows": rounds},
        "baselines of prior eval": {
            "columns": ["baseline", "top1_acc", "top5_acc"],
            "rows": [[k, v["top1_acc"], v["top5_acc"]] for k, v in baselines.items()],
        },
        "client sizes": {"columns": ["statistic", "training rows"], "rows": size_rows},
    }
    return run_document("federated", name, _source(report), summary, tables, simulation=report)


def _whole(value: float) -> int | float:
    """Return a whole number as an int (a median of 1,457 rows prints as 1,457, not 1,457.0)."""
    return int(value) if float(value).is_integer() else value


def _scheme(report: dict[str, Any]) -> str | None:
    """Name the partition scheme for titles, from the folder's ``stats.json`` if there."""
    from geoaware.construct.stats import scheme_title

    folder = Path(str(report.get("partitions", "")))
    stats = (folder if folder.is_dir() else folder.parent) / "stats.json"
    if report.get("partitions") and stats.is_file():
        try:
            return scheme_title(orjson.loads(stats.read_bytes()))
        except (OSError, ValueError, TypeError, AttributeError):
            pass
    scheme = report.get("partitioning")
    return str(scheme) if scheme else None


def _source(report: dict[str, Any]) -> str:
    """Name the partition folder, its scheme, the model and its recipe, e.g. for the summary."""
    how = [report["model"]]
    recipe = report.get("recipe")
    if recipe:
        how.append(f"{recipe['name']} recipe")
    if report.get("batch_size"):
        how.append(f"batch {report['batch_size']}")
    if report.get("moments"):
        how.append(f"{report['moments']} Adam moments")
    if report.get("strategy") == "fedprox":
        how.append(f"FedProx mu {report['settings']['proximal_mu']:g}")
    scheme = report.get("partitioning")
    where = f"{report['partitions']}: {scheme}" if scheme else str(report["partitions"])
    return f"{where} ({', '.join(how)})"


def _wrap(title: str, width: int = 60) -> str:
    """Wrap a figure title to ``width`` characters, never between a number and its unit."""
    return textwrap.fill(title.replace(" km", "\u00a0km"), width)


def _plots(doc: dict[str, Any], out_dir: Path, name: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from geoaware.construct.stats import client_histogram

    report = doc["simulation"]
    per = report["per_round"]
    r = [p["round"] for p in per]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    marks = len(r) <= 30  # markers on every round only while they stay apart
    for key, label, style in (
        ("federated_accuracy", "federated top-1", "-o"),
        ("centralised_accuracy", "centralised top-1", "--o"),
        ("federated_top5", "federated top-5", "-s"),
        ("centralised_top5", "centralised top-5", "--s"),
    ):
        if all(p[key] is not None for p in per):  # no centralised run: no line
            line = style if marks else style.rstrip("os")
            ax.plot(r, [100 * p[key] for p in per], line, label=label)
    best = doc["summary"]["best_baseline_top5_acc"]
    if best is not None:
        ax.axhline(100 * best, color="grey", lw=1, ls=":", label="best baseline top-5")
    ax.set_xlabel("round")
    ax.set_ylabel("held-out accuracy (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    scheme = _scheme(report)
    strategy = "FedProx" if report.get("strategy") == "fedprox" else "FedAvg"
    title = f"{strategy} of {report['model']}, {report['clients']:,} clients" + (
        f", {scheme}" if scheme else ""
    )
    ax.set_title(_wrap(title), fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    acc = out_dir / f"{name}.accuracy_by_round.png"
    fig.savefig(acc, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    sizes = np.asarray(report["client_sizes"], dtype=np.int64)
    title = f"training rows of the {sizes.size:,} clients" + (f", {scheme}" if scheme else "")
    client_histogram(ax, sizes, what="training rows", title=_wrap(title))
    fig.tight_layout()
    dist = out_dir / f"{name}.client_sizes.png"
    fig.savefig(dist, dpi=100)
    plt.close(fig)
    return [acc.name, dist.name]


def write_federated_run(report: dict[str, Any], out_dir: PathLike, name: str = "fedavg") -> Path:
    """Write ``<name>.federated.json`` and its two figures into ``out_dir``; return the file.

    Examples
    --------
    >>> write_federated_run(report, "runs/fl", "fedavg-prior")  # doctest: +SKIP
    PosixPath('runs/fl/fedavg-prior.federated.json')
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    doc = federated_document(report, name)
    doc["figures"] = _plots(doc, folder, name)
    return write_run(run_path(folder, name, "federated"), doc)

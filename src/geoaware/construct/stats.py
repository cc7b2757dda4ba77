"""Writing a partition folder: the partition file, ``stats.json``, count matrix and plots.

Statistics follow LEAF's reporting: number of clients, samples per client (mean, std,
std/mean, skew, histogram), labels per client and label entropy per client; the clients x
labels count matrix is written sparse (``client_label_counts.parquet``: partition_id, label,
count). :func:`write_inat_user_tables` writes the two per-user tables of the iNat2021
federated setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from scipy.stats import skew

from geoaware.construct.columns import label_values, require_columns
from geoaware.construct.partition import CatalogPartitioner, _sorted_codes, describe
from geoaware.fileio import atomic_dir, atomic_path
from geoaware.typing import IntArray, PathLike

__all__ = [
    "client_histogram",
    "partition_stats",
    "scheme_title",
    "write_inat_user_tables",
    "write_partitions",
]

PARTITION_FILE = "partitions.parquet"


def _summary(values: npt.NDArray[Any], bins: int = 20) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return {"mean": None, "std": None, "std_over_mean": None, "skew": None}
    mean, std = float(v.mean()), float(v.std())
    hist, edges = np.histogram(v, bins=bins)
    return {
        "mean": mean,
        "std": std,
        "std_over_mean": std / mean if mean else None,
        "skew": float(skew(v)) if len(v) > 2 and std > 0 else 0.0,
        "min": float(v.min()),
        "median": float(np.median(v)),
        "max": float(v.max()),
        "histogram": {"counts": hist.tolist(), "edges": edges.tolist()},
    }


def partition_stats(
    partition: IntArray, labels: IntArray, num_partitions: int
) -> tuple[dict[str, Any], IntArray]:
    """LEAF-style statistics of an assignment, and the sparse (client, label, count) triples.

    Examples
    --------
    >>> s, m = partition_stats(np.array([0, 0, 1, -1]), np.array([0, 1, 1, 0]), 2)
    >>> s["clients"], s["samples_per_client"]["mean"], m.tolist()
    (2, 1.5, [[0, 0, 1], [0, 1, 1], [1, 1, 1]])
    """
    ok = (partition >= 0) & (labels >= 0)
    p, lab = partition[ok], labels[ok]
    samples = np.bincount(partition[partition >= 0], minlength=num_partitions)
    num_labels = int(lab.max()) + 1 if len(lab) else 0
    pair = p * max(num_labels, 1) + lab
    uniq, counts = np.unique(pair, return_counts=True)
    pp, pl = uniq // max(num_labels, 1), uniq % max(num_labels, 1)
    labels_per = np.bincount(pp, minlength=num_partitions)
    totals = np.bincount(pp, weights=counts, minlength=num_partitions)
    frac = counts / totals[pp]
    entropy = -np.bincount(pp, weights=frac * np.log2(frac), minlength=num_partitions)
    stats = {
        "clients": int(num_partitions),
        "rows_assigned": int((partition >= 0).sum()),
        "rows_left_out": int((partition < 0).sum()),
        "empty_clients": int((samples == 0).sum()),
        "labels": int(np.count_nonzero(np.bincount(lab))) if len(lab) else 0,
        "samples_per_client": _summary(samples),
        "labels_per_client": _summary(labels_per),
        "label_entropy_bits": _summary(entropy),
    }
    matrix = np.stack([pp, pl, counts], axis=1).astype(np.int64)
    return stats, matrix


def scheme_title(stats: dict[str, Any]) -> str:
    """Name a partition scheme and its settings for a plot title, e.g. ``Dirichlet (alpha 0.1)``.

    Examples
    --------
    >>> scheme_title({"scheme": "DirichletPartitioner", "settings": {"alpha": 0.1}, "level": None})
    'Dirichlet (alpha 0.1)'
    >>> scheme_title({"scheme": "CellPartitioner", "settings": {"cell": "h3:3"}, "level": "genus"})
    'by cell (h3:3), labels at genus level'
    >>> scheme_title({"scheme": "SyntheticUserPartitioner", "settings": {"scale_km": 200.0}})
    'by SYNTHETIC user (200 km)'
    """
    settings = stats.get("settings") or {}
    scheme = stats.get("scheme", "")
    if scheme == "DirichletPartitioner":
        name = f"Dirichlet (alpha {settings.get('alpha', '?'):g})"
    elif scheme == "CellPartitioner":
        cell = settings.get("cell") or f"adaptive, <= {settings.get('max_cell_size')} images"
        name = f"by cell ({cell})"
    elif scheme == "UserPartitioner":
        name = "by user"
    elif scheme == "SyntheticUserPartitioner":
        name = f"by SYNTHETIC user ({settings.get('scale_km', '?'):g} km)"
    elif scheme == "IidPartitioner":
        name = "IID"
    else:
        name = scheme
    level = stats.get("level")
    return f"{name}, labels at {level} level" if level else name


def client_histogram(ax: Any, values: npt.ArrayLike, *, what: str, title: str) -> bool:
    """Draw a histogram of one size per client on ``ax``; return whether the scales are log.

    Counts of clients are whole numbers on the y-axis. Sizes whose largest is at least 20
    times their smallest above zero (heavy-tailed: a few big clients, many small ones) get
    log-spaced bins on a log x-axis and a log y-axis, so the long tail stays visible (clients
    of size 0 cannot sit on it: the legend counts them); a narrow range gets one bin per
    integer size; the median (of all clients) is a labelled dashed line.

    Parameters
    ----------
    ax
        The matplotlib axes to draw on.
    values
        One size per client (images, labels, training rows), whole numbers.
    what
        What is counted, for the x label: ``"images"`` gives "images per client".
    title
        The axes' title; name the partition scheme in it.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> client_histogram(ax, [1, 2, 2, 3, 500], what="images", title="by user")
    True
    >>> ax.get_xscale(), ax.get_yscale(), ax.get_xlabel()
    ('log', 'log', 'images per client (log scale)')
    >>> ax.cla()
    >>> client_histogram(ax, [0, 0, 2, 3, 500], what="training rows", title="by user")
    True
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['median 2', '2 clients with 0 not shown']
    >>> plt.close(fig)
    """
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    v = np.asarray(values, dtype=np.int64).ravel()
    high = int(v.max()) if v.size else 0
    smallest = int(v[v > 0].min()) if (v > 0).any() else 0
    heavy = smallest >= 1 and high / smallest >= 20
    empty = int((v == 0).sum()) if heavy else 0  # a log axis has no 0: said in the legend
    median_all = float(np.median(v)) if v.size else None
    if heavy:
        v = v[v > 0]
    low = int(v.min()) if v.size else 0
    whole = FuncFormatter(lambda x, _pos: f"{x:,.0f}")
    edges: npt.NDArray[Any]
    if heavy:
        edges = np.unique(np.geomspace(low, high + 1, 30).round())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif high - low <= 20:  # one bar per size, centred on it
        edges = np.arange(low, high + 2) - 0.5
    else:
        edges = np.linspace(low, high + 1, 21)
    narrow = not heavy and high - low <= 20
    ax.hist(
        v, bins=edges.tolist(), color="#4a6fa5", edgecolor="white", linewidth=0.5,
        rwidth=0.8 if narrow else None,
    )  # fmt: skip
    if not heavy:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    ax.xaxis.set_major_formatter(whole)
    ax.yaxis.set_major_formatter(whole)
    ax.set_xlabel(f"{what} per client" + (" (log scale)" if heavy else ""))
    ax.set_ylabel("clients" + (" (log scale)" if heavy else ""))
    if median_all is not None:
        ax.axvline(
            max(median_all, low) if heavy else median_all, color="#c0392b", linewidth=1,
            linestyle="--", label=f"median {median_all:,g}",
        )  # fmt: skip
        if empty:
            ax.plot([], [], " ", label=f"{empty:,} clients with 0 not shown")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=10)
    return heavy


def _plots(stats: dict[str, Any], folder: Path, per_client: dict[str, IntArray]) -> list[str]:
    """Histograms of images and labels per client (see :func:`client_histogram`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    scheme = scheme_title(stats)
    for key, what in (("samples_per_client", "images"), ("labels_per_client", "labels")):
        values = per_client[key]
        if not len(values):
            continue
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
        title = f"{what} per client: {scheme}, {stats['clients']:,} clients"
        client_histogram(ax, values, what=what, title=title)
        fig.tight_layout()
        name = f"{key}.png"
        with atomic_path(folder / name) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        written.append(name)
    return written


def write_partitions(
    partitioner: CatalogPartitioner,
    out_dir: PathLike,
    *,
    level: str | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Write ``partitions.parquet``, ``stats.json``, the count matrix and plots; atomically.

    The partition file holds ``partition_id, natural_id, image_id, label, split`` for every
    assigned row. The folder is built beside ``out_dir`` and swapped in whole, so an error
    leaves the old folder (or nothing).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geoaware.construct.partition import UserPartitioner
    >>> p = UserPartitioner()
    >>> p.catalog = pa.table({"image_id": ["1", "2"], "user_id": ["a", "b"],
    ...                       "label_name": ["x", "y"]})
    >>> s = write_partitions(p, pathlib.Path(tempfile.mkdtemp()) / "parts", plots=False)
    >>> s["clients"], s["samples_per_client"]["mean"]
    (2, 1.0)
    """
    table = partitioner.catalog
    part = partitioner.assignment
    names = partitioner.natural_ids
    k = partitioner.num_partitions
    if "label_name" in table.column_names or level is not None:
        label_arr = label_values(table, level, partitioner.where)
    else:
        label_arr = pa.nulls(table.num_rows, pa.string())
    label_codes, label_names = _sorted_codes(label_arr)
    stats, matrix = partition_stats(part, label_codes, k)
    stats["scheme"] = type(partitioner).__name__
    stats["settings"] = describe(partitioner)
    stats["left_out"] = dict(partitioner.left_out)
    stats["level"] = level
    keep = np.flatnonzero(part >= 0)
    everyone = keep.size == table.num_rows  # the usual case: no copy of the columns

    def kept(column: Any) -> Any:
        return column if everyone else column.take(pa.array(keep))

    pid = part[keep].astype(np.int32)
    split = (
        kept(table.column("split"))
        if "split" in table.column_names
        else pa.nulls(len(keep), pa.string())
    )
    natural = pa.DictionaryArray.from_arrays(pa.array(pid), pa.array(names.tolist(), pa.string()))
    out_table = pa.table(
        {
            "partition_id": pa.array(pid, pa.int32()),
            "natural_id": natural,
            "image_id": kept(table.column("image_id")),
            "label": kept(label_arr),
            "split": split,
        }
    )
    target = Path(out_dir)
    with atomic_dir(target) as staging:
        # Unique ids gain nothing from a dictionary: do not try one.
        dictionary = [c for c in out_table.column_names if c != "image_id"]
        pq.write_table(
            out_table, staging / PARTITION_FILE, compression="zstd", use_dictionary=dictionary
        )
        top = label_names.tolist()
        pq.write_table(
            pa.table(
                {
                    "partition_id": pa.array(matrix[:, 0], pa.int32()),
                    "label": pa.array([top[i] for i in matrix[:, 1].tolist()], pa.string())
                    if len(matrix) < 200_000
                    else pa.DictionaryArray.from_arrays(
                        pa.array(matrix[:, 1].astype(np.int32)), pa.array(top, pa.string())
                    ),
                    "count": pa.array(matrix[:, 2], pa.int64()),
                }
            ),
            staging / "client_label_counts.parquet",
            compression="zstd",
        )
        stats["files"] = [PARTITION_FILE, "client_label_counts.parquet", "stats.json"]
        if plots:
            per_client = {
                "samples_per_client": np.bincount(part[part >= 0], minlength=k),
                "labels_per_client": np.bincount(matrix[:, 0], minlength=k),
            }
            stats["files"] += _plots(stats, staging, per_client)
        (staging / "stats.json").write_bytes(
            orjson.dumps(stats, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_INDENT_2)
        )
    stats["out"] = str(target)
    return stats


def write_inat_user_tables(
    table: pa.Table, out_dir: PathLike, where: str = "catalog"
) -> list[Path]:
    """Write ``training_image_info.csv`` and ``images_and_categories_per_users.csv``.

    The first has one row per image with a user: ``image_id, user, width, height,
    file_name, phylum, class, order, species``; the second one row per user: ``user,
    images, phyla, classes, orders, species`` (totals and distinct counts), sorted by user.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> t = pa.table({"image_id": ["1", "2"], "user_id": ["a", "a"], "species": ["x", "y"]})
    >>> [p.name for p in write_inat_user_tables(t, tempfile.mkdtemp())]
    ['training_image_info.csv', 'images_and_categories_per_users.csv']
    """
    require_columns(table, ["image_id", "user_id"], where)
    cols = ["width", "height", "file_name", "phylum", "class", "order", "species"]
    has_user = pc.is_valid(table.column("user_id"))
    t = table.filter(has_user)
    info = {"image_id": t.column("image_id"), "user": t.column("user_id")}
    for c in cols:
        info[c] = t.column(c) if c in t.column_names else pa.nulls(t.num_rows, pa.string())
    info_table = pa.table(info)
    per_user = info_table.group_by("user").aggregate(
        [("image_id", "count")]
        + [(c, "count_distinct") for c in ("phylum", "class", "order", "species")]
    )
    per_user = pa.table(
        {
            "user": per_user.column("user"),
            "images": per_user.column("image_id_count"),
            "phyla": per_user.column("phylum_count_distinct"),
            "classes": per_user.column("class_count_distinct"),
            "orders": per_user.column("order_count_distinct"),
            "species": per_user.column("species_count_distinct"),
        }
    ).sort_by("user")
    folder = Path(out_dir)
    paths = []
    for name, data in (
        ("training_image_info.csv", info_table),
        ("images_and_categories_per_users.csv", per_user),
    ):
        with atomic_path(folder / name) as tmp:
            pacsv.write_csv(data, tmp)
        paths.append(folder / name)
    return paths

"""FedAvg on a partition folder with Flower's simulation engine, beside centralised training.

The task is small on purpose: a softmax (multinomial logistic) head on the location features
of :func:`geoaware.geo.encode.wrap_encode` predicts each image's ``label`` from the partition
file. A seeded hash of the image id holds out a share of the rows (``holdout``) for testing;
each client trains on its own remaining rows. The same model, from the same zero start, is
also trained centrally on all the clients' training rows, for the same number of passes, so
every round can be read beside its centralised counterpart:

* round ``r`` of FedAvg: the clients sampled run ``local_epochs`` epochs of mini-batch SGD
  from the global weights, and the server averages them weighted by example counts;
* centralised after round ``r``: ``r * local_epochs`` epochs of the same SGD on the union
  (with client sampling, each round's epochs run over a fresh random ``fraction_fit`` share of
  the union's rows: the same number of examples as the sampled clients hold on average).

Flower (``flwr[simulation]``, which brings Ray) is imported only by :func:`simulate_fedavg`.
Ray is started by :func:`geoaware.federated.runtime.ray_session` before Flower starts any
thread (starting it from Flower deadlocks in OpenBLAS), with a small footprint (``num_cpus``,
one CPU and one BLAS thread per client), and always shut down before :func:`simulate_fedavg`
returns or raises; ``SIGINT``/``SIGTERM`` stop the run cleanly and Flower's log goes to a file.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geoaware.construct.errors import BuildError
from geoaware.construct.keys import unit_hash
from geoaware.federated.models import FlModel, topk_accuracy
from geoaware.typing import Float64Array, IntArray, PathLike

__all__ = [
    "FlTask",
    "SimulationSettings",
    "accuracy",
    "heldout_accuracy",
    "load_task",
    "recorded_settings",
    "simulate_fedavg",
    "train_softmax",
]


PARTITION_FILE = "partitions.parquet"


@dataclass(frozen=True)
class SimulationSettings:
    """Settings of one FedAvg simulation (validated on creation).

    Attributes
    ----------
    rounds
        Federated rounds.
    local_epochs
        Epochs each sampled client runs per round.
    fraction_fit
        Share of the clients sampled for training each round: ``round(clients * share)``,
        at least one (Flower's own count, from the clients connected at that moment, can
        come out lower while a large simulation is still registering its clients).
    seed
        Seeds the hold-out hash, the client sampling and every SGD shuffle.
    model
        ``"softmax"`` (softmax regression on the wrap encoding), ``"prior"`` (the prior
        network of ``geoaware prior train``, :class:`~geoaware.federated.models.PriorModel`) or
        ``"head"`` (softmax regression on image embeddings,
        :class:`~geoaware.federated.models.HeadModel`).
    embeddings, with_location
        With ``"head"``: the embeddings file or folder, and whether to append the location.
    proximal_mu
        0: FedAvg; above 0: Flower's FedProx with this proximal weight (clients add
        ``mu / 2 * ||w - w_global||^2`` to their loss).
    recipe
        With ``"prior"``: ``auto`` (chosen from the training rows of all clients together, as
        ``geoaware prior train`` chooses it: :func:`~geoaware.priors.recipes.choose_recipe`),
        ``published`` or ``small-data``.
    compare
        Train the centralised model and fit the baselines beside the federated run (True);
        False leaves them out (a timing run at scale).
    lr
        Learning rate (clients and centralised alike); None: the model's default (SGD 0.5
        for ``softmax``, the recipe's Adam rate for ``prior``).
    batch_size
        Mini-batch size of the clients and of the centralised run; None: the model's own
        (32 for ``softmax`` and ``head``, the recipe's for ``prior``: 512 for small-data).
    moments
        With ``"prior"``: ``"shared"`` (Adam's moments and step count travel with the
        weights and are averaged with them, so every client continues the global optimiser
        state) or ``"fresh"`` (each client starts Adam from zero every round).
    holdout
        Share of rows held out for testing, chosen by a seeded hash of the image id.
    num_cpus
        CPUs given to Ray; each client takes one.

    Examples
    --------
    >>> SimulationSettings(rounds=0)
    Traceback (most recent call last):
    ...
    geoaware.construct.errors.BuildError: rounds must be >= 1, got 0
    """

    rounds: int = 3
    local_epochs: int = 1
    fraction_fit: float = 1.0
    seed: int = 0
    lr: float | None = None
    batch_size: int | None = None
    holdout: float = 0.2
    num_cpus: int = 2
    model: str = "softmax"
    embeddings: str | None = None
    with_location: bool = False
    proximal_mu: float = 0.0
    recipe: str = "auto"
    moments: str = "shared"
    compare: bool = True

    def make_model(self, n_classes: int, train_labels: IntArray | None = None) -> FlModel:
        """Return the model these settings train, for ``n_classes`` classes.

        ``train_labels`` (the label codes of every client's training rows) choose the prior's
        recipe with ``recipe="auto"``; the choice is kept in the model's ``recipe``.

        Examples
        --------
        >>> m = SimulationSettings(model="prior").make_model(3, np.array([0, 0, 1, 2]))
        >>> m.recipe.name, m.config.encoding
        ('small-data', 'fourier')
        """
        from geoaware.federated.models import HeadModel, PriorModel, SoftmaxModel

        if self.model == "prior":
            from geoaware.priors.recipes import choose_recipe, recipe_config

            labels = np.zeros(0, np.int64) if train_labels is None else train_labels
            choice = choose_recipe(labels, self.recipe)
            options: dict[str, Any] = {"seed": self.seed}
            if self.lr is not None:
                options["lr"] = self.lr
            if self.batch_size is not None:
                options["batch_size"] = self.batch_size
            config = recipe_config(choice, options)
            return PriorModel(n_classes, config, recipe=choice, moments=self.moments)
        lr = 0.5 if self.lr is None else self.lr
        batch = 32 if self.batch_size is None else self.batch_size
        if self.model == "head" and self.embeddings is not None:
            return HeadModel(n_classes, self.embeddings, with_location=self.with_location,
                             lr=lr, batch_size=batch)  # fmt: skip
        return SoftmaxModel(n_classes, lr=lr, batch_size=batch)

    def __post_init__(self) -> None:
        for name in ("rounds", "local_epochs", "batch_size", "num_cpus"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BuildError(f"{name} must be >= 1, got {value}")
        if self.moments not in ("shared", "fresh"):
            raise BuildError(f"moments must be shared or fresh, got {self.moments!r}")
        if not 0.0 < self.fraction_fit <= 1.0:
            raise BuildError(f"fraction_fit must be in (0, 1], got {self.fraction_fit}")
        if not 0.0 < self.holdout < 1.0:
            raise BuildError(f"holdout must be in (0, 1), got {self.holdout}")
        if self.recipe not in ("auto", "published", "small-data"):
            raise BuildError(f"recipe must be auto, published or small-data, got {self.recipe!r}")
        if self.model not in ("softmax", "prior", "head"):
            raise BuildError(f"model must be softmax, prior or head, got {self.model!r}")
        if (self.model == "head") != (self.embeddings is not None):
            raise BuildError("--embeddings goes with --model head (and only with it)")
        if not (self.proximal_mu >= 0 and np.isfinite(self.proximal_mu)):
            raise BuildError(f"proximal_mu must be >= 0, got {self.proximal_mu}")
        if self.lr is not None and not (self.lr > 0 and np.isfinite(self.lr)):
            raise BuildError(f"lr must be a positive number, got {self.lr}")


@dataclass
class FlTask:
    """The rows of a partition folder with features, label codes and the hold-out flag.

    Attributes
    ----------
    x
        ``wrap_encode`` features, shape ``(n, 4)``.
    lat, lon
        Location of each row (degrees).
    image_ids
        The image id of each row.
    y
        Label code of each row (index into ``classes``).
    partition
        Partition (client) id of each row.
    heldout
        True for the rows held out for testing.
    classes
        The label names, sorted.
    num_partitions
        Number of clients (``max(partition_id) + 1`` of the file).
    dropped
        Rows left out, by reason (``no_location``, ``no_label``).
    """

    x: Float64Array
    lat: Float64Array
    lon: Float64Array
    image_ids: npt.NDArray[np.object_]
    y: IntArray
    partition: IntArray
    heldout: npt.NDArray[np.bool_]
    classes: list[str]
    num_partitions: int
    dropped: dict[str, int] = field(default_factory=dict)


def load_task(
    partitions_dir: PathLike,
    catalog: PathLike,
    *,
    holdout: float = 0.2,
    seed: int = 0,
) -> FlTask:
    """Join a partition folder with its catalog's locations; hold out rows by image-id hash.

    Raises
    ------
    BuildError
        If the folder has no partition file, a column is missing, or no row is usable.

    Examples
    --------
    >>> load_task("parts", "catalog.parquet").num_partitions  # doctest: +SKIP
    3
    """
    import pandas as pd

    from geoaware.catalog import read_catalog
    from geoaware.construct.columns import require_columns
    from geoaware.geo.encode import wrap_encode

    folder = Path(partitions_dir)
    pfile = folder / PARTITION_FILE if folder.is_dir() else folder
    if not pfile.is_file():
        raise BuildError(f"{folder}: no {PARTITION_FILE}; write one with `geoaware partition`")
    parts = pq.read_table(pfile)
    require_columns(parts, ["partition_id", "image_id", "label"], str(pfile))
    cat = read_catalog(catalog, columns=["image_id", "lat", "lon"])
    cat_ids = pd.Index(np.asarray(cat.column("image_id").to_numpy(zero_copy_only=False), object))
    first = np.flatnonzero(~cat_ids.duplicated())  # a repeated id: its first row wins
    cat_lat = cat.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)[first]
    cat_lon = cat.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)[first]
    ids = np.asarray(parts.column("image_id").to_numpy(zero_copy_only=False), dtype=object)
    row = np.asarray(cat_ids[first].get_indexer(ids), dtype=np.int64)
    found = row >= 0
    lat = np.where(found, cat_lat[np.maximum(row, 0)] if len(first) else np.nan, np.nan)
    lon = np.where(found, cat_lon[np.maximum(row, 0)] if len(first) else np.nan, np.nan)
    has_loc = ~(np.isnan(lat) | np.isnan(lon))
    has_label = np.asarray(pc.is_valid(parts.column("label")).to_numpy(zero_copy_only=False))
    keep = has_loc & has_label
    dropped = {
        "not_in_catalog": int((~found).sum()),
        "no_location": int((found & ~has_loc).sum()),
        "no_label": int((has_loc & ~has_label).sum()),
    }
    if not keep.any():
        raise BuildError(f"{pfile}: no row has both a label and a location in {catalog}")
    labels = np.asarray(parts.column("label").to_numpy(zero_copy_only=False), dtype=object)[keep]
    codes, classes = pd.factorize(labels, sort=True)
    pid = parts.column("partition_id").to_numpy().astype(np.int64)
    return FlTask(
        x=wrap_encode(lat[keep], lon[keep]),
        lat=lat[keep],
        lon=lon[keep],
        image_ids=ids[keep],
        y=np.asarray(codes, dtype=np.int64),
        partition=pid[keep],
        heldout=unit_hash(ids[keep], seed) < holdout,
        classes=[str(c) for c in classes],
        num_partitions=int(pid.max()) + 1 if len(pid) else 0,
        dropped=dropped,
    )


def _logits(w: Float64Array, x: Float64Array) -> Float64Array:
    return np.asarray(x @ w[:-1] + w[-1])


def train_softmax(
    w: Float64Array,
    x: Float64Array,
    y: IntArray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    mu: float = 0.0,
) -> tuple[Float64Array, float]:
    """Run ``epochs`` of mini-batch SGD on softmax cross-entropy; return (weights, mean loss).

    ``w`` has shape ``(features + 1, classes)``; its last row is the bias. It is not changed
    in place. The loss is the mean over the last epoch (NaN without rows). ``mu > 0`` adds
    FedProx's proximal term ``mu / 2 * ||w - w_start||^2`` (``w_start``: the given weights).

    Examples
    --------
    >>> x = np.array([[1.0], [-1.0]] * 8)
    >>> y = np.array([0, 1] * 8)
    >>> w, loss = train_softmax(np.zeros((2, 2)), x, y, epochs=20, lr=0.5, batch_size=4,
    ...                         rng=np.random.default_rng(0))
    >>> accuracy(w, x, y), loss < 0.2
    (1.0, True)
    """
    w = np.array(w, dtype=np.float64, copy=True)
    anchor = w.copy() if mu > 0 else None
    n = len(y)
    loss = float("nan")
    for _ in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            b = order[start : start + batch_size]
            xb, yb = x[b], y[b]
            z = _logits(w, xb)
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            total += float(-np.log(np.maximum(p[np.arange(len(b)), yb], 1e-300)).sum())
            p[np.arange(len(b)), yb] -= 1.0
            p /= len(b)
            grad = np.vstack([xb.T @ p, p.sum(axis=0)])
            if anchor is not None:
                grad += mu * (w - anchor)
            w -= lr * grad
        loss = total / n if n else float("nan")
    return w, loss


def accuracy(w: Float64Array, x: Float64Array, y: IntArray) -> float:
    """Return the share of rows whose highest logit is their label (NaN without rows).

    Examples
    --------
    >>> accuracy(np.array([[1.0, -1.0], [0.0, 0.0]]), np.array([[2.0], [-2.0]]), np.array([0, 0]))
    0.5
    """
    if not len(y):
        return float("nan")
    return float((_logits(w, x).argmax(axis=1) == y).mean())


# ---------------------------------------------------------------------------------------------
# client side: runs in Ray actor processes; reads its own rows from memory-mapped arrays

_CLIENT_CACHE: dict[str, tuple[Float64Array, IntArray, IntArray]] = {}


def _write_client_arrays(task: FlTask, x: npt.NDArray[np.floating], folder: Path) -> None:
    """Write the training rows sorted by client, with per-client offsets, as ``.npy`` files."""
    train = np.flatnonzero(~task.heldout)
    order = train[np.argsort(task.partition[train], kind="stable")]
    offsets = np.searchsorted(task.partition[order], np.arange(task.num_partitions + 1))
    np.save(folder / "x.npy", x[order])
    np.save(folder / "y.npy", task.y[order])
    np.save(folder / "offsets.npy", offsets.astype(np.int64))


def _client_rows(folder: str, partition_id: int) -> tuple[Float64Array, IntArray]:
    if folder not in _CLIENT_CACHE:
        base = Path(folder)
        _CLIENT_CACHE[folder] = (
            np.load(base / "x.npy", mmap_mode="r"),
            np.load(base / "y.npy", mmap_mode="r"),
            np.load(base / "offsets.npy"),
        )
    x, y, off = _CLIENT_CACHE[folder]
    a, b = int(off[partition_id]), int(off[partition_id + 1])
    return np.asarray(x[a:b]), np.asarray(y[a:b])


def _client_app(folder: str, settings: SimulationSettings, model: FlModel) -> Any:
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()  # type: ignore[untyped-decorator]
    def train(msg: Message, context: Context) -> Message:
        config = msg.content.config_records["config"]
        # the server names the partition this round trains (a seeded draw, _seeded_strategy)
        pid = int(str(config["partition-id"]))
        x, y = _client_rows(folder, pid)
        w = msg.content.array_records["arrays"].to_numpy_ndarrays()
        rnd = int(str(config["server-round"]))
        epochs = int(str(config["local-epochs"]))
        mu = float(str(config.get("proximal-mu", 0.0)))
        new_w, loss = model.fit(
            w, x, y, epochs=epochs, seed=[settings.seed, pid, rnd], mu=mu,
            start_epoch=(rnd - 1) * epochs,
        )  # fmt: skip
        # every reply carries the same keys (Flower refuses to aggregate otherwise); a client
        # whose rows are all held out weighs 0 in both averages
        metrics: dict[str, int | float | list[int] | list[float]] = {
            "num-examples": len(y),
            "train_loss": loss if len(y) else 0.0,
            "partition-id": pid,
        }
        content = RecordDict({"arrays": ArrayRecord(new_w), "metrics": MetricRecord(metrics)})
        return Message(content=content, reply_to=msg)

    return app


def clients_per_round(num_partitions: int, fraction_fit: float) -> int:
    """Return how many clients train each round: round(clients x share), at least one.

    Flower's strategies sample ``max(int(n * fraction), min_train_nodes)``; given this as
    ``min_train_nodes`` they sample exactly this many.

    Examples
    --------
    >>> clients_per_round(836, 0.06), clients_per_round(4, 0.9), clients_per_round(3, 0.01)
    (50, 4, 1)
    """
    return max(1, round(num_partitions * fraction_fit))


def round_partitions(num_partitions: int, size: int, seed: int, server_round: int) -> IntArray:
    """Return the partitions that train in ``server_round``: a seeded draw of ``size``, sorted.

    Flower samples nodes, whose ids are random in each simulation, so its sample of
    partitions differs from run to run. The server therefore draws the partitions itself
    and names one in each training message; the node only does the work.

    Examples
    --------
    >>> a, b = round_partitions(10, 3, 0, 1), round_partitions(10, 3, 0, 2)
    >>> a.tolist() == round_partitions(10, 3, 0, 1).tolist(), len(a), a.tolist() == b.tolist()
    (True, 3, False)
    >>> round_partitions(4, 4, seed=0, server_round=2).tolist()
    [0, 1, 2, 3]
    """
    rng = np.random.default_rng([seed, server_round, 1 << 20])
    out: IntArray = np.sort(rng.choice(num_partitions, size=size, replace=False)).astype(np.int64)
    return out


def _seeded_strategy(s: SimulationSettings, num_partitions: int) -> Any:
    """Flower's FedAvg (FedProx with ``proximal_mu`` above 0), reproducible from its seed.

    Each round trains the partitions of :func:`round_partitions` (the node that receives a
    message trains the partition it names), and the replies are averaged in partition order:
    Flower hands them over as they arrive, and a float sum depends on its order.
    """
    from flwr.app import ConfigRecord, Message, RecordDict
    from flwr.serverapp.strategy import FedAvg, FedProx

    base = FedProx if s.proximal_mu > 0 else FedAvg

    class Seeded(base):  # type: ignore[valid-type,misc]
        def configure_train(self, server_round: int, arrays: Any, config: Any, grid: Any) -> Any:
            sent = list(super().configure_train(server_round, arrays, config, grid))
            parts = round_partitions(num_partitions, len(sent), s.seed, server_round)
            return [
                Message(
                    content=RecordDict({
                        "arrays": m.content.array_records["arrays"],
                        "config": ConfigRecord(
                            {**m.content.config_records["config"], "partition-id": int(p)}
                        ),
                    }),
                    message_type=m.metadata.message_type,
                    dst_node_id=m.metadata.dst_node_id,
                )
                for m, p in zip(sent, parts, strict=True)
            ]  # fmt: skip

        def aggregate_train(self, server_round: int, replies: Any) -> Any:
            def partition(reply: Any) -> int:
                if not reply.has_content():
                    return -1
                return int(reply.content.metric_records["metrics"]["partition-id"])

            arrays, metrics = super().aggregate_train(server_round, sorted(replies, key=partition))
            if metrics is not None:
                metrics.pop("partition-id", None)
            return arrays, metrics

    kwargs: dict[str, Any] = {
        "fraction_train": s.fraction_fit,
        "fraction_evaluate": 0.0,
        "min_train_nodes": clients_per_round(num_partitions, s.fraction_fit),
        "min_available_nodes": num_partitions,
    }
    if s.proximal_mu > 0:
        kwargs["proximal_mu"] = s.proximal_mu
    return Seeded(**kwargs)


# ---------------------------------------------------------------------------------------------


def heldout_accuracy(
    model: FlModel, weights: Any, x: npt.NDArray[np.floating], y: IntArray, chunk: int = 8192
) -> dict[str, float]:
    """Top-1/top-5 of ``model`` with ``weights`` on ``(x, y)``, scored ``chunk`` rows at a time.

    The same figures as :func:`~geoaware.federated.models.topk_accuracy` on all the scores,
    without holding an ``(n, classes)`` matrix for a large held-out set.

    Examples
    --------
    >>> from geoaware.federated.models import SoftmaxModel
    >>> m = SoftmaxModel(2)
    >>> w = [np.array([[1.0, -1.0]] + [[0.0, 0.0]] * 4)]
    >>> heldout_accuracy(m, w, np.array([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]), np.array([0, 0]), 1)
    {'top1_acc': 0.5, 'top5_acc': 1.0}
    """
    if not len(y):
        return topk_accuracy(np.zeros((0, 1)), y)
    hits = {"top1_acc": 0.0, "top5_acc": 0.0}
    for a in range(0, len(y), chunk):
        acc = topk_accuracy(model.scores(weights, x[a : a + chunk]), y[a : a + chunk])
        for k in hits:
            hits[k] += acc[k] * len(y[a : a + chunk])
    return {k: v / len(y) for k, v in hits.items()}


def _centralised(
    model: FlModel, x: npt.NDArray[np.floating], task: FlTask, s: SimulationSettings
) -> list[dict[str, float]]:
    """Top-1/top-5 on the held-out rows after each round's worth of centralised training.

    The same budget as a federated round: ``local_epochs`` epochs over the training rows of
    the round's clients (:func:`round_partitions`, the draw the federated side trains; all
    rows when every client trains each round), in one model with one optimiser.
    """
    train = np.flatnonzero(~task.heldout)
    test = task.heldout
    per_round = clients_per_round(task.num_partitions, s.fraction_fit)
    w, out = model.initial(), []
    state: dict[str, Any] = {}  # one optimisation: the optimiser's state carries over
    for r in range(1, s.rounds + 1):
        rows = train
        if per_round < task.num_partitions:
            parts = round_partitions(task.num_partitions, per_round, s.seed, r)
            rows = train[np.isin(task.partition[train], parts)]
        if rows.size:  # the round's clients may hold only held-out rows
            w, _ = model.fit(
                w, x[rows], task.y[rows], epochs=s.local_epochs, seed=[s.seed, 1 << 30, r],
                start_epoch=(r - 1) * s.local_epochs, state=state,
            )  # fmt: skip
        out.append(heldout_accuracy(model, w, x[test], task.y[test]))
    return out


def _baselines(task: FlTask) -> dict[str, dict[str, float]]:
    """Top-1/top-5 of the baselines of ``geoaware prior eval``, fitted on the training rows."""
    from geoaware.priors.baselines import fit_baselines

    train, test = ~task.heldout, task.heldout
    fitted = fit_baselines(task.lat[train], task.lon[train], task.y[train], len(task.classes))
    return {
        name: topk_accuracy(scorer.predict_proba(task.lat[test], task.lon[test]), task.y[test])
        for name, scorer in fitted.items()
    }


def simulate_fedavg(
    partitions_dir: PathLike,
    catalog: PathLike,
    settings: SimulationSettings | None = None,
    *,
    log_file: PathLike | None = None,
) -> dict[str, Any]:
    """Run FedAvg over the clients of a partition folder in Flower's simulation engine.

    Parameters
    ----------
    partitions_dir
        A folder written by ``geoaware partition`` (or its ``partitions.parquet``).
    catalog
        The catalog it was built from (for ``lat``/``lon``).
    settings
        Rounds, epochs, sampling, seed and SGD settings; defaults if None.
    log_file
        Where Flower's log goes (appended); without one, a temporary file whose last lines
        are quoted in the error if the run fails.

    Returns
    -------
    dict
        ``clients``, ``classes``, ``rows_train``, ``rows_heldout``, ``rows_dropped``, the
        settings, ``recipe`` (the prior's recipe choice, else None), ``initial_accuracy``,
        ``per_round`` (each: ``round``, federated and centralised top-1 and top-5,
        ``train_loss``, ``seconds``), ``final``, ``baselines``, ``seconds_per_round`` (from
        the initial evaluation to the last round's), ``centralised_seconds`` and ``seconds``.
        Without ``settings.compare`` the centralised figures are None and ``baselines`` is
        empty.

    Raises
    ------
    BuildError
        On bad settings or a partition folder without usable rows.
    DependencyNotFoundError
        Without ``flwr[simulation]``.

    Examples
    --------
    >>> r = simulate_fedavg("parts", "catalog.parquet")  # doctest: +SKIP
    >>> [x["round"] for x in r["per_round"]]  # doctest: +SKIP
    [1, 2, 3]
    """
    s = settings or SimulationSettings()
    from geoaware.federated.runtime import _require_flower

    _require_flower()
    from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    from geoaware.federated.runtime import (
        flower_log_to,
        object_store_mb,
        ray_session,
        server_stopped,
        stop_on_signals,
        stoppable_grid,
    )

    t0 = time.perf_counter()
    task = load_task(partitions_dir, catalog, holdout=s.holdout, seed=s.seed)
    if task.num_partitions < 1:
        raise BuildError(f"{partitions_dir}: the partition file lists no client")
    model = s.make_model(len(task.classes), task.y[~task.heldout])
    x = model.features(task.lat, task.lon, task.image_ids)
    test = task.heldout
    x_test, y_test = x[test], task.y[test]
    w0 = model.initial()
    w0_bytes = sum(np.asarray(a).nbytes for a in w0)
    t_central = time.perf_counter()
    central = _centralised(model, x, task, s) if s.compare else None
    baselines = _baselines(task) if s.compare else {}
    central_seconds = time.perf_counter() - t_central

    federated: dict[int, dict[str, float]] = {}
    finished: dict[int, float] = {}
    losses: dict[int, float | None] = {}
    server = ServerApp()
    stop, done = threading.Event(), threading.Event()

    @server.main()  # type: ignore[untyped-decorator]
    def main(grid: Grid, context: Context) -> None:
        try:
            _server_main(grid)
        finally:
            done.set()

    def _server_main(grid: Grid) -> None:
        import random

        random.seed(s.seed)  # Flower samples clients with the global random module

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            acc = heldout_accuracy(model, arrays.to_numpy_ndarrays(), x_test, y_test)
            federated[server_round] = acc
            finished[server_round] = time.perf_counter()
            return MetricRecord(dict(acc))

        strategy = _seeded_strategy(s, task.num_partitions)
        result = strategy.start(
            grid=stoppable_grid(grid, stop),
            initial_arrays=ArrayRecord(w0),
            num_rounds=s.rounds,
            train_config=ConfigRecord({"local-epochs": s.local_epochs}),
            evaluate_fn=evaluate,
        )
        for rnd, m in result.train_metrics_clientapp.items():
            value = m.get("train_loss")
            losses[rnd] = float(value) if isinstance(value, int | float) else None

    folder = Path(tempfile.mkdtemp(prefix="geoaware-fl-"))
    log = Path(log_file) if log_file is not None else folder / "flower.log"
    try:
        _write_client_arrays(task, x, folder)
        with (
            stop_on_signals(stop),
            flower_log_to(log),
            ray_session(s.num_cpus, object_store_mb=object_store_mb(w0_bytes, s.num_cpus)),
            server_stopped(stop, done),
        ):
            run_simulation(
                server_app=server,
                client_app=_client_app(str(folder), s, model),
                num_supernodes=task.num_partitions,
                backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
            )
        if len(federated) < s.rounds + 1:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
            where = f"see {log}" if log_file else "Flower's log ends: " + " | ".join(tail)
            raise BuildError(
                f"the simulation ended after {max(federated, default=0)} of {s.rounds} rounds; "
                + where
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    per_round = [
        {
            "round": r,
            "federated_accuracy": federated[r]["top1_acc"],
            "centralised_accuracy": None if central is None else central[r - 1]["top1_acc"],
            "federated_top5": federated[r]["top5_acc"],
            "centralised_top5": None if central is None else central[r - 1]["top5_acc"],
            "train_loss": losses.get(r),
            "seconds": finished[r] - finished[r - 1],
        }
        for r in range(1, s.rounds + 1)
    ]
    n_train = int((~task.heldout).sum())
    sizes = np.bincount(task.partition[~task.heldout], minlength=task.num_partitions)
    return {
        "partitions": str(partitions_dir),
        "partitioning": _partitioning(partitions_dir),
        "catalog": str(catalog),
        "clients": task.num_partitions,
        "classes": len(task.classes),
        "rows_train": n_train,
        "rows_heldout": int(task.heldout.sum()),
        "rows_dropped": task.dropped,
        "client_sizes": sizes.tolist(),
        "settings": dataclasses.asdict(s),
        "rounds": s.rounds,
        "local_epochs": s.local_epochs,
        "fraction_fit": s.fraction_fit,
        "seed": s.seed,
        "lr": s.lr,
        "batch_size": _batch_size(model),
        "moments": s.moments if s.model == "prior" else None,
        "holdout": s.holdout,
        "model": s.model,
        "strategy": "fedprox" if s.proximal_mu > 0 else "fedavg",
        "model_settings": _model_settings(model),
        "recipe": None if getattr(model, "recipe", None) is None else model.recipe.to_dict(),  # type: ignore[attr-defined]
        "initial_accuracy": federated[0]["top1_acc"],
        "per_round": per_round,
        "final": {
            "federated_accuracy": federated[s.rounds]["top1_acc"],
            "centralised_accuracy": per_round[-1]["centralised_accuracy"],
            "federated_top5": federated[s.rounds]["top5_acc"],
            "centralised_top5": per_round[-1]["centralised_top5"],
        },
        "baselines": baselines,
        "seconds_per_round": (finished[s.rounds] - finished[0]) / s.rounds,
        "centralised_seconds": central_seconds if s.compare else None,
        "seconds": time.perf_counter() - t0,
    }


def recorded_settings(
    run_file: PathLike,
) -> tuple[str, str, SimulationSettings, dict[str, float | None]]:
    """Return the partition folder, catalog, settings and final figures of a recorded run.

    The run is a ``*.federated.json`` file of ``fl simulate --out``.

    Paths are as they were given to ``fl simulate`` (relative ones to the folder it ran in).
    A prior run recorded before ``moments`` existed trained with fresh Adam moments, and
    gets them back.

    Raises
    ------
    BuildError
        If the file is not a federated run or its settings no longer validate.

    Examples
    --------
    >>> parts, catalog, s, final = recorded_settings("runs/fl/p.federated.json")  # doctest: +SKIP
    >>> s.model, s.rounds  # doctest: +SKIP
    ('prior', 10)
    """
    import orjson

    path = Path(run_file)
    try:
        sim = orjson.loads(path.read_bytes())["simulation"]
        parts, catalog, recorded = str(sim["partitions"]), str(sim["catalog"]), sim["settings"]
        final = dict(sim.get("final") or {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"{path}: not a run file of `fl simulate --out` ({exc})") from exc
    fields = {f.name for f in dataclasses.fields(SimulationSettings)}
    known = {k: v for k, v in recorded.items() if k in fields}
    if known.get("model") == "prior" and "moments" not in recorded:
        known["moments"] = "fresh"  # what every client did before moments were shared
    try:
        return parts, catalog, SimulationSettings(**known), final
    except TypeError as exc:
        raise BuildError(f"{path}: settings {recorded!r} do not validate ({exc})") from exc


def _partitioning(partitions_dir: PathLike) -> str | None:
    """Name the scheme of a partition folder from its ``stats.json`` (None without one)."""
    import orjson

    from geoaware.construct.stats import scheme_title

    folder = Path(partitions_dir)
    stats = (folder if folder.is_dir() else folder.parent) / "stats.json"
    try:
        return scheme_title(orjson.loads(stats.read_bytes()))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def _batch_size(model: FlModel) -> int | None:
    """Return the mini-batch size the model trains with (its own, or its config's)."""
    config = getattr(model, "config", None)
    size = getattr(config if config is not None else model, "batch_size", None)
    return None if size is None else int(size)


def _model_settings(model: FlModel) -> dict[str, Any]:
    config = getattr(model, "config", None)
    if config is not None:
        return dict(dataclasses.asdict(config))
    keys = ("lr", "batch_size", "input_dim", "embeddings", "with_location")
    return {k: getattr(model, k) for k in keys if hasattr(model, k)}

"""Geolocation as classification over adaptive S2 cells (Müller-Budack et al. 2018).

:meth:`CellGeolocator.fit` builds one or several cell partitions from the training locations
(:func:`~geoaware.geolocate.cells.build_cells`; or takes given ones, such as the published
MP-16 files) and trains one softmax head per partition on the frozen embeddings: all vectors
in one tensor, batches drawn by indexing, Adam, cross-entropy summed over the partitions, a
training image outside every kept cell of a partition ignored for that partition, seeded end
to end. With ``hidden > 0`` the heads share one hidden layer (ReLU), as the paper's heads share
the network; with ``hidden=0`` each head is a linear map of the standardised embedding.

Prediction uses the paper's hierarchy: the finest partition is the one with the most cells,
and the score of each of its cells is its probability times that of the cell holding it in
every coarser partition, ``p(fine) p(middle parent) p(coarse parent)`` (a sum of
log-probabilities), normalised over the finest cells. The ``k`` best cells are the
candidates, scored by that normalised probability, and the predicted point is the mean
location of the best cell's training images (for the published files: their
``latitude_mean, longitude_mean``). A finest cell outside every cell of a coarser partition
(possible only when partitions use different ``tau_min``) has probability 0.

A model folder holds ``model.pt`` (the ``state_dict``), ``cells_<i>.csv`` (each partition in
the published layout, coarse to fine) and ``config.json`` (``"method": "cells"`` and every
option). torch is imported inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import numpy.typing as npt

from geoaware.errors import InputFileError, UsageError
from geoaware.fileio import atomic_path, atomic_write_text
from geoaware.geo.distance import check_coordinates
from geoaware.geolocate.base import Geolocator, PlacePredictions, read_npz, read_torch_state
from geoaware.geolocate.cells import CellPartition, build_cells, parents
from geoaware.typing import Float32Array, Float64Array, IntArray, PathLike

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_PARTITIONS", "CellConfig", "CellGeolocator", "hierarchical_scores"]

DEFAULT_PARTITIONS: tuple[tuple[int, int], ...] = ((50, 5000), (50, 2000), (50, 1000))
"""The MP-16 thresholds ``(tau_min, tau_max)``: coarse, middle, fine (4.7M images).

They suit a training set of millions of images; for ``n`` images, thresholds scaled by about
``n / 4.7M`` give as many cells, and fewer cells (larger thresholds) train better when a
cell would hold only a handful of images.
"""
PartitionSpec = tuple[int, int] | CellPartition | PathLike
FORMAT_VERSION = 1
_BATCH = 8192
_SCORES = 1 << 24  # scores held per prediction batch (rows x finest cells)


@dataclass(frozen=True)
class CellConfig:
    """Settings of a cell classifier (all JSON values; saved in ``config.json``).

    Attributes
    ----------
    partitions : list of str
        Where each partition came from, coarse to fine as given: ``"50_5000"`` (built with
        those thresholds), a file path, or ``"given"`` (a :class:`CellPartition`).
    epochs : int
        Passes over the training vectors.
    lr : float
        Adam's learning rate.
    batch : int
        Vectors per step.
    hidden : int
        Width of the shared hidden layer; 0 for linear heads.
    weight_decay : float
        Adam's L2 penalty.
    seed : int
        Seeds the weights and the batch order.
    device : str
        torch device to train and predict on (``"cpu"``, ``"cuda"``).
    min_level, max_level : int
        Levels :func:`~geoaware.geolocate.cells.build_cells` splits from and to.
    """

    partitions: list[str] = dataclasses.field(default_factory=list)
    epochs: int = 20
    lr: float = 1e-3
    batch: int = 256
    hidden: int = 0
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    min_level: int = 2
    max_level: int = 30

    def __post_init__(self) -> None:
        for name in ("epochs", "batch"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.hidden < 0 or self.lr <= 0 or self.weight_decay < 0:
            raise UsageError(
                f"need hidden >= 0, lr > 0, weight_decay >= 0; got {self.hidden}, {self.lr}, "
                f"{self.weight_decay}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellConfig:
        """Rebuild from :func:`dataclasses.asdict` output; unknown keys are an error.

        Examples
        --------
        >>> CellConfig.from_dict({"epochs": 3}).epochs
        3
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UsageError(f"unknown cell options: {', '.join(unknown)}")
        return cls(**data)


def hierarchical_scores(
    log_probs: Sequence[npt.NDArray[np.floating[Any]]], links: Sequence[IntArray]
) -> Float64Array:
    """Combine per-partition log-probabilities into one log-score per finest cell.

    ``log_probs[-1]`` is the finest partition, shape ``(n, C)``; ``links[l]`` (shape
    ``(C,)``) is the cell of partition ``l`` holding each finest cell, -1 for none (score
    ``-inf``). The result, ``log p(fine) + sum_l log p_l(parent)``, is normalised so that
    ``exp`` sums to 1 over the finest cells.

    Examples
    --------
    >>> coarse = np.log([[0.9, 0.1]])
    >>> fine = np.log([[0.3, 0.3, 0.4]])
    >>> s = hierarchical_scores([coarse, fine], [np.array([0, 0, 1])])
    >>> np.round(np.exp(s), 3).tolist()  # 0.27, 0.27, 0.04, normalised
    [[0.466, 0.466, 0.069]]
    """
    score = np.asarray(log_probs[-1], dtype=np.float64).copy()
    for lp, link in zip(log_probs[:-1], links, strict=True):
        part = np.asarray(lp, dtype=np.float64)[:, np.maximum(link, 0)]
        score += np.where(link >= 0, part, -np.inf)
    top = score.max(axis=1, keepdims=True)
    total = top + np.log(np.exp(score - top).sum(axis=1, keepdims=True))
    return score - total  # type: ignore[no-any-return]


def _net(dim: int, sizes: Sequence[int], hidden: int) -> torch.nn.Module:
    """Standardisation buffers, an optional shared hidden layer and one head per partition."""
    import torch

    net = torch.nn.Module()
    net.register_buffer("mean", torch.zeros(dim))
    net.register_buffer("scale", torch.ones(dim))
    net.trunk = (
        torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU())
        if hidden
        else torch.nn.Identity()
    )
    width = hidden or dim
    net.heads = torch.nn.ModuleList(torch.nn.Linear(width, size) for size in sizes)
    return net


def _logits(net: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Run :func:`_net`'s module: one logit tensor per partition."""
    import torch

    h = net.get_submodule("trunk")((x - net.get_buffer("mean")) * net.get_buffer("scale"))
    heads = cast(torch.nn.ModuleList, net.get_submodule("heads"))
    return [head(h) for head in heads]


def _vectors(vectors: npt.ArrayLike) -> Float32Array:
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise UsageError(f"vectors must be a 2-D array (n, dim), got shape {x.shape}")
    if not np.isfinite(x).all():
        row = int(np.argmax(~np.isfinite(x).all(axis=1)))
        raise UsageError(f"vector {row} holds NaN or infinity")
    return x


def _partition(
    spec: PartitionSpec,
    lat: Float64Array,
    lon: Float64Array,
    config: CellConfig,
) -> tuple[CellPartition, str]:
    if isinstance(spec, CellPartition):
        return spec, "given"
    if isinstance(spec, str | os.PathLike):
        return CellPartition.from_file(spec), str(spec)
    tau_min, tau_max = (int(t) for t in spec)
    built = build_cells(
        lat, lon, tau_min, tau_max, min_level=config.min_level, max_level=config.max_level
    )
    return built, f"{tau_min}_{tau_max}"


class CellGeolocator(Geolocator):
    """Softmax heads over S2 cell partitions, combined hierarchically.

    Parameters
    ----------
    partitions
        The cell partitions, in the order given at fit time (the finest is the one with the
        most cells).
    net
        The torch module of :func:`_net` (standardisation, trunk, one head per partition).
    config
        The settings it was trained with.
    dim
        Embedding size.
    training
        What the training saw (kept in ``config.json``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lat = np.repeat([48.85, 40.71, -33.87], 60) + rng.normal(0, 0.01, 180)
    >>> lon = np.repeat([2.35, -74.0, 151.2], 60) + rng.normal(0, 0.01, 180)
    >>> x = np.repeat(np.eye(3), 60, axis=0) + rng.normal(0, 0.05, (180, 3))
    >>> model = CellGeolocator.fit(x, lat, lon, partitions=[(10, 100)], epochs=30, lr=0.05)
    >>> p = model.predict(np.eye(3), k=2)
    >>> np.round(p.lat).tolist(), p.cand_score.shape
    ([49.0, 41.0, -34.0], (3, 2))
    """

    method: ClassVar[str] = "cells"

    def __init__(
        self,
        partitions: Sequence[CellPartition],
        net: torch.nn.Module,
        config: CellConfig,
        *,
        dim: int,
        training: dict[str, Any] | None = None,
        locations: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if not partitions:
            raise UsageError("a cell geolocator needs at least one partition")
        self.partitions = list(partitions)
        self.net = net.eval()
        self.config = config
        self.dim = int(dim)
        self.training = dict(training or {})
        empty = np.zeros(0)
        lat, lon = locations if locations is not None else (empty, empty)
        self.train_lat: np.ndarray = lat
        self.train_lon: np.ndarray = lon
        sizes = [len(p) for p in self.partitions]
        self.finest = int(np.argmax(sizes))
        fine = self.partitions[self.finest]
        self.coarser = [i for i in range(len(sizes)) if i != self.finest]
        self.links = [parents(fine, self.partitions[i]) for i in self.coarser]
        for i, link in zip(self.coarser, self.links, strict=True):
            if not (link >= 0).any():
                raise UsageError(
                    f"no cell of partition {i} ({sizes[i]} cells) holds a cell of the finest "
                    f"partition {self.finest}: they cannot be combined"
                )

    @property
    def sizes(self) -> list[int]:
        """Cells in each partition."""
        return [len(p) for p in self.partitions]

    @classmethod
    def fit(
        cls,
        vectors: npt.ArrayLike,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        *,
        partitions: Sequence[PartitionSpec] = DEFAULT_PARTITIONS,
        epochs: int = 20,
        lr: float = 1e-3,
        batch: int = 256,
        hidden: int = 0,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: str = "cpu",
        min_level: int = 2,
        max_level: int = 30,
        progress: Callable[[int, float], None] | None = None,
    ) -> CellGeolocator:
        """Build the partitions from ``lat``/``lon`` and train one head per partition.

        Parameters
        ----------
        vectors
            Training embeddings, shape ``(n, dim)`` (frozen: only the heads learn).
        lat, lon
            Their locations in degrees (no NaN).
        partitions
            Each a ``(tau_min, tau_max)`` pair (cells built from the training locations, see
            :func:`~geoaware.geolocate.cells.build_cells`), a path to a partition file in the
            published layout, or a :class:`CellPartition`. Default: the MP-16 thresholds
            :data:`DEFAULT_PARTITIONS`, sized for millions of images.
        epochs, lr, batch, hidden, weight_decay, seed, device, min_level, max_level
            See :class:`CellConfig`.
        progress
            Called after each epoch with ``(epoch, mean_loss)``.

        Raises
        ------
        geoaware.errors.UsageError
            Mismatched lengths, NaN locations or vectors, bad options, or a partition that
            keeps no cell (thresholds too high for the data).

        Examples
        --------
        >>> m = CellGeolocator.fit(np.eye(2).repeat(5, 0), [0.0] * 5 + [40.0] * 5,
        ...                        [0.0] * 5 + [90.0] * 5, partitions=[(1, 5)], epochs=1)
        >>> m.sizes
        [2]
        """
        import torch

        x = _vectors(vectors)
        la = np.asarray(lat, dtype=np.float64).reshape(-1)
        lo = np.asarray(lon, dtype=np.float64).reshape(-1)
        if not len(x) == len(la) == len(lo):
            raise UsageError(f"{len(x)} vectors but {len(la)} latitudes and {len(lo)} longitudes")
        check_coordinates(la, lo, name="training")
        if np.isnan(la).any() or np.isnan(lo).any():
            raise UsageError("training coordinates contain NaN; drop unlocated rows first")
        if not partitions:
            raise UsageError("partitions is empty: give at least one (tau_min, tau_max) pair")
        config = CellConfig(
            [],
            int(epochs),
            float(lr),
            int(batch),
            int(hidden),
            float(weight_decay),
            int(seed),
            str(device),
            int(min_level),
            int(max_level),
        )
        built = [_partition(spec, la, lo, config) for spec in partitions]
        cells = [p for p, _ in built]
        config = dataclasses.replace(config, partitions=[name for _, name in built])
        for p, name in built:
            if len(p) == 0:
                raise UsageError(
                    f"partition {name} keeps no cell from {len(la)} training images: "
                    "lower tau_min and tau_max"
                )
        labels = np.stack([p.assign(la, lo) for p in cells], axis=1)

        torch.manual_seed(config.seed)
        gen = torch.Generator().manual_seed(config.seed)
        dev = torch.device(config.device)
        net = _net(x.shape[1], [len(p) for p in cells], config.hidden)
        std = x.std(axis=0)
        net.get_buffer("mean").copy_(torch.from_numpy(x.mean(axis=0)))
        net.get_buffer("scale").copy_(torch.from_numpy(1.0 / np.where(std > 1e-6, std, 1.0)))
        net.to(dev)
        x_all = torch.from_numpy(x).to(dev)
        y_all = torch.from_numpy(labels.astype(np.int64)).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        losses: list[float] = []
        net.train()
        for epoch in range(config.epochs):
            order = torch.randperm(len(x), generator=gen).to(dev)
            total = torch.zeros((), device=dev)
            steps = 0
            for start in range(0, len(x), config.batch):
                i = order[start : start + config.batch]
                y = y_all[i]
                loss = torch.zeros((), device=dev)
                for level, z in enumerate(_logits(net, x_all[i])):
                    t = y[:, level]
                    valid = (t >= 0).sum().clamp(min=1)
                    ce = torch.nn.functional.cross_entropy(z, t, ignore_index=-1, reduction="sum")
                    loss = loss + ce / valid
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += loss.detach()
                steps += 1
            losses.append(float(total) / max(steps, 1))
            if progress is not None:
                progress(epoch + 1, losses[-1])
        net.eval().to("cpu")
        training = {
            "images": len(x),
            "outside_cells": [int((labels[:, j] < 0).sum()) for j in range(len(cells))],
            "cells": [len(p) for p in cells],
            "final_loss": losses[-1] if losses else None,
        }
        model = cls(cells, net, config, dim=x.shape[1], training=training, locations=(la, lo))
        model.training["finest_without_parent"] = [int((lk < 0).sum()) for lk in model.links]
        return model

    def _device(self) -> torch.device:
        import torch

        dev = torch.device(self.config.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            return torch.device("cpu")
        return dev

    def _log_softmax_batches(
        self, vectors: npt.ArrayLike
    ) -> Iterator[tuple[slice, list[torch.Tensor]]]:
        """Yield ``(rows, log-probabilities per partition)`` batch by batch, on the device."""
        import torch

        x = _vectors(vectors)
        if x.shape[1] != self.dim:
            raise UsageError(f"vectors have {x.shape[1]} dimensions, the model {self.dim}")
        dev = self._device()
        step = max(64, min(_BATCH, _SCORES // max(self.sizes)))  # bounds batch x cells
        self.net.to(dev)
        try:
            with torch.inference_mode():
                for s in range(0, len(x), step):
                    rows = slice(s, min(s + step, len(x)))
                    z = _logits(self.net, torch.from_numpy(x[rows]).to(dev))
                    yield rows, [torch.log_softmax(logits, 1) for logits in z]
        finally:
            self.net.to("cpu")

    def log_probabilities(self, vectors: npt.ArrayLike) -> list[Float32Array]:
        """Return each partition's log-probabilities, shapes ``(n, cells)``.

        Examples
        --------
        >>> m = CellGeolocator.fit(np.eye(2).repeat(5, 0), [0.0] * 5 + [40.0] * 5,
        ...                        [0.0] * 5 + [90.0] * 5, partitions=[(1, 5)], epochs=1)
        >>> [lp.shape for lp in m.log_probabilities(np.eye(2))]
        [(2, 2)]
        """
        n = len(np.asarray(vectors))
        out = [np.empty((n, size), np.float32) for size in self.sizes]
        for rows, logs in self._log_softmax_batches(vectors):
            for level, lp in enumerate(logs):
                out[level][rows] = lp.cpu().numpy()
        return out

    def predict(self, vectors: npt.ArrayLike, k: int = 5) -> PlacePredictions:
        """Predict the best cell's mean location and the ``k`` best cells of each vector.

        Candidates are cells of the finest partition ranked by the hierarchical probability
        (:func:`hierarchical_scores`, computed batch by batch on the device); ``k`` is
        capped at the number of cells.

        Examples
        --------
        >>> m = CellGeolocator.fit(np.eye(2).repeat(5, 0), [0.0] * 5 + [40.0] * 5,
        ...                        [0.0] * 5 + [90.0] * 5, partitions=[(1, 5)], epochs=20,
        ...                        lr=0.1)
        >>> p = m.predict(np.eye(2), k=2)
        >>> p.lat.round().tolist(), bool((p.cand_score.sum(1) <= 1.0 + 1e-6).all())
        ([0.0, 40.0], True)
        """
        import torch

        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}")
        fine = self.partitions[self.finest]
        k = min(int(k), len(fine))
        n = len(np.asarray(vectors))
        cells = np.zeros((n, k), np.int64)
        prob = np.zeros((n, k), np.float64)
        dev = self._device()
        links = [torch.from_numpy(link).to(dev) for link in self.links]
        for rows, logs in self._log_softmax_batches(vectors):
            score = logs[self.finest].double()
            for i, link in zip(self.coarser, links, strict=True):
                parent = logs[i].double()[:, link.clamp(min=0)]
                score = score + torch.where(link >= 0, parent, float("-inf"))
            score = score - torch.logsumexp(score, dim=1, keepdim=True)
            top = torch.topk(score, k, dim=1)
            cells[rows] = top.indices.cpu().numpy()
            prob[rows] = top.values.exp().cpu().numpy()
        cand_lat, cand_lon = fine.lat[cells], fine.lon[cells]
        return PlacePredictions(cand_lat[:, 0], cand_lon[:, 0], cand_lat, cand_lon, prob)

    def save(self, folder: Path) -> None:
        """Write ``model.pt``, ``cells_<i>.csv`` per partition and ``config.json``.

        Examples
        --------
        >>> import tempfile
        >>> m = CellGeolocator.fit(np.eye(2).repeat(5, 0), [0.0] * 5 + [40.0] * 5,
        ...                        [0.0] * 5 + [90.0] * 5, partitions=[(1, 5)], epochs=1)
        >>> d = Path(tempfile.mkdtemp())
        >>> m.save(d)
        >>> sorted(p.name for p in d.iterdir())
        ['cells_0.csv', 'config.json', 'locations.npz', 'model.pt']
        """
        import torch

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = [f"cells_{i}.csv" for i in range(len(self.partitions))]
        for name, partition in zip(files, self.partitions, strict=True):
            partition.write(folder / name)
        with atomic_path(folder / "model.pt", suffix=".pt") as tmp:
            torch.save(self.net.state_dict(), tmp)
        with atomic_path(folder / "locations.npz") as tmp, tmp.open("wb") as fh:
            np.savez(fh, lat=self.train_lat, lon=self.train_lon)  # a file object: no added suffix
        meta = {
            "method": self.method,
            "version": FORMAT_VERSION,
            "dim": self.dim,
            "hidden": self.config.hidden,
            "partition_files": files,
            "sizes": self.sizes,
            "config": dataclasses.asdict(self.config),
            "training": self.training,
        }
        atomic_write_text(folder / "config.json", json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> CellGeolocator:
        """Rebuild from :meth:`save`'s files and the parsed ``config.json``.

        Raises
        ------
        InputFileError
            A missing file, a bad option, a partition file that does not read, or weights
            that do not fit; naming the file and the field.
        """
        folder = Path(folder)
        where = folder / "config.json"
        if config.get("method") != cls.method:
            raise InputFileError(where, f"method is not {cls.method!r}", field="method")
        try:
            settings = CellConfig.from_dict(dict(config["config"]))
            dim = int(config["dim"])
            files = [str(f) for f in config["partition_files"]]
        except KeyError as exc:
            raise InputFileError(where, "missing", field=str(exc.args[0])) from None
        except (TypeError, ValueError) as exc:
            raise InputFileError(where, f"bad cell options ({exc})", field="config") from None
        if not files:
            raise InputFileError(where, "names no partition file", field="partition_files")
        for name in (*files, "model.pt"):
            if not (folder / name).is_file():
                raise InputFileError(folder / name, "missing: not a cells model folder")
        cells = [CellPartition.from_file(folder / name) for name in files]
        net = _net(dim, [len(p) for p in cells], settings.hidden)
        try:
            net.load_state_dict(read_torch_state(folder / "model.pt"))
        except (RuntimeError, ValueError) as exc:
            raise InputFileError(
                folder / "model.pt", f"weights do not load into the configured network ({exc})"
            ) from exc
        locations = None
        if (folder / "locations.npz").is_file():  # older folders have none: no overlap report
            npz = read_npz(folder / "locations.npz", ("lat", "lon"), pairs=[("lat", "lon")])
            locations = (npz["lat"], npz["lon"])
        training = dict(config.get("training", {}))
        return cls(cells, net, settings, dim=dim, training=training, locations=locations)

    def reference_locations(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return the training locations (what the cells and their means were built from)."""
        return {"training": (self.train_lat, self.train_lon)} if len(self.train_lat) else {}

"""k-nearest-neighbour geolocation: search the training images, vote on the sphere.

The gallery (training) embeddings are L2-normalised and stored in a FAISS index, so inner
product is cosine similarity:

* up to ``ivf_threshold`` vectors (default 200,000): exact search (``IndexFlatIP``);
* above it: an inverted file with product quantisation (``IndexIVFPQ``; ``nlist`` about
  ``4 sqrt(n)`` lists, ``m`` sub-quantisers dividing the dimension, trained on a seeded
  sample), optionally wrapped in ``IndexRefineFlat`` that re-ranks ``refine`` times more PQ
  candidates with exact vectors (recall@1 near exact search at a fraction of its cost).

Prediction, per query, from its ``k`` nearest neighbours:

* ``mode="nn"``: the nearest neighbour's location (Im2GPS's 1-NN);
* ``mode="kernel"`` (default when ``k > 1``): a kernel density over the neighbours'
  locations, each weighted by ``exp((s - s_max) / temperature)`` of its similarity ``s``,
  with a von Mises-Fisher kernel ``exp(kappa (cos theta - 1))``, ``kappa = (R / h)^2`` for
  bandwidth ``h`` km (a Gaussian in great-circle distance for small angles); the density is
  evaluated at every neighbour location and the densest one is returned. Angles come from
  3-D unit vectors, so neighbours on both sides of the antimeridian vote together (the
  arithmetic mean of longitudes 179.9 and -179.9 would be 0, half the world away).

Candidates are the neighbour locations ranked by density (or similarity), with places within
``merge_km`` of a better one moved behind the distinct places.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from geoaware.errors import InputFileError, UsageError
from geoaware.fileio import atomic_path, atomic_write_text
from geoaware.geo.distance import EARTH_RADIUS_KM, check_coordinates
from geoaware.geo.encode import unit_vector
from geoaware.geolocate.base import Geolocator, PlacePredictions, read_npz
from geoaware.typing import BoolArray, Float32Array, Float64Array, IntArray

__all__ = ["KnnConfig", "KnnGeolocator", "kernel_mode"]

_CHUNK = 8192


@dataclass(frozen=True)
class KnnConfig:
    """Settings of a k-NN geolocator (all JSON values; saved in ``config.json``).

    Attributes
    ----------
    k : int
        Neighbours that vote.
    mode : {"auto", "kernel", "nn"}
        ``auto``: ``kernel`` when ``k > 1``, else ``nn``.
    bandwidth_km : float
        Kernel bandwidth.
    temperature : float
        Similarity weighting: weight ``exp((s - s_max) / temperature)``; ``inf`` for equal
        weights.
    merge_km : float or None
        Candidates closer than this to a better candidate rank last (default: the bandwidth).
    index : {"auto", "flat", "ivfpq"}
        ``auto``: exact up to ``ivf_threshold`` vectors, IVF-PQ above.
    ivf_threshold : int
        Gallery size above which ``auto`` builds IVF-PQ.
    nlist : int or None
        IVF lists (default ``4 sqrt(n)``, at most ``n / 39``).
    m : int or None
        PQ sub-quantisers; must divide the dimension (default: the largest divisor with at
        least 4 dimensions per sub-vector, at most 64).
    nbits : int
        Bits per PQ code (lowered for tiny training samples).
    nprobe : int
        IVF lists searched per query.
    refine : int
        Re-rank ``refine * k`` PQ candidates with exact vectors (0: no refinement).
    train_size : int or None
        Vectors the IVF-PQ is trained on (seeded sample; default ``max(40 nlist, 10,000)``).
    seed : int
        Seed of the training sample.
    """

    k: int = 10
    mode: Literal["auto", "kernel", "nn"] = "auto"
    bandwidth_km: float = 25.0
    temperature: float = 0.05
    merge_km: float | None = None
    index: Literal["auto", "flat", "ivfpq"] = "auto"
    ivf_threshold: int = 200_000
    nlist: int | None = None
    m: int | None = None
    nbits: int = 8
    nprobe: int = 32
    refine: int = 8
    train_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise UsageError(f"k must be at least 1, got {self.k}")
        if self.mode not in ("auto", "kernel", "nn"):
            raise UsageError(f"mode must be auto, kernel or nn, got {self.mode!r}")
        if self.index not in ("auto", "flat", "ivfpq"):
            raise UsageError(f"index must be auto, flat or ivfpq, got {self.index!r}")
        if not self.bandwidth_km > 0:
            raise UsageError(f"bandwidth_km must be positive, got {self.bandwidth_km}")
        if not self.temperature > 0:
            raise UsageError(f"temperature must be positive, got {self.temperature}")
        if self.nprobe < 1 or self.refine < 0 or not 1 <= self.nbits <= 16:
            raise UsageError(
                f"need nprobe >= 1, refine >= 0, 1 <= nbits <= 16; got {self.nprobe}, "
                f"{self.refine}, {self.nbits}"
            )

    @property
    def vote(self) -> Literal["kernel", "nn"]:
        """The prediction rule in effect."""
        if self.mode == "auto":
            return "kernel" if self.k > 1 else "nn"
        return self.mode

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> KnnConfig:
        """Build from keyword options, naming any that is not a k-NN setting.

        Examples
        --------
        >>> KnnConfig.from_options({"k": 1}).vote
        'nn'
        >>> KnnConfig.from_options({"epochs": 3})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        geoaware.errors.UsageError: option 'epochs' does not apply to method 'knn'; its options: ...
        """
        config: KnnConfig = _config_from(cls, options, "knn")
        return config


def _config_from(cls: Any, options: dict[str, Any], method: str) -> Any:
    """Build a config dataclass from options, naming any option it does not take."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in options:
        if key not in names:
            raise UsageError(
                f"option {key!r} does not apply to method {method!r}; its options: "
                + ", ".join(names)
            )
    config = cls(**options)
    return config


def _faiss() -> Any:
    """Import faiss (typed as Any: its bundled stubs miss the search-parameter keywords)."""
    import faiss

    return faiss


def _normalized(vectors: npt.ArrayLike) -> Float32Array:
    x = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if x.ndim != 2:
        raise UsageError(f"vectors must be a 2-D array (n, dim), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def kernel_mode(
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    weights: npt.ArrayLike,
    bandwidth_km: float,
) -> tuple[Float64Array, IntArray]:
    """Kernel density of each row's points, evaluated at those points; and the densest one.

    ``lat``, ``lon``, ``weights`` have shape ``(n, k)``; a zero weight is a missing point.
    Returns the densities ``(n, k)`` (normalised by each row's weight sum, so 1.0 means every
    vote at the same place) and the index of each row's densest point ``(n,)``.

    Examples
    --------
    Two neighbours on either side of the antimeridian and one far away: the winner is on the
    antimeridian, not at longitude 0 as a mean of longitudes would have it.

    >>> d, best = kernel_mode([[0.0, 0.0, 0.0]], [[179.9, -179.9, 0.0]], [[1, 1, 1.2]], 50.0)
    >>> int(best[0]) in (0, 1), round(float(d[0, 0]), 2)
    (True, 0.6)
    """
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    u = unit_vector(la, lo)  # (n, k, 3)
    cos = np.einsum("nid,njd->nij", u, u)
    kappa = (EARTH_RADIUS_KM / bandwidth_km) ** 2
    kern = np.exp(kappa * (np.clip(cos, -1.0, 1.0) - 1.0))
    total = w.sum(axis=1, keepdims=True)
    density = np.einsum("nij,nj->ni", kern, w) / np.where(total > 0, total, 1.0)
    density = np.where(w > 0, density, -np.inf)
    return density, np.argmax(density, axis=1).astype(np.int64)


def _rank_candidates(
    lat: Float64Array, lon: Float64Array, score: Float64Array, merge_km: float, k: int
) -> IntArray:
    """Column order per row: best score first, near-duplicates of better places moved last."""
    n, kk = score.shape
    order = np.argsort(-score, axis=1, kind="stable")
    la = np.take_along_axis(lat, order, 1)
    lo = np.take_along_axis(lon, order, 1)
    sc = np.take_along_axis(score, order, 1)
    u = unit_vector(la, lo)
    cos_merge = math.cos(min(merge_km / EARTH_RADIUS_KM, math.pi))
    close = np.einsum("nid,njd->nij", u, u) > cos_merge  # (n, kk, kk)
    kept = np.zeros((n, kk), dtype=bool)
    valid = np.isfinite(sc)
    for j in range(kk):  # over the k ranks, vectorised over the queries
        dup = (close[:, j, :j] & kept[:, :j]).any(axis=1)
        kept[:, j] = valid[:, j] & ~dup
    rank = np.argsort(~kept, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(order, rank, 1)


class KnnGeolocator(Geolocator):
    """Geolocation by nearest neighbours among training images (see the module docs).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(2, 8))
    >>> x = np.repeat(centres, 5, axis=0) + 0.01 * rng.normal(size=(10, 8))
    >>> lat, lon = np.repeat([48.85, -33.87], 5), np.repeat([2.35, 151.21], 5)
    >>> model = KnnGeolocator.fit(x, lat, lon, k=5)
    >>> p = model.predict(centres[[1]], k=2)
    >>> round(float(p.lat[0]), 2), round(float(p.lon[0]), 2), p.k
    (-33.87, 151.21, 2)
    """

    method: ClassVar[str] = "knn"

    def __init__(
        self,
        index: Any,
        lat: Float64Array,
        lon: Float64Array,
        ids: npt.NDArray[Any],
        config: KnnConfig,
        *,
        dim: int,
        excluded: IntArray | None = None,
    ) -> None:
        self.index = index
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        self.ids = np.asarray(ids).astype(str)
        self.config = config
        self.dim = dim
        self.excluded = (
            np.zeros(0, dtype=np.int64) if excluded is None else np.asarray(excluded, np.int64)
        )

    # -- fitting -------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        vectors: npt.ArrayLike,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        *,
        ids: npt.ArrayLike | None = None,
        **options: Any,
    ) -> KnnGeolocator:
        """Index ``vectors`` (one per training image, at ``lat``/``lon``); see :class:`KnnConfig`.

        Examples
        --------
        >>> m = KnnGeolocator.fit(np.eye(3), [0.0, 10.0, 20.0], [0.0, 0.0, 0.0], k=1)
        >>> m.index_kind, m.size
        ('flat', 3)
        """
        config = KnnConfig.from_options(options)
        x = _normalized(vectors)
        la = np.asarray(lat, dtype=np.float64).reshape(-1)
        lo = np.asarray(lon, dtype=np.float64).reshape(-1)
        if not len(x) == len(la) == len(lo):
            raise UsageError(f"{len(x)} vectors but {len(la)} latitudes and {len(lo)} longitudes")
        if len(x) == 0:
            raise UsageError("cannot fit k-NN on an empty gallery")
        check_coordinates(la, lo, name="training")
        if np.isnan(la).any() or np.isnan(lo).any():
            raise UsageError("training coordinates contain NaN; drop unlocated rows first")
        ident = np.arange(len(x)).astype(str) if ids is None else np.asarray(ids).astype(str)
        index = _build_index(x, config)
        return cls(index, la, lo, ident, config, dim=x.shape[1])

    @property
    def size(self) -> int:
        """Vectors in the index."""
        return int(self.index.ntotal)

    @property
    def index_kind(self) -> str:
        """``flat`` (exact) or ``ivfpq`` (approximate, maybe refined)."""
        faiss = _faiss()

        return "flat" if isinstance(self.index, faiss.IndexFlat) else "ivfpq"

    # -- searching -----------------------------------------------------------------------------
    def _search_params(self) -> Any:
        faiss = _faiss()

        sel = None
        if self.excluded.size:
            batch = faiss.IDSelectorBatch(self.excluded)
            sel = faiss.IDSelectorNot(batch)
            sel.referenced_objects = [batch]  # keep the inner selector alive
        if self.index_kind == "flat":
            return None if sel is None else faiss.SearchParameters(sel=sel)
        ivf = (
            faiss.SearchParametersIVF(sel=sel, nprobe=self.config.nprobe)
            if sel is not None
            else faiss.SearchParametersIVF(nprobe=self.config.nprobe)
        )
        if isinstance(self.index, faiss.IndexRefine):
            params = faiss.IndexRefineSearchParameters(
                k_factor=float(max(self.config.refine, 1)), base_index_params=ivf
            )
            params.referenced_objects = [ivf, sel]
            return params
        return ivf

    def search(self, vectors: npt.ArrayLike, k: int) -> tuple[Float64Array, IntArray]:
        """Return cosine similarities and gallery rows of the ``k`` nearest neighbours.

        Missing neighbours (a gallery smaller than ``k``, or empty probed lists) have row -1
        and similarity ``-inf``.

        Examples
        --------
        >>> m = KnnGeolocator.fit(np.eye(3), [0.0, 10.0, 20.0], [0.0, 0.0, 0.0], k=1)
        >>> m.search(np.array([[0.0, 1.0, 0.1]]), 2)[1].tolist()
        [[1, 2]]
        """
        q = _normalized(vectors)
        if q.shape[1] != self.dim:
            raise UsageError(f"query vectors have {q.shape[1]} dimensions, the index {self.dim}")
        params = self._search_params()
        sims = np.empty((len(q), k), dtype=np.float64)
        rows = np.empty((len(q), k), dtype=np.int64)
        for s in range(0, len(q), _CHUNK):
            chunk = q[s : s + _CHUNK]
            d, i = (
                self.index.search(chunk, k)
                if params is None
                else self.index.search(chunk, k, params=params)
            )
            sims[s : s + len(chunk)] = d
            rows[s : s + len(chunk)] = i
        sims[rows < 0] = -np.inf
        return sims, rows

    def predict(self, vectors: np.ndarray, k: int = 5) -> PlacePredictions:
        """Predict a place and ``k`` ranked candidates per query vector.

        Examples
        --------
        >>> m = KnnGeolocator.fit(np.eye(3), [0.0, 0.0, 50.0], [179.9, -179.9, 0.0], k=3,
        ...                       temperature=10.0)
        >>> abs(float(m.predict(np.array([[0.3, 0.3, 0.35]])).lon[0])) > 179
        True
        """
        cfg = self.config
        kk = max(cfg.k, k)
        sims, rows = self.search(vectors, kk)
        safe = np.where(rows >= 0, rows, 0)
        lat, lon = self.lat[safe], self.lon[safe]
        valid = rows >= 0
        # The score of a candidate is its share of the vote, in [0, 1] like the other
        # methods' probabilities: the kernel density of the k voters' similarity weights at
        # that place (1.0: every vote there).  Neighbours beyond the k voters get no vote
        # (score 0) and rank after the voters by similarity.
        if cfg.vote == "kernel":
            v = np.where(valid[:, : cfg.k], sims[:, : cfg.k], -np.inf)
            top = np.max(v, axis=1, keepdims=True)
            top = np.where(np.isfinite(top), top, 0.0)
            w = np.where(np.isfinite(v), np.exp((v - top) / cfg.temperature), 0.0)
            density, best = kernel_mode(lat[:, : cfg.k], lon[:, : cfg.k], w, cfg.bandwidth_km)
            share = np.zeros(sims.shape)
            share[:, : cfg.k] = np.where(np.isfinite(density), density, 0.0)
            # rank: the voters by their share (2 + share), then the others by similarity
            key = np.where(np.arange(kk) < cfg.k, 2.0 + share, (1.0 + sims) / 2.0)
            rank = np.where(valid, key, -np.inf)
        else:
            best = np.zeros(len(sims), dtype=np.int64)
            share = np.zeros(sims.shape)
            share[:, 0] = 1.0  # the nearest neighbour holds the only vote
            rank = np.where(valid, sims, -np.inf)
        merge = cfg.bandwidth_km if cfg.merge_km is None else cfg.merge_km
        k_out = min(k, kk)
        cand = _rank_candidates(lat, lon, rank, merge, k_out)
        n = np.arange(len(lat))
        pick = np.where(valid[n, best], best, cand[:, 0])
        real = np.take_along_axis(valid, cand, 1)  # False past the end of a small gallery
        cand_score = np.take_along_axis(share, cand, 1)
        return PlacePredictions(
            lat=lat[n, pick],
            lon=lon[n, pick],
            cand_lat=np.where(real, np.take_along_axis(lat, cand, 1), np.nan),
            cand_lon=np.where(real, np.take_along_axis(lon, cand, 1), np.nan),
            cand_score=np.where(real, cand_score, np.nan),
        )

    # -- reference points ----------------------------------------------------------------------
    def reference_locations(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return the training images' locations (minus any excluded): what predictions return."""
        keep = self._kept()
        return {"training": (self.lat[keep], self.lon[keep])}

    def _kept(self) -> BoolArray:
        keep = np.ones(len(self.lat), dtype=bool)
        keep[self.excluded] = False
        return keep

    def without(self, keep: np.ndarray) -> KnnGeolocator:
        """Return a model whose searches skip the training images where ``keep`` is False.

        ``keep`` is a mask over :meth:`reference_locations`'s points. The index is shared, not
        rebuilt: excluded ids are filtered inside FAISS's search (an ``IDSelector``).

        Examples
        --------
        >>> m = KnnGeolocator.fit(np.eye(3), [0.0, 10.0, 20.0], [0.0, 0.0, 0.0], k=1)
        >>> float(m.without(np.array([False, True, True])).predict(np.eye(3)[:1]).lat[0]) != 0
        True
        """
        current = np.flatnonzero(self._kept())
        mask = np.asarray(keep, dtype=bool)
        if mask.shape != current.shape:
            raise UsageError(f"keep has {mask.size} entries for {current.size} reference points")
        excluded = np.union1d(self.excluded, current[~mask]).astype(np.int64)
        return KnnGeolocator(
            self.index, self.lat, self.lon, self.ids, self.config, dim=self.dim, excluded=excluded
        )

    # -- files ---------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write ``index.faiss``, ``gallery.npz`` (lat, lon, ids) and ``config.json``."""
        faiss = _faiss()

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "index.faiss", suffix=".faiss") as tmp:
            faiss.write_index(self.index, str(tmp))
        with atomic_path(folder / "gallery.npz", suffix=".npz") as tmp, tmp.open("wb") as fh:
            np.savez(fh, lat=self.lat, lon=self.lon, ids=self.ids, excluded=self.excluded)
        meta = {
            "method": self.method,
            "version": 1,
            "dim": self.dim,
            "size": self.size,
            "index_kind": self.index_kind,
            "config": dataclasses.asdict(self.config),
        }
        atomic_write_text(folder / "config.json", json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> KnnGeolocator:
        """Rebuild from :meth:`save`'s files."""
        faiss = _faiss()

        folder = Path(folder)
        for name in ("index.faiss", "gallery.npz"):
            if not (folder / name).is_file():
                raise InputFileError(folder / name, "missing: not a k-NN geolocator folder")
        try:
            cfg = KnnConfig(**config["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputFileError(
                folder / "config.json", f"bad k-NN config ({exc})", field="config"
            ) from exc
        try:
            index = faiss.read_index(str(folder / "index.faiss"))
        except RuntimeError as exc:
            raise InputFileError(folder / "index.faiss", f"not a FAISS index ({exc})") from exc
        z = read_npz(
            folder / "gallery.npz", ("lat", "lon", "ids", "excluded"), pairs=[("lat", "lon")]
        )
        lat, lon, ids, excluded = z["lat"], z["lon"], z["ids"], z["excluded"]
        if index.ntotal != len(lat):
            raise InputFileError(
                folder / "gallery.npz",
                f"{len(lat)} locations for an index of {index.ntotal} vectors",
                field="lat",
            )
        return cls(index, lat, lon, ids, cfg, dim=int(index.d), excluded=excluded)


def _pq_m(dim: int, wanted: int | None) -> int:
    if wanted is not None:
        if dim % wanted:
            raise UsageError(f"m={wanted} does not divide the dimension {dim}")
        return wanted
    for m in range(min(64, dim), 0, -1):
        if dim % m == 0 and dim // m >= 4:
            return m
    return 1


def _build_index(x: Float32Array, config: KnnConfig) -> Any:
    faiss = _faiss()

    n, dim = x.shape
    kind = config.index
    if kind == "auto":
        kind = "ivfpq" if n > config.ivf_threshold else "flat"
    if kind == "flat":
        flat = faiss.IndexFlatIP(dim)
        flat.add(x)
        return flat
    nlist = config.nlist or round(4 * math.sqrt(n))
    nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))
    train_n = min(n, config.train_size or max(40 * nlist, 10_000))
    rng = np.random.default_rng(config.seed)
    sample = x[np.sort(rng.choice(n, size=train_n, replace=False))] if train_n < n else x
    nbits = min(config.nbits, max(1, int(math.log2(max(train_n // 39, 2)))))
    m = _pq_m(dim, config.m)
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = config.seed
    ivf.pq.cp.seed = config.seed
    ivf.train(sample)
    ivf.nprobe = config.nprobe
    index: Any = ivf
    if config.refine:
        index = faiss.IndexRefineFlat(ivf)
        index.k_factor = float(config.refine)
        index.own_fields = False
        index.referenced_objects = [ivf]  # keep the base index alive
    index.add(x)
    return index

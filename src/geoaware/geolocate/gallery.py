"""GPS-gallery retrieval in the GeoCLIP style: images and coordinates in one space.

After GeoCLIP (Vivanco Cepeda et al., NeurIPS 2023), two encoders are trained contrastively:

* the **location encoder** turns a coordinate into its 3-D unit vector, maps that through
  random Fourier features ``[cos 2 pi B u, sin 2 pi B u]`` at several scales (``B`` drawn
  once with standard deviation ``sigma``; GeoCLIP's ``2^0, 2^4, 2^8``: continents to cities),
  sends each scale through its own small MLP and sums the results;
* the **image projection** is an MLP (or linear map) of the L2-normalised image embedding;
* InfoNCE with a learnable temperature pulls each image towards its own location and away
  from the other locations in the batch (GPS jittered by ``gps_noise_km``, as GeoCLIP does).

Prediction scores every coordinate of a gallery (GeoCLIP's 100K MP-16 coordinates, read with
:func:`geoaware.sources.gallery.read_gps_gallery`, or the training locations when none is
given), returns the best one and the top ``k`` with their softmax probabilities. Training is
tensor-based (one shuffled permutation per epoch, no per-sample loader) and seeded; torch is
imported only here.

GeoCLIP itself: :meth:`GalleryGeolocator.geoclip` is the published model (its trained
location encoder, image MLP, logit scale and 100K gallery, read from the ``geoclip``
package's files by :mod:`geoaware.geolocate.geoclip`), for CLIP ViT-L/14 image features;
``init="geoclip"`` fine-tunes that model on a user's images instead of training from scratch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from geoaware.errors import InputFileError, InvalidCoordinateError, UsageError
from geoaware.fileio import atomic_path, atomic_write_text
from geoaware.geo.distance import EARTH_RADIUS_KM, check_coordinates
from geoaware.geo.encode import unit_vector
from geoaware.geolocate.base import Geolocator, PlacePredictions, read_npz, read_torch_state
from geoaware.typing import Float64Array

__all__ = ["GalleryConfig", "GalleryGeolocator", "LocationEncoder"]

_CHUNK = 1024


@dataclass(frozen=True)
class GalleryConfig:
    """Settings of a GPS-gallery geolocator (JSON values; saved in ``config.json``).

    Attributes
    ----------
    sigmas : tuple of float
        Scales of the random Fourier features (GeoCLIP: 1, 16, 256).
    rff_dim : int
        Fourier features per scale (half cosines, half sines).
    hidden : int
        Width of each scale's MLP (two hidden layers).
    embed_dim : int
        Size of the shared image/location space.
    image_hidden : int
        Hidden width of the image projection (0: a linear projection).
    epochs, batch_size, lr, weight_decay
        Adam training schedule; the learning rate decays by cosine to 0.
    temperature : float
        Initial InfoNCE temperature (learnt; its inverse is capped at 100).
    gps_noise_km : float
        Standard deviation of the jitter added to training coordinates.
    seed : int
        Seed of the Fourier matrices, the initial weights, the shuffles and the jitter.
    init : {"", "geoclip"}
        ``geoclip``: GeoCLIP's architecture started from its published weights (image vectors
        of CLIP ViT-L/14, 768-d); ``sigmas``, ``rff_dim``, ``hidden``, ``embed_dim``,
        ``image_hidden`` and ``temperature`` then do not apply. Fine-tune with a small
        ``lr`` (GeoCLIP trained at 3e-5, the default with this init).
    """

    sigmas: tuple[float, ...] = (1.0, 16.0, 256.0)
    rff_dim: int = 256
    hidden: int = 256
    embed_dim: int = 128
    image_hidden: int = 512
    epochs: int = 30
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-6
    temperature: float = 0.07
    gps_noise_km: float = 1.0
    seed: int = 0
    init: str = ""

    def __post_init__(self) -> None:
        if self.init not in ("", "geoclip"):
            raise UsageError(f"init must be '' or 'geoclip', got {self.init!r}")
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        if not self.sigmas or any(not s > 0 for s in self.sigmas):
            raise UsageError(f"sigmas must be positive numbers, got {self.sigmas}")
        if self.rff_dim < 2 or self.rff_dim % 2:
            raise UsageError(f"rff_dim must be an even number >= 2, got {self.rff_dim}")
        for name in ("hidden", "embed_dim", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.image_hidden < 0 or not self.lr > 0 or not self.temperature > 0:
            raise UsageError("image_hidden must be >= 0, lr and temperature positive")
        if self.gps_noise_km < 0:
            raise UsageError(f"gps_noise_km must be >= 0, got {self.gps_noise_km}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> GalleryConfig:
        """Build from keyword options, naming any that is not a gallery setting.

        Examples
        --------
        >>> GalleryConfig.from_options({"sigmas": [1, 16]}).sigmas
        (1.0, 16.0)
        """
        names = [f.name for f in dataclasses.fields(cls)]
        for key in options:
            if key not in names:
                raise UsageError(
                    f"option {key!r} does not apply to method 'gallery'; its options: "
                    + ", ".join(names)
                )
        return cls(**options)


class LocationEncoder(nn.Module):
    """Coordinates (as unit vectors) to embeddings: multi-scale Fourier features, MLPs, sum.

    Examples
    --------
    >>> enc = LocationEncoder(GalleryConfig(rff_dim=8, hidden=16, embed_dim=4))
    >>> enc(torch.zeros(3, 3)).shape
    torch.Size([3, 4])
    """

    def __init__(self, config: GalleryConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        half = config.rff_dim // 2
        b = torch.randn(len(config.sigmas), 3, half, generator=generator)
        b = b * torch.tensor(config.sigmas, dtype=torch.float32).view(-1, 1, 1)
        self.register_buffer("frequencies", b)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Linear(config.rff_dim, config.hidden),
                nn.ReLU(),
                nn.Linear(config.hidden, config.hidden),
                nn.ReLU(),
                nn.Linear(config.hidden, config.embed_dim),
            )
            for _ in config.sigmas
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Embed unit vectors ``(n, 3)``."""
        out: torch.Tensor | None = None
        freq: torch.Tensor = self.frequencies  # type: ignore[assignment]
        for s, branch in enumerate(self.branches):
            z = 2 * math.pi * (u @ freq[s])
            y = branch(torch.cat([torch.cos(z), torch.sin(z)], dim=1))
            out = y if out is None else out + y
        assert out is not None
        return out


class _Net(nn.Module):
    def __init__(self, dim: int, config: GalleryConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.geoclip = config.init == "geoclip"
        self.location: nn.Module
        self.image: nn.Module
        if self.geoclip:
            from geoaware.geolocate.geoclip import (
                GEOCLIP_BACKBONE,
                GEOCLIP_DIM,
                GeoClipLocationEncoder,
                geoclip_image_mlp,
                initial_log_scale,
            )

            if dim != GEOCLIP_DIM:
                raise UsageError(
                    f"GeoCLIP takes the {GEOCLIP_DIM}-d image features of {GEOCLIP_BACKBONE} "
                    f"(geoaware embed --encoder hf:{GEOCLIP_BACKBONE}); these vectors have {dim}"
                )
            self.location = GeoClipLocationEncoder()
            self.image = geoclip_image_mlp()
            self.log_scale = nn.Parameter(torch.tensor(initial_log_scale()))
            return
        self.location = LocationEncoder(config, generator)
        if config.image_hidden:
            self.image = nn.Sequential(
                nn.Linear(dim, config.image_hidden),
                nn.ReLU(),
                nn.Linear(config.image_hidden, config.embed_dim),
            )
        else:
            self.image = nn.Linear(dim, config.embed_dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))

    def scale(self) -> torch.Tensor:
        if self.geoclip:
            return self.log_scale.exp()
        return self.log_scale.exp().clamp(max=100.0)

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        if self.geoclip:  # GeoCLIP's MLP takes CLIP's raw (unnormalised) features
            return F.normalize(self.image(x), dim=1)
        return F.normalize(self.image(F.normalize(x, dim=1)), dim=1)

    def location_inputs(self, lat: npt.ArrayLike, lon: npt.ArrayLike, name: str) -> torch.Tensor:
        """Return the location encoder's input: unit vectors, or GeoCLIP's latitude/longitude."""
        u = _unit(lat, lon, name)
        if not self.geoclip:
            return u
        la = np.asarray(lat, dtype=np.float64).reshape(-1)
        lo = np.asarray(lon, dtype=np.float64).reshape(-1)
        return torch.from_numpy(np.stack([la, lo], axis=1).astype(np.float32))

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Return the location encoder's input for (jittered) unit vectors."""
        if not self.geoclip:
            return u
        from geoaware.geolocate.geoclip import GeoClipLocationEncoder

        return GeoClipLocationEncoder.from_unit(u)

    def embed_locations(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.location(inputs), dim=1)


def _unit(lat: npt.ArrayLike, lon: npt.ArrayLike, name: str) -> torch.Tensor:
    la = np.asarray(lat, dtype=np.float64).reshape(-1)
    lo = np.asarray(lon, dtype=np.float64).reshape(-1)
    check_coordinates(la, lo, name=name)
    if la.shape != lo.shape:
        raise UsageError(f"{name}: {la.size} latitudes but {lo.size} longitudes")
    if np.isnan(la).any() or np.isnan(lo).any():
        raise UsageError(f"{name} coordinates contain NaN; drop unlocated rows first")
    return torch.from_numpy(unit_vector(la, lo).astype(np.float32))


class GalleryGeolocator(Geolocator):
    """GeoCLIP-style retrieval over a GPS gallery (see the module docs).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lat, lon = np.repeat([48.85, -33.87], 20), np.repeat([2.35, 151.21], 20)
    >>> x = np.repeat(np.eye(2, 4), 20, axis=0) + 0.01 * rng.normal(size=(40, 4))
    >>> m = GalleryGeolocator.fit(x, lat, lon, epochs=30, hidden=16, rff_dim=16,
    ...                           embed_dim=8, image_hidden=0, batch_size=8)
    >>> p = m.predict(np.eye(2, 4), k=2)
    >>> np.round(p.lat, 2).tolist()
    [48.85, -33.87]
    """

    method: ClassVar[str] = "gallery"

    def __init__(
        self,
        net: _Net,
        config: GalleryConfig,
        *,
        dim: int,
        gallery_lat: Float64Array,
        gallery_lon: Float64Array,
        train_lat: Float64Array,
        train_lon: Float64Array,
        training: dict[str, Any] | None = None,
    ) -> None:
        self.net = net.eval()
        self.config = config
        self.dim = dim
        self.gallery_lat = np.asarray(gallery_lat, dtype=np.float64)
        self.gallery_lon = np.asarray(gallery_lon, dtype=np.float64)
        self.train_lat = np.asarray(train_lat, dtype=np.float64)
        self.train_lon = np.asarray(train_lon, dtype=np.float64)
        self.training = training or {}
        with torch.inference_mode():
            u = self.net.location_inputs(self.gallery_lat, self.gallery_lon, "gallery")
            self._gallery = (
                torch.cat(
                    [self.net.embed_locations(u[s : s + 8192]) for s in range(0, len(u), 8192)]
                )
                if len(u)
                else torch.zeros(0, config.embed_dim)
            )

    @classmethod
    def fit(
        cls,
        vectors: npt.ArrayLike,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        *,
        gallery_lat: npt.ArrayLike | None = None,
        gallery_lon: npt.ArrayLike | None = None,
        progress: Any = None,
        **options: Any,
    ) -> GalleryGeolocator:
        """Train the two encoders on images at ``lat``/``lon``; see :class:`GalleryConfig`.

        ``gallery_lat``/``gallery_lon``: the coordinates predictions are chosen from (default:
        the distinct training locations). ``progress(epoch, loss)`` is called per epoch.
        """
        if options.get("init") == "geoclip":
            options = {"lr": 3e-5, **options}
        config = GalleryConfig.from_options(options)
        x = torch.from_numpy(np.array(vectors, dtype=np.float32, copy=True))
        if x.ndim != 2:
            raise UsageError(f"vectors must be a 2-D array (n, dim), got shape {tuple(x.shape)}")
        u = _unit(lat, lon, "training")
        if len(u) != len(x):
            raise UsageError(f"{len(x)} vectors but {len(u)} locations")
        if len(x) < 2:
            raise UsageError("contrastive training needs at least 2 located images")
        la = np.asarray(lat, dtype=np.float64).reshape(-1)
        lo = np.asarray(lon, dtype=np.float64).reshape(-1)
        if gallery_lat is None or gallery_lon is None:
            pairs = np.unique(np.column_stack([la, lo]), axis=0)
            g_lat, g_lon = pairs[:, 0], pairs[:, 1]
        else:
            g_lat = np.asarray(gallery_lat, dtype=np.float64).reshape(-1)
            g_lon = np.asarray(gallery_lon, dtype=np.float64).reshape(-1)
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            gen = torch.Generator().manual_seed(config.seed)
            net = _Net(x.shape[1], config, gen)
            if config.init == "geoclip":
                from geoaware.geolocate.geoclip import load_geoclip_weights

                load_geoclip_weights(net.location, net.image, net.log_scale)
            losses = _train(net, x, u, config, gen, progress)
        training = {
            "images": len(x),
            "losses": losses,
            "seconds": time.perf_counter() - t0,
            "final_temperature": float(1.0 / net.scale().item()),
        }
        return cls(
            net,
            config,
            dim=int(x.shape[1]),
            gallery_lat=g_lat,
            gallery_lon=g_lon,
            train_lat=la,
            train_lon=lo,
            training=training,
        )

    @classmethod
    def geoclip(
        cls, gallery_lat: npt.ArrayLike | None = None, gallery_lon: npt.ArrayLike | None = None
    ) -> GalleryGeolocator:
        """Return GeoCLIP as published: its weights and 100K gallery from the geoclip package.

        ``gallery_lat``/``gallery_lon``: predict among these coordinates instead.

        Queries are the 768-d image features of CLIP ViT-L/14
        (``geoaware embed --encoder hf:openai/clip-vit-large-patch14``). Encoding the 100K
        gallery takes a while on a CPU (it is done once, here).

        Examples
        --------
        >>> model = GalleryGeolocator.geoclip()  # doctest: +SKIP
        >>> model.predict(clip_vectors, k=5).cand_score.shape  # doctest: +SKIP
        (10, 5)
        """
        from geoaware.geolocate.geoclip import GEOCLIP_DIM, geoclip_files, load_geoclip_weights
        from geoaware.sources.gallery import read_gps_gallery

        config = GalleryConfig(init="geoclip")
        net = _Net(GEOCLIP_DIM, config, torch.Generator().manual_seed(0))
        load_geoclip_weights(net.location, net.image, net.log_scale)
        if gallery_lat is None or gallery_lon is None:
            gallery = read_gps_gallery(geoclip_files()["gallery"])
            gallery_lat = gallery.column("lat").to_numpy()
            gallery_lon = gallery.column("lon").to_numpy()
        empty = np.zeros(0, dtype=np.float64)
        return cls(
            net,
            config,
            dim=GEOCLIP_DIM,
            gallery_lat=np.asarray(gallery_lat, dtype=np.float64),
            gallery_lon=np.asarray(gallery_lon, dtype=np.float64),
            train_lat=empty,
            train_lon=empty,
            training={"pretrained": "geoclip", "images": 0},
        )

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, vectors: np.ndarray, k: int = 5) -> PlacePredictions:
        """Score every gallery coordinate; return the best and the top ``k`` (probabilities).

        Examples
        --------
        >>> cfg = dict(rff_dim=8, hidden=8, embed_dim=4, image_hidden=0, epochs=1)
        >>> m = GalleryGeolocator.fit(np.eye(3), [0.0, 1.0, 2.0], [0.0, 0.0, 0.0], **cfg)
        >>> p = m.predict(np.eye(3), k=2)
        >>> p.cand_lat.shape, bool(np.allclose(p.cand_score.sum(1) <= 1.0 + 1e-6, True))
        ((3, 2), True)
        """
        x = torch.from_numpy(np.array(vectors, dtype=np.float32, copy=True))
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise UsageError(f"query vectors must have shape (n, {self.dim}), got {tuple(x.shape)}")
        g = len(self._gallery)
        if g == 0:
            raise UsageError("the gallery is empty (every coordinate was excluded?)")
        kk = min(k, g)
        n = len(x)
        top_p = np.empty((n, kk), dtype=np.float64)
        top_i = np.empty((n, kk), dtype=np.int64)
        with torch.inference_mode():
            scale = self.net.scale()
            for s in range(0, n, _CHUNK):
                img = self.net.embed_images(x[s : s + _CHUNK])
                prob = torch.softmax(scale * (img @ self._gallery.T), dim=1)
                p, i = torch.topk(prob, kk, dim=1)
                top_p[s : s + len(img)] = p.double().numpy()
                top_i[s : s + len(img)] = i.numpy()
        cand_lat, cand_lon = self.gallery_lat[top_i], self.gallery_lon[top_i]
        return PlacePredictions(
            lat=cand_lat[:, 0].copy(),
            lon=cand_lon[:, 0].copy(),
            cand_lat=cand_lat,
            cand_lon=cand_lon,
            cand_score=top_p,
        )

    def reference_locations(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return the gallery (what predictions return) and the training locations (if any)."""
        refs = {"gallery": (self.gallery_lat, self.gallery_lon)}
        if self.train_lat.size:
            refs["training"] = (self.train_lat, self.train_lon)
        return refs

    def without(self, keep: np.ndarray) -> GalleryGeolocator:
        """Return the model with the gallery coordinates where ``keep`` is False removed."""
        mask = np.asarray(keep, dtype=bool)
        if mask.shape != self.gallery_lat.shape:
            raise UsageError(f"keep has {mask.size} entries for {self.gallery_lat.size} points")
        other = object.__new__(GalleryGeolocator)
        other.__dict__.update(self.__dict__)
        other.gallery_lat, other.gallery_lon = self.gallery_lat[mask], self.gallery_lon[mask]
        other._gallery = self._gallery[torch.from_numpy(mask)]
        return other

    # -- files ---------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write ``model.pt`` (weights), ``gallery.npz`` (gallery, training points), config."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "model.pt", suffix=".pt") as tmp:
            torch.save(self.net.state_dict(), tmp)
        with atomic_path(folder / "gallery.npz", suffix=".npz") as tmp, tmp.open("wb") as fh:
            np.savez(
                fh,
                gallery_lat=self.gallery_lat,
                gallery_lon=self.gallery_lon,
                train_lat=self.train_lat,
                train_lon=self.train_lon,
            )
        meta = {
            "method": self.method,
            "version": 1,
            "dim": self.dim,
            "gallery_size": int(self.gallery_lat.size),
            "config": dataclasses.asdict(self.config),
            "training": self.training,
        }
        atomic_write_text(folder / "config.json", json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> GalleryGeolocator:
        """Rebuild from :meth:`save`'s files."""
        folder = Path(folder)
        for name in ("model.pt", "gallery.npz"):
            if not (folder / name).is_file():
                raise InputFileError(folder / name, "missing: not a gallery geolocator folder")
        try:
            cfg = GalleryConfig(**config["config"])
            dim = int(config["dim"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputFileError(
                folder / "config.json", f"bad gallery config ({exc})", field="config"
            ) from exc
        try:
            net = _Net(dim, cfg, torch.Generator().manual_seed(cfg.seed))
        except UsageError as exc:  # e.g. init "geoclip" with vectors that are not 768-d
            raise InputFileError(folder / "config.json", str(exc), field="dim") from exc
        try:
            net.load_state_dict(read_torch_state(folder / "model.pt"))
        except (RuntimeError, ValueError) as exc:
            raise InputFileError(folder / "model.pt", f"weights do not load ({exc})") from exc
        keys = ("gallery_lat", "gallery_lon", "train_lat", "train_lon")
        arrays = read_npz(folder / "gallery.npz", keys, pairs=[keys[2:]])
        try:
            return cls(net, cfg, dim=dim, training=dict(config.get("training", {})), **arrays)
        except (UsageError, InvalidCoordinateError) as exc:  # the gallery's coordinates
            raise InputFileError(folder / "gallery.npz", str(exc)) from exc


def _train(
    net: _Net,
    x: torch.Tensor,
    u: torch.Tensor,
    config: GalleryConfig,
    gen: torch.Generator,
    progress: Any,
) -> list[float]:
    n = len(x)
    batch = min(config.batch_size, n)
    steps_per_epoch = max(1, n // batch)  # drop the ragged tail: every batch has negatives
    total = steps_per_epoch * config.epochs
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    )
    noise = config.gps_noise_km / EARTH_RADIUS_KM
    losses: list[float] = []
    net.train()
    for epoch in range(config.epochs):
        perm = torch.randperm(n, generator=gen)
        running = 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * batch : (step + 1) * batch]
            ub = u[idx]
            if noise:
                ub = F.normalize(ub + noise * torch.randn(ub.shape, generator=gen), dim=1)
            img = net.embed_images(x[idx])
            loc = net.embed_locations(net.from_unit(ub))
            logits = net.scale() * img @ loc.T
            loss = F.cross_entropy(logits, torch.arange(len(idx)))
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            running += float(loss.item())
        losses.append(running / steps_per_epoch)
        if progress is not None:
            progress(epoch + 1, losses[-1])
    net.eval()
    return losses

"""Training a prior: every array in tensors, batches drawn by indexing, seeded end to end.

No per-sample ``DataLoader``: the encoded inputs of all observations sit in one tensor, each
epoch draws a balanced index (:func:`~geoaware.priors.sampling.balanced_indices`) and each step
slices it. Background points are drawn uniformly on the sphere inside torch (or, for the
frozen GeoCLIP encoder, from a pool encoded once). Adam with exponential learning-rate decay
per epoch. Same seed and thread count, same weights.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from geoaware.priors.checkpoint import LocationPrior, save_prior
from geoaware.priors.config import PriorConfig
from geoaware.priors.data import Observations, load_table, observations_from_table
from geoaware.priors.errors import PriorError
from geoaware.priors.features import encode_inputs, fourier_frequencies
from geoaware.priors.losses import (
    FullLossHead,
    assume_negative_full,
    same_location_loss,
    same_species_loss,
    user_loss,
)
from geoaware.priors.model import PriorNet
from geoaware.priors.recipes import RecipeChoice, choose_recipe, recipe_config
from geoaware.priors.sampling import balanced_indices, uniform_sphere
from geoaware.typing import PathLike

__all__ = [
    "TrainResult",
    "bf16_supported",
    "fit_prior",
    "multiscale_torch",
    "set_threads",
    "train_prior",
]


def set_threads(n: int | None = None) -> int:
    """Use ``n`` torch threads (default: every CPU of the machine); return the number set.

    Examples
    --------
    >>> set_threads(1)
    1
    """
    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def bf16_supported() -> bool:
    """Say whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX).

    Without it, ``precision="bfloat16"`` is emulated and several times slower than float32,
    so benchmarks and scripts pick float32 there.

    Examples
    --------
    >>> isinstance(bf16_supported(), bool)
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe()) if callable(probe) else False


@dataclass
class TrainResult:
    """What :func:`train_prior` did.

    Attributes
    ----------
    model_dir : str
        The checkpoint folder written.
    rows, used : int
        Catalog rows read, and rows trained on.
    dropped : dict of str to int
        Rows left out and why (``no_location``, ``no_label``).
    classes : int
    epochs : int
    seconds : float
        Training time (without reading and encoding).
    epochs_per_second : float
    losses : list of float
        Mean loss of each epoch.
    recipe : dict
        The recipe used and why (:class:`~geoaware.priors.recipes.RecipeChoice`), or None
        when a full configuration was given.
    config : dict
        Every field of the configuration trained with.
    """

    model_dir: str
    rows: int
    used: int
    dropped: dict[str, int]
    classes: int
    epochs: int
    seconds: float
    epochs_per_second: float
    losses: list[float] = field(default_factory=list)
    recipe: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return dict(self.__dict__)


def multiscale_torch(a: Tensor, b: Tensor, levels: int) -> Tensor:
    """Compute :func:`~geoaware.priors.features.multiscale_encode` in torch.

    From ``a = pi lon/180`` and ``b = pi lat/90``: for the background points drawn at each
    step, without a round trip to numpy.

    Examples
    --------
    >>> from geoaware.priors.features import multiscale_encode
    >>> a, b = torch.tensor([0.3], dtype=torch.float64), torch.tensor([-1.1], dtype=torch.float64)
    >>> ref = multiscale_encode(np.degrees(b.numpy()) / 2, np.degrees(a.numpy()), 5)
    >>> bool(np.allclose(multiscale_torch(a, b, 5).numpy(), ref))
    True
    """
    f = 2.0 ** torch.arange(levels, dtype=a.dtype)
    fa, fb = a[:, None] * f, b[:, None] * f
    return torch.stack([fa.sin(), fa.cos(), fb.sin(), fb.cos()], dim=-1).reshape(-1, 4 * levels)


class _Background:
    """Draws background inputs (uniform on the sphere, random dates) as tensors."""

    def __init__(self, config: PriorConfig, generator: torch.Generator) -> None:
        self.config = config
        self.gen = generator
        self.pool: Tensor | None = None
        self.fourier: Tensor | None = None
        if config.encoding == "fourier":
            self.fourier = torch.from_numpy(fourier_frequencies(config.levels))
        if config.encoding == "geoclip":
            rng = np.random.default_rng(config.seed + 1)
            lat, lon = uniform_sphere(config.geoclip_pool, rng)
            self.pool = torch.from_numpy(encode_inputs(lat, lon, config.replace(use_date=False)))

    def __call__(self, n: int) -> Tensor:
        if self.pool is not None:
            loc = self.pool[torch.randint(self.pool.shape[0], (n,), generator=self.gen)]
        else:
            z = torch.rand(n, generator=self.gen) * 2 - 1
            lon = (torch.rand(n, generator=self.gen) * 2 - 1) * math.pi  # radians
            if self.config.encoding == "wrap":
                b = 2 * torch.asin(z)  # pi * lat / 90
                loc = torch.stack([torch.sin(lon), torch.cos(lon), torch.sin(b), torch.cos(b)], 1)
            elif self.config.encoding == "multiscale":
                loc = multiscale_torch(lon, 2 * torch.asin(z), self.config.levels)
            else:
                c = torch.sqrt(1 - z * z)
                loc = torch.stack([c * torch.cos(lon), c * torch.sin(lon), z], 1)
                if self.fourier is not None:
                    zz = loc.double() @ self.fourier
                    loc = torch.cat([zz.sin(), zz.cos()], 1).float()
        if self.config.use_date:
            f = torch.rand(n, generator=self.gen) * (2 * math.pi)
            loc = torch.cat([loc, torch.stack([torch.sin(f), torch.cos(f)], 1)], 1)
        return loc


def fit_prior(
    obs: Observations,
    config: PriorConfig,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[PriorNet, list[float]]:
    """Train a :class:`~geoaware.priors.model.PriorNet` on ``obs``; return it and epoch losses.

    Parameters
    ----------
    obs
        Training observations (at least two classes).
    config
        Model and training settings.
    progress
        Called after each epoch with ``(epoch, mean_loss)``.

    Raises
    ------
    PriorError
        Fewer than two classes, or the user loss asked for without any ``user_id``.

    Examples
    --------
    >>> obs = Observations(["a", "b"], np.array([10.0, -10.0]), np.array([0.0, 0.0]),
    ...                    np.full(2, np.nan), np.array([0, 1]), np.array([-1, -1]), ["x", "y"])
    >>> net, losses = fit_prior(obs, PriorConfig(width=8, blocks=1, epochs=2, seed=1))
    >>> len(losses), net.head.out_features
    (2, 2)
    """
    n_classes = len(obs.vocabulary)
    if n_classes < 2:
        raise PriorError(
            f"a prior needs at least two classes; the located rows hold {n_classes} "
            f"({', '.join(obs.vocabulary) or 'none'})"
        )
    if len(obs) == 0:
        raise PriorError("no located, labelled rows to train on")
    n_users = obs.n_users if config.user_weight > 0 else 0
    if config.user_weight > 0 and n_users == 0:
        raise PriorError("user_weight > 0 needs a user_id on the training rows; none has one")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    x_all = torch.from_numpy(encode_inputs(obs.lat, obs.lon, config, obs.date_fraction))
    y_all = torch.from_numpy(obs.labels.astype(np.int64))
    u_all = torch.from_numpy(obs.users.astype(np.int64))
    background = _Background(config, gen)
    net = PriorNet(config, n_classes, n_users)
    # fused: one kernel for every parameter. For CPU tensors torch's default is the
    # per-tensor loop, which cost ~40 % of an epoch on fg_geo (1.1M-weight class head).
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, fused=True)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config.lr_decay)
    me = config.loss.endswith("_me")
    kind = config.loss.removesuffix("_me")
    dtype = torch.bfloat16 if config.precision == "bfloat16" else torch.float32
    fused = FullLossHead(config.pos_weight, dtype=dtype)
    losses: list[float] = []
    net.train()
    for epoch in range(config.epochs):
        index = torch.from_numpy(balanced_indices(obs.labels, config.max_per_class, rng))
        total, steps = 0.0, 0
        for start in range(0, index.numel(), config.batch_size):
            i = index[start : start + config.batch_size]
            b = i.numel()
            y = y_all[i]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                h = net.embed(torch.cat([x_all[i], background(b)])).float()
            h_obs, h_bg = h[:b], h[b:]
            if kind == "full" and not me:
                loss = fused(h, net.head.weight, net.head.bias, y)
            elif kind == "full":
                loss = assume_negative_full(
                    net.class_logits(h_obs), net.class_logits(h_bg), y, config.pos_weight, me
                )
            elif kind == "ssdl":
                z_pos = net.class_logits(h_obs, y)
                loss = same_species_loss(z_pos, net.class_logits(h_bg, y), me)
            else:
                other = torch.randint(n_classes - 1, (b,), generator=gen)
                other = other + (other >= y).long()
                z_pos = net.class_logits(h_obs, y)
                loss = same_location_loss(z_pos, net.class_logits(h_obs, other), me)
            if net.user_head is not None:
                u = u_all[i]
                has = u >= 0
                if bool(has.any()):
                    w = net.user_head.weight[u[has]]
                    z_u = (h_obs[has] * w).sum(1)
                    z_ub = (h_bg[has] * w).sum(1)
                    loss = loss + config.user_weight * user_loss(z_u, z_ub)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach())
            steps += 1
        sched.step()
        losses.append(total / max(steps, 1))
        if progress is not None:
            progress(epoch + 1, losses[-1])
    net.eval()
    return net, losses


def train_prior(
    catalog: PathLike | pa.Table,
    out: PathLike,
    config: PriorConfig | None = None,
    *,
    recipe: str = "auto",
    options: Mapping[str, Any] | None = None,
    split: str | None = None,
    progress: Callable[[int, float], None] | None = None,
    on_config: Callable[[PriorConfig, RecipeChoice | None], None] | None = None,
) -> TrainResult:
    """Train a prior on a catalog's located rows and save it as a checkpoint folder.

    Parameters
    ----------
    catalog
        Catalog path (or table).
    out
        Checkpoint folder to write (``model.pt`` and ``config.json``).
    config
        Every setting, used as given (``recipe`` and ``options`` are then ignored);
        ``config.label_column`` picks the classes.
    recipe
        Without ``config``: ``auto`` (default: chosen from the training data by
        :func:`~geoaware.priors.recipes.choose_recipe`), ``published`` or ``small-data``.
    options
        Without ``config``: fields given explicitly, which win over the recipe.
    split
        Train on this split only (default: every row).
    progress
        Called after each epoch with ``(epoch, mean_loss)``.
    on_config
        Called once before training with the configuration and the recipe choice.

    Returns
    -------
    TrainResult

    Raises
    ------
    PriorError
        No located rows, fewer than two classes, a missing label column.
    """
    opts = dict(options or {})
    label_column = config.label_column if config else opts.get("label_column", "label_name")
    where = "<table>" if isinstance(catalog, pa.Table) else str(catalog)
    table = load_table(catalog, label_column)
    obs = observations_from_table(table, label_column, split=split, where=where)
    choice: RecipeChoice | None = None
    if config is None:
        choice = choose_recipe(obs.labels, recipe)
        config = recipe_config(choice, opts)
    if on_config is not None:
        on_config(config, choice)
    set_threads()
    t0 = time.perf_counter()
    net, losses = fit_prior(obs, config, progress=progress)
    seconds = time.perf_counter() - t0
    training = {
        "rows": table.num_rows,
        "used": len(obs),
        "dropped": obs.dropped,
        "split": split,
        "catalog": where,
        "final_loss": losses[-1],
        "recipe": None if choice is None else choice.to_dict(),
    }
    prior = LocationPrior(config, obs.vocabulary, net, training=training)
    save_prior(prior, out, points=(obs.lat, obs.lon, obs.labels))
    return TrainResult(
        str(out),
        table.num_rows,
        len(obs),
        obs.dropped,
        len(obs.vocabulary),
        config.epochs,
        seconds,
        config.epochs / seconds if seconds > 0 else float("inf"),
        losses,
        None if choice is None else choice.to_dict(),
        config.to_dict(),
    )

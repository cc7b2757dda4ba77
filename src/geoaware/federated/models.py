"""The models a federated simulation trains: one interface, weights as lists of arrays.

A model turns locations into its input features (:meth:`FlModel.features`), gives the
initial weights (:meth:`FlModel.initial`), runs local epochs from given weights
(:meth:`FlModel.fit`, used alike by each client and by the centralised run) and scores
held-out rows (:meth:`FlModel.scores`). Weights travel as lists of numpy arrays (Flower's
``ArrayRecord``) and are averaged by the strategy.

* :class:`SoftmaxModel`: softmax regression on ``wrap_encode(lat, lon)``, mini-batch SGD.
* :class:`HeadModel`: the same softmax regression on image embeddings (the
  :mod:`geoaware.vision.embeddings` contract), optionally with the wrap-encoded location
  concatenated (the geo-aware classifier of Chu et al. 2019 in its simplest form).
* :class:`PriorModel`: the geographic prior network of ``geoaware prior train``
  (:class:`~geoaware.priors.model.PriorNet`, its input encoding and its full
  "assume negative" loss with background points drawn uniformly on the sphere, balanced
  sampling per epoch, Adam). By default Adam's moments travel with the weights
  (``moments="shared"``): the weight list is the network's parameters, then Adam's first
  and second moments and its step count, so the strategy averages the moments as it
  averages the weights and every client continues the global optimiser state. With
  ``moments="fresh"`` each client starts Adam from zero, and Adam's first steps (a sign step
  of the full learning rate on every weight, however small its gradient) push each class
  absent from a client down everywhere: on fg_geo (4,472 classes, a few rows each) the
  federated prior then does not learn. The centralised run keeps its Adam state from round
  to round (``state``), as ``prior train`` does over its epochs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from geoaware.construct.errors import BuildError
from geoaware.ranking import topk_from_ranks, true_class_ranks
from geoaware.typing import Float64Array, IntArray, PathLike

if TYPE_CHECKING:
    from geoaware.priors.model import PriorNet
    from geoaware.priors.recipes import RecipeChoice

__all__ = ["FlModel", "HeadModel", "PriorModel", "SoftmaxModel", "topk_accuracy"]

Weights = list[npt.NDArray[np.float32] | Float64Array]


class FlModel(Protocol):
    """What a federated simulation needs from a model."""

    name: str

    def features(
        self, lat: Float64Array, lon: Float64Array, image_ids: npt.NDArray[np.object_] | None = None
    ) -> npt.NDArray[np.floating]:
        """Return the model's input features of located rows, shape ``(n, d)``."""
        ...

    def initial(self) -> Weights:
        """Return the initial weights (seeded)."""
        ...

    def fit(
        self, weights: Weights, x: npt.NDArray[np.floating], y: IntArray, *, epochs: int,
        seed: list[int], mu: float = 0.0, start_epoch: int = 0,
        state: dict[str, Any] | None = None,
    ) -> tuple[Weights, float]:  # fmt: skip
        """Run ``epochs`` from ``weights`` on ``(x, y)``; return new weights and the mean loss.

        ``start_epoch`` counts the epochs the model had before (a learning-rate schedule
        continues from there). ``state``: a dict the model keeps its optimiser state in from
        one call to the next (the centralised run, one continuing optimisation); None starts
        afresh (a stateless client).
        """
        ...

    def scores(self, weights: Weights, x: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        """Return class scores of shape ``(n, classes)``; higher is more likely."""
        ...


def topk_accuracy(
    scores: npt.NDArray[np.floating], y: IntArray, ks: tuple[int, ...] = (1, 5)
) -> dict[str, float]:
    """Return ``top<k>_acc`` for each k: the share of rows whose label is among the k best.

    Ranks come from :func:`geoaware.ranking.true_class_ranks`: ties count against the label
    (all-equal scores, e.g. zero weights, are right only with k at least the number of
    classes) and a NaN score counts as the lowest, as in ``prior eval``. NaN without rows.

    Examples
    --------
    >>> s = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
    >>> topk_accuracy(s, np.array([0, 1]), ks=(1, 2))
    {'top1_acc': 0.5, 'top2_acc': 1.0}
    >>> topk_accuracy(np.zeros((2, 3)), np.array([0, 2]), ks=(1, 3))
    {'top1_acc': 0.0, 'top3_acc': 1.0}
    >>> topk_accuracy(np.full((2, 3), np.nan), np.array([0, 2]), ks=(1, 2))
    {'top1_acc': 0.0, 'top2_acc': 0.0}
    """
    return topk_from_ranks(true_class_ranks(scores, y), ks)


class SoftmaxModel:
    """Softmax regression on ``wrap_encode(lat, lon)`` trained by mini-batch SGD.

    Examples
    --------
    >>> m = SoftmaxModel(n_classes=2, lr=0.5, batch_size=4)
    >>> x = m.features(np.array([40.0, -40.0] * 8), np.array([0.0, 0.0] * 8))
    >>> w, _ = m.fit(m.initial(), x, np.array([0, 1] * 8), epochs=20, seed=[0])
    >>> topk_accuracy(m.scores(w, x), np.array([0, 1] * 8), ks=(1,))
    {'top1_acc': 1.0}
    """

    name = "softmax"

    def __init__(self, n_classes: int, *, lr: float = 0.5, batch_size: int = 32) -> None:
        self.n_classes, self.lr, self.batch_size = n_classes, lr, batch_size

    def features(
        self, lat: Float64Array, lon: Float64Array, image_ids: npt.NDArray[np.object_] | None = None
    ) -> Float64Array:
        """Return the input features of located rows."""
        from geoaware.geo.encode import wrap_encode

        return np.asarray(wrap_encode(lat, lon), dtype=np.float64)

    def initial(self) -> Weights:
        """Return the seeded initial weights."""
        return [np.zeros((self.input_dim + 1, self.n_classes))]

    @property
    def input_dim(self) -> int:
        """Width of the features."""
        return 4

    def fit(
        self, weights: Weights, x: npt.NDArray[np.floating], y: IntArray, *, epochs: int,
        seed: list[int], mu: float = 0.0, start_epoch: int = 0,
        state: dict[str, Any] | None = None,
    ) -> tuple[Weights, float]:  # fmt: skip
        """Run ``epochs`` from ``weights``; return the new weights and the last epoch's loss."""
        from geoaware.federated.simulate import train_softmax

        w, loss = train_softmax(
            np.asarray(weights[0], dtype=np.float64), np.asarray(x, np.float64), y,
            epochs=epochs, lr=self.lr, batch_size=self.batch_size,
            rng=np.random.default_rng(seed), mu=mu,
        )  # fmt: skip
        return [w], loss

    def scores(self, weights: Weights, x: npt.NDArray[np.floating]) -> Float64Array:
        """Return class scores ``(n, classes)``."""
        w = np.asarray(weights[0], dtype=np.float64)
        return np.asarray(np.asarray(x, np.float64) @ w[:-1] + w[-1])


class HeadModel(SoftmaxModel):
    """Softmax regression on image embeddings, optionally with the location concatenated.

    Parameters
    ----------
    n_classes
        Output classes.
    embeddings
        An embeddings file or folder (:func:`geoaware.vision.embeddings.read_embeddings`).
    with_location
        Append ``wrap_encode(lat, lon)`` (4 features) to each vector.
    lr, batch_size
        Mini-batch SGD settings.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geoaware.vision.embeddings import EmbeddingInfo, write_embeddings
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "emb.parquet"
    >>> _ = write_embeddings(f, ["a", "b"], np.eye(2), EmbeddingInfo("toy", 2))
    >>> m = HeadModel(2, f, with_location=True)
    >>> m.features(np.zeros(2), np.zeros(2), np.array(["b", "a"], dtype=object)).shape
    (2, 6)
    """

    name = "head"

    def __init__(
        self, n_classes: int, embeddings: PathLike, *, with_location: bool = False,
        lr: float = 0.5, batch_size: int = 32,
    ) -> None:  # fmt: skip
        from geoaware.vision.embeddings import read_info

        super().__init__(n_classes, lr=lr, batch_size=batch_size)
        self.embeddings = str(embeddings)
        self.with_location = with_location
        self.dim = read_info(embeddings).dim

    @property
    def input_dim(self) -> int:
        """Width of the features: the vector size, plus 4 with the location."""
        return self.dim + (4 if self.with_location else 0)

    def features(
        self, lat: Float64Array, lon: Float64Array, image_ids: npt.NDArray[np.object_] | None = None
    ) -> Float64Array:
        """Return each row's embedding (and wrap-encoded location); every id needs one."""
        from geoaware.vision.embeddings import read_embeddings

        if image_ids is None:
            raise BuildError("the embedding head needs the image ids of the rows")
        vectors = read_embeddings(self.embeddings, ids=image_ids).vectors.astype(np.float64)
        if not self.with_location:
            return vectors
        return np.concatenate([vectors, super().features(lat, lon)], axis=1)


class PriorModel:
    """The prior network of ``geoaware prior train``, trained from given weights.

    Parameters
    ----------
    n_classes
        Output classes.
    config
        A :class:`~geoaware.priors.config.PriorConfig` (its encoding, network, loss weight,
        batch size, balanced sampling, learning rate with its per-epoch decay, and seed). The
        full loss (``full`` or ``full_me``) is supported, without the photographer loss, the
        date or GeoCLIP.
    recipe
        The :class:`~geoaware.priors.recipes.RecipeChoice` the config came from (kept for
        the run's report), or None.
    moments
        ``"shared"``: Adam's moments and step count travel in the weight list (averaged by
        the strategy, continued by every client); ``"fresh"``: the weights are the network's
        parameters only and every :meth:`fit` without ``state`` starts Adam from zero.

    Examples
    --------
    >>> from geoaware.priors import PriorConfig
    >>> m = PriorModel(2, PriorConfig(width=8, blocks=1, dropout=0.0, batch_size=8, lr=0.02))
    >>> x = m.features(np.array([40.0, -40.0] * 8), np.array([10.0, -100.0] * 8))
    >>> y = np.array([0, 1] * 8)
    >>> w, loss = m.fit(m.initial(), x, y, epochs=30, seed=[0])
    >>> topk_accuracy(m.scores(w, x), y, ks=(1,))
    {'top1_acc': 1.0}
    >>> len(w), int(w[-1][0])  # 8 parameters, their 2 x 8 moments, the step count
    (25, 60)
    """

    name = "prior"

    def __init__(
        self, n_classes: int, config: object, recipe: RecipeChoice | None = None,
        *, moments: str = "shared",
    ) -> None:  # fmt: skip
        from geoaware.priors import PriorConfig

        if not isinstance(config, PriorConfig):
            raise BuildError(f"config must be a PriorConfig, got {type(config).__name__}")
        if config.loss not in ("full", "full_me"):
            raise BuildError(f"federated priors train the full loss; got loss={config.loss!r}")
        if config.encoding == "geoclip" or config.use_date or config.user_weight > 0:
            raise BuildError("federated priors use a location-only input and no user loss")
        if moments not in ("shared", "fresh"):
            raise BuildError(f"moments must be shared or fresh, got {moments!r}")
        self.n_classes = n_classes
        self.config = config
        self.recipe = recipe
        self.moments = moments

    def features(
        self, lat: Float64Array, lon: Float64Array, image_ids: npt.NDArray[np.object_] | None = None
    ) -> npt.NDArray[np.float32]:
        """Return the input features of located rows."""
        from geoaware.priors.features import encode_inputs

        return encode_inputs(lat, lon, self.config)

    def _net(self, weights: Weights | None = None) -> PriorNet:
        import torch

        from geoaware.priors.model import PriorNet

        torch.manual_seed(self.config.seed)
        net = PriorNet(self.config, self.n_classes)
        if weights is not None:
            keys = list(net.state_dict())
            net.load_state_dict(
                {k: torch.from_numpy(np.asarray(w)) for k, w in zip(keys, weights, strict=False)}
            )
        return net

    def initial(self) -> Weights:
        """Return the seeded initial weights (with zero moments and step when shared)."""
        params: Weights = [v.detach().numpy().copy() for v in self._net().state_dict().values()]
        if self.moments == "fresh":
            return params
        zeros = [np.zeros_like(p) for p in params]
        return [*params, *zeros, *[z.copy() for z in zeros], np.zeros(1)]

    @staticmethod
    def _load_moments(opt: Any, net: PriorNet, weights: Weights) -> None:
        """Continue Adam from the moments and step count at the end of ``weights``."""
        import torch

        params = list(net.parameters())
        n = len(params)
        step = float(np.asarray(weights[3 * n])[0])
        if step <= 0:
            return  # nothing to continue: Adam starts as usual
        for i, p in enumerate(params):
            opt.state[p] = {
                "step": torch.tensor(step),
                "exp_avg": torch.from_numpy(np.array(weights[n + i], dtype=np.float32)),
                "exp_avg_sq": torch.from_numpy(np.array(weights[2 * n + i], dtype=np.float32)),
            }

    @staticmethod
    def _moments(opt: Any, net: PriorNet) -> Weights:
        """Adam's first moments, second moments and step count, after the weights."""
        params = list(net.parameters())
        states = [opt.state.get(p, {}) for p in params]

        def moment(key: str) -> Weights:
            zero = [np.zeros(tuple(p.shape), np.float32) for p in params]
            return [
                st[key].detach().numpy().copy() if key in st else z
                for st, z in zip(states, zero, strict=True)
            ]

        step = max((float(st["step"]) for st in states if "step" in st), default=0.0)
        return [*moment("exp_avg"), *moment("exp_avg_sq"), np.array([step])]

    def fit(
        self, weights: Weights, x: npt.NDArray[np.floating], y: IntArray, *, epochs: int,
        seed: list[int], mu: float = 0.0, start_epoch: int = 0,
        state: dict[str, Any] | None = None,
    ) -> tuple[Weights, float]:  # fmt: skip
        """Run ``epochs`` from ``weights``; return the new weights and the last epoch's loss."""
        import torch

        from geoaware.priors.losses import FullLossHead, assume_negative_full
        from geoaware.priors.sampling import balanced_indices, uniform_sphere

        c = self.config
        net = self._net(weights)
        rng = np.random.default_rng(seed)
        torch.manual_seed(int(rng.integers(2**31)))
        x_all = torch.from_numpy(np.asarray(x, dtype=np.float32))
        y_all = torch.from_numpy(np.asarray(y, dtype=np.int64))
        # the learning rate continues prior train's per-epoch decay from ``start_epoch``
        opt = torch.optim.Adam(net.parameters(), lr=c.lr * c.lr_decay**start_epoch)
        if state is not None and "adam" in state:  # continue one optimisation
            opt.load_state_dict(state["adam"])
            for group in opt.param_groups:
                group["lr"] = c.lr * c.lr_decay**start_epoch
        elif self.moments == "shared":  # continue the global optimiser state
            self._load_moments(opt, net, weights)
        anchor = [p.detach().clone() for p in net.parameters()] if mu > 0 else None
        fused = FullLossHead(c.pos_weight) if c.loss == "full" else None
        net.train()
        total, steps = 0.0, 0
        for _ in range(epochs):
            index = torch.from_numpy(balanced_indices(y, c.max_per_class, rng))
            total, steps = 0.0, 0
            for start in range(0, index.numel(), c.batch_size):
                i = index[start : start + c.batch_size]
                b = i.numel()
                bg = torch.from_numpy(self.features(*uniform_sphere(b, rng)))
                h = net.embed(torch.cat([x_all[i], bg]))
                if fused is not None:
                    loss = fused(h, net.head.weight, net.head.bias, y_all[i])
                else:
                    loss = assume_negative_full(
                        net.class_logits(h[:b]), net.class_logits(h[b:]), y_all[i],
                        c.pos_weight, True,
                    )  # fmt: skip
                if anchor is not None:  # FedProx's proximal term
                    loss = loss + mu / 2 * sum(
                        ((p - a) ** 2).sum() for p, a in zip(net.parameters(), anchor, strict=True)
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach())
                steps += 1
            for group in opt.param_groups:
                group["lr"] *= c.lr_decay
        net.eval()
        if state is not None:
            state["adam"] = opt.state_dict()
        new: Weights = [v.detach().numpy().copy() for v in net.state_dict().values()]
        if self.moments == "shared":
            new += self._moments(opt, net)
        return new, total / steps if steps else float("nan")

    def scores(self, weights: Weights, x: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        """Return class scores ``(n, classes)``."""
        import torch

        net = self._net(weights)
        with torch.no_grad():
            out = net(torch.from_numpy(np.asarray(x, dtype=np.float32)))
        return np.asarray(out.numpy())

r"""The presence-only losses of Mac Aodha et al. (2019), on logits, with their gradients.

Notation: ``z`` is a logit, ``p = sigmoid(z)``. An *observed* term pushes ``p`` up:
``-log p = softplus(-z)``. An *assumed negative* term pushes ``p`` down:
``-log(1 - p) = softplus(z)``; in the *maximum-entropy* ("_me") forms it is replaced by minus
the Bernoulli entropy ``-H(p) = -[p softplus(-z) + (1 - p) softplus(z)]``, which pushes an
unobserved class towards ``p = 1/2`` (uncertain) rather than to 0. Everything is computed from
logits, so no ``log(x + 1e-5)`` clamp is needed.

For a batch of ``B`` observations (location ``x_i``, class ``y_i``) with ``B`` background
points ``r_i`` uniform on the sphere and ``C`` classes:

* ``full`` ("assume negative, full"):
  :math:`\frac{1}{BC}\sum_{i}\big[w\,\ell^+(z_{x_i y_i}) + \sum_{c\ne y_i}\ell^-(z_{x_i c})\big]
  + \frac{1}{BC}\sum_{i,c}\ell^-(z_{r_i c})`, ``w`` the positive weight (default 2048).
* ``ssdl`` ("same species, different location"):
  :math:`\frac{1}{B}\sum_i \ell^+(z_{x_i y_i}) + \frac{1}{B}\sum_i \ell^-(z_{r_i y_i})`.
* ``slds`` ("same location, different species"), ``c_i`` a random class other than ``y_i``:
  :math:`\frac{1}{B}\sum_i \ell^+(z_{x_i y_i}) + \frac{1}{B}\sum_i \ell^-(z_{x_i c_i})`.

The full loss without entropy is the hot path of training; :func:`assume_negative_full`
computes its value and its gradient with respect to both logit matrices in one pass (a custom
autograd function), instead of letting autograd keep every intermediate matrix.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

__all__ = [
    "FullLossHead",
    "assume_negative_full",
    "negative_term",
    "positive_term",
    "same_location_loss",
    "same_species_loss",
    "user_loss",
]


def positive_term(z: Tensor) -> Tensor:
    """Return ``-log sigmoid(z)`` elementwise.

    Examples
    --------
    >>> round(positive_term(torch.tensor([0.0])).item(), 6)
    0.693147
    """
    return F.softplus(-z)


def negative_term(z: Tensor, max_entropy: bool = False) -> Tensor:
    """Return ``-log(1 - sigmoid(z))``, or ``-H(sigmoid(z))`` with ``max_entropy``.

    Examples
    --------
    >>> round(negative_term(torch.tensor([0.0]), max_entropy=True).item(), 6)
    -0.693147
    """
    if not max_entropy:
        return F.softplus(z)
    p = torch.sigmoid(z)
    return -(p * F.softplus(-z) + (1 - p) * F.softplus(z))


class _FullLoss(torch.autograd.Function):
    """Fused value and gradient of the assume-negative full loss (no entropy)."""

    @staticmethod
    def forward(ctx: Any, z_obs: Tensor, z_bg: Tensor, target: Tensor, pos_weight: float) -> Tensor:
        b, c = z_obs.shape
        scale = 1.0 / (b * c)
        scale_bg = 1.0 / (z_bg.shape[0] * c)
        rows = torch.arange(b, device=z_obs.device)
        z_pos = z_obs[rows, target]
        with torch.no_grad():
            value = F.softplus(z_obs).sum() * scale + F.softplus(z_bg).sum() * scale_bg
            pos = pos_weight * F.softplus(-z_pos).sum() - F.softplus(z_pos).sum()
            value = value + pos * scale
            g_obs = torch.sigmoid(z_obs).mul_(scale)
            g_bg = torch.sigmoid(z_bg).mul_(scale_bg)
            g_obs[rows, target] = pos_weight * (torch.sigmoid(z_pos) - 1.0) * scale
        ctx.save_for_backward(g_obs, g_bg)
        return value

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        g_obs, g_bg = ctx.saved_tensors
        return g_obs * grad, g_bg * grad, None, None


def assume_negative_full(
    z_obs: Tensor,
    z_bg: Tensor,
    target: Tensor,
    pos_weight: float = 2048.0,
    max_entropy: bool = False,
) -> Tensor:
    """Compute the full "assume negative" loss: means over the ``B x C`` logits of each set.

    Parameters
    ----------
    z_obs
        Logits at the observed locations, shape ``(B, C)``.
    z_bg
        Logits at the background locations, shape ``(B', C)``.
    target
        Observed class of each row of ``z_obs``, shape ``(B,)``.
    pos_weight
        Weight ``w`` of the observed class.
    max_entropy
        Use the maximum-entropy negative term.

    Examples
    --------
    All logits 0: ``((w + 1) log 2) / 2 + log 2`` for ``B = 1``, ``C = 2``.

    >>> z = torch.zeros(1, 2)
    >>> loss = assume_negative_full(z, z, torch.tensor([0]), pos_weight=3.0)
    >>> round(loss.item(), 6), round(3 * 0.6931472, 6)
    (2.079442, 2.079442)
    """
    if not max_entropy:
        apply: Any = _FullLoss.apply
        out: Tensor = apply(z_obs, z_bg, target, float(pos_weight))
        return out
    b, c = z_obs.shape
    rows = torch.arange(b, device=z_obs.device)
    neg = negative_term(z_obs, True)
    z_pos = z_obs[rows, target]
    obs = neg.sum() - neg[rows, target].sum() + pos_weight * positive_term(z_pos).sum()
    return obs / (b * c) + negative_term(z_bg, True).sum() / (z_bg.shape[0] * c)


def same_species_loss(z_pos: Tensor, z_bg_same: Tensor, max_entropy: bool = False) -> Tensor:
    """Compute the "same species, different location" loss from the two logit vectors.

    Parameters
    ----------
    z_pos
        Logit of each observation's class at its location, shape ``(B,)``.
    z_bg_same
        Logit of the same class at the matching background point, shape ``(B,)``.
    max_entropy
        Use the maximum-entropy negative term.

    Examples
    --------
    >>> round(same_species_loss(torch.zeros(4), torch.zeros(4)).item(), 6)
    1.386294
    """
    return positive_term(z_pos).mean() + negative_term(z_bg_same, max_entropy).mean()


def same_location_loss(z_pos: Tensor, z_other: Tensor, max_entropy: bool = False) -> Tensor:
    """Compute the "same location, different species" loss (see :func:`same_species_loss`).

    ``z_other`` is the logit, at the observed location, of a random class other than the
    observed one.

    Examples
    --------
    >>> round(same_location_loss(torch.tensor([2.0]), torch.tensor([-2.0])).item(), 6)
    0.253856
    """
    return positive_term(z_pos).mean() + negative_term(z_other, max_entropy).mean()


def user_loss(z_user_obs: Tensor, z_user_bg: Tensor) -> Tensor:
    """Photographer loss: the observer's logit at the location up, at a background point down.

    ``z_user_obs[i]`` is the dot product of the location embedding of observation ``i`` with its
    photographer's embedding, ``z_user_bg[i]`` the same at a background point (Mac Aodha et al.
    2019, section 3.3: users see similar species, so their embedding shapes the space).

    Examples
    --------
    >>> round(user_loss(torch.zeros(2), torch.zeros(2)).item(), 6)
    1.386294
    """
    return positive_term(z_user_obs).mean() + negative_term(z_user_bg).mean()


class _Workspace:
    """Reusable buffers (no fresh pages per step): the ``(rows, classes)`` logits and a chunk."""

    def __init__(self) -> None:
        self.buffers: dict[str, Tensor] = {}

    def get(self, name: str, rows: int, cols: int, dtype: torch.dtype) -> Tensor:
        buf = self.buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.numel() < rows * cols:
            buf = self.buffers[name] = torch.empty(rows * cols, dtype=dtype)
        return buf[: rows * cols].view(rows, cols)


class _FusedHead(torch.autograd.Function):
    """Forward: logits, loss value and (unscaled) logit gradient in one buffer; backward: GEMMs.

    The per-row loss scales (``1 / (B C)`` for the observed rows, ``1 / (B' C)`` for the
    background rows) are applied to the small ``(n, width)`` operands of the backward products
    instead of to the ``(n, C)`` gradient, which saves a pass over it; the bias gradient is a
    matrix product too (``s^T G``) rather than a column sum.
    """

    @staticmethod
    def forward(
        ctx: Any,
        h: Tensor,
        weight: Tensor,
        bias: Tensor,
        target: Tensor,
        n_obs: int,
        pos_weight: float,
        workspace: _Workspace,
        chunk: int,
        dtype: torch.dtype,
    ) -> Tensor:
        n, c = h.shape[0], weight.shape[0]
        hd, wd = h.detach().to(dtype), weight.detach().to(dtype)
        z = workspace.get("logits", n, c, dtype)
        torch.addmm(bias.detach().to(dtype), hd, wd.t(), out=z)
        rows = torch.arange(n_obs)
        z_pos = z[rows, target].float()
        s_obs = 1.0 / (n_obs * c)
        s_bg = 1.0 / ((n - n_obs) * c) if n > n_obs else 0.0
        zero = torch.zeros((), dtype=dtype)
        total = 0.0
        with torch.no_grad():
            for s in range(0, n, chunk):
                for lo, hi in ((s, min(s + chunk, n_obs)), (max(s, n_obs), min(s + chunk, n))):
                    if lo >= hi:
                        continue
                    block = z[lo:hi]
                    tmp = workspace.get("chunk", hi - lo, c, dtype)
                    torch.logaddexp(block, zero, out=tmp)
                    total += float(tmp.sum(dtype=torch.float32)) * (s_obs if lo < n_obs else s_bg)
                    block.sigmoid_()
            pos = pos_weight * F.softplus(-z_pos).sum() - F.softplus(z_pos).sum()
            total += float(pos) * s_obs
            z[rows, target] = (pos_weight * (torch.sigmoid(z_pos) - 1.0)).to(dtype)
        scales = torch.full((n,), s_bg, dtype=torch.float32)
        scales[:n_obs] = s_obs
        ctx.save_for_backward(hd, wd, z, scales)
        return torch.tensor(total, dtype=torch.float32)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        h, weight, g, scales = ctx.saved_tensors
        s = scales * grad.float()
        gh = torch.mm(g, weight).float().mul_(s[:, None])
        hs = (h.float() * s[:, None]).to(g.dtype)
        gw = torch.mm(g.t(), hs).float()
        gb = torch.mm(s[None, :].to(g.dtype), g).float().view(-1)
        return gh, gw, gb, None, None, None, None, None, None


class FullLossHead:
    """The class head and the full assume-negative loss fused, for fast training.

    Computes ``assume_negative_full(h_obs W^T + b, h_bg W^T + b, target, pos_weight)`` and its
    gradients with respect to ``h``, ``W`` and ``b`` with one reusable ``(n, C)`` buffer (and
    one reusable ``(chunk, C)`` scratch): the logits are turned into the gradient in place,
    chunk by chunk, so no other matrix of that size is allocated per step (on CPU, fresh pages
    cost as much as the arithmetic), and the loss scales are applied to the small operands of
    the backward products, not to the ``(n, C)`` gradient.

    Parameters
    ----------
    pos_weight
        Weight of the observed class.
    chunk
        Rows handled at a time by the elementwise passes.
    dtype
        Precision of the head's matrix products and of the buffer: ``torch.float32``, or
        ``torch.bfloat16`` (about twice as fast on CPUs with AVX-512 BF16; sums stay float32).

    Examples
    --------
    >>> head = torch.nn.Linear(3, 4)
    >>> h = torch.randn(6, 3)
    >>> t = torch.tensor([0, 3, 1])
    >>> fused = FullLossHead(pos_weight=5.0)(h, head.weight, head.bias, t)
    >>> ref = assume_negative_full(head(h[:3]), head(h[3:]), t, pos_weight=5.0)
    >>> bool(torch.isclose(fused, ref))
    True
    """

    def __init__(
        self, pos_weight: float = 2048.0, chunk: int = 128, dtype: torch.dtype = torch.float32
    ) -> None:
        self.pos_weight = float(pos_weight)
        self.chunk = chunk
        self.dtype = dtype
        self.workspace = _Workspace()

    def __call__(self, h: Tensor, weight: Tensor, bias: Tensor, target: Tensor) -> Tensor:
        """Loss for ``h`` = observed rows (``len(target)``) then background rows."""
        apply: Any = _FusedHead.apply
        out: Tensor = apply(
            h,
            weight,
            bias,
            target,
            int(target.numel()),
            self.pos_weight,
            self.workspace,
            self.chunk,
            self.dtype,
        )
        return out

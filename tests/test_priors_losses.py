from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from geoaware.priors.losses import (  # noqa: E402
    FullLossHead,
    assume_negative_full,
    negative_term,
    positive_term,
    same_location_loss,
    same_species_loss,
    user_loss,
)

LOG2 = math.log(2.0)


def _sp(x: float) -> float:
    return math.log1p(math.exp(x))


def test_full_loss_hand_computed() -> None:
    # B = 2, C = 3; observed classes 0 and 2
    z_obs = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    z_bg = torch.tensor([[0.2, -0.3, 4.0], [-1.0, 0.0, 1.0]])
    w = 10.0
    obs = (w * _sp(-1.0) + _sp(-2.0) + _sp(0.5)) + (_sp(0.0) + _sp(3.0) + w * _sp(1.0))
    bg = sum(_sp(v) for v in (0.2, -0.3, 4.0, -1.0, 0.0, 1.0))
    expected = obs / 6 + bg / 6
    got = assume_negative_full(z_obs, z_bg, torch.tensor([0, 2]), pos_weight=w)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_full_loss_zero_logits() -> None:
    z = torch.zeros(1, 2)
    got = assume_negative_full(z, z, torch.tensor([1]), pos_weight=2048.0)
    assert got.item() == pytest.approx((2048 + 1) / 2 * LOG2 + LOG2, rel=1e-6)


def test_max_entropy_terms() -> None:
    # at z = 0, p = 1/2: entropy log 2 is the maximum; the ME negative term is -log 2
    assert negative_term(torch.tensor(0.0), max_entropy=True).item() == pytest.approx(-LOG2)
    z = torch.tensor(2.0)
    p = 1 / (1 + math.exp(-2.0))
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert negative_term(z, max_entropy=True).item() == pytest.approx(-h, rel=1e-6)
    z_obs = torch.zeros(1, 2)
    me = assume_negative_full(z_obs, z_obs, torch.tensor([0]), pos_weight=4.0, max_entropy=True)
    assert me.item() == pytest.approx((4 * LOG2 - LOG2) / 2 - LOG2, rel=1e-6)


def test_cheap_losses() -> None:
    assert positive_term(torch.tensor(0.0)).item() == pytest.approx(LOG2)
    z_pos, z_neg = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 2.0])
    expected = (_sp(-1.0) + _sp(1.0)) / 2 + (_sp(0.5) + _sp(2.0)) / 2
    assert same_species_loss(z_pos, z_neg).item() == pytest.approx(expected, rel=1e-6)
    assert same_location_loss(z_pos, z_neg).item() == pytest.approx(expected, rel=1e-6)
    assert user_loss(z_pos, z_neg).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fused_head_matches_autograd(dtype: str) -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 7)
    h = torch.randn(10, 8, requires_grad=True)  # 6 observed rows, 4 background rows
    t = torch.tensor([0, 6, 3, 3, 1, 2])
    ref = assume_negative_full(head(h[:6]), head(h[6:]), t, pos_weight=50.0)
    g_ref = torch.autograd.grad(ref, [h, head.weight, head.bias])
    fused = FullLossHead(50.0, chunk=4, dtype=getattr(torch, dtype))
    got = fused(h, head.weight, head.bias, t)
    g_got = torch.autograd.grad(got, [h, head.weight, head.bias])
    tol = 1e-5 if dtype == "float32" else 3e-2
    assert got.item() == pytest.approx(ref.item(), rel=tol)
    for a, b in zip(g_got, g_ref, strict=True):
        assert torch.allclose(a, b, rtol=tol, atol=tol * float(b.abs().max()))

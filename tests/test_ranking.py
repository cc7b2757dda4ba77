"""One rank rule for every top-k figure: ties, NaN, and the three callers agree."""

from __future__ import annotations

import numpy as np
import pytest

from geoaware.evaluate.imagetext import class_ranks
from geoaware.federated.models import topk_accuracy
from geoaware.priors.baselines import fit_baselines
from geoaware.priors.evaluate import location_ranks
from geoaware.ranking import check_ties, topk_from_ranks, true_class_ranks


def _brute(scores: np.ndarray, truth: np.ndarray, ties: str) -> list[int]:
    """The rank by counting, one row at a time, NaN as minus infinity."""
    out = []
    for row, t in zip(scores, truth, strict=True):
        if np.isnan(row[t]):
            out.append(len(row))
            continue
        row = np.where(np.isnan(row), -np.inf, row)
        higher = sum(v > row[t] for v in row)
        same = sum(v == row[t] for i, v in enumerate(row) if i != t)
        out.append(1 + higher + (same if ties == "pessimistic" else 0))
    return out


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
def test_ranks_match_counting_on_tied_scores_with_nan(ties: str) -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(400, 7)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.1] = np.nan
    truth = rng.integers(0, 7, size=400)
    got = true_class_ranks(scores, truth, ties=ties)  # type: ignore[arg-type]
    assert got.tolist() == _brute(scores, truth, ties)
    assert got.min() >= 1 and got.max() <= 7


def test_pessimistic_and_optimistic_bound_any_tie_break() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, size=(200, 6)).astype(np.float64)
    truth = rng.integers(0, 6, size=200)
    low = true_class_ranks(scores, truth, ties="optimistic")
    high = true_class_ranks(scores, truth)
    by_index = (np.argsort(-scores, axis=1, kind="stable") == truth[:, None]).argmax(axis=1) + 1
    assert (low <= by_index).all() and (by_index <= high).all()
    assert (low < high).any()  # the data has ties, so the rules differ somewhere


def test_constant_scores_are_right_only_at_k_equal_to_the_classes() -> None:
    ranks = true_class_ranks(np.zeros((4, 5)), [0, 1, 2, 4])
    assert ranks.tolist() == [5, 5, 5, 5]
    assert topk_from_ranks(ranks, ks=(1, 4, 5)) == {
        "top1_acc": 0.0,
        "top4_acc": 0.0,
        "top5_acc": 1.0,
    }


def test_a_nan_true_score_never_ranks_first() -> None:
    assert true_class_ranks([[np.nan, 0.1, 0.2]], [0], ties="optimistic").tolist() == [3]


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="ties must be"):
        check_ties("random")


def test_prior_eval_federated_and_zero_shot_give_one_figure() -> None:
    """The grid histogram's tied scores: the three callers agree."""
    rng = np.random.default_rng(1)
    n_classes = 40
    lat, lon = rng.uniform(-60, 60, 300), rng.uniform(-180, 180, 300)
    y = rng.integers(0, n_classes, 300)
    scorers = fit_baselines(lat[:200], lon[:200], y[:200], n_classes)
    grid = scorers["grid_histogram"]
    scores = grid.predict_proba(lat[200:], lon[200:], None)
    ranks = location_ranks(grid, lat[200:], lon[200:], y[200:], batch_size=17)
    hopeful = location_ranks(grid, lat[200:], lon[200:], y[200:], ties="optimistic")
    assert (hopeful < ranks).mean() > 0.2  # the true class often ties with others
    assert ranks.tolist() == class_ranks(scores, y[200:]).tolist()
    fed = topk_accuracy(np.asarray(scores), y[200:], ks=(1, 5))
    assert fed == topk_from_ranks(ranks, ks=(1, 5))


def test_nearest_neighbours_leaves_no_tie_among_the_classes_it_votes_for() -> None:
    """Equal vote shares are ordered by each class's nearest point, so ties cannot decide."""
    rng = np.random.default_rng(2)
    n_classes = 300
    lat, lon = rng.uniform(-60, 60, 3000), rng.uniform(-180, 180, 3000)
    y = rng.integers(0, n_classes, 3000)  # 20 neighbours are mostly 20 different classes
    nn = fit_baselines(lat[:2500], lon[:2500], y[:2500], n_classes)["nearest_neighbours"]
    args = (lat[2500:], lon[2500:], y[2500:])
    scores = nn.predict_proba(lat[2500:], lon[2500:])
    voted = scores > 0.5 / 20  # a vote is worth 1/20, the nearness bonus at most half of it
    got = voted[np.arange(500), y[2500:]]  # rows whose true class has a neighbour
    assert 10 < got.sum() < 500
    low, high = location_ranks(nn, *args, ties="optimistic"), location_ranks(nn, *args)
    assert (low[got] == high[got]).all()
    assert (low[~got] < high[~got]).any()  # classes without a vote tie by frequency alone
    for row, mask in zip(scores, voted, strict=True):
        assert np.unique(row[mask]).size == mask.sum()

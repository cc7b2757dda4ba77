from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from geoaware.errors import InvalidCoordinateError  # noqa: E402
from geoaware.predictions.labels import read_predictions  # noqa: E402
from geoaware.predictions.submission import check_submission  # noqa: E402
from geoaware.priors.checkpoint import LocationPrior, save_prior  # noqa: E402
from geoaware.priors.config import PriorConfig  # noqa: E402
from geoaware.priors.errors import PriorInputError  # noqa: E402
from geoaware.priors.features import parse_date  # noqa: E402
from geoaware.priors.fuse import fuse_predictions, fuse_scores, rerank  # noqa: E402
from geoaware.priors.model import PriorNet  # noqa: E402
from geoaware.typing import Float32Array  # noqa: E402


class _FixedPrior(LocationPrior):
    """A prior whose probabilities are known: class 1 likely north of the equator."""

    def iter_proba(
        self,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        date_fraction: npt.ArrayLike | None = None,
        *,
        batch_size: int = 16_384,
    ) -> Iterator[tuple[slice, Float32Array]]:
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        p = np.where(la[:, None] > 0, [[0.1, 0.9, 0.5]], [[0.9, 0.1, 0.5]]).astype(np.float32)
        yield slice(0, la.size), p


def _prior() -> _FixedPrior:
    cfg = PriorConfig(width=4, blocks=0, label_column="label")
    return _FixedPrior(cfg, ["0", "1", "2"], PriorNet(cfg, 3))


def _catalog() -> pa.Table:
    return pa.table(
        {
            "image_id": ["a", "b", "c", "d"],
            "split": ["test"] * 4,
            "lat": [45.0, -30.0, None, 10.0],
            "lon": [5.0, 20.0, None, 10.0],
            "label": pa.array([1, 0, 0, 2], pa.int32()),
            "supercategory": ["Aves", "Aves", "Plantae", "Plantae"],
        }
    )


def _npz(path: Path, scores: np.ndarray, ids: list[str] | None = None) -> Path:
    np.savez(path, image_id=np.array(ids or ["a", "b", "c", "d"]), scores=scores)
    return path


SCORES = np.array(
    [[0.6, 0.4, 0.0], [0.3, 0.7, 0.0], [0.8, 0.2, 0.0], [0.2, 0.2, 0.6]], dtype=np.float64
)


def test_rerank_wide_rows_keeps_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((50, 40))
    scores[:, 5] = scores[:, 9] = 2.0  # a tie at the top
    labels = np.tile(np.arange(40), (50, 1))
    got_l, _ = rerank(labels, scores, 3)
    order = np.lexsort((labels, -scores), axis=-1)[:, :3]
    assert np.array_equal(got_l, np.take_along_axis(labels, order, axis=1))
    assert got_l[:, :2].tolist() == [[5, 9]] * 50


def test_fuse_scores_arithmetic() -> None:
    fused = fuse_scores([[0.6, 0.4]], [[0.1, 0.9]], [True])
    assert np.allclose(fused, [[0.06, 0.36]])
    kept = fuse_scores([[0.6, 0.4]], [[0.1, 0.9]], [False])
    assert np.allclose(kept, [[0.6, 0.4]])
    labels, scores = rerank([[0, 1]], fused, 2)
    assert labels.tolist() == [[1, 0]] and np.allclose(scores, [[0.36, 0.06]])


def test_fuse_dense_npz_with_missing_location(tmp_path: Path) -> None:
    f = _npz(tmp_path / "p.npz", SCORES)
    res = fuse_predictions(
        _prior(), f, _catalog(), out=tmp_path / "fused.npz", kaggle=tmp_path / "sub.csv"
    )
    assert res.images == 4 and res.located == 3
    fused = read_predictions(tmp_path / "fused.npz")
    top1 = dict(zip(fused.image_ids.to_pylist(), fused.labels[:, 0].tolist(), strict=True))
    # a: 0.6*0.1=0.06 vs 0.4*0.9=0.36 -> 1; b (south): 0.27 vs 0.07 -> 0
    # c has no location: keeps its image-only top label 0; d: 0.6*0.5 is best -> 2
    assert top1 == {"a": 1, "b": 0, "c": 0, "d": 2}
    assert fused.scores is not None
    a_scores = fused.scores[0]
    assert np.allclose(a_scores[:3], [0.36, 0.06, 0.0])
    # Kaggle CSV round trip: valid, and read back as the same ranking
    assert check_submission(tmp_path / "sub.csv", _catalog()) == []
    sub = read_predictions(tmp_path / "sub.csv")
    assert sub.image_ids.to_pylist() == ["a", "b", "c", "d"]
    assert sub.labels[:, :3].tolist() == fused.labels[:, :3].tolist()
    rows = {(r["group"], r["subset"]): r for r in res.rows}
    assert rows[("all", "all")]["top1_image"] == pytest.approx(0.5)  # a:0 b:1 c:0 d:2 -> c, d
    assert rows[("all", "all")]["top1_fused"] == pytest.approx(1.0)
    assert rows[("all", "located")]["n"] == 3
    assert rows[("Aves", "all")]["top1_fused"] == pytest.approx(1.0)


def test_fuse_sparse_parquet(tmp_path: Path) -> None:
    f = tmp_path / "p.parquet"
    pq.write_table(
        pa.table(
            {
                "image_id": ["a", "b", "c", "d"],
                "labels": [[0, 1], [1, 0], [0], [2, 1]],
                "scores": [[0.6, 0.4], [0.7, 0.3], [0.8], [0.6, 0.2]],
            }
        ),
        f,
    )
    res = fuse_predictions(_prior(), f, _catalog(), out=tmp_path / "fused.parquet")
    fused = read_predictions(tmp_path / "fused.parquet")
    assert fused.labels[:, 0].tolist() == [1, 0, 0, 2]
    assert res.rows[0]["top1_fused"] == pytest.approx(1.0)


def test_fuse_bad_inputs(tmp_path: Path) -> None:
    prior = _prior()
    extra = _npz(tmp_path / "x.npz", np.vstack([SCORES, SCORES[:1]]), ["a", "b", "c", "d", "zz"])
    with pytest.raises(PriorInputError, match=r"x\.npz, record image 'zz'.*not in the catalog"):
        fuse_predictions(prior, extra, _catalog())
    short = _npz(tmp_path / "s.npz", SCORES[:3], ["a", "b", "c"])
    with pytest.raises(PriorInputError, match=r"record image 'd'.*have no prediction in .*s\.npz"):
        fuse_predictions(prior, short, _catalog())
    wide = _npz(tmp_path / "w.npz", np.hstack([SCORES, SCORES[:, :1]]))
    with pytest.raises(PriorInputError, match=r"w\.npz.*4 class scores.*3 classes"):
        fuse_predictions(prior, wide, _catalog())
    nan = SCORES.copy()
    nan[2, 1] = np.nan
    with pytest.raises(PriorInputError, match=r"n\.npz, record image 'c'.*NaN"):
        fuse_predictions(prior, _npz(tmp_path / "n.npz", nan), _catalog())
    with pytest.raises(PriorInputError, match=r"outside \[0, 1\]"):
        fuse_predictions(prior, _npz(tmp_path / "l.npz", SCORES * 3), _catalog())
    np.savez(
        tmp_path / "u.npz",
        image_id=np.array(["a"]),
        labels=np.array([[7]]),
        scores=np.array([[0.5]]),
    )
    cat = _catalog().slice(0, 1)
    with pytest.raises(PriorInputError, match=r"record image 'a'.*class id 7 is not in the model"):
        fuse_predictions(prior, tmp_path / "u.npz", cat)
    np.savez(tmp_path / "k.npz", image_id=np.array(["a"]), labels=np.array([[1]]))
    with pytest.raises(PriorInputError, match="without scores"):
        fuse_predictions(prior, tmp_path / "k.npz", cat)


def test_bad_date() -> None:
    with pytest.raises(InvalidCoordinateError, match="'2019-02-30'"):
        parse_date("2019-02-30")
    assert parse_date("2019-01-01") == 0.0


def test_fuse_through_saved_model(tmp_path: Path) -> None:
    cfg = PriorConfig(width=4, blocks=0, label_column="label_name")
    model = save_prior(LocationPrior(cfg, ["x", "y", "z"], PriorNet(cfg, 3)), tmp_path / "m")
    cat = _catalog().append_column("label_name", pa.array(["y", "x", "x", "z"]))
    res = fuse_predictions(model, _npz(tmp_path / "p.npz", SCORES), cat, k=3)
    assert res.images == 4 and len(res.rows) == 6

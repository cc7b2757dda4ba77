"""Place predictions: what a geolocation model predicts, and the file it writes.

:class:`PlacePredictions` holds one predicted point per image and its ranked candidates;
:func:`write_predictions` writes them as the CSV or Parquet file that
:func:`geoaware.predictions.geo.read_geo_predictions` (and so ``geoaware eval geo``) reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from geoaware.errors import UsageError
from geoaware.fileio import atomic_path
from geoaware.typing import PathLike

__all__ = ["PlacePredictions", "write_predictions"]


@dataclass(frozen=True)
class PlacePredictions:
    """One predicted point per query and its ``k`` ranked candidate places.

    ``lat``/``lon`` have shape ``(n,)``; ``cand_lat``/``cand_lon``/``cand_score`` have shape
    ``(n, k)``, best first.  Scores are on one scale for every method, in [0, 1], higher is
    better: the candidate's share of the prediction (a cell's or gallery point's probability;
    for k-NN the share of the k voters' similarity-weighted vote within the kernel bandwidth
    of that place, and 0 for neighbours beyond the k voters, which rank after them by
    similarity).

    Examples
    --------
    >>> p = PlacePredictions(np.zeros(1), np.zeros(1), np.zeros((1, 2)), np.zeros((1, 2)),
    ...                      np.array([[0.9, 0.1]]))
    >>> len(p), p.k
    (1, 2)
    """

    lat: np.ndarray
    lon: np.ndarray
    cand_lat: np.ndarray
    cand_lon: np.ndarray
    cand_score: np.ndarray

    def __len__(self) -> int:
        return len(self.lat)

    @property
    def k(self) -> int:
        """The number of candidates per query."""
        return int(self.cand_lat.shape[1])


def write_predictions(path: PathLike, image_ids: npt.ArrayLike, preds: PlacePredictions) -> Path:
    """Write predictions as CSV or Parquet (by suffix): the file ``eval geo`` reads.

    Columns: ``image_id, pred_lat, pred_lon``, then the candidates, best first: Parquet has
    ``cand_lat, cand_lon, cand_score`` list columns, CSV has ``cand1_lat, cand1_lon,
    cand1_score, cand2_lat, ...``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = PlacePredictions(np.array([1.5]), np.array([2.5]), np.array([[1.5, 3.0]]),
    ...                      np.array([[2.5, 4.0]]), np.array([[0.75, 0.25]]))
    >>> out = write_predictions(pathlib.Path(tempfile.mkdtemp()) / "p.csv", ["a"], p)
    >>> out.read_text().splitlines()[0]
    'image_id,pred_lat,pred_lon,cand1_lat,cand1_lon,cand1_score,cand2_lat,cand2_lon,cand2_score'
    """
    out = Path(path)
    ids = np.asarray(image_ids).astype(str)
    if len(ids) != len(preds):
        raise UsageError(f"{len(ids)} image ids for {len(preds)} predictions")
    suffix = out.suffix.lower()
    columns: dict[str, Any] = {
        "image_id": pa.array(ids, pa.string()),
        "pred_lat": pa.array(np.asarray(preds.lat, np.float64)),
        "pred_lon": pa.array(np.asarray(preds.lon, np.float64)),
    }
    cands = {
        "lat": np.asarray(preds.cand_lat, np.float64),
        "lon": np.asarray(preds.cand_lon, np.float64),
        "score": np.asarray(preds.cand_score, np.float64),
    }
    k = preds.k
    if suffix == ".parquet":
        for name, arr in cands.items():
            flat = pa.array(arr.reshape(-1), pa.float64(), from_pandas=True)
            columns[f"cand_{name}"] = pa.FixedSizeListArray.from_arrays(flat, k).cast(
                pa.list_(pa.float64())
            )
        with atomic_path(out) as tmp:
            pq.write_table(pa.table(columns), tmp)
        return out
    if suffix != ".csv":
        raise UsageError(f"predictions go to a .csv or .parquet file, got {out.name!r}")
    import pandas as pd

    frame = pd.DataFrame(
        {name: col.to_numpy(zero_copy_only=False) for name, col in columns.items()}
    )
    for j in range(k):
        for name, arr in cands.items():
            frame[f"cand{j + 1}_{name}"] = arr[:, j]
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    return out

"""The predictions contract: the files models write and evaluation reads.

Two kinds of prediction file, each keyed by image id: ranked labels or class scores
(:mod:`~geoaware.predictions.labels`, the iNat/Kaggle protocol, and the Kaggle
``id,predicted`` submission, :mod:`~geoaware.predictions.submission`), and predicted
coordinates with optional ranked candidates (:mod:`~geoaware.predictions.geo`, the Im2GPS
protocol). Models write through this package and evaluation reads through it, so neither
imports the other.

>>> from geoaware.predictions import TopK
>>> TopK.from_lists(["a"], [[2, 7]]).labels.tolist()
[[2, 7]]
"""

from typing import TYPE_CHECKING

from geoaware.lazy import lazy_exports

if TYPE_CHECKING:  # the names load on first use (geoaware --help stays fast)
    from geoaware.predictions.geo import GeoPredictions as GeoPredictions
    from geoaware.predictions.geo import SkippedRow as SkippedRow
    from geoaware.predictions.geo import read_geo_predictions as read_geo_predictions
    from geoaware.predictions.labels import PAD as PAD
    from geoaware.predictions.labels import TopK as TopK
    from geoaware.predictions.labels import read_predictions as read_predictions
    from geoaware.predictions.labels import top_k_from_scores as top_k_from_scores
    from geoaware.predictions.submission import HEADER as HEADER
    from geoaware.predictions.submission import Problem as Problem
    from geoaware.predictions.submission import check_submission as check_submission
    from geoaware.predictions.submission import write_submission as write_submission

_EXPORTS = {
    "GeoPredictions": "geo",
    "HEADER": "submission",
    "PAD": "labels",
    "Problem": "submission",
    "SkippedRow": "geo",
    "TopK": "labels",
    "check_submission": "submission",
    "read_geo_predictions": "geo",
    "read_predictions": "labels",
    "top_k_from_scores": "labels",
    "write_submission": "submission",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

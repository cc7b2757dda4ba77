"""Evaluation protocols: Im2GPS geolocation, iNat/Kaggle top-k classification, submissions.

>>> from geoaware.evaluate import TopK, top_k_error
>>> top_k_error(TopK.from_lists(["a"], [[2, 7]]).labels, [7], k=1)
1.0
"""

from geoaware.evaluate.classify import (
    DEFAULT_BUCKETS,
    Bucket,
    ClassificationReport,
    evaluate_classification,
    first_match_rank,
    top_k_error,
)
from geoaware.evaluate.geo import (
    DEFAULT_THRESHOLDS_KM,
    GeoReport,
    evaluate_geo,
    geo_summary,
    geoscore,
    grouped_geo_summary,
)
from geoaware.evaluate.geo_io import GeoPredictions, read_geo_predictions
from geoaware.evaluate.predictions import (
    EvaluationError,
    TopK,
    read_predictions,
    top_k_from_scores,
)
from geoaware.evaluate.submission import Problem, check_submission, write_submission

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_THRESHOLDS_KM",
    "Bucket",
    "ClassificationReport",
    "EvaluationError",
    "GeoPredictions",
    "GeoReport",
    "Problem",
    "TopK",
    "check_submission",
    "evaluate_classification",
    "evaluate_geo",
    "first_match_rank",
    "geo_summary",
    "geoscore",
    "grouped_geo_summary",
    "read_geo_predictions",
    "read_predictions",
    "top_k_error",
    "top_k_from_scores",
    "write_submission",
]

"""Evaluation protocols: Im2GPS geolocation, iNat/Kaggle top-k classification, submissions.

>>> from geoaware.evaluate import TopK, top_k_error
>>> top_k_error(TopK.from_lists(["a"], [[2, 7]]).labels, [7], k=1)
1.0
"""

from typing import TYPE_CHECKING

from geoaware.lazy import lazy_exports

if TYPE_CHECKING:  # the names load on first use (geoaware --help stays fast)
    from geoaware.evaluate.classify import (
        DEFAULT_BUCKETS as DEFAULT_BUCKETS,
    )
    from geoaware.evaluate.classify import (
        Bucket as Bucket,
    )
    from geoaware.evaluate.classify import (
        ClassificationReport as ClassificationReport,
    )
    from geoaware.evaluate.classify import (
        evaluate_classification as evaluate_classification,
    )
    from geoaware.evaluate.classify import (
        first_match_rank as first_match_rank,
    )
    from geoaware.evaluate.classify import (
        top_k_error as top_k_error,
    )
    from geoaware.evaluate.geo import (
        DEFAULT_THRESHOLDS_KM as DEFAULT_THRESHOLDS_KM,
    )
    from geoaware.evaluate.geo import (
        GeoReport as GeoReport,
    )
    from geoaware.evaluate.geo import (
        evaluate_geo as evaluate_geo,
    )
    from geoaware.evaluate.geo import (
        geo_summary as geo_summary,
    )
    from geoaware.evaluate.geo import (
        geoscore as geoscore,
    )
    from geoaware.evaluate.geo import (
        grouped_geo_summary as grouped_geo_summary,
    )
    from geoaware.predictions.geo import (
        GeoPredictions as GeoPredictions,
    )
    from geoaware.predictions.geo import (
        read_geo_predictions as read_geo_predictions,
    )
    from geoaware.predictions.labels import (
        EvaluationError as EvaluationError,
    )
    from geoaware.predictions.labels import (
        TopK as TopK,
    )
    from geoaware.predictions.labels import (
        read_predictions as read_predictions,
    )
    from geoaware.predictions.labels import (
        top_k_from_scores as top_k_from_scores,
    )
    from geoaware.predictions.submission import (
        Problem as Problem,
    )
    from geoaware.predictions.submission import (
        check_submission as check_submission,
    )
    from geoaware.predictions.submission import (
        write_submission as write_submission,
    )

_EXPORTS = {
    "Bucket": "classify",
    "ClassificationReport": "classify",
    "DEFAULT_BUCKETS": "classify",
    "DEFAULT_THRESHOLDS_KM": "geo",
    "EvaluationError": "geoaware.predictions.labels",
    "GeoPredictions": "geoaware.predictions.geo",
    "GeoReport": "geo",
    "Problem": "geoaware.predictions.submission",
    "TopK": "geoaware.predictions.labels",
    "check_submission": "geoaware.predictions.submission",
    "evaluate_classification": "classify",
    "evaluate_geo": "geo",
    "first_match_rank": "classify",
    "geo_summary": "geo",
    "geoscore": "geo",
    "grouped_geo_summary": "geo",
    "read_geo_predictions": "geoaware.predictions.geo",
    "read_predictions": "geoaware.predictions.labels",
    "top_k_error": "classify",
    "top_k_from_scores": "geoaware.predictions.labels",
    "write_submission": "geoaware.predictions.submission",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

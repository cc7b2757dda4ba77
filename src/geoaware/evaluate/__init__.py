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
    from geoaware.evaluate.geo_io import (
        GeoPredictions as GeoPredictions,
    )
    from geoaware.evaluate.geo_io import (
        read_geo_predictions as read_geo_predictions,
    )
    from geoaware.evaluate.predictions import (
        EvaluationError as EvaluationError,
    )
    from geoaware.evaluate.predictions import (
        TopK as TopK,
    )
    from geoaware.evaluate.predictions import (
        read_predictions as read_predictions,
    )
    from geoaware.evaluate.predictions import (
        top_k_from_scores as top_k_from_scores,
    )
    from geoaware.evaluate.submission import (
        Problem as Problem,
    )
    from geoaware.evaluate.submission import (
        check_submission as check_submission,
    )
    from geoaware.evaluate.submission import (
        write_submission as write_submission,
    )

_EXPORTS = {
    "Bucket": "classify",
    "ClassificationReport": "classify",
    "DEFAULT_BUCKETS": "classify",
    "DEFAULT_THRESHOLDS_KM": "geo",
    "EvaluationError": "predictions",
    "GeoPredictions": "geo_io",
    "GeoReport": "geo",
    "Problem": "submission",
    "TopK": "predictions",
    "check_submission": "submission",
    "evaluate_classification": "classify",
    "evaluate_geo": "geo",
    "first_match_rank": "classify",
    "geo_summary": "geo",
    "geoscore": "geo",
    "grouped_geo_summary": "geo",
    "read_geo_predictions": "geo_io",
    "read_predictions": "predictions",
    "top_k_error": "classify",
    "top_k_from_scores": "predictions",
    "write_submission": "submission",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Geographical priors: p(species | location, date) from presence-only observations.

The method of Mac Aodha et al. (2019), "Presence-Only Geographical Priors for Fine-Grained
Image Classification", and Chu et al. (2019), "Geo-Aware Networks for Fine-Grained
Recognition": a residual fully-connected network maps an encoded location (and optionally
the date) to one sigmoid per class; an image classifier's p(y | image) is then multiplied by
p(y | location, date) (:mod:`geoaware.priors.fuse`).

Modules: :mod:`~geoaware.priors.config` (the validated :class:`PriorConfig`),
:mod:`~geoaware.priors.features`, :mod:`~geoaware.priors.sampling`,
:mod:`~geoaware.priors.losses`, :mod:`~geoaware.priors.model`, :mod:`~geoaware.priors.data`,
:mod:`~geoaware.priors.train`, :mod:`~geoaware.priors.checkpoint`,
:mod:`~geoaware.priors.baselines`, :mod:`~geoaware.priors.evaluate`,
:mod:`~geoaware.priors.fuse`, :mod:`~geoaware.priors.plots` and
:mod:`~geoaware.priors.commands` (the ``geoaware prior`` commands). torch is imported only by
the modules that need it, so importing this package is cheap.

>>> from geoaware.priors import PriorConfig
>>> PriorConfig().pos_weight
2048.0
"""

from geoaware.priors.config import PriorConfig
from geoaware.priors.errors import PriorConfigError, PriorError, PriorInputError

__all__ = ["PriorConfig", "PriorConfigError", "PriorError", "PriorInputError"]

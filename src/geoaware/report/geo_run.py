"""A geolocation run folder: each ``eval geo`` result as ``<name>.geo.json`` with its figures.

``geoaware eval geo --out RUN`` calls :func:`write_geo_run`: one error CDF of every result,
then per result its error map, its accuracy by continent (with ``--by continent``) and its
accuracy curve beside published results (with ``--reference``), and the result file that
lists them (in the format of :mod:`geoaware.runs`). It lives in ``report/`` because the
figures are the report's (:mod:`geoaware.report.plots`); the evaluator stays free of
matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from geoaware.runs import run_path
from geoaware.typing import PathLike

if TYPE_CHECKING:
    from geoaware.evaluate.geo import GeoReport

__all__ = ["write_geo_run"]

#: The accuracy columns drawn per continent.
CONTINENT_BARS = ["acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km"]


def write_geo_run(
    reports: Sequence[GeoReport], out_dir: PathLike, *, geodesic: bool = False
) -> list[Path]:
    """Write each geolocation result and its figures into a run folder; return the files.

    The command claims the folder first (``geoaware.outputs.claim_output(out_dir, "run")``);
    this function makes it if needed and writes every file atomically. Each report's
    ``figures`` is set to the PNGs written for it (the shared error CDF goes with the first).

    Parameters
    ----------
    reports
        Results of :func:`geoaware.evaluate.evaluate_geo`, with distinct names.
    out_dir
        The run folder.
    geodesic
        Whether the errors are WGS84 geodesic (else the 6371 km sphere); named on the CDF.

    Returns
    -------
    list of Path
        The ``<name>.geo.json`` files, one per report.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> from geoaware.evaluate.geo import evaluate_geo
    >>> from geoaware.predictions.geo import GeoPredictions
    >>> at = np.array([48.85, 40.71]), np.array([2.35, -74.0])
    >>> p = GeoPredictions("m.csv", *at, *at, None, ("a", "b", "c", "d"), pd.DataFrame())
    >>> r = evaluate_geo(p, hit_rates=False)
    >>> r.name = "m"
    >>> [p.name for p in write_geo_run([r], tempfile.mkdtemp())], r.figures
    (['m.geo.json'], ['error_cdf.png', 'm.error_map.png'])
    """
    from geoaware.report.plots import accuracy_curve, error_cdf, error_map, group_bars

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cdf = error_cdf(
        {r.name: r.errors_km for r in reports},
        out_dir / "error_cdf.png",
        title="share of images located within d",
        distance="geodesic" if geodesic else "sphere",
    )
    written = []
    for i, r in enumerate(reports):
        figures = [cdf.name] if i == 0 else []
        figures.append(
            error_map(
                r.true_lat,
                r.true_lon,
                r.errors_km,
                out_dir / f"{r.name}.error_map.png",
                title=r.name,
                distance="geodesic" if geodesic else "sphere",
            ).name
        )
        if "by continent" in r.tables:
            figures.append(
                group_bars(
                    r.tables["by continent"],
                    out_dir / f"{r.name}.by_continent.png",
                    value=CONTINENT_BARS,
                    title=f"{r.name}: accuracy by continent of the true location",
                ).name
            )
        if r.reference:
            figures.append(
                accuracy_curve(
                    r.reference, out_dir / f"{r.name}.reference_{r.reference['dataset']}.png"
                ).name
            )
        r.figures = figures
        written.append(r.save(run_path(out_dir, r.name, "geo")))
    return written

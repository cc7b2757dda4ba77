"""Fit, save, load and run any geolocator; write the predictions file ``eval geo`` reads.

Library entry points of the ``geoaware geolocate`` commands:

* :func:`fit_geolocator` / :func:`save_geolocator` / :func:`load_geolocator`: the method is
  picked by name (``knn``, ``gallery``, ``cells``) and stored in the model folder's
  ``config.json``, so ``predict`` needs nothing but the folder;
* :func:`write_predictions`: ``image_id, pred_lat, pred_lon`` plus the ranked candidates
  (``cand_lat``, ``cand_lon``, ``cand_score`` as lists in Parquet; ``cand1_lat, cand1_lon,
  cand1_score, cand2_lat, ...`` in CSV); ``geoaware eval geo PRED --truth CATALOG`` reads it
  with no extra flag;
* :func:`fit_from_files` / :func:`predict_from_files`: embeddings joined to a catalog by
  ``image_id``, with what the join left out counted, near-duplicate exclusion and the
  overlap report (test locations within 1 km of a training or gallery location).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from geoaware.errors import GeoawareError, InputFileError, UsageError
from geoaware.fileio import atomic_dir, atomic_write_text
from geoaware.geolocate.base import Geolocator
from geoaware.geolocate.overlap import exclude_within, overlap_report, write_overlap
from geoaware.predictions.places import write_predictions
from geoaware.typing import Float32Array, Float64Array, PathLike

__all__ = [
    "METHODS",
    "FitResult",
    "PredictResult",
    "fit_from_files",
    "fit_geolocator",
    "load_geolocator",
    "predict_from_files",
    "save_geolocator",
    "write_predictions",
]

METHODS = ("knn", "gallery", "cells")
ENCODER_FILE = "embeddings.json"
PRETRAINED_GEOCLIP = "geoclip"
"""The model name ``geolocate predict`` takes for GeoCLIP as published (no model folder)."""


def _method_class(method: str) -> type[Geolocator]:
    if method == "knn":
        from geoaware.geolocate.knn import KnnGeolocator

        return KnnGeolocator
    if method == "gallery":
        from geoaware.geolocate.gallery import GalleryGeolocator

        return GalleryGeolocator
    if method == "cells":
        if importlib.util.find_spec("geoaware.geolocate.cellhead") is None:
            raise GeoawareError(
                "method 'cells' needs geoaware.geolocate.cellhead, which this installation "
                "lacks; use --method knn or gallery"
            )
        module = importlib.import_module("geoaware.geolocate.cellhead")
        cls: type[Geolocator] = module.CellGeolocator
        return cls
    raise UsageError(f"unknown geolocation method {method!r}; one of {', '.join(METHODS)}")


def fit_geolocator(
    method: str,
    embeddings: Any,
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    **options: Any,
) -> Geolocator:
    """Fit a geolocator of ``method`` on vectors (an array, or an ``Embeddings``) and places.

    Options are the method's settings (:class:`~geoaware.geolocate.knn.KnnConfig`,
    :class:`~geoaware.geolocate.gallery.GalleryConfig`, the cells head's); one it does not
    take is an error naming it.

    Examples
    --------
    >>> m = fit_geolocator("knn", np.eye(2), [10.0, 20.0], [30.0, 40.0], k=1)
    >>> m.method, m.predict(np.eye(2)[[1]]).lat.tolist()
    ('knn', [20.0])
    """
    cls = _method_class(method)
    vectors = getattr(embeddings, "vectors", embeddings)
    if method == "knn" and hasattr(embeddings, "ids") and "ids" not in options:
        options["ids"] = embeddings.ids
    fit = getattr(cls, "fit", None)
    if fit is None:
        raise GeoawareError(f"method {method!r} has no fit classmethod")
    model: Geolocator = fit(np.asarray(vectors), np.asarray(lat), np.asarray(lon), **options)
    return model


def save_geolocator(model: Geolocator, folder: PathLike, *, embedding_info: Any = None) -> Path:
    """Write ``model`` as a folder atomically (replacing an old one whole); return it.

    ``embedding_info`` (an :class:`~geoaware.vision.embeddings.EmbeddingInfo`) is kept in
    ``embeddings.json`` so ``predict`` can refuse vectors from another encoder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> m = fit_geolocator("knn", np.eye(2), [10.0, 20.0], [30.0, 40.0], k=1)
    >>> d = save_geolocator(m, pathlib.Path(tempfile.mkdtemp()) / "model")
    >>> load_geolocator(d).predict(np.eye(2)).lat.tolist()
    [10.0, 20.0]
    """
    final = Path(folder)
    with atomic_dir(final) as tmp:
        model.save(tmp)
        cfg = tmp / "config.json"
        if not cfg.is_file():
            raise GeoawareError(f"{type(model).__name__}.save wrote no config.json")
        meta = json.loads(cfg.read_text())
        if meta.get("method") != model.method:
            meta["method"] = model.method
            atomic_write_text(cfg, json.dumps(meta, indent=1) + "\n")
        if embedding_info is not None:
            atomic_write_text(tmp / ENCODER_FILE, embedding_info.to_json() + "\n")
    return final


def read_model_config(folder: PathLike) -> dict[str, Any]:
    """Return a model folder's parsed ``config.json`` (errors name the file and field)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise InputFileError(path, "missing: not a geolocator model folder")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"not readable JSON ({exc})") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("method"), str):
        raise InputFileError(path, "no method name", field="method")
    return meta


def load_geolocator(folder: PathLike) -> Geolocator:
    """Load a folder written by :func:`save_geolocator` (the class comes from its config).

    Raises
    ------
    geoaware.errors.InputFileError
        Naming the file, when ``config.json`` is missing or names an unknown method.
    """
    d = Path(folder)
    meta = read_model_config(d)
    try:
        cls = _method_class(meta["method"])
    except ValueError as exc:
        raise InputFileError(d / "config.json", str(exc), field="method") from exc
    return cls.load(d, meta)


def read_model_encoder(folder: PathLike) -> Any:
    """Return the ``EmbeddingInfo`` a model was fitted on, or None when not recorded."""
    path = Path(folder) / ENCODER_FILE
    if not path.is_file():
        return None
    from geoaware.vision.embeddings import EmbeddingInfo

    try:
        return EmbeddingInfo.from_json(path.read_text())
    except (ValueError, TypeError) as exc:
        raise InputFileError(path, f"not an embeddings info ({exc})") from exc


def _check_predictions_path(path: PathLike) -> None:
    """Refuse an output name whose extension is not a format :func:`write_predictions` writes."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UsageError(
            f"{path}: predictions go to a .csv or .parquet file, not {suffix or 'no extension'!r}"
        )


def _check_compatible(embeddings: PathLike, info: Any, trained_on: Any) -> None:
    """Refuse vectors of another dimension or encoder than the model was fitted on."""
    if info.dim != trained_on.dim:
        raise InputFileError(
            embeddings,
            f"vectors have {info.dim} dimensions; the model was fitted on {trained_on.dim} "
            f"({trained_on.encoder})",
            field="embedding",
        )
    if "unknown" not in (info.encoder, trained_on.encoder) and (info.encoder, info.version) != (
        trained_on.encoder,
        trained_on.version,
    ):
        raise InputFileError(
            embeddings,
            f"made by encoder {info.encoder!r} {info.version!r}; the model was fitted on "
            f"{trained_on.encoder!r} {trained_on.version!r}",
            field="embedding",
        )


# ---- from files ------------------------------------------------------------------------------
@dataclass
class Located:
    """Embeddings joined to a catalog's rows (the rows that have both a vector and a place)."""

    ids: npt.NDArray[Any]
    vectors: Float32Array
    lat: Float64Array
    lon: Float64Array
    info: Any
    report: dict[str, Any] = field(default_factory=dict)


def _catalog_rows(catalog: PathLike, split: str | None) -> tuple[pa.Table, int]:
    from geoaware.catalog.io import catalog_columns, read_catalog

    names = catalog_columns(catalog)
    cols: list[str] = [c for c in ("image_id", "lat", "lon", "split") if c in names]
    for need in ("image_id", "lat", "lon"):
        if need not in cols:
            raise InputFileError(catalog, "the catalog has no such column", field=need)
    table = read_catalog(catalog, columns=cols)
    total = table.num_rows
    if split is not None:
        if "split" not in table.column_names:
            raise InputFileError(
                catalog, f"no split column to select {split!r} (run geoaware split)", field="split"
            )
        s = table.column("split").to_numpy(zero_copy_only=False).astype(str)
        table = table.filter(pa.array(s == split))
        if table.num_rows == 0:
            raise InputFileError(catalog, f"no row has split {split!r}", field="split")
    return table, total


def _coords(table: pa.Table) -> tuple[Float64Array, Float64Array]:
    lat = table.column("lat").to_numpy(zero_copy_only=False)
    lon = table.column("lon").to_numpy(zero_copy_only=False)
    return np.asarray(lat, np.float64), np.asarray(lon, np.float64)


def join_embeddings(
    embeddings: PathLike, catalog: PathLike, split: str | None, *, need_location: bool = True
) -> Located:
    """Join an embeddings file to a catalog (optionally one split) by ``image_id``.

    The report counts catalog rows without a location, rows without a vector and vectors
    without a row (each with an example id). With ``need_location=False`` unlocated rows are
    kept (their coordinates NaN).
    """
    import pandas as pd

    from geoaware.vision.embeddings import read_embeddings

    table, total = _catalog_rows(catalog, split)
    lat, lon = _coords(table)
    ids = table.column("image_id").to_numpy(zero_copy_only=False).astype(str)
    if len(np.unique(ids)) != len(ids):
        raise InputFileError(catalog, "image_id is not unique", field="image_id")
    located = ~(np.isnan(lat) | np.isnan(lon))
    emb = read_embeddings(embeddings)
    pos = pd.Index(emb.ids).get_indexer(ids)
    if len(np.unique(emb.ids)) != len(emb.ids):
        raise InputFileError(embeddings, "image_id is not unique", field="image_id")
    has_vec = pos >= 0
    use = has_vec & (located if need_location else True)
    in_rows = np.zeros(len(emb.ids), dtype=bool)
    in_rows[pos[has_vec]] = True
    no_vec = np.flatnonzero(~has_vec & (located if need_location else True))
    no_row = np.flatnonzero(~in_rows)
    report = {
        "catalog_rows": total,
        "split": split,
        "split_rows": int(table.num_rows),
        "no_location": int((~located).sum()),
        "no_location_example": str(ids[~located][0]) if (~located).any() else None,
        "no_embedding": int(no_vec.size),
        "no_embedding_example": str(ids[no_vec[0]]) if no_vec.size else None,
        "embeddings": len(emb.ids),
        "embeddings_not_in_rows": int(no_row.size),
        "embeddings_not_in_rows_example": str(emb.ids[no_row[0]]) if no_row.size else None,
        "used": int(use.sum()),
    }
    if not use.any():
        raise InputFileError(
            embeddings,
            f"no image has both a vector here and a{' located' if need_location else ''} row "
            f"in {catalog}" + (f" (split {split!r})" if split else ""),
            field="image_id",
        )
    return Located(
        ids=ids[use],
        vectors=emb.vectors[pos[use]],
        lat=lat[use],
        lon=lon[use],
        info=emb.info,
        report=report,
    )


def _near_points(exclude_near: str, catalog: PathLike) -> tuple[Float64Array, Float64Array, str]:
    """Locations to stay away from: a catalog path (all located rows) or a split of ``catalog``."""
    path = Path(exclude_near)
    if path.exists():
        table, _ = _catalog_rows(path, None)
        where = str(path)
    else:
        table, _ = _catalog_rows(catalog, exclude_near)
        where = f"{catalog} split {exclude_near!r}"
    lat, lon = _coords(table)
    ok = ~(np.isnan(lat) | np.isnan(lon))
    if not ok.any():
        raise InputFileError(where, "no located row to exclude near", field="lat")
    return lat[ok], lon[ok], where


@dataclass
class FitResult:
    """What ``geolocate fit`` did (its ``--json`` object is :meth:`to_dict`)."""

    model_dir: str
    method: str
    join: dict[str, Any]
    fitted_on: int
    excluded: dict[str, Any] | None
    options: dict[str, Any]
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "model_dir": self.model_dir,
            "method": self.method,
            "join": self.join,
            "fitted_on": self.fitted_on,
            "excluded": self.excluded,
            "options": self.options,
            "details": self.details,
        }


def fit_from_files(
    embeddings: PathLike,
    catalog: PathLike,
    out: PathLike,
    *,
    method: str = "knn",
    split: str | None = "train",
    gallery: PathLike | None = None,
    exclude_within_km: float | None = None,
    exclude_near: str = "test",
    progress: Any = None,
    **options: Any,
) -> FitResult:
    """Fit ``method`` on the catalog's located ``split`` rows that have a vector; save it.

    ``gallery``: a ``LAT,LON`` CSV (GeoCLIP's) that the gallery method predicts among.
    ``exclude_within_km``: first drop training images within that distance of the
    ``exclude_near`` locations (a catalog path, or a split of ``catalog``; default ``test``).
    """
    data = join_embeddings(embeddings, catalog, split)
    excluded = None
    keep = np.ones(len(data.ids), dtype=bool)
    if exclude_within_km is not None:
        q_lat, q_lon, where = _near_points(exclude_near, catalog)
        keep = exclude_within(data.lat, data.lon, q_lat, q_lon, exclude_within_km)
        excluded = {
            "km": exclude_within_km,
            "near": where,
            "near_points": len(q_lat),
            "removed": int((~keep).sum()),
        }
        if not keep.any():
            raise GeoawareError(
                f"every training image lies within {exclude_within_km} km of {where}"
            )
    opts = dict(options)
    if method == "gallery" and gallery is not None:
        from geoaware.sources.gallery import read_gps_gallery

        g = read_gps_gallery(gallery)
        opts["gallery_lat"] = g.column("lat").to_numpy()
        opts["gallery_lon"] = g.column("lon").to_numpy()
    elif gallery is not None:
        raise UsageError("--gallery applies to --method gallery only")
    if method == "knn":
        opts["ids"] = data.ids[keep]
    if progress is not None and method in ("gallery", "cells"):
        opts["progress"] = progress
    model = fit_geolocator(method, data.vectors[keep], data.lat[keep], data.lon[keep], **opts)
    save_geolocator(model, out, embedding_info=data.info)
    details = {k: v for k, v in read_model_config(out).items() if k not in ("method",)}
    return FitResult(
        model_dir=str(out),
        method=method,
        join=data.report,
        fitted_on=int(keep.sum()),
        excluded=excluded,
        options={k: v for k, v in options.items()},
        details=details,
    )


@dataclass
class PredictResult:
    """What ``geolocate predict`` did (its ``--json`` object is :meth:`to_dict`)."""

    out: str
    method: str
    predicted: int
    k: int
    join: dict[str, Any] | None
    overlap: dict[str, Any]
    excluded: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return dict(self.__dict__)


def _predictor(model_dir: PathLike, embeddings: PathLike) -> tuple[Geolocator, Any]:
    """Return a folder's model and the encoder it was fitted on; ``geoclip``: GeoCLIP itself."""
    from geoaware.vision.embeddings import read_info

    info = read_info(embeddings)  # every check runs before a model or a vector is loaded
    if str(model_dir) == PRETRAINED_GEOCLIP and not (Path(model_dir) / "config.json").is_file():
        from geoaware.geolocate.gallery import GalleryGeolocator

        _check_geoclip_input(embeddings, info)  # before the slow gallery
        return GalleryGeolocator.geoclip(), PRETRAINED_GEOCLIP
    trained_on = read_model_encoder(model_dir)
    if trained_on is None:
        raise InputFileError(
            Path(model_dir) / ENCODER_FILE,
            "missing: the model does not say which embeddings it was fitted on, so vectors "
            "cannot be checked against it; refit it with geoaware geolocate fit",
        )
    _check_compatible(embeddings, info, trained_on)
    return load_geolocator(model_dir), trained_on


def _check_geoclip_input(embeddings: PathLike, info: Any) -> None:
    from geoaware.geolocate.geoclip import GEOCLIP_BACKBONE, GEOCLIP_DIM

    name = GEOCLIP_BACKBONE.rsplit("/", 1)[-1]
    if info.dim != GEOCLIP_DIM or (info.encoder != "unknown" and name not in info.encoder):
        raise InputFileError(
            embeddings,
            f"made by encoder {info.encoder!r} ({info.dim}-d); GeoCLIP takes the {GEOCLIP_DIM}-d "
            f"image features of {GEOCLIP_BACKBONE}: geoaware embed CATALOG --images DIR --out EMB "
            f"--encoder hf:{GEOCLIP_BACKBONE}",
            field="embedding",
        )


def predict_from_files(
    model_dir: PathLike,
    embeddings: PathLike,
    out: PathLike,
    *,
    catalog: PathLike | None = None,
    split: str | None = "test",
    k: int = 5,
    exclude_within_km: float | None = None,
    overlap_km: float = 1.0,
) -> PredictResult:
    """Predict every vector (or the catalog ``split``'s), write ``out``, report honestly.

    With a catalog holding true locations: the overlap report (test locations within
    ``overlap_km`` of each of the model's reference point sets), and with
    ``exclude_within_km`` the reference points within that distance of a test location are
    dropped before predicting. Scoring the file is evaluation's job
    (:func:`geoaware.evaluate.evaluate_geo`; ``geolocate predict --evaluate``). ``model_dir``
    ``"geoclip"`` (when no such folder exists) is GeoCLIP as published, over its 100K gallery
    (see :meth:`~geoaware.geolocate.gallery.GalleryGeolocator.geoclip`).
    """
    _check_predictions_path(out)
    model, _ = _predictor(model_dir, embeddings)
    join = None
    t_lat = t_lon = None
    if catalog is not None:
        data = join_embeddings(embeddings, catalog, split, need_location=False)
        ids, vectors = data.ids, data.vectors
        join = data.report
        t_lat, t_lon = data.lat, data.lon
    else:
        from geoaware.vision.embeddings import read_embeddings

        emb = read_embeddings(embeddings)
        ids, vectors = emb.ids, emb.vectors
    overlap: dict[str, Any] = {}
    excluded = None
    located = None
    if t_lat is not None and t_lon is not None:
        located = ~(np.isnan(t_lat) | np.isnan(t_lon))
    if located is not None and located.any():
        q_lat, q_lon = t_lat[located], t_lon[located]  # type: ignore[index]
        refs = model.reference_locations()
        for name, (r_lat, r_lon) in refs.items():
            overlap[name] = overlap_report(q_lat, q_lon, r_lat, r_lon, km=overlap_km).to_dict()
        if exclude_within_km is not None:
            if not refs:
                raise GeoawareError(
                    f"method {model.method!r} keeps no reference points to exclude; refit with "
                    "geoaware geolocate fit --exclude-within"
                )
            name, (r_lat, r_lon) = next(iter(refs.items()))
            keep = exclude_within(r_lat, r_lon, q_lat, q_lon, exclude_within_km)
            if not keep.any():
                raise GeoawareError(
                    f"every {name} point lies within {exclude_within_km} km of a test location"
                )
            model = model.without(keep)
            excluded = {"km": exclude_within_km, "points": name, "removed": int((~keep).sum())}
            overlap[f"{name}_after_exclusion"] = overlap_report(
                q_lat, q_lon, *model.reference_locations()[name], km=overlap_km
            ).to_dict()
    elif exclude_within_km is not None:
        raise GeoawareError("--exclude-within needs --catalog with true test locations")
    preds = model.predict(vectors, k=k)
    write_predictions(out, ids, preds)
    if overlap:  # beside the predictions, for eval geo and the report to repeat
        write_overlap(
            out,
            {"method": model.method, "km": overlap_km, "overlap": overlap, "excluded": excluded},
        )
    return PredictResult(
        out=str(out),
        method=model.method,
        predicted=len(preds),
        k=preds.k,
        join=join,
        overlap=overlap,
        excluded=excluded,
    )

"""The fg_geo recipe: YFCC100M photos whose tags name exactly one species, and its checker.

Rules (Chu et al. 2019): keep photos (not videos) that are geotagged, whose user tags match
exactly one label of the vocabulary (scientific or common names; matching ignores case and
separators, after URL-decoding the ``+``-joined, comma-separated tags), at most ``per_label``
per label, chosen by a seeded hash of the photo hash (so the choice is a pure function of the
photo). :func:`check_fg_geo` verifies any such file against the three rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geoaware.catalog import read_catalog, write_catalog
from geoaware.construct.keys import unit_hash
from geoaware.errors import InputFileError
from geoaware.sources.fg_geo_yfcc import parse_csv, read_fg_geo_zip
from geoaware.sources.yfcc import iter_yfcc
from geoaware.typing import PathLike

__all__ = ["build_fg_geo", "check_fg_geo", "load_vocabulary", "normalise_names"]


def normalise_names(names: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Lower-case names and drop separators (space, ``_ + - .``) so variants compare equal.

    Examples
    --------
    >>> normalise_names(pa.array(["Vireo griseus", "vireo+GRISEUS", "vireo_griseus"])).to_pylist()
    ['vireogriseus', 'vireogriseus', 'vireogriseus']
    """
    return pc.replace_substring_regex(pc.utf8_lower(names), r"[\s_+\-.]+", "")


def load_vocabulary(path: PathLike) -> tuple[dict[str, str], list[str]]:
    r"""Read label names: a catalog (``label_name``/``species``), a JSON list, or a text file.

    JSON entries may be strings or objects with ``name``/``our_name`` and
    ``common_name``/``preferred_common_name``; text lines hold a name, optionally a tab and a
    common name. Returns (normalised name -> label, names dropped as ambiguous).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "names.txt"
    >>> _ = f.write_text("Vireo griseus\tWhite-eyed Vireo\n")
    >>> load_vocabulary(f)[0]
    {'vireogriseus': 'Vireo griseus', 'whiteeyedvireo': 'Vireo griseus'}
    """
    p = Path(path)
    pairs: list[tuple[str, str]] = []
    if p.is_dir() or p.suffix == ".parquet":
        t = read_catalog(p)
        names = pc.coalesce(t.column("label_name"), t.column("species"))
        pairs = [(n, n) for n in pc.unique(names.drop_null()).to_pylist()]
    elif p.suffix == ".json":
        try:
            data = orjson.loads(p.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise InputFileError(p, f"not readable JSON ({exc})") from exc
        items = data.get("categories", data) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise InputFileError(p, "expected a JSON list of names (or of category objects)")
        for i, item in enumerate(items):
            if isinstance(item, str):
                pairs.append((item, item))
                continue
            if not isinstance(item, dict):
                raise InputFileError(p, "entry is not a name or an object", record=i)
            name = item.get("name") or item.get("our_name")
            if not name or not isinstance(name, str):
                raise InputFileError(p, "entry has no name (text)", record=i, field="name")
            pairs.append((name, name))
            common = item.get("common_name") or item.get("preferred_common_name")
            if isinstance(common, str) and common:
                pairs.append((common, name))
    else:
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFileError(p, f"cannot read ({exc})") from exc
        for line in text.splitlines():
            parts = [x.strip() for x in line.split("\t") if x.strip()]
            if parts:
                pairs += [(x, parts[0]) for x in parts]
    keys = normalise_names(pa.array([a for a, _ in pairs], pa.string())).to_pylist()
    vocab: dict[str, str] = {}
    ambiguous: set[str] = set()
    for key, (_, label) in zip(keys, pairs, strict=True):
        if key in vocab and vocab[key] != label:
            ambiguous.add(key)
        vocab.setdefault(key, label)
    for key in ambiguous:
        del vocab[key]
    if not vocab:
        raise InputFileError(p, "holds no label names")
    return vocab, sorted(ambiguous)


def _decode_tags(tags: pa.Array) -> pa.Array:
    """URL-decode the (few) distinct tags that hold a ``%`` escape."""
    if not pc.any(pc.match_substring(tags, "%")).as_py():
        return tags
    enc = pc.dictionary_encode(tags)
    uniq = enc.dictionary.to_pylist()
    decoded = pa.array([unquote_plus(u) if "%" in u else u for u in uniq], pa.string())
    return decoded.take(enc.indices)


def _match(batch: pa.RecordBatch, vocab_keys: pa.Array, vocab_labels: pa.Array) -> pa.Array:
    """Per row: the number of distinct labels its user tags name, and the label if one."""
    tags = pc.split_pattern(batch.column("user_tags"), ",")
    flat = pc.list_flatten(tags)
    parent = pc.list_parent_indices(tags)
    norm = normalise_names(_decode_tags(flat))
    idx = pc.index_in(norm, value_set=vocab_keys)
    hit = pc.is_valid(idx)
    rows = parent.filter(hit).to_numpy(zero_copy_only=False)
    labs = vocab_labels.take(idx.filter(hit))
    return pa.table({"row": rows, "label": labs})


def build_fg_geo(
    yfcc: PathLike,
    labels: PathLike,
    out: PathLike,
    *,
    per_label: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Build the fg_geo catalog from the YFCC100M metadata; return the filtering report.

    Raises
    ------
    InputFileError
        For a YFCC line with a broken number of fields (nothing is written then).

    Examples
    --------
    >>> build_fg_geo("yfcc100m_dataset", "names.txt", "fg_geo.parquet")  # doctest: +SKIP
    {'rows_read': ..., 'removed': {'video': ..., ...}, 'kept': ...}
    """
    vocab, ambiguous = load_vocabulary(labels)
    keys = pa.array(list(vocab), pa.string())
    values = pa.array(list(vocab.values()), pa.string())
    removed = {"video": 0, "not_geotagged": 0, "no_label": 0, "several_labels": 0,
               "over_per_label": 0}  # fmt: skip
    read = 0
    kept: list[pa.Table] = []
    for batch in iter_yfcc(yfcc):
        read += batch.num_rows
        photo = pc.equal(batch.column("marker"), 0).fill_null(False)
        removed["video"] += batch.num_rows - pc.sum(photo).as_py()
        batch = batch.filter(photo)
        lat, lon = batch.column("latitude"), batch.column("longitude")
        geo = pc.and_(
            pc.and_(pc.is_valid(lat), pc.is_valid(lon)),
            pc.and_(
                pc.and_(pc.less_equal(pc.abs(lat), 90), pc.less_equal(pc.abs(lon), 180)),
                pc.invert(pc.and_(pc.equal(lat, 0), pc.equal(lon, 0))),
            ),
        ).fill_null(False)
        removed["not_geotagged"] += batch.num_rows - (pc.sum(geo).as_py() or 0)
        batch = batch.filter(geo)
        m = _match(batch, keys, values).group_by(["row", "label"]).aggregate([])
        counts = np.bincount(m.column("row").to_numpy(), minlength=batch.num_rows)
        removed["no_label"] += int((counts == 0).sum())
        removed["several_labels"] += int((counts > 1).sum())
        single = m.filter(pc.is_in(m.column("row"), pa.array(np.flatnonzero(counts == 1))))
        single = single.sort_by("row")
        rows = pa.array(single.column("row").to_numpy())
        kept.append(
            pa.Table.from_batches([batch.take(rows)]).append_column(
                "label_name", single.column("label")
            )
        )
    cand = pa.concat_tables(kept) if kept else None
    if cand is None or cand.num_rows == 0:
        table = pa.table(
            {"source": pa.array([], pa.string()), "image_id": pa.array([], pa.string())}
        )
    else:
        u = unit_hash(cand.column("hash"), seed)
        df = pd.DataFrame(
            {"label": cand.column("label_name").to_numpy(zero_copy_only=False), "u": u}
        )
        rank = df.groupby("label")["u"].rank(method="first").to_numpy()
        take = rank <= per_label
        removed["over_per_label"] = int((~take).sum())
        cand = cand.filter(pa.array(take))
        taken = pc.strptime(
            pc.utf8_slice_codeunits(cand.column("date_taken"), 0, 19),
            "%Y-%m-%d %H:%M:%S",
            "us",
            error_is_null=True,
        )
        names = cand.column("label_name")
        table = pa.table({
            "source": pa.array(np.full(cand.num_rows, "yfcc100m", dtype=object), pa.string()),
            "image_id": cand.column("hash"),
            "url": cand.column("download_url"),
            "lat": cand.column("latitude"),
            "lon": cand.column("longitude"),
            "taken_at": taken.cast(pa.timestamp("us", tz="UTC")),
            "user_id": cand.column("user_nsid"),
            "label_name": names,
            "species": names,
            "genus": pc.list_element(pc.split_pattern(names, " ", max_splits=1), 0),
            "license": cand.column("license_name"),
            "extra": pa.array(
                [orjson.dumps({"photo_id": a, "yfcc_line": b}).decode() for a, b in zip(
                    cand.column("photo_id").to_pylist(), cand.column("line_number").to_pylist(),
                    strict=True)], pa.string()),
        })  # fmt: skip
    write_catalog(table, out)
    return {
        "yfcc": str(yfcc),
        "labels": len(set(vocab.values())),
        "ambiguous_names": ambiguous,
        "rows_read": read,
        "removed": removed,
        "kept": table.num_rows,
        "out": str(out),
    }


def _read_any(path: Path) -> pa.Table:
    if path.suffix == ".zip":
        return read_fg_geo_zip(path)
    if path.suffix == ".csv":
        return parse_csv(path.read_bytes(), where=str(path))
    return read_catalog(path)


def check_fg_geo(path: PathLike, *, per_label: int = 10) -> dict[str, Any]:
    """Check a fg_geo file (released zip/CSV or a catalog) against the recipe's three rules.

    Returns ``ok`` and per rule the number of offending rows (or labels) with examples, and
    the label-count histogram (labels with 1, 2, ... images).

    Examples
    --------
    >>> check_fg_geo("yfcc100m_geolocated_inat2017species.csv.zip")["ok"]  # doctest: +SKIP
    True
    """
    p = Path(path)
    t = _read_any(p)
    lat = t.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
    lon = t.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
    bad_geo = np.isnan(lat) | np.isnan(lon) | (np.abs(lat) > 90) | (np.abs(lon) > 180)
    bad_geo |= (lat == 0) & (lon == 0)
    df = pd.DataFrame({
        "id": t.column("image_id").to_numpy(zero_copy_only=False),
        "label": t.column("label_name").to_numpy(zero_copy_only=False),
    })  # fmt: skip
    per_image = df.groupby("id")["label"].nunique()
    multi = per_image[per_image > 1]
    counts = df.groupby("label").size()
    over = counts[counts > per_label]
    hist = counts.value_counts().sort_index()
    ids = df["id"].to_numpy()
    rules = {
        "geotagged": {"violations": int(bad_geo.sum()), "examples": ids[bad_geo][:5].tolist()},
        "one_label_per_image": {"violations": len(multi), "examples": multi.index[:5].tolist()},
        f"at_most_{per_label}_per_label": {
            "violations": len(over),
            "examples": [[k, int(v)] for k, v in over.head(5).items()],
        },
    }
    return {
        "path": str(p),
        "rows": t.num_rows,
        "images": int(df["id"].nunique()),
        "labels": len(counts),
        "duplicate_ids": int(df["id"].duplicated().sum()),
        "rules": rules,
        "ok": all(r["violations"] == 0 for r in rules.values()),
        "label_count_histogram": {str(k): int(v) for k, v in hist.items()},
    }

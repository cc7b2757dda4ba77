"""Benchmark ingesting an iNat2021-sized release: our streaming reader against the obvious way.

What is compared, on the same synthetic files and in the same run:

* **baseline** ("json.load + pandas merge"): for each split, ``json.load`` the document, build
  DataFrames of ``images``, ``annotations`` and ``categories``, merge images with annotations
  on the image id and with categories on the category id, concatenate the splits, parse the
  dates with ``pandas.to_datetime(utc=True, format="ISO8601")`` and write ``to_parquet``.
* **ours**: ``write_catalog_batches(Inat2021(root, splits=["train", "val"]).read_batches(),
  out)``: streamed, chunked decoding into Arrow, joins, dates, counts, one Parquet file.

The files are written first, in the shape of the real ``train.json`` and ``val.json`` (keys in
the release's order: ``info, images, categories, annotations, licenses``; 10,000 categories with
the full taxonomy, common names and image folder names; images with ``file_name``, ``license``,
``rights_holder``, ``date``, ``latitude``, ``longitude`` and ``location_uncertainty``, a few
percent of them null, a few uncertainties junk, a few dates date-only or offset). ``train.json``
holds ``--images`` images (default 2,700,000, the size of iNat2021's), ``val.json`` ten per
category. Each side runs in its own child process, one after the other; its wall time is
measured inside the child (imports excluded), its peak resident memory is the child's
``ru_maxrss`` as ``os.wait4`` reports it. Both outputs must hold every image, or the script
exits with status 1.

The last line printed is one JSON object: ``ratio`` (baseline time / ours; target >= 3) and
``memory_ratio`` (our peak RSS / JSON bytes; target <= 1.5), with the raw figures.

Run it from the repository root::

    .venv/bin/python benchmarks/bench_ingest.py
    .venv/bin/python benchmarks/bench_ingest.py --images 200000

``--parsers`` measures the JSON decoding step alone instead: the same files decoded into Arrow
tables (images with the fields Inat2021 reads, annotations, categories) by our streaming reader
(:mod:`geoaware.sources.inat.stream`), by ``msgspec`` (typed Structs, whole document), by
DuckDB's ``read_json`` (the document as one object, its arrays unnested) and by
``pyarrow.json`` (the document as one record, ``block_size`` above the file size). None of the
three maintained parsers streams the arrays of a single JSON object, so their peak memory
grows with the file; each side reports the same checks (rows, sum of ids, latitudes,
annotations, categories), which must agree. Its JSON line has ``ratio`` = the fastest
maintained parser's time / ours::

    .venv/bin/python benchmarks/bench_ingest.py --parsers
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchkit import add_quick, sized

TARGET_RATIO = 3.0
TARGET_MEMORY_RATIO = 1.5
BASELINE = "json.load + pandas merge"
SPLITS = ("train", "val")

_KINGDOMS = ("Animalia", "Plantae", "Fungi")
_SUPER = ("Plants", "Insects", "Birds", "Fungi", "Reptiles", "Mammals", "Ray-finned Fishes",
          "Amphibians", "Mollusks", "Arachnids", "Animalia")  # fmt: skip
_FIRST = ("Glenn", "Ann", "Ken-ichi", "María", "Li", "Olu", "Sven", "Priya", "Tom", "Zoë")
_LAST = ("Caspers", "Ueda", "Smith", "Müller", "Okafor", "Nakamura", "Silva", "Khan")


# --------------------------------------------------------------------------------------------
# Synthetic release


def _word(rng: np.random.Generator, capital: bool) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    text = "".join(letters[i] for i in rng.integers(0, 26, int(rng.integers(5, 11))))
    return text.capitalize() if capital else text


def make_categories(n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Return ``n`` categories with iNat2021's fields and a plausible taxonomy tree."""
    phyla = [_word(rng, True) for _ in range(13)]
    classes = [(_word(rng, True), phyla[i % 13]) for i in range(51)]
    orders = [(_word(rng, True), classes[i % 51]) for i in range(270)]
    families = [(_word(rng, True), orders[i % 270]) for i in range(1103)]
    genera = [(_word(rng, True), families[i % 1103]) for i in range(4884)]
    cats = []
    for i in range(n):
        genus, (family, (order, (klass, phylum))) = genera[i % len(genera)]
        epithet = _word(rng, False)
        kingdom = _KINGDOMS[i % 3]
        cats.append(
            {
                "id": i,
                "name": f"{genus} {epithet}",
                "common_name": f"{_word(rng, True)} {_word(rng, False)}",
                "supercategory": _SUPER[i % len(_SUPER)],
                "kingdom": kingdom,
                "phylum": phylum,
                "class": klass,
                "order": order,
                "family": family,
                "genus": genus,
                "specific_epithet": epithet,
                "image_dir_name": (
                    f"{i:05d}_{kingdom}_{phylum}_{klass}_{order}_{family}_{genus}_{epithet}"
                ),
            }
        )
    return cats


def write_split(
    path: Path, split: str, first_id: int, cat_of_image: np.ndarray, cats: list[dict[str, Any]],
    rng: np.random.Generator,
) -> None:  # fmt: skip
    """Write one split's document, streaming, in the release's key order."""
    n = cat_of_image.size
    users = [f"{_FIRST[i % 10]} {_LAST[(i // 10) % 8]}{i // 80 or ''}" for i in range(158_873)]
    user_of = rng.integers(0, len(users), n)
    lat = np.round(rng.uniform(-60, 70, n), 5)
    lon = np.round(rng.uniform(-180, 180, n), 5)
    private = rng.random(n) < 0.03
    unc = rng.integers(1, 5000, n)
    unc_kind = rng.random(n)
    year = rng.integers(1990, 2021, n)
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)
    hour = rng.integers(0, 24, n)
    minute = rng.integers(0, 60, n)
    date_kind = rng.random(n)
    uuids = rng.integers(0, 2**63, (n, 2))
    with open(path, "w", encoding="utf-8") as fh:
        info = {
            "year": 2021,
            "version": "2021",
            "description": "synthetic iNat2021",
            "contributor": "geoaware benchmark",
            "url": "",
            "date_created": "2021-02-24",
        }
        fh.write('{"info": ' + json.dumps(info) + ', "images": [')
        batch = []
        for i in range(n):
            if private[i]:
                la = lo = un = "null"
            else:
                la, lo = repr(float(lat[i])), repr(float(lon[i]))
                k = unc_kind[i]
                un = "null" if k < 0.3 else ("-80" if k < 0.301 else str(int(unc[i])))
            k = date_kind[i]
            day_text = f"{year[i]}-{month[i]:02d}-{day[i]:02d}"
            time_text = f"{hour[i]:02d}:{minute[i]:02d}:00"
            if k < 0.01:
                date = "null"
            elif k < 0.05:
                date = f'"{day_text}"'
            elif k < 0.08:
                date = f'"{day_text} {time_text}-05:00"'
            else:
                date = f'"{day_text} {time_text}+00:00"'
            c = cats[cat_of_image[i]]
            u = f"{uuids[i, 0]:016x}{uuids[i, 1]:016x}"
            uid = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:32]}"
            name = f"{split}/{c['image_dir_name']}/{uid}.jpg"
            batch.append(
                f'{{"id": {first_id + i}, "width": 500, "height": {300 + i % 200}, '
                f'"file_name": "{name}", "license": {1 + i % 6}, '
                f'"rights_holder": {json.dumps(users[user_of[i]])}, "date": {date}, '
                f'"latitude": {la}, "longitude": {lo}, "location_uncertainty": {un}}}'
            )
            if len(batch) == 100_000:
                fh.write(("" if i < 100_000 else ", ") + ", ".join(batch))
                batch = []
        if batch:
            fh.write(("" if n <= len(batch) else ", ") + ", ".join(batch))
        fh.write('], "categories": ' + json.dumps(cats) + ', "annotations": [')
        fh.write(
            ", ".join(
                f'{{"id": {first_id + i}, "image_id": {first_id + i}, '
                f'"category_id": {int(cat_of_image[i])}}}'
                for i in range(n)
            )
        )
        licenses = [{"id": i, "name": f"License {i}", "url": f"http://x/{i}"} for i in range(7)]
        fh.write('], "licenses": ' + json.dumps(licenses) + "}")


def make_release(root: Path, images: int, categories: int, per_val: int, seed: int) -> int:
    """Write ``root/inat2021/train.json`` and ``val.json``; return their total size."""
    rng = np.random.default_rng(seed)
    cats = make_categories(categories, rng)
    folder = root / "inat2021"
    folder.mkdir(parents=True, exist_ok=True)
    weights = rng.pareto(1.2, categories) + 1
    train_cats = rng.choice(categories, images, p=weights / weights.sum())
    val_cats = np.repeat(np.arange(categories), per_val)
    write_split(folder / "train.json", "train", 0, train_cats, cats, rng)
    write_split(folder / "val.json", "val", images, val_cats, cats, rng)
    return sum((folder / f"{s}.json").stat().st_size for s in SPLITS)


# --------------------------------------------------------------------------------------------
# The two sides, each in a child process


def run_ours(root: Path, out: Path) -> dict[str, Any]:
    """Ingest with geoaware: streamed batches into one Parquet file."""
    import pyarrow.parquet as pq

    from geoaware.catalog.io import write_catalog_batches
    from geoaware.sources.inat import Inat2021

    start = time.perf_counter()
    source = Inat2021(root, splits=SPLITS)
    write_catalog_batches(source.read_batches(), out)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": pq.read_metadata(out).num_rows, "counts": source.counts}


def run_baseline(root: Path, out: Path) -> dict[str, Any]:
    """Ingest the obvious way: json.load, DataFrames, merges, to_parquet."""
    import pandas as pd

    start = time.perf_counter()
    frames = []
    for split in SPLITS:
        with open(root / "inat2021" / f"{split}.json", encoding="utf-8") as fh:
            doc = json.load(fh)
        images = pd.DataFrame(doc["images"])
        annotations = pd.DataFrame(doc["annotations"])[["image_id", "category_id"]]
        categories = pd.DataFrame(doc["categories"]).add_prefix("category_")
        del doc
        df = images.merge(annotations, left_on="id", right_on="image_id", how="left")
        df = df.merge(categories, on="category_id", how="left")
        df["split"] = split
        frames.append(df)
        del images, annotations, categories, df
    catalog = pd.concat(frames, ignore_index=True)
    del frames
    catalog["taken_at"] = pd.to_datetime(
        catalog["date"], utc=True, format="ISO8601", errors="coerce"
    )
    catalog.to_parquet(out, index=False)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(catalog)}


# --------------------------------------------------------------------------------------------
# --parsers: the JSON decoding step alone, ours against maintained parsers
#
# Each side decodes both documents into Arrow tables: the images (the fields Inat2021 reads),
# the annotations (image_id, category_id) and the categories, and returns the same checks
# (rows, sum of ids, non-null latitudes, annotations, categories), which must agree.

PARSERS = ("ours", "msgspec", "duckdb", "pyarrow")
_IMAGE_KEYS = ("id", "file_name", "width", "height", "license", "rights_holder", "date",
               "latitude", "longitude", "location_uncertainty")  # fmt: skip


def _checks(images: Any, annotations: int, categories: int) -> dict[str, Any]:
    import pyarrow.compute as pc

    return {
        "rows": images.num_rows,
        "id_sum": int(pc.sum(images.column("id")).as_py() or 0),
        "latitudes": images.num_rows - images.column("latitude").null_count,
        "annotations": annotations,
        "categories": categories,
    }


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(parts[0])
    for part in parts[1:]:
        for key in ("rows", "id_sum", "latitudes", "annotations", "categories"):
            out[key] += part[key]
    return out


def _timed(decode: Any, root: Path) -> dict[str, Any]:
    start = time.perf_counter()
    parts = [decode(root / "inat2021" / f"{split}.json") for split in SPLITS]
    result = _merge(parts)
    result["seconds"] = time.perf_counter() - start
    return result


def decode_ours(path: Path) -> dict[str, Any]:
    """Our streaming reader: the exact walk for the small arrays, checked pieces for images."""

    from geoaware.sources.inat.records import ANNOTATION_SPEC, CATEGORY2021_SPEC, IMAGE2021_SPEC
    from geoaware.sources.inat.stream import JsonScanner, decode_records, decode_span, iter_span

    specs = {"annotations": ANNOTATION_SPEC, "categories": CATEGORY2021_SPEC}
    rows = {"annotations": 0, "categories": 0}
    span = None
    with open(path, "rb") as fh:
        for chunk in JsonScanner(fh, str(path), {"images", *specs}, skip={"images"}):
            if not chunk.exact:
                span = chunk
            else:
                key = str(chunk.key)
                rows[key] += decode_records(chunk, specs[key], str(path)).num_rows
    assert span is not None
    parts = []  # the image tables are checked one at a time, as the reader streams them
    with open(path, "rb") as fh:
        for piece in iter_span(fh, span):
            table = decode_span(piece, IMAGE2021_SPEC)
            assert table is not None
            parts.append(_checks(table, 0, 0))
    return _merge([*parts, _checks(IMAGE2021_SPEC.schema.empty_table(), *rows.values())])


def decode_msgspec(path: Path) -> dict[str, Any]:
    """msgspec: the whole document into typed Structs at once, then columns into Arrow."""
    import msgspec
    import pyarrow as pa

    image = msgspec.defstruct(
        "Image",
        [("id", int), ("file_name", str),
         *((k, int | None, None) for k in ("width", "height", "license")),
         *((k, str | None, None) for k in ("rights_holder", "date")),
         *((k, float | None, None) for k in ("latitude", "longitude", "location_uncertainty"))],
        gc=False,
    )  # fmt: skip
    annotation = msgspec.defstruct("Annotation", [("image_id", int), ("category_id", int)])
    category = msgspec.defstruct("Category", [("id", int), ("name", str)])
    doc_type = msgspec.defstruct(
        "Doc",
        [("images", list[image]), ("annotations", list[annotation]),  # type: ignore[valid-type]
         ("categories", list[category])],  # type: ignore[valid-type]
    )  # fmt: skip

    doc: Any = msgspec.json.decode(path.read_bytes(), type=doc_type)
    images = pa.table({k: pa.array([getattr(r, k) for r in doc.images]) for k in _IMAGE_KEYS})
    return _checks(images, len(doc.annotations), len(doc.categories))


def decode_duckdb(path: Path) -> dict[str, Any]:
    """DuckDB read_json: the document is one JSON object (one row); its arrays are unnested."""
    import duckdb

    con = duckdb.connect()
    size = path.stat().st_size + 1
    con.execute(
        "CREATE TEMP TABLE doc AS SELECT images, annotations, categories FROM "
        f"read_json('{path}', format='unstructured', maximum_object_size={size})"
    )
    images = con.sql(
        "SELECT i.id, i.file_name, i.width, i.height, i.license, i.rights_holder, i.date, "
        "i.latitude, i.longitude, i.location_uncertainty FROM "
        "(SELECT unnest(images) AS i FROM doc)"
    ).to_arrow_table()
    annotations, categories = con.execute(
        "SELECT len(annotations), len(categories) FROM doc"
    ).fetchone()  # type: ignore[misc]
    return _checks(images, int(annotations), int(categories))


def decode_pyarrow(path: Path) -> dict[str, Any]:
    """pyarrow.json: the document as one line-delimited record (block_size > file size)."""
    import pyarrow as pa
    import pyarrow.json as pajson

    image = pa.struct([
        ("id", pa.int64()), ("file_name", pa.string()), ("width", pa.int32()),
        ("height", pa.int32()), ("license", pa.int64()), ("rights_holder", pa.string()),
        ("date", pa.string()), ("latitude", pa.float64()), ("longitude", pa.float64()),
        ("location_uncertainty", pa.float64()),
    ])  # fmt: skip
    schema = pa.schema([
        ("images", pa.list_(image)),
        ("annotations", pa.list_(pa.struct([("image_id", pa.int64()),
                                            ("category_id", pa.int64())]))),
        ("categories", pa.list_(pa.struct([("id", pa.int64()), ("name", pa.string())]))),
    ])  # fmt: skip
    table = pajson.read_json(
        path,
        read_options=pajson.ReadOptions(block_size=path.stat().st_size + 1),
        parse_options=pajson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=True
        ),
    )
    images = pa.Table.from_struct_array(table.column("images").combine_chunks().flatten())
    annotations = len(table.column("annotations").combine_chunks().flatten())
    categories = len(table.column("categories").combine_chunks().flatten())
    return _checks(images, annotations, categories)


def run_parse(root: Path, out: Path) -> dict[str, Any]:
    """Decode with the parser named by ``out``'s name (``--parsers`` mode)."""
    decode = globals()[f"decode_{out.name}"]
    return _timed(decode, root)


def child(side: str, root: Path, out: Path) -> dict[str, Any]:
    """Run one side in a fresh interpreter; return its result and peak RSS (MB)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[4]); import bench_ingest as b; "
        "from pathlib import Path; "
        "r = getattr(b, 'run_' + sys.argv[1])(Path(sys.argv[2]), Path(sys.argv[3])); "
        "print(json.dumps(r))"
    )
    here = str(Path(__file__).resolve().parent)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, side, str(root), str(out), here],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{side} failed with status {proc.returncode}")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="train images (2.7M; 600k quick)")
    parser.add_argument("--categories", type=int, default=10_000, help="categories")
    parser.add_argument("--val-per-category", type=int, default=10, help="val images each")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--workdir", type=Path, default=None, help="where files go (temp)")
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    parser.add_argument(
        "--parsers",
        action="store_true",
        help="compare the JSON decoding step alone: ours against msgspec, DuckDB read_json and "
        "pyarrow.json (instead of the ingest against json.load + pandas)",
    )
    add_quick(parser)
    args = parser.parse_args(argv)
    sized(args, images=(2_700_000, 600_000))
    if args.images < 1 or args.categories < 1 or args.val_per_category < 0:
        parser.error("--images and --categories must be positive")
    return args


def compare_parsers(args: argparse.Namespace, work: Path, json_bytes: int, n: int) -> int:
    """Run every parser on the files; print the table and the JSON line (``--parsers``)."""
    results = {name: child("parse", work, work / name) for name in PARSERS}
    keys = ("rows", "id_sum", "latitudes", "annotations", "categories")
    agree = (
        all(all(r[k] == results["ours"][k] for k in keys) for r in results.values())
        and results["ours"]["rows"] == n
    )
    print(f"{'parser':<10} {'time (s)':>9} {'images/s':>12} {'peak RSS (MB)':>14} {'x JSON':>7}")
    for name, r in results.items():
        print(
            f"{name:<10} {r['seconds']:>9.2f} {n / r['seconds']:>12,.0f} {r['peak_mb']:>14,.0f} "
            f"{r['peak_mb'] * 2**20 / json_bytes:>7.2f}"
        )
    best = min((k for k in PARSERS if k != "ours"), key=lambda k: results[k]["seconds"])
    ratio = results[best]["seconds"] / results["ours"]["seconds"]
    print(f"ours vs the fastest maintained parser ({best}): {ratio:.2f}x; checks "
          f"{'agree' if agree else 'DISAGREE'}")  # fmt: skip
    figures: dict[str, Any] = {
        "benchmark": "ingest_parsers",
        "quick": args.quick,
        "baseline": best,
        "ratio": ratio,
        "images": args.images,
        "total_images": n,
        "json_bytes": json_bytes,
        "train_json_bytes": (work / "inat2021" / "train.json").stat().st_size,
        "checks_agree": agree,
    }
    for name, r in results.items():
        figures[f"{name}_s"] = r["seconds"]
        figures[f"{name}_peak_mb"] = r["peak_mb"]
    print(json.dumps(figures))
    return 0 if agree else 1


def main(argv: list[str] | None = None) -> int:
    """Write the files, run both sides, print the table and the JSON line."""
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_ingest.", dir=args.workdir))
    try:
        start = time.perf_counter()
        json_bytes = make_release(
            work, args.images, args.categories, args.val_per_category, args.seed
        )
        made_s = time.perf_counter() - start
        n = args.images + args.categories * args.val_per_category
        print(f"wrote {n:,} images, {json_bytes / 1e6:,.0f} MB of JSON in {made_s:.1f} s")
        if args.parsers:
            return compare_parsers(args, work, json_bytes, n)
        ours = child("ours", work, work / "ours.parquet")
        baseline = child("baseline", work, work / "baseline.parquet")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    correct = ours["rows"] == baseline["rows"] == n
    ratio = baseline["seconds"] / ours["seconds"]
    memory_ratio = ours["peak_mb"] * 2**20 / json_bytes
    meets = bool(correct and ratio >= TARGET_RATIO and memory_ratio <= TARGET_MEMORY_RATIO)
    print(f"{'method':<28} {'time (s)':>9} {'images/s':>12} {'peak RSS (MB)':>14}")
    for name, r in (("json.load + pandas merge", baseline), ("geoaware Inat2021", ours)):
        print(f"{name:<28} {r['seconds']:>9.2f} {n / r['seconds']:>12,.0f} {r['peak_mb']:>14,.0f}")
    print(
        f"ours vs baseline: {ratio:.2f}x faster (target >= {TARGET_RATIO:g}x); our peak RSS is "
        f"{memory_ratio:.2f}x the JSON size (target <= {TARGET_MEMORY_RATIO:g}x); rows: "
        f"ours {ours['rows']:,}, baseline {baseline['rows']:,}: {'OK' if correct else 'MISMATCH'}"
    )
    print(f"counts: {json.dumps(ours['counts'])}")
    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "quick": args.quick,
                "baseline": BASELINE,
                "ratio": ratio,
                "memory_ratio": memory_ratio,
                "images": args.images,
                "total_images": n,
                "json_bytes": json_bytes,
                "ours_s": ours["seconds"],
                "baseline_s": baseline["seconds"],
                "ours_peak_mb": ours["peak_mb"],
                "baseline_peak_mb": baseline["peak_mb"],
                "meets_targets": meets,
            }
        )
    )
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())

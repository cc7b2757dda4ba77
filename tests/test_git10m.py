from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import mercantile
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from geoaware.catalog import conform, validate_table
from geoaware.errors import DatasetNotFoundError, InputFileError
from geoaware.geo.distance import haversine_km
from geoaware.geo.tiles import ground_sample_distance_m, tile_bounds, tile_center
from geoaware.sources.git10m import HOMEPAGE, Git10M, parse_locations, tile_edges

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _encoded(color: tuple[int, int, int], fmt: str, size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def _row(
    name: str | None,
    location: str | None,
    *,
    resolution: float | str | None = None,
    fmt: str = "PNG",
    color: tuple[int, int, int] = (10, 200, 30),
    size: tuple[int, int] = (8, 8),
) -> dict[str, Any]:
    return {
        "image": _encoded(color, fmt, size),
        "img_name": name,
        "img_quality_score": 4.25,
        "caption": f"caption of {name}",
        "caption_length": 3,
        "resolution": resolution,
        "Google_location": location,
    }


def _write(
    path: Path,
    rows: list[dict[str, Any]],
    *,
    struct_images: bool = True,
    resolution_type: pa.DataType | None = None,
    **kwargs: Any,
) -> Path:
    """Write a shard with exactly Git-10M's columns (HF Image struct by default)."""
    images = [r["image"] for r in rows]
    image = (
        pa.array([{"bytes": b, "path": None} for b in images], IMAGE_TYPE)
        if struct_images
        else pa.array(images, pa.binary())
    )
    table = pa.table(
        {
            "image": image,
            "img_name": pa.array([r["img_name"] for r in rows], pa.string()),
            "img_quality_score": pa.array([r["img_quality_score"] for r in rows], pa.float64()),
            "caption": pa.array([r["caption"] for r in rows], pa.string()),
            "caption_length": pa.array([r["caption_length"] for r in rows], pa.int64()),
            "resolution": pa.array(
                [r["resolution"] for r in rows], resolution_type or pa.float64()
            ),
            "Google_location": pa.array([r["Google_location"] for r in rows], pa.string()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="none", use_dictionary=False, **kwargs)
    return path


def test_centre_not_corner_bounds_tile_and_gsd(tmp_path: Path) -> None:
    _write(
        tmp_path / "data" / "train-00000-of-00001.parquet",
        [
            _row("a.png", "15_16384_10896", resolution=4.0),
            _row("b.jpg", "18_215837_99150", resolution=0.5, fmt="JPEG"),
            _row("c.png", "10_1000_600", resolution=128.0),
        ],
    )
    t = Git10M(tmp_path).read()
    assert t.column("image_id").to_pylist() == ["a.png", "b.jpg", "c.png"]
    assert t.column("file_name").to_pylist() == ["a.png", "b.jpg", "c.png"]
    assert t.column("source").to_pylist() == ["git10m"] * 3
    assert t.column("caption").to_pylist()[0] == "caption of a.png"
    for name in ("tile_z", "tile_x", "tile_y"):
        assert t.schema.field(name).type == pa.int32()
    assert t.column("tile_z").to_pylist() == [15, 18, 10]
    assert t.column("tile_x").to_pylist() == [16384, 215837, 1000]
    assert t.column("tile_y").to_pylist() == [10896, 99150, 600]

    rows = t.to_pylist()
    for row, text in zip(rows, ["15_16384_10896", "18_215837_99150", "10_1000_600"], strict=True):
        z, x, y = (int(v) for v in text.split("_"))
        # the centre, computed here from the mercator formula, independently of the module
        n = 2.0**z
        lon = (x + 0.5) / n * 360.0 - 180.0
        lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
        assert row["lat"] == pytest.approx(lat, abs=1e-12)
        assert row["lon"] == pytest.approx(lon, abs=1e-12)
        assert (row["lat"], row["lon"]) == pytest.approx(tuple(tile_center(text)), abs=1e-12)
        corner = mercantile.ul(x, y, z)  # what the dataset card's XYZToLonLat returns
        assert row["lon"] != pytest.approx(corner.lng, abs=1e-9)
        assert row["lat"] != pytest.approx(corner.lat, abs=1e-9)
        extra = json.loads(row["extra"])
        b = tile_bounds(text)
        assert extra["tile_bounds"] == pytest.approx(
            {"west": b.west, "south": b.south, "east": b.east, "north": b.north}, abs=1e-12
        )
        assert b.south < row["lat"] < b.north and b.west < row["lon"] < b.east
        assert extra["tile_size_px"] == 256
        assert extra["img_quality_score"] == 4.25 and extra["caption_length"] == 3
        assert extra["shard"] == "data/train-00000-of-00001.parquet"
        assert row["ground_sample_distance_m"] == pytest.approx(
            float(ground_sample_distance_m(row["lat"], z)), rel=1e-12
        )
    # at zoom 15 the corner is ~0.8 km from the centre on the diagonal
    corner = mercantile.ul(16384, 10896, 15)
    gap = float(haversine_km(rows[0]["lat"], rows[0]["lon"], corner.lat, corner.lng))
    assert 0.4 < gap < 1.0
    # 4 m nominal at zoom 15; the true GSD at 53.7 N is 4.78 m * cos(lat)
    assert rows[0]["ground_sample_distance_m"] == pytest.approx(
        2 * math.pi * 6378137 * math.cos(math.radians(rows[0]["lat"])) / (256 * 2**15)
    )
    assert [json.loads(r["extra"])["row"] for r in rows] == [0, 1, 2]
    report = validate_table(conform(t))
    assert report.ok, report.to_dict()


def test_resolution_column_sets_the_tile_size(tmp_path: Path) -> None:
    _write(
        tmp_path / "s.parquet",
        [
            _row("nominal", "17_1_1", resolution=1.0),
            _row("double", "17_1_1", resolution=0.5),  # 512 px per tile
            _row("odd", "17_1_1", resolution=1.2),  # not a power-of-two ratio
            _row("none", "17_1_1", resolution=None),
        ],
    )
    source = Git10M(tmp_path)
    rows = source.read().to_pylist()
    px = [json.loads(r["extra"])["tile_size_px"] for r in rows]
    assert px == [256, 512, 256, 256]
    gsd = [r["ground_sample_distance_m"] for r in rows]
    assert gsd[1] == pytest.approx(gsd[0] / 2)
    assert gsd[2] == gsd[3] == gsd[0]
    assert json.loads(rows[2]["extra"])["resolution_m"] == 1.2
    assert json.loads(rows[3]["extra"])["resolution_m"] is None
    assert source.counts == {"resolution_inconsistent": 1}


def test_resolution_as_strings(tmp_path: Path) -> None:
    rows = [_row("a", "16_3_3", resolution="2m"), _row("b", "16_3_3", resolution="junk")]
    _write(tmp_path / "s.parquet", rows, resolution_type=pa.string())
    source = Git10M(tmp_path)
    extras = [json.loads(e) for e in source.read().column("extra").to_pylist()]
    assert [e["resolution_m"] for e in extras] == [2.0, None]
    assert source.counts == {"unreadable_resolution": 1}


def test_image_bytes_are_not_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [_row(f"{i}.png", f"12_{i}_{i}", size=(64, 64)) for i in range(20)]
    path = _write(tmp_path / "s.parquet", rows)
    asked: list[list[str]] = []
    original = pq.ParquetFile.iter_batches

    def spy(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Any:
        asked.append(list(kwargs.get("columns") or []))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    assert Git10M(tmp_path).read().num_rows == 20
    assert asked and all(cols and "image" not in cols for cols in asked)

    # Overwrite the image column's pages on disk with junk: metadata still reads, images fail.
    group = pq.ParquetFile(path).metadata.row_group(0)
    chunk = next(
        group.column(j)
        for j in range(group.num_columns)
        if group.column(j).path_in_schema == "image.bytes"
    )
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))
    t = Git10M(tmp_path).read()
    assert t.num_rows == 20 and t.column("lat").null_count == 0
    with pytest.raises(InputFileError, match=r"s\.parquet, field 'image': cannot read image bytes"):
        list(Git10M(tmp_path).iter_images())


@pytest.mark.parametrize("struct_images", [True, False])
def test_iter_images(tmp_path: Path, struct_images: bool) -> None:
    rows = [
        _row("red.png", "14_1_1", color=(255, 0, 0), size=(16, 8)),
        _row("blue.jpg", "14_2_2", fmt="JPEG", color=(0, 0, 255), size=(8, 16)),
    ]
    _write(tmp_path / "s.parquet", rows, struct_images=struct_images)
    got = list(Git10M(tmp_path).iter_images(batch_size=1))
    assert [name for name, _ in got] == ["red.png", "blue.jpg"]
    images = [Image.open(io.BytesIO(data)) for _, data in got]
    assert [(im.format, im.size) for im in images] == [("PNG", (16, 8)), ("JPEG", (8, 16))]
    assert images[0].convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_iter_images_skips_rows_without_bytes(tmp_path: Path) -> None:
    table = pa.table(
        {
            "image": pa.array([{"bytes": None, "path": "x.png"}], IMAGE_TYPE),
            "img_name": ["x.png"],
            "Google_location": ["3_1_1"],
        }
    )
    pq.write_table(table, tmp_path / "s.parquet")
    source = Git10M(tmp_path)
    assert list(source.iter_images()) == []
    assert source.counts == {"image_without_bytes": 1}


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("15_40000_1", "x=40000 outside 0..32767 at zoom 15"),
        ("3_1_8", "y=8 outside 0..7 at zoom 3"),
        ("31_0_0", "zoom 31 outside 0..30"),
        ("15_1", "expected 'Z_X_Y' with three non-negative integers"),
        ("15_-1_2", "expected 'Z_X_Y'"),
        ("lat=3,lon=4", "expected 'Z_X_Y'"),
    ],
)
def test_malformed_location_names_shard_row_and_field(tmp_path: Path, bad: str, why: str) -> None:
    rows = [_row(f"{i}", "12_5_5") for i in range(5)]
    rows[3]["Google_location"] = bad
    shard = _write(tmp_path / "d" / "train-00003.parquet", rows)
    with pytest.raises(InputFileError) as info:
        list(Git10M(tmp_path, batch_size=2).read_batches())  # row 3 is in the second batch
    err = info.value
    assert err.path == str(shard) and err.record == "row 3" and err.field == "Google_location"
    assert str(err).startswith(f"{shard}, record row 3, field 'Google_location': ")
    assert why in str(err) and "strict=False" in str(err)


def test_not_strict_keeps_rows_and_counts(tmp_path: Path) -> None:
    rows = [
        _row("good", "12_5_5"),
        _row("bad", "12_9999_5"),
        _row("junk", "somewhere"),
        _row("null", None),
        _row("blank", "  "),
        _row("public", "0_0_0"),
    ]
    _write(tmp_path / "s.parquet", rows)
    source = Git10M(tmp_path, strict=False)
    t = source.read()
    assert t.num_rows == 6
    assert source.counts == {"malformed_location": 2, "missing_location": 2, "zoom0_no_location": 1}
    assert t.column("lat").null_count == 5 and t.column("tile_z").null_count == 5
    assert t.column("ground_sample_distance_m").null_count == 5
    extras = [json.loads(e) for e in t.column("extra").to_pylist()]
    assert "tile_bounds" in extras[0] and "google_location" not in extras[0]
    assert [e.get("google_location") for e in extras[1:]] == [
        "12_9999_5",
        "somewhere",
        None,
        "  ",
        "0_0_0",
    ]
    report = validate_table(conform(t))
    assert report.ok  # no (0, 0) for the zoom-0 row


def test_batches_bounded_and_counts_reset(tmp_path: Path) -> None:
    _write(tmp_path / "a.parquet", [_row(f"a{i}", f"9_{i}_{i}") for i in range(5)])
    _write(tmp_path / "sub" / "b.parquet", [_row(f"b{i}", f"9_{i}_1") for i in range(3)])
    source = Git10M(tmp_path, batch_size=2)
    sizes = [b.num_rows for b in source.read_batches()]
    assert sizes == [2, 2, 1, 2, 1]
    t = source.read()
    assert t.num_rows == 8
    assert [json.loads(e)["shard"] for e in t.column("extra").to_pylist()] == ["a.parquet"] * 5 + [
        "sub/b.parquet"
    ] * 3
    assert [json.loads(e)["row"] for e in t.column("extra").to_pylist()] == [0, 1, 2, 3, 4, 0, 1, 2]
    assert source.counts == {}


def test_no_shards_says_where_to_download(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=HOMEPAGE.replace(".", r"\.")):
        Git10M(tmp_path).read()
    with pytest.raises(DatasetNotFoundError, match="no \\*.parquet shards found"):
        Git10M(tmp_path / "absent").read()
    assert Git10M.files == {}


def test_broken_shards(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputFileError, match="x.parquet: not a readable Parquet file"):
        Git10M(tmp_path).read()
    (tmp_path / "x.parquet").unlink()
    pq.write_table(pa.table({"img_name": ["a"], "caption": ["c"]}), tmp_path / "y.parquet")
    with pytest.raises(
        InputFileError, match="field 'Google_location': no column 'Google_location'"
    ):
        Git10M(tmp_path).read()


def test_empty_shard_reads_as_empty_table(tmp_path: Path) -> None:
    _write(tmp_path / "s.parquet", [])
    t = Git10M(tmp_path).read()
    assert t.num_rows == 0 and "tile_z" in t.column_names


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size must be positive"):
        Git10M(tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="tile_size must be positive"):
        Git10M(tmp_path, tile_size=-1)


def test_tile_edges_match_scalar_bounds() -> None:
    rng = np.random.default_rng(0)
    z = rng.integers(1, 20, 200)
    x = (rng.random(200) * 2.0**z).astype(np.int64)
    y = (rng.random(200) * 2.0**z).astype(np.int64)
    edges = np.column_stack(tile_edges(z, x, y))
    scalar = np.array([tuple(tile_bounds(f"{a}_{b}_{c}")) for a, b, c in zip(z, x, y, strict=True)])
    np.testing.assert_allclose(edges, scalar, rtol=0, atol=1e-9)


def test_parse_locations_chunked_and_slash() -> None:
    t = parse_locations(pa.chunked_array([["3_1_2"], ["3/4/5", " 4_0_0 "]]))
    assert t.ok.tolist() == [True, True, True]
    assert (t.z.tolist(), t.x.tolist(), t.y.tolist()) == ([3, 3, 4], [1, 4, 0], [2, 5, 0])


def test_fetch_only_finds_local_shards(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="huggingface-cli download lcybuaa/Git-10M"):
        Git10M(tmp_path).fetch()
    shard = _write(tmp_path / "data" / "train-00000.parquet", [_row("a", "3_1_1")])
    assert Git10M(tmp_path).fetch() == {"data/train-00000.parquet": shard}
    assert Git10M(tmp_path).fetch(["data/train-00000.parquet"]) == {
        "data/train-00000.parquet": shard
    }
    with pytest.raises(ValueError, match="unknown shard"):
        Git10M(tmp_path).fetch(["nope.parquet"])


def test_null_img_name(tmp_path: Path) -> None:
    rows = [_row("a", "3_1_1"), _row(None, "3_1_2")]
    _write(tmp_path / "s.parquet", rows)
    with pytest.raises(InputFileError, match="record row 1, field 'img_name': img_name is null"):
        Git10M(tmp_path).read()
    source = Git10M(tmp_path, strict=False)
    assert source.read().column("image_id").to_pylist() == ["a", "s.parquet#1"]
    assert source.counts == {"missing_img_name": 1}

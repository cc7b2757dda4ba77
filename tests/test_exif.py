from __future__ import annotations

import csv
import json
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from geoaware.catalog import conform, validate_table
from geoaware.errors import InputFileError
from geoaware.sources import exif as exif_module
from geoaware.sources.exif import ScanReport, gps_degrees, parse_exif_time, read_photo, scan_images

GPS, EXIF = 0x8825, 0x8769
UTC = timezone.utc


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """Unsigned degrees, minutes, seconds as rationals, the way cameras write them."""
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = ((value - d) * 60 - m) * 60
    return IFDRational(d, 1), IFDRational(m, 1), IFDRational(round(s * 10_000), 10_000)


def _gps(lat: float, lon: float, **more: object) -> dict[Any, object]:
    tags: dict[Any, object] = {
        1: "N" if lat >= 0 else "S",
        2: _dms(lat),
        3: "E" if lon >= 0 else "W",
        4: _dms(lon),
    }
    tags.update(more)
    return tags


def _photo(
    path: Path,
    *,
    size: tuple[int, int] = (40, 20),
    fmt: str = "JPEG",
    gps: dict[Any, object] | None = None,
    exif: dict[int, object] | None = None,
    ifd0: dict[int, object] | None = None,
) -> Path:
    ex = Image.Exif()
    ex[0x010F] = "TestCam"  # Make; Pillow's PNG writer drops an EXIF whose IFD0 is empty
    for tag, value in (ifd0 or {}).items():
        ex[tag] = value
    if gps is not None:
        ex.get_ifd(GPS).update(gps)
    if exif is not None:
        ex.get_ifd(EXIF).update(exif)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path, fmt, exif=ex)
    return path


def _rows(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {r["image_id"]: {**r, "extra": json.loads(r["extra"])} for r in table.to_pylist()}


def test_reference_photos_match_their_manifest(shared_data: Path) -> None:
    folder = shared_data / "exif_gps_samples"
    with open(folder / "manifest_from_exif.csv", newline="") as fh:
        manifest = list(csv.DictReader(fh))
    assert len(manifest) == 9
    table, report = scan_images(folder, progress=False)
    assert (report.scanned, report.with_gps, report.without_gps, report.corrupt) == (9, 9, 0, 0)
    assert report.ignored == 3  # README, SOURCE.txt, the manifest
    rows = _rows(table)
    assert sorted(rows) == [m["file"] for m in manifest]
    for m in manifest:
        row = rows[m["file"]]
        assert (folder / m["file"]).stat().st_size == int(m["bytes"])
        assert row["lat"] == pytest.approx(float(m["lat"]), abs=1e-6)
        assert row["lon"] == pytest.approx(float(m["lon"]), abs=1e-6)
        assert (row["width"], row["height"]) == (640, 480)
        # The manifest's datetime is IFD0 DateTime, the time Nikon Transfer wrote the files
        # (2008-11-01); the capture time, DateTimeOriginal, is ten days earlier.
        assert (
            row["extra"]["exif_datetime"]
            == datetime.strptime(m["datetime"], "%Y:%m:%d %H:%M:%S").isoformat()
        )
        assert row["extra"]["taken_at_tag"] == "DateTimeOriginal"
        assert row["extra"]["taken_at_offset"] is None
        assert row["taken_at"].date().isoformat() == "2008-10-22"
        assert row["extra"]["gps_time_utc"].startswith("2008-10-23T14:")
        assert row["extra"]["model"] == "COOLPIX P6000"
        assert row["source"] == "images" and row["file_name"] == m["file"]
    assert rows["DSCN0010.jpg"]["taken_at"] == datetime(2008, 10, 22, 16, 28, 39, tzinfo=UTC)
    assert rows["DSCN0042.jpg"]["taken_at"] == datetime(2008, 10, 22, 17, 0, 7, tzinfo=UTC)
    assert validate_table(conform(table)).ok


HEMISPHERES = {
    "tokyo.jpg": (35.676200, 139.650300),
    "new_york.jpg": (40.712800, -74.006000),
    "sydney.jpg": (-33.868800, 151.209300),
    "buenos_aires.jpg": (-34.603700, -58.381600),
}


def test_every_hemisphere(tmp_path: Path) -> None:
    for name, (lat, lon) in HEMISPHERES.items():
        _photo(tmp_path / name, gps=_gps(lat, lon))
    # refs as NUL-padded lower-case bytes, as some phones write them
    _photo(
        tmp_path / "bytes_refs.jpg",
        gps={1: b"s\x00", 2: _dms(-12.5), 3: b"w\x00", 4: _dms(-77.25)},
    )
    table, report = scan_images(tmp_path, progress=False)
    rows = _rows(table)
    for name, (lat, lon) in HEMISPHERES.items():
        assert rows[name]["lat"] == pytest.approx(lat, abs=1e-6), name
        assert rows[name]["lon"] == pytest.approx(lon, abs=1e-6), name
    assert (rows["bytes_refs.jpg"]["lat"], rows["bytes_refs.jpg"]["lon"]) == (-12.5, -77.25)
    assert report.with_gps == 5 and report.without_gps == 0


def test_without_gps_and_without_a_fix(tmp_path: Path) -> None:
    _photo(tmp_path / "plain.jpg")
    zero = (IFDRational(0, 0), IFDRational(0, 0), IFDRational(0, 0))
    _photo(tmp_path / "no_fix.jpg", gps={1: "N", 2: zero, 3: "E", 4: zero})
    _photo(tmp_path / "null_island.jpg", gps=_gps(0.0, 0.0))
    _photo(tmp_path / "ok.jpg", gps=_gps(1.5, 2.5))
    table, report = scan_images(tmp_path, progress=False)
    rows = _rows(table)
    assert table.num_rows == 4
    for name in ("plain.jpg", "no_fix.jpg", "null_island.jpg"):
        assert rows[name]["lat"] is None and rows[name]["lon"] is None
    assert "gps_problem" not in rows["plain.jpg"]["extra"]
    assert "no fix" in rows["no_fix.jpg"]["extra"]["gps_problem"]
    assert "(0, 0)" in rows["null_island.jpg"]["extra"]["gps_problem"]
    assert (report.with_gps, report.without_gps, report.invalid_gps) == (1, 3, 2)
    assert validate_table(conform(table)).ok


def test_times_offsets_subseconds_and_fallbacks(tmp_path: Path) -> None:
    _photo(
        tmp_path / "offset.jpg",
        exif={0x9003: "2020:06:01 12:00:00", 0x9011: "+09:00", 0x9291: "25"},
        ifd0={0x0132: "2021:01:01 00:00:00"},
    )
    _photo(tmp_path / "naive.jpg", exif={0x9003: "2020:06:01 12:00:00"})
    _photo(tmp_path / "datetime_only.jpg", ifd0={0x0132: "2019:02:03 04:05:06"})
    _photo(tmp_path / "zeros.jpg", exif={0x9003: "0000:00:00 00:00:00"})
    gps = _gps(10.0, 20.0, **{"29": "2020:06:01", "7": (3.0, 0.0, 1.5)})
    gps = {int(k): v for k, v in gps.items()}
    _photo(tmp_path / "gps_time.jpg", gps=gps, exif={0x9003: "2020:06:01 12:00:00"})
    table, report = scan_images(tmp_path, progress=False)
    rows = _rows(table)
    assert rows["offset.jpg"]["taken_at"] == datetime(2020, 6, 1, 3, 0, 0, 250_000, tzinfo=UTC)
    assert rows["offset.jpg"]["extra"]["taken_at_offset"] == "+09:00"
    assert rows["offset.jpg"]["extra"]["exif_datetime"] == "2021-01-01T00:00:00"
    assert rows["naive.jpg"]["taken_at"] == datetime(2020, 6, 1, 12, tzinfo=UTC)
    assert rows["naive.jpg"]["extra"]["taken_at_offset"] is None
    assert rows["datetime_only.jpg"]["taken_at"] == datetime(2019, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert rows["datetime_only.jpg"]["extra"]["taken_at_tag"] == "DateTime"
    assert rows["zeros.jpg"]["taken_at"] is None
    assert rows["gps_time.jpg"]["taken_at"] == datetime(2020, 6, 1, 12, tzinfo=UTC)  # camera
    assert rows["gps_time.jpg"]["extra"]["gps_time_utc"] == "2020-06-01T03:00:01.500000+00:00"
    assert report.without_time == 1

    preferred = _rows(scan_images(tmp_path, progress=False, prefer_gps_time=True)[0])
    assert preferred["gps_time.jpg"]["taken_at"] == datetime(
        2020, 6, 1, 3, 0, 1, 500_000, tzinfo=UTC
    )
    assert preferred["gps_time.jpg"]["extra"]["taken_at_tag"] == "GPSDateStamp+GPSTimeStamp"
    assert preferred["naive.jpg"]["taken_at"] == datetime(2020, 6, 1, 12, tzinfo=UTC)


def test_orientation_6_swaps_width_and_height(tmp_path: Path) -> None:
    _photo(tmp_path / "turned.jpg", size=(40, 20), ifd0={0x0112: 6})
    _photo(tmp_path / "upright.jpg", size=(40, 20), ifd0={0x0112: 1})
    _photo(tmp_path / "upside_down.jpg", size=(40, 20), ifd0={0x0112: 3})
    rows = _rows(scan_images(tmp_path, progress=False)[0])
    assert (rows["turned.jpg"]["width"], rows["turned.jpg"]["height"]) == (20, 40)
    assert rows["turned.jpg"]["extra"]["orientation"] == 6
    assert rows["turned.jpg"]["extra"]["stored_size"] == [40, 20]
    assert (rows["upright.jpg"]["width"], rows["upright.jpg"]["height"]) == (40, 20)
    assert (rows["upside_down.jpg"]["width"], rows["upside_down.jpg"]["height"]) == (40, 20)
    assert "stored_size" not in rows["upright.jpg"]["extra"]


def test_corrupt_truncated_and_non_image_files_are_reported_not_fatal(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    ex = Image.Exif()
    ex.get_ifd(GPS).update(_gps(5.0, 6.0))
    Image.effect_noise((256, 256), 64).convert("RGB").save(good, "JPEG", exif=ex, quality=95)
    data = good.read_bytes()  # noise: most of the file is entropy-coded pixels
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.jpg").write_bytes(b"this is not a JPEG at all\n" * 20)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "._good.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (tmp_path / ".thumbs").mkdir()
    (tmp_path / ".thumbs" / "x.jpg").write_bytes(b"junk")
    table, report = scan_images(tmp_path, progress=False)
    assert table.column("image_id").to_pylist() == ["good.jpg"]
    assert (report.scanned, report.corrupt, report.with_gps, report.ignored) == (4, 3, 1, 2)
    reasons = {c.path: c.reason for c in report.corrupt_files}
    assert sorted(reasons) == ["empty.png", "garbage.jpg", "truncated.jpg"]
    assert "truncated" in reasons["truncated.jpg"].lower()
    assert reasons["garbage.jpg"].startswith("UnidentifiedImageError: cannot identify image file")
    d = report.to_dict()
    assert json.loads(json.dumps(d))["corrupt_files"][0] == {
        "path": "empty.png",
        "reason": reasons["empty.png"],
    }
    assert d["scanned"] == d["with_gps"] + d["without_gps"] + d["corrupt"]

    # header-only reading is faster but lets a truncated file through
    fast_table, fast = scan_images(tmp_path, progress=False, check_pixels=False)
    assert fast.corrupt == 2 and "truncated.jpg" in fast_table.column("image_id").to_pylist()


def test_png_tiff_uncertainty_altitude_and_nested_ids(tmp_path: Path) -> None:
    gps = _gps(-1.25, 36.75, **{"31": IFDRational(12, 1), "5": b"\x01", "6": IFDRational(20, 1)})
    _photo(tmp_path / "a" / "b" / "x.png", fmt="PNG", gps={int(k): v for k, v in gps.items()})
    _photo(tmp_path / "a" / "y.TIF", fmt="TIFF", size=(30, 10))
    _photo(tmp_path / "top.JPEG")
    table, _ = scan_images(tmp_path, progress=False, source="my_photos")
    rows = _rows(table)
    assert sorted(rows) == ["a/b/x.png", "a/y.TIF", "top.JPEG"]
    x = rows["a/b/x.png"]
    assert (x["lat"], x["lon"], x["location_uncertainty_m"]) == (-1.25, 36.75, 12.0)
    assert x["extra"]["altitude_m"] == -20.0 and x["extra"]["format"] == "PNG"
    assert (rows["a/y.TIF"]["width"], rows["a/y.TIF"]["extra"]["format"]) == (30, "TIFF")
    assert rows["top.JPEG"]["extra"]["make"] == "TestCam"
    assert set(table.column("source").to_pylist()) == {"my_photos"}
    flat, _ = scan_images(tmp_path, progress=False, recursive=False)
    assert flat.column("image_id").to_pylist() == ["top.JPEG"]
    only_png, _ = scan_images(tmp_path, progress=False, extensions=[".PNG"])
    assert only_png.column("image_id").to_pylist() == ["a/b/x.png"]


def test_process_pool_gives_the_same_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):
        _photo(tmp_path / f"{i}.jpg", gps=_gps(10.0 + i, -20.0 - i))
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    serial, serial_report = scan_images(tmp_path, progress=False, workers=1)
    monkeypatch.setattr(exif_module, "_POOL_MIN_FILES", 0)
    pools: list[int] = []

    class Spy(ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(exif_module, "ProcessPoolExecutor", Spy)
    pooled, pooled_report = scan_images(tmp_path, progress=True, workers=2)
    assert pools == [2]
    assert pooled.equals(serial)
    assert pooled_report == serial_report


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not a folder"):
        scan_images(tmp_path / "missing", progress=False)


def test_empty_folder(tmp_path: Path) -> None:
    table, report = scan_images(tmp_path, progress=False)
    assert table.num_rows == 0 and report == ScanReport(str(tmp_path))
    assert conform(table).num_rows == 0


def test_read_photo_raises_on_garbage(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"junk")
    with pytest.raises(OSError):
        read_photo(tmp_path / "x.jpg")


@pytest.mark.parametrize(
    ("value", "ref", "expected"),
    [
        ((43, 28, 2.814), "N", 43.467448333),
        ((43, 28, 2.814), "S", -43.467448333),
        ((IFDRational(11, 1), IFDRational(53, 1), IFDRational(645600, 100000)), "E", 11.885126667),
        ((IFDRational(58, 1), IFDRational(3, 2), IFDRational(0, 1)), "W", -58.025),
        (((33, 1), (52, 1), (768, 100)), "S", -33.8688),  # raw (numerator, denominator)
        (-33.8688, "S", -33.8688),  # signed decimal and a ref: no double negation
        (-33.8688, None, -33.8688),  # no ref: the sign stays
        (-33.8688, "N", -33.8688),  # a negative value is never made positive
        ((12.5,), "s", -12.5),
        ((IFDRational(0, 0), 0, 0), "N", None),
        ((1, 2, 3, 4), "N", None),
        ("junk", "N", None),
        (None, "N", None),
    ],
)
def test_gps_degrees(value: object, ref: str | None, expected: float | None) -> None:
    got = gps_degrees(value, ref)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize(
    ("text", "subsec", "offset", "expected", "label"),
    [
        ("2008:10:22 16:28:39", None, None, datetime(2008, 10, 22, 16, 28, 39), None),
        ("2008-10-22T16:28:39", None, None, datetime(2008, 10, 22, 16, 28, 39), None),
        (b"2008:10:22 16:28:39\x00", None, None, datetime(2008, 10, 22, 16, 28, 39), None),
        (
            "2008:10:22 16:28:39",
            "123456789",
            "-05:00",
            datetime(2008, 10, 22, 21, 28, 39, 123456),
            "-05:00",
        ),
        ("2008:10:22 16:28:39+0130", None, "+09:00", datetime(2008, 10, 22, 14, 58, 39), "+01:30"),
        ("2008:10:22 16:28:39Z", None, None, datetime(2008, 10, 22, 16, 28, 39), "+00:00"),
        ("2008:10:22 16:28:39", None, "   :  ", datetime(2008, 10, 22, 16, 28, 39), None),
        ("2016:12:31 23:59:60", None, None, datetime(2017, 1, 1, 0, 0, 0), None),
        ("    :  :     :  :  ", None, None, None, None),
        ("2008:13:22 16:28:39", None, None, None, None),
        (None, None, None, None, None),
    ],
)
def test_parse_exif_time(
    text: str | bytes | None,
    subsec: str | None,
    offset: str | None,
    expected: datetime | None,
    label: str | None,
) -> None:
    got, got_label = parse_exif_time(text, subsec, offset)
    assert got == (expected.replace(tzinfo=UTC) if expected else None)
    assert got_label == label


def test_undecodable_file_name(tmp_path: Path) -> None:
    good = _photo(tmp_path / "ok.jpg", gps=_gps(1.0, 2.0))
    (tmp_path / "ok.jpg").rename(tmp_path / b"caf\xe9.jpg".decode("utf-8", "surrogateescape"))
    (tmp_path / b"bad\xff.jpg".decode("utf-8", "surrogateescape")).write_bytes(b"junk")
    assert not good.exists()
    table, report = scan_images(tmp_path, progress=False)
    # A name the catalog cannot store so that embed opens the file again is reported, not kept
    # under an escaped name that points nowhere.
    assert table.num_rows == 0
    reasons = {c.path: c.reason for c in report.corrupt_files}
    assert sorted(reasons) == ["bad\\xff.jpg", "caf\\xe9.jpg"]
    assert "not valid UTF-8" in reasons["caf\\xe9.jpg"] and "rename" in reasons["caf\\xe9.jpg"]
    assert "not valid UTF-8" not in reasons["bad\\xff.jpg"]  # junk bytes: its own reason
    json.dumps(report.to_dict())

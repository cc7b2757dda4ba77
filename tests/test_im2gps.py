from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from geoaware.catalog import conform, validate_table
from geoaware.errors import DatasetNotFoundError, InputFileError
from geoaware.geo import haversine_km
from geoaware.sources.csvio import json_objects, read_csv_columns
from geoaware.sources.download import RemoteFile
from geoaware.sources.im2gps import (
    CELL_HEADER,
    PARTITIONS,
    PLACES365_HEADER,
    S2_CELL_FILES,
    Im2gps,
    Im2gps3k,
    Mp16,
    Yfcc4k,
    Yfcc26k,
    read_cell_mapping,
    read_places365,
    read_s2_cells,
)

# These tests read hand-made files of each release's layout: no published checksum fits.
pytestmark = pytest.mark.usefixtures("hand_made_releases")

HEADER = ",".join(PLACES365_HEADER)
PLACE_NAME = "Ankara_00003_601190107_9f05b2251e_1292_8504005@N07.jpg"
PLACE_ROW = f"{PLACE_NAME},9f05b2251e_1292_8504005@N07,39.925533,32.866287,2,15,227,0.05,0.01,0.94"
PLAIN_ROW = (
    "104123223_7410c654ba_19_19355699@N00.jpg,19355699@N00,-16.663606,145.563537,1,8,150,"
    "0.002959289950443811,0.7778147804293098,0.21922582997457596"
)
YFCC_ROW = (
    "2e/b5/4325164013.jpg,22489773@N02,40.445378999999996,116.66398999999998,2,14,201,"
    "0.01687361607984883,0.36669432727785534,0.6164320360592797"
)
CELL_HEAD = "num_images: 4723695\r\nmin_concept_probability: ---\r\n" + ",".join(CELL_HEADER)
CELL_ROWS = ["0,8747c,827,38.67121908948002,-109.49742631801699", "1,365,589,36.1,102.9"]
SIZES = (3298, 7202, 12893)
LAT_LON_MEAN = (39.28162046949048, -107.94343695171831)


@pytest.fixture
def mirror(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GEOAWARE_MIRROR", str(shared_data))
    return shared_data


@pytest.fixture
def no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)


def _write(root: Path, remote: RemoteFile, text: str, newline: str = "\r\n") -> Path:
    path = root / remote.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode())
    return path


# --- the real files ------------------------------------------------------------------------


def test_im2gps_real_file(mirror: Path, tmp_path: Path) -> None:
    source = Im2gps(tmp_path)
    assert source.fetch(progress=False)["meta"] == mirror / Im2gps.files["meta"].path
    table = source.read()
    assert table.num_rows == 237
    assert source.counts == {"author_differs_from_file_name": 177}
    rows = {r["file_name"]: r for r in table.to_pylist()}
    place = rows[PLACE_NAME]  # AUTHOR says 9f05b2251e_1292_8504005@N07: the owner is the name's
    assert place["user_id"] == "8504005@N07"
    assert place["image_id"] == "601190107"
    assert place["url"] == "https://live.staticflickr.com/1292/601190107_9f05b2251e.jpg"
    assert json.loads(place["extra"])["AUTHOR"] == "9f05b2251e_1292_8504005@N07"
    first = table.slice(0, 1).to_pylist()[0]
    assert first["file_name"] == "104123223_7410c654ba_19_19355699@N00.jpg"
    assert (first["lat"], first["lon"], first["user_id"]) == (
        -16.663606,
        145.563537,
        "19355699@N00",
    )
    assert json.loads(first["extra"]) == {
        "S3_Label": 1,
        "S16_Label": 8,
        "S365_Label": 150,
        "Prob_indoor": 0.002959289950443811,
        "Prob_natural": 0.7778147804293098,
        "Prob_urban": 0.21922582997457596,
    }
    assert all(re.fullmatch(r"\d+@N\d+", u) for u in table.column("user_id").to_pylist())
    assert sum(n.count("_") == 5 for n in rows) == 177  # the Place_NNNNN_-prefixed names
    catalog = conform(table)
    assert validate_table(catalog).ok
    assert set(catalog.column("split").to_pylist()) == {"test"}


def test_im2gps3k_real_file(mirror: Path, tmp_path: Path) -> None:
    source = Im2gps3k(tmp_path)
    table = source.read()
    assert table.num_rows == 2_997
    assert source.counts == {}
    ids = table.column("image_id").to_pylist()
    assert len(set(ids)) == 2_997
    assert table.column("user_id").null_count == 0
    first = table.slice(0, 1).to_pylist()[0]
    assert (first["image_id"], first["user_id"]) == ("1000269685", "78841376@N00")
    assert validate_table(conform(table)).ok


def test_yfcc26k_real_file_and_cell_mapping(mirror: Path, tmp_path: Path) -> None:
    source = Yfcc26k(tmp_path)
    paths = source.fetch(progress=False)
    assert paths["mapping"] == mirror / Yfcc26k.files["mapping"].path
    table = source.read()
    assert table.num_rows == 25_600 and source.counts == {}
    row = table.filter(pc.equal(table.column("file_name"), "2e/b5/4325164013.jpg"))
    got = row.to_pylist()[0]
    assert got["lat"] == float("40.445378999999996")  # binary artefacts parse exactly
    assert got["lon"] == float("116.66398999999998")
    assert (got["image_id"], got["user_id"], got["url"]) == ("4325164013", "22489773@N02", None)
    assert set(table.column("split").to_pylist()) == {"val"}
    assert validate_table(conform(table)).ok

    mapping = source.cell_mapping()
    assert mapping.num_rows == 25_600
    assert set(mapping.column("file_name").to_pylist()) == set(
        table.column("file_name").to_pylist()
    )
    assert mapping.slice(0, 1).to_pylist()[0] == {
        "file_name": "45/77/3228511372.jpg",
        "coarse": 981,
        "middle": 1170,
        "fine": 1241,
    }
    checked = read_cell_mapping(paths["mapping"], partition_sizes=SIZES)
    assert checked.equals(mapping)
    for level, size in zip(("coarse", "middle", "fine"), SIZES, strict=True):
        assert pc.min(mapping.column(level)).as_py() >= 0
        assert pc.max(mapping.column(level)).as_py() < size


def test_s2_cells_real_files(mirror: Path, tmp_path: Path) -> None:
    source = Mp16(tmp_path)
    parts = source.fetch([f"cells_{p}" for p in PARTITIONS], progress=False)
    assert parts["cells_fine"] == mirror / "im2gps/geo-cells/cells_50_1000.csv"
    tables = {partition: source.cells(partition) for partition in PARTITIONS}
    for cells, n in zip(tables.values(), (3_298, 7_202, 12_893), strict=True):
        assert cells.num_rows == n
        assert cells.schema.metadata == {
            b"num_images": b"4723695",
            b"min_concept_probability": b"---",
        }
        assert cells.column("class_label").to_pylist() == list(range(n))
        levels = cells.column("level").to_numpy()
        assert levels.min() >= 2 and levels.max() <= 30
        assert cells.column("images").to_numpy().sum() <= 4_723_695
        assert cells.column("images").to_numpy().min() >= 50  # "cells_50_": at least 50 images
    first = tables["coarse"].slice(0, 1).to_pylist()[0]
    assert (first["token"], first["level"], first["images"]) == ("8744", 5, 3376)
    assert (first["lat_mean"], first["lon_mean"]) == LAT_LON_MEAN
    distance = haversine_km(first["center_lat"], first["center_lon"], *LAT_LON_MEAN)
    assert distance < 150  # the first cell's centre lies near the mean of its images
    fine = tables["fine"]
    first = fine.slice(0, 1).to_pylist()[0]
    assert (first["token"], first["level"], first["images"]) == ("8747c", 7, 827)
    km = haversine_km(first["center_lat"], first["center_lon"], 38.67121908948002, -109.4974)
    assert km < 30
    assert read_s2_cells(parts["cells_coarse"]).equals(tables["coarse"])
    km = haversine_km(
        fine.column("center_lat").to_numpy(),
        fine.column("center_lon").to_numpy(),
        fine.column("lat_mean").to_numpy(),
        fine.column("lon_mean").to_numpy(),
    )
    assert np.median(km) < 10


def test_published_files_are_listed() -> None:
    assert {f.path for f in S2_CELL_FILES.values()} == {
        f"im2gps/geo-cells/{stem}.csv" for stem in PARTITIONS.values()
    }
    for cls in (Im2gps, Im2gps3k, Yfcc26k, Yfcc4k, Mp16):
        for remote in cls.files.values():
            assert remote.urls and all(u.startswith("https://") for u in remote.urls)
    assert Mp16.files["meta"].urls == (
        "https://github.com/TIBHannover/GeoEstimation/releases/download/v1.0/mp16_places365.csv",
    )


# --- tiny files of the published shapes ----------------------------------------------------


def test_tiny_im2gps_place_prefix_and_crlf(tmp_path: Path, no_mirror: None) -> None:
    _write(tmp_path, Im2gps.files["meta"], f"{HEADER}\n{PLAIN_ROW}\n{PLACE_ROW}\n")
    source = Im2gps(tmp_path)
    table = source.read()
    assert table.column("user_id").to_pylist() == ["19355699@N00", "8504005@N07"]
    assert table.column("image_id").to_pylist() == ["104123223", "601190107"]
    assert table.column("file_name").to_pylist()[1] == PLACE_NAME
    assert source.counts == {"author_differs_from_file_name": 1}
    assert "AUTHOR" not in json.loads(table.column("extra")[0].as_py())


def test_tiny_yfcc4k_and_mp16_use_author(tmp_path: Path, no_mirror: None) -> None:
    _write(tmp_path, Yfcc4k.files["meta"], f"{HEADER}\n{YFCC_ROW.replace('2e/b5/', '')}\n", "\n")
    yfcc4k = Yfcc4k(tmp_path).read()
    assert yfcc4k.to_pylist()[0]["image_id"] == "4325164013"
    assert yfcc4k.to_pylist()[0]["file_name"] == "4325164013.jpg"
    assert yfcc4k.to_pylist()[0]["user_id"] == "22489773@N02"
    assert yfcc4k.column("split").to_pylist() == ["test"]

    no_author = "e1/69/4432617766.jpg,,51.5,-0.12,0,1,2,0.1,0.2,0.7"
    no_location = "0a/0b/12.jpg,1@N00,,,0,1,2,,,"
    _write(tmp_path, Mp16.files["meta"], f"{HEADER}\n{YFCC_ROW}\n{no_author}\n{no_location}\n")
    source = Mp16(tmp_path)
    mp16 = source.read()
    assert mp16.num_rows == 3  # nothing dropped
    assert mp16.column("split").to_pylist() == ["train"] * 3
    assert mp16.column("user_id").to_pylist() == ["22489773@N02", None, "1@N00"]
    assert mp16.column("lat").to_pylist()[0] == 40.445378999999996
    assert source.counts == {"rows_without_user": 1, "rows_without_location": 1}
    assert json.loads(mp16.column("extra")[2].as_py()) == {
        "S3_Label": 0,
        "S16_Label": 1,
        "S365_Label": 2,
    }


def test_place_names_with_underscores() -> None:
    name = "New_York_00012_2287446426_aa0e34b5f2_2283_23021245@N05.jpg"
    data = f"{HEADER}\n{name},aa0e34b5f2_2283_23021245@N05,40.7,-74,2,12,3,0.1,0.1,0.8\n"
    table, counts = read_places365(data.encode(), name="im2gps", split="test", where="x.csv")
    row = table.to_pylist()[0]
    assert (row["image_id"], row["user_id"]) == ("2287446426", "23021245@N05")
    assert counts == {"author_differs_from_file_name": 1}


def test_unknown_name_shape_keeps_the_name_as_id(tmp_path: Path) -> None:
    data = f"{HEADER}\nfoo.png,someone,1,2,0,0,0,0,0,0\n".encode()
    table, counts = read_places365(data, name="x", split="test", where="x.csv")
    assert table.to_pylist()[0]["image_id"] == "foo.png"
    assert table.to_pylist()[0]["user_id"] == "someone"
    assert counts == {}


def test_header_only_file_gives_an_empty_catalog() -> None:
    table, counts = read_places365(HEADER.encode(), name="x", split="test", where="x.csv")
    assert table.num_rows == 0 and counts == {}
    assert conform(table).num_rows == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("IMG_ID,AUTHOR,LON,LAT" + HEADER[21:] + "\n", r"record line 1: wrong header 'IMG_ID"),
        (HEADER.rsplit(",", 1)[0] + "\n", r"record line 1, field 'Prob_urban': column missing"),
        (
            f"{HEADER}\n{PLAIN_ROW}\n{PLACE_ROW.replace('39.925533', '39,9')}\n",
            r"record line 3: 11 fields where the header has 10",
        ),
        (
            f"{HEADER}\n{PLAIN_ROW}\n\n{PLACE_ROW.replace('39.925533', 'north')}\n",
            r"record line 4, field 'LAT': 'north' is not a number",
        ),
        (
            f"{HEADER}\n{PLACE_ROW.replace('32.866287', '212.866287')}\n",
            r"record line 2, field 'LON': '212.866287' is out of range \[-180, 180\]",
        ),
        (
            f"{HEADER}\n{PLACE_ROW.replace(',227,', ',227.5,')}\n",
            r"record line 2, field 'S365_Label': '227.5' is not an integer",
        ),
        (
            f"{HEADER}\n{PLACE_ROW.replace(PLACE_NAME, '')}\n",
            r"record line 2, field 'IMG_ID': empty value",
        ),
    ],
)
def test_bad_metadata_names_file_line_and_field(
    tmp_path: Path, no_mirror: None, text: str, message: str
) -> None:
    path = _write(tmp_path, Im2gps3k.files["meta"], text)
    with pytest.raises(InputFileError, match=rf"^{re.escape(str(path))}, {message}"):
        Im2gps3k(tmp_path).read()


def test_not_fetched_says_how_to_fetch(tmp_path: Path, no_mirror: None) -> None:
    with pytest.raises(DatasetNotFoundError, match="run `geoaware fetch yfcc4k"):
        Yfcc4k(tmp_path).read()


# --- S2 cells and the cell mapping ---------------------------------------------------------


def test_tiny_cells_file(tmp_path: Path) -> None:
    path = tmp_path / "cells_50_5000.csv"
    path.write_bytes(("\r\n".join([CELL_HEAD, *CELL_ROWS]) + "\r\n").encode())
    cells = read_s2_cells(path)
    assert cells.column("token").to_pylist() == ["8747c", "365"]
    assert cells.column("level").to_pylist() == [7, 4]
    assert cells.schema.metadata[b"min_concept_probability"] == b"---"
    assert cells.column_names == [
        "class_label",
        "token",
        "level",
        "images",
        "lat_mean",
        "lon_mean",
        "center_lat",
        "center_lon",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            ",".join(CELL_HEADER) + "\n" + CELL_ROWS[0],
            r"line 1: expected a line starting 'num_images:', found 'class_label,",
        ),
        (
            "num_images: 4723695\n" + ",".join(CELL_HEADER),
            r"line 2: expected a line starting 'min_concept_probability:'",
        ),
        (
            "num_images: lots\nmin_concept_probability: ---\n" + ",".join(CELL_HEADER),
            r"line 1: num_images 'lots' is not a count",
        ),
        ("num_images: 1\nmin_concept_probability: 0.5", r"line 3: file ends before its header"),
        (CELL_HEAD.replace("hex_id", "token"), r"line 3, field 'hex_id': column missing"),
        (
            CELL_HEAD + "\n" + CELL_ROWS[0].replace("8747c", "zz"),
            r"line 4, field 'hex_id': S2 token 'zz' is not hexadecimal",
        ),
        (
            CELL_HEAD + "\n" + CELL_ROWS[0] + "\n\n0,365,5,1,1",
            r"line 6, field 'class_label': 0 appears twice",
        ),
        (
            CELL_HEAD + "\n" + "\n".join(CELL_ROWS) + "\n2,365,5,1,1",
            r"line 6, field 'hex_id': '365' appears twice",
        ),
        (
            CELL_HEAD + "\n" + CELL_ROWS[0].replace(",827,", ",many,"),
            r"line 4, field 'imgs_per_cell': 'many' is not an integer",
        ),
        (
            CELL_HEAD + "\n" + CELL_ROWS[0].replace("38.67", "98.67"),
            r"line 4, field 'latitude_mean': '98\.67121908948002' is out of range \[-90, 90\]",
        ),
        (CELL_HEAD + "\n" + CELL_ROWS[0].replace("8747c", ""), r"line 4, field 'hex_id': empty"),
    ],
)
def test_bad_cells_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cells.csv"
    path.write_text(text + "\n")
    with pytest.raises(InputFileError, match=rf"^{re.escape(str(path))}, record {message}"):
        read_s2_cells(path)


def test_mp16_cells_rejects_unknown_partition(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="partition must be one of coarse, middle, fine"):
        Mp16(tmp_path).cells("medium")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a.jpg": [1, 2, 3]', r"m\.json: not valid JSON"),
        (b"[[1, 2, 3]]", r"m\.json: expected a JSON object, found list"),
        (b'{"a.jpg": [1, 2, 3], "b.jpg": [1, 2]}', r"record key 'b\.jpg': \[1, 2\] is not a"),
        (b'{"a.jpg": [1, 2.5, 3]}', r"record key 'a\.jpg', field 'middle': 2\.5 is not a class"),
        (b'{"a.jpg": [1, 2, true]}', r"record key 'a\.jpg', field 'fine': True is not a class"),
        (b'{"a.jpg": [-1, 2, 3]}', r"record key 'a\.jpg', field 'coarse': class label -1 outside"),
        (b'{"a.jpg": [1, 7202, 3]}', r"field 'middle': class label 7202 outside 0\.\.7201"),
    ],
)
def test_bad_cell_mapping(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(data)
    with pytest.raises(InputFileError, match=message):
        read_cell_mapping(path, partition_sizes=SIZES)


def test_tiny_cell_mapping_keeps_file_order() -> None:
    table = read_cell_mapping(b'{"b\\/1.jpg": [2, 3, 4], "a\\/0.jpg": [0, 0, 0]}', where="m")
    assert table.column("file_name").to_pylist() == ["b/1.jpg", "a/0.jpg"]
    assert table.schema.field("fine").type == pa.int32()
    assert read_cell_mapping(b"{}", where="m").num_rows == 0


# --- the shared CSV helper (sources/csvio.py) ----------------------------------------------


def test_csv_helper_keeps_na_blank_lines_and_bools() -> None:
    data = b"\xef\xbb\xbfcode,flag,x\r\nNA,True,1\r\n\r\n,false,\r\n"
    out = read_csv_columns(
        data, where="c.csv", expected_header=["code", "flag", "x"], bool_columns=["flag"]
    )
    assert out.table.to_pylist() == [
        {"code": "NA", "flag": True, "x": "1"},  # Namibia is not a missing value
        {"code": None, "flag": False, "x": None},
    ]
    with pytest.raises(InputFileError, match=r"c\.csv, record line 4, field 'flag': 'maybe' is"):
        read_csv_columns(
            data.replace(b"false", b"maybe"),
            where="c.csv",
            expected_header=["code", "flag", "x"],
            bool_columns=["flag"],
        )


def test_csv_helper_extra_columns_and_errors(tmp_path: Path) -> None:
    out = read_csv_columns(
        b"b,a,z\n1,2,3\n", where="e.csv", expected_header=["a", "b"], extra_columns=True
    )
    assert out.table.column_names == ["b", "a", "z"]
    with pytest.raises(InputFileError, match=r"record line 1, field 'a': duplicate column"):
        read_csv_columns(b"a,a\n1,2\n", where="e.csv", expected_header=["a"], extra_columns=True)
    with pytest.raises(InputFileError, match=r"record line 3: not UTF-8 text"):
        read_csv_columns(b"a\n1\n\xff\n", where="e.csv", expected_header=["a"])
    with pytest.raises(InputFileError, match=r"record line 1: file ends before its header$"):
        read_csv_columns(b"", where="e.csv", expected_header=["a"])
    with pytest.raises(ValueError, match="'b' is not a column"):
        read_csv_columns(b"a\n1\n", where="e.csv", expected_header=["a"], float_columns=["b"])
    path = tmp_path / "p.csv"
    path.write_bytes(b"a\n1\nx\n")
    with pytest.raises(InputFileError, match=rf"^{re.escape(str(path))}, record line 3, field 'a'"):
        read_csv_columns(path, expected_header=["a"], int_columns=["a"])


def test_json_objects_round_trip() -> None:
    strings = ['say "hi"', "back\\slash", "tab\there", None, "é ü 中"]
    columns = {
        "s": pa.array(strings),
        "f": pa.array([1.5, float("nan"), None, 1e-7, 40.445378999999996]),
        "i": pa.array([1, None, 3, 4, 5]),
        "b": pa.array([True, False, None, True, None]),
    }
    rows = [json.loads(text) for text in json_objects(columns).to_pylist()]
    assert rows[0] == {"s": 'say "hi"', "f": 1.5, "i": 1, "b": True}
    assert rows[1] == {"s": "back\\slash", "b": False}  # NaN and nulls are left out
    assert rows[2] == {"s": "tab\there", "i": 3}
    assert rows[3] == {"f": 1e-7, "i": 4, "b": True}
    assert rows[4] == {"s": "é ü 中", "f": 40.445378999999996, "i": 5}
    assert json_objects({"x": pa.array([None], pa.string())}).to_pylist() == [None]

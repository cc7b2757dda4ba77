from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from geoaware.catalog import conform, validate_table
from geoaware.errors import InputFileError
from geoaware.geo import haversine_km
from geoaware.sources.osv5m import (
    QUADTREE_HEADER,
    TEST_HEADER,
    Osv5m,
    Osv5mSelect,
    read_osv5m_select,
    read_osv5m_test,
    read_quadtree_cells,
)

# rows of the published shape (pandas-written: empty cells, quoted tuples, float creator ids)
TEST_ROWS = [
    '3859149887465501,-43.804769384023,-176.61409250805,,NZ,8,2019-06-01,0,8,"(0, 8)",'
    "Chatham Islands,,Waitangi,4,4.661764145,1,15,3,0.0068841379890803,0,0,0,0,0,0,0,"
    "Chatham Islands_NZ,,Waitangi_NaN_Chatham Islands_NZ,NZ,roadroid,111336221091714.0",
    '297765091851450,-17.5,14.25,https://x/y.jpg?sig=1,NA,9,,50,40,"(50, 40)",Oshana,,'
    "Ondangwa,2,1.5,1,4,7,12.5,1,2,3,4,5,6,7,Oshana_NA,,Ondangwa_NaN_Oshana_NA,NA,walker,42",
]
QUAD_ROW = "0,-54.887208333333,-176.81130912065618,-21.501435738728247,-87.92788457595303,-43.532155669434445,-175.16965440053036"


def _test_csv(
    root: Path, header: Sequence[str] = TEST_HEADER, rows: Sequence[str] = TEST_ROWS
) -> Path:
    path = root / Osv5m.files["test"].path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n")
    return path


def test_tiny_test_csv_of_the_published_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    _test_csv(tmp_path)
    source = Osv5m(tmp_path)
    table = source.read()
    assert source.counts == {"creator_id_float_artefacts": 1}
    rows = table.to_pylist()
    assert [r["image_id"] for r in rows] == ["3859149887465501", "297765091851450"]
    assert rows[0]["file_name"] == "images/test/3859149887465501.jpg"
    assert (rows[0]["lat"], rows[0]["lon"]) == (-43.804769384023, -176.61409250805)
    assert [r["user_id"] for r in rows] == ["111336221091714", "42"]
    extra = [json.loads(r["extra"]) for r in rows]
    assert extra[0]["city"] == "Waitangi" and "sub-region" not in extra[0]
    assert extra[0]["cell"] == "(0, 8)" and extra[0]["quadtree_10_1000"] == 0
    assert extra[0]["creator_username"] == "roadroid" and "thumb_original_url" not in extra[0]
    assert extra[1]["country"] == "NA"  # Namibia, not a missing value
    assert (
        extra[1]["dist_sea"] == 12.5 and extra[1]["thumb_original_url"] == "https://x/y.jpg?sig=1"
    )
    assert set(extra[0]) <= set(TEST_HEADER) - {"id", "latitude", "longitude", "creator_id"}
    assert validate_table(conform(table)).ok


def test_test_csv_with_fewer_columns() -> None:
    header = ["id", "latitude", "longitude", "country", "region", "sub-region", "city"]
    data = ",".join(header) + "\n1,10.5,20.5,FR,Ile-de-France,Paris,Paris\n2,,,FR,,,\n"
    table, counts = read_osv5m_test(data.encode(), where="test.csv", split="test")
    assert table.column("user_id").null_count == 2
    assert counts == {"rows_without_location": 1}
    assert json.loads(table.column("extra")[1].as_py()) == {"country": "FR"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda h, r: ([c for c in h if c != "sub-region"], r),
            r"record line 1, field 'sub-region': column missing",
        ),
        (
            lambda h, r: (h, [r[0], r[1].replace("-17.5", "south")]),
            r"record line 3, field 'latitude': 'south' is not a number",
        ),
        (
            lambda h, r: (h, [r[0].replace("-176.61409250805", "-186.6"), r[1]]),
            r"record line 2, field 'longitude': '-186\.6' is out of range \[-180, 180\]",
        ),
        (
            lambda h, r: (h, [r[0], r[1].replace("12.5", "far")]),
            r"record line 3, field 'dist_sea': 'far' is not a number",
        ),
        (
            lambda h, r: (h, [r[0], "," + r[1].split(",", 1)[1]]),
            r"record line 3, field 'id': empty value",
        ),
    ],
)
def test_bad_test_csv(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[list[str], list[str]], tuple[list[str], list[str]]],
    message: str,
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    header, rows = change(list(TEST_HEADER), list(TEST_ROWS))
    path = _test_csv(tmp_path, header, rows)
    with pytest.raises(InputFileError, match=rf"^{re.escape(str(path))}, {message}"):
        Osv5m(tmp_path).read()


def test_real_select_csv(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOAWARE_MIRROR", str(shared_data))
    source = Osv5mSelect(tmp_path)
    path = source.fetch(progress=False)["select"]
    scored = read_osv5m_select(path)
    assert scored.num_rows == 50
    assert not [c for c in scored.column_names if c.startswith("Unnamed")]
    assert scored.column_names[:5] == ["id", "pred_lat", "pred_lon", "true_lat", "true_lon"]
    first = scored.slice(0, 1).to_pylist()[0]
    assert first["id"] == "297765091851450"
    assert (first["true_lat"], first["true_lon"]) == (-43.94258213019922, 170.12986498719653)
    assert (first["city"], first["country"], first["city_hit"]) == ("Pleasant Point", "NZ", True)
    # the published distances are haversine km on a 6371 km sphere; GeoScore = 5000 e^(-d/1492.7)
    cols = {
        c: scored.column(c).to_numpy() for c in ("true_lat", "true_lon", "pred_lat", "pred_lon")
    }
    km = haversine_km(cols["true_lat"], cols["true_lon"], cols["pred_lat"], cols["pred_lon"])
    np.testing.assert_allclose(km, scored.column("distance").to_numpy(), rtol=1e-9)
    score = 5000 * np.exp(-scored.column("distance").to_numpy() / 1492.7)
    np.testing.assert_allclose(score, scored.column("score").to_numpy(), rtol=1e-9)
    assert scored.column("area").null_count == 26  # empty areas stay missing

    catalog = source.read()
    assert catalog.num_rows == 50 and source.counts == {}
    row = catalog.slice(0, 1).to_pylist()[0]
    assert row["file_name"] == "images/297765091851450.jpg"
    assert json.loads(row["extra"]) == {
        "city": "Pleasant Point",
        "area": "Timaru District",
        "region": "Canterbury",
        "country": "NZ",
    }
    assert validate_table(conform(catalog)).ok


def test_bad_select_csv() -> None:
    head = "Unnamed: 0,id,pred_lat,pred_lon,true_lat,true_lon,city,area,region,country,distance"
    with pytest.raises(InputFileError, match=r"s\.csv, record line 1, field 'score': column miss"):
        read_osv5m_select(f"{head}\n".encode(), where="s.csv")
    head += ",score,city_hit"
    row = "0,1,1,2,3,4,c,a,r,NZ,5,6"
    with pytest.raises(InputFileError, match=r"record line 2, field 'true_lat': '93' is out of"):
        read_osv5m_select(f"{head}\n{row.replace(',3,', ',93,')},True\n".encode(), where="s.csv")
    with pytest.raises(InputFileError, match=r"record line 2, field 'city_hit': 'yes' is not true"):
        read_osv5m_select(f"{head}\n{row},yes\n".encode(), where="s.csv")


def test_real_quadtree(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOAWARE_MIRROR", str(shared_data))
    source = Osv5m(tmp_path)
    assert (
        source.fetch(["quadtree"], progress=False)["quadtree"]
        == shared_data / "osv5m/quadtree_10_1000.csv"
    )
    cells = source.quadtree()
    assert cells.num_rows == 11_399
    assert cells.column("cluster_id").to_pylist() == list(range(11_399))
    assert cells.slice(0, 1).to_pylist()[0] == dict(
        zip(QUADTREE_HEADER, [0, *map(float, QUAD_ROW.split(",")[1:])], strict=True)
    )
    last = cells.slice(11_398).to_pylist()[0]
    assert (last["mean_lat"], last["mean_lon"]) == (62.917089195898726, 126.772205124501)
    col = {c: cells.column(c).to_numpy() for c in QUADTREE_HEADER[1:]}
    assert (col["min_lat"] <= col["mean_lat"]).all() and (col["mean_lat"] <= col["max_lat"]).all()


def test_tiny_quadtree() -> None:
    data = (",".join(QUADTREE_HEADER) + "\n" + QUAD_ROW + "\n1,0,0,1,1,0.5,0.5\n").encode()
    cells = read_quadtree_cells(data, where="q.csv")
    assert cells.column("cluster_id").to_pylist() == [0, 1]
    assert cells.schema.field("min_lat").type == "double"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["1,0,0,1,1,0.5,x"], r"record line 2, field 'mean_lon': 'x' is not a number"),
        (
            ["1,0,0,1,1,0.5,0.5", "1,0,0,1,1,0.5,0.5"],
            r"record line 3, field 'cluster_id': 1 appears twice",
        ),
        (["1.5,0,0,1,1,0.5,0.5"], r"record line 2, field 'cluster_id': '1\.5' is not an integer"),
        (["1,0,0,-1,1,-0.5,0.5"], r"record line 2, field 'max_lat': -1\.0 is below min_lat 0\.0"),
        (["1,0,0,1,1,0.5,1.5"], r"record line 2, field 'mean_lon': 1\.5 is outside \[0\.0, 1\.0\]"),
        (["1,0,0,1,181,0.5,0.5"], r"record line 2, field 'max_lon': '181' is out of range"),
        (["1,0,0,1,1,0.5"], r"record line 2: 6 fields where the header has 7"),
    ],
)
def test_bad_quadtree(tmp_path: Path, rows: list[str], message: str) -> None:
    path = tmp_path / "quadtree_10_1000.csv"
    path.write_text(",".join(QUADTREE_HEADER) + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputFileError, match=rf"^{re.escape(str(path))}, {message}"):
        read_quadtree_cells(path)


def test_quadtree_wrong_header(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("cluster_id,min_lat,min_lon,max_lat,max_lon,lat,lon\n")
    with pytest.raises(InputFileError, match=r"record line 1, field 'mean_lat': column missing"):
        read_quadtree_cells(path)

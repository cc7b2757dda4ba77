from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geoaware.catalog import (
    SCHEMA,
    SCHEMA_VERSION,
    catalog_stats,
    conform,
    query_catalog,
    read_catalog,
    validate_table,
    write_catalog,
    write_result,
)
from geoaware.catalog.io import write_catalog_batches
from geoaware.errors import CatalogError, QueryError, SchemaError


def small_table() -> pa.Table:
    return pa.table(
        {
            "source": ["inat2017", "inat2017", "inat2017", "yfcc"],
            "split": ["train", "train", "val", None],
            "image_id": ["1", "2", "3", "4"],
            "lat": [48.85, -33.87, None, 40.7],
            "lon": [2.35, 151.21, None, -74.0],
            "user_id": ["u1", "u1", "u2", None],
            "label": [5, 7, 5, None],
            "taken_at": pa.array(["2017-05-01", "2017-06-02", None, "2012-01-01"]).cast(
                pa.date32()
            ),
            "bboxes": [[{"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0, "area": 6.0}], [], None, None],
            "partition_id": [0, 1, 0, 1],
        }
    )


def test_conform_orders_casts_and_keeps_extra_columns() -> None:
    t = conform(small_table())
    assert t.schema.names[: len(SCHEMA)] == SCHEMA.names
    assert t.schema.names[-1] == "partition_id"
    assert t.schema.field("taken_at").type == pa.timestamp("us", tz="UTC")
    assert t.column("taken_at")[0].as_py().isoformat() == "2017-05-01T00:00:00+00:00"
    assert t.schema.field("label").type == pa.int32()
    assert t.column("caption").null_count == 4
    assert t.schema.metadata[b"geoaware.schema_version"] == SCHEMA_VERSION.encode()
    assert json.loads(t.schema.metadata[b"geoaware.columns"])[0] == "source"


def test_conform_errors_name_column_and_row() -> None:
    with pytest.raises(
        SchemaError, match=r"f.parquet: required column is missing|field 'image_id'"
    ):
        conform(pa.table({"source": ["a"]}), where="f.parquet")
    with pytest.raises(
        SchemaError, match=r"x.parquet, record row 1, field 'image_id': required value is null"
    ):
        conform(pa.table({"source": ["a", "a"], "image_id": ["1", None]}), where="x.parquet")
    bad = pa.table({"source": ["a"] * 4, "image_id": list("abcd"), "lon": ["1", "2", "3", "east"]})
    with pytest.raises(
        SchemaError, match=r"record row 3, field 'lon': cannot be read as double \(value 'east'\)"
    ):
        conform(bad, where="c.parquet")


@pytest.mark.parametrize("name", ["one.parquet", "parts"])
def test_write_then_read_round_trip(tmp_path: Path, name: str) -> None:
    path = write_catalog(small_table(), tmp_path / name, rows_per_part=3)
    back = read_catalog(path)
    assert back.num_rows == 4
    assert back.column("image_id").to_pylist() == ["1", "2", "3", "4"]
    assert back.column("bboxes")[0].as_py() == [
        {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0, "area": 6.0}
    ]
    if name == "parts":
        assert sorted(p.name for p in path.iterdir()) == [
            "part-00000.parquet",
            "part-00001.parquet",
        ]
    assert (
        pq.read_schema(next(iter([path] if path.is_file() else sorted(path.iterdir())))).metadata[
            b"geoaware.schema_version"
        ]
        == SCHEMA_VERSION.encode()
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_rewriting_a_folder_replaces_it_whole(tmp_path: Path) -> None:
    write_catalog(small_table(), tmp_path / "c", rows_per_part=1)
    write_catalog(small_table().slice(0, 1), tmp_path / "c")
    assert read_catalog(tmp_path / "c").num_rows == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


def test_truncated_parquet_is_a_clear_error(tmp_path: Path) -> None:
    path = write_catalog(small_table(), tmp_path / "c.parquet")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CatalogError, match=rf"^{path}: not a readable Parquet file"):
        read_catalog(path)


def test_missing_required_column_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nosource.parquet"
    pq.write_table(pa.table({"image_id": ["1"]}), path)
    with pytest.raises(SchemaError, match=rf"^{path}, field 'source': required column is missing"):
        read_catalog(path)


def test_wrong_type_in_one_part_names_that_part(tmp_path: Path) -> None:
    folder = tmp_path / "cat"
    write_catalog(small_table(), folder, rows_per_part=2)
    bad = folder / "part-00001.parquet"
    pq.write_table(pa.table({"source": ["s"], "image_id": ["9"], "lat": ["north"]}), bad)
    with pytest.raises(SchemaError, match=rf"^{bad}, record row 0, field 'lat'"):
        read_catalog(folder)


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.parquet"
    t = pa.table({"source": ["s"], "image_id": ["1"]}).replace_schema_metadata(
        {b"geoaware.schema_version": b"99"}
    )
    pq.write_table(t, path)
    with pytest.raises(CatalogError, match="schema version 99 is newer"):
        read_catalog(path)


def test_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such file or folder"):
        read_catalog(tmp_path / "nope.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match=r"holds no \*.parquet part"):
        read_catalog(tmp_path / "empty")


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def batches() -> Iterator[pa.Table]:
        yield small_table()
        raise OSError("source broke")

    for target in ("c.parquet", "folder"):
        with pytest.raises(OSError, match="source broke"):
            write_catalog_batches(batches(), tmp_path / target)
    assert os.listdir(tmp_path) == []


def test_failed_rewrite_keeps_the_old_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for target in ("c.parquet", "folder"):
        write_catalog(small_table(), tmp_path / target)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    monkeypatch.setattr(pq.ParquetWriter, "write_table", boom)
    for target in ("c.parquet", "folder"):
        with pytest.raises(OSError, match="disk full"):
            write_catalog(small_table().slice(0, 1), tmp_path / target)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["c.parquet", "folder"]
    assert read_catalog(tmp_path / "c.parquet").num_rows == 4
    assert read_catalog(tmp_path / "folder").num_rows == 4


def test_batches_stream_into_parts(tmp_path: Path) -> None:
    parts = (small_table().slice(i, 1) for i in range(4))
    folder = write_catalog_batches(parts, tmp_path / "cat")
    assert len(list(folder.iterdir())) == 4
    assert read_catalog(folder).column("image_id").to_pylist() == ["1", "2", "3", "4"]
    assert read_catalog(write_catalog_batches(iter(()), tmp_path / "empty.parquet")).num_rows == 0


def test_query_over_parts_and_outputs(tmp_path: Path) -> None:
    folder = write_catalog(small_table(), tmp_path / "cat", rows_per_part=1)
    result = query_catalog(
        folder,
        "SELECT source, count(*) AS n, count(DISTINCT user_id) AS users FROM catalog "
        "GROUP BY source ORDER BY source",
    )
    assert result.to_pylist() == [
        {"source": "inat2017", "n": 3, "users": 2},
        {"source": "yfcc", "n": 1, "users": 0},
    ]
    pq_out = write_result(result, tmp_path / "r.parquet")
    assert pq.read_table(pq_out).num_rows == 2
    csv_out = write_result(result, tmp_path / "r.csv")
    assert csv_out.read_text().splitlines()[0] == '"source","n","users"'
    with pytest.raises(QueryError, match="must end in .parquet or .csv"):
        write_result(result, tmp_path / "r.xlsx")
    with pytest.raises(QueryError, match="query failed.*no_such_column"):
        query_catalog(folder, "SELECT no_such_column FROM catalog")


def test_stats_counts_users_and_skew() -> None:
    t = conform(
        pa.table(
            {
                "source": ["s"] * 7,
                "split": ["train"] * 5 + ["test"] * 2,
                "image_id": [str(i) for i in range(7)],
                "user_id": ["a", "a", "a", "a", "b", "c", None],
                "label_name": ["x", "y", "x", "x", "z", "z", "z"],
                "lat": [48.85, 48.85, 51.5, -1.29, -33.87, None, 35.68],
                "lon": [2.35, 2.35, -0.13, 36.82, 151.21, None, 139.65],
            }
        )
    )
    s = catalog_stats(t)
    assert s.rows == 7 and s.labels == 3 and s.located == 6
    assert [(r["split"], r["rows"]) for r in s.by_source_split] == [("test", 2), ("train", 5)]
    assert (s.users.users, s.users.images_with_user, s.users.max) == (3, 6, 4)
    assert s.users.mean == pytest.approx(2.0)
    assert s.users.std == pytest.approx(1.7320508, rel=1e-6)
    # Fisher-Pearson skewness of [4, 1, 1]: positive, one user dominates.
    assert s.users.skew == pytest.approx(0.7071068, rel=1e-6)
    assert s.continents == {"Europe": 3, "Africa": 1, "Asia": 1, "Oceania": 1}
    d = s.to_dict()
    assert json.dumps(d)


def test_validate_finds_every_kind_of_problem() -> None:
    t = conform(
        pa.table(
            {
                "source": ["s"] * 9,
                "image_id": ["a", "b", "c", "d", "e", "f", "a", "h", "i"],
                "lat": [10.0, 95.0, float("nan"), 0.0, None, 5.0, 1.0, 1.0, 1.0],
                "lon": [10.0, 10.0, 1.0, 0.0, None, None, -190.0, 1.0, 1.0],
                "user_id": ["u"] * 8 + [None],
                "width": [100] * 9,
                "height": [50] * 9,
                "bboxes": [None] * 7
                + [
                    [{"x": 90.0, "y": 0.0, "w": 20.0, "h": 10.0, "area": 100.0}],
                    [{"x": 0.0, "y": 0.0, "w": 10.0, "h": 10.0, "area": 50.0}],
                ],
                "tile_z": [None] * 8 + [2],
                "tile_x": [None] * 8 + [4],
                "tile_y": [None] * 8 + [1],
                "location_uncertainty_m": [None] * 8 + [-5.0],
            }
        )
    )
    report = validate_table(t, "cat.parquet")
    found = {f.check: f for f in report.findings}
    assert found["lat_out_of_range"].count == 1
    assert found["lat_out_of_range"].examples[0] == {
        "row": 1,
        "image_id": "b",
        "column": "lat",
        "value": 95.0,
    }
    assert found["lon_out_of_range"].examples[0]["value"] == -190.0
    assert found["lat_nan"].examples[0]["row"] == 2
    assert found["null_island"].examples[0]["image_id"] == "d"
    assert found["half_location"].examples[0]["row"] == 5
    assert found["duplicate_image_id"].examples[0] == {
        "row": 6,
        "image_id": "a",
        "column": "image_id",
        "value": "a",
    }
    assert found["bad_bbox"].count == 1 and found["bad_bbox"].examples[0]["row"] == 7
    assert found["tile_x_out_of_range"].examples[0]["value"] == 4
    assert found["missing_location"].examples[0]["row"] == 4
    assert found["missing_user"].count == 1
    assert found["location_uncertainty_invalid"].severity == "warning"
    assert "tile_y_out_of_range" not in found
    assert not report.ok
    assert json.dumps(report.to_dict())
    clean = validate_table(
        conform(pa.table({"source": ["s"], "image_id": ["1"], "lat": [1.0], "lon": [2.0]}))
    )
    assert clean.ok


def test_written_files_get_the_normal_mode(tmp_path: Path) -> None:
    path = write_catalog(small_table(), tmp_path / "c.parquet")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geoaware.catalog import read_catalog
from geoaware.construct.errors import BuildError, PartitionError, SplitError
from geoaware.construct.fg_geo import build_fg_geo, check_fg_geo, load_vocabulary
from geoaware.construct.leakage import leakage_report
from geoaware.construct.partition import (
    CellPartitioner,
    DirichletPartitioner,
    UserPartitioner,
    make_partitioner,
)
from geoaware.construct.split import assign_split
from geoaware.construct.stats import write_inat_user_tables, write_partitions
from geoaware.errors import InputFileError


def _catalog(n: int = 400, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 30, n)
    return pa.table(
        {
            "image_id": [f"img{i}" for i in range(n)],
            "user_id": [f"u{u:02d}" if u else None for u in users],
            "label_name": [f"Genus{g} sp{g}" for g in rng.integers(0, 8, n)],
            "lat": rng.uniform(-50, 60, n),
            "lon": rng.uniform(-170, 170, n),
            "url": [f"http://x/{i}" for i in range(n)],
        }
    )


def test_user_split_is_stable_and_disjoint() -> None:
    t = _catalog()
    a = assign_split(t, "user", seed=3).table
    b = assign_split(t.slice(0, 200), "user", seed=3).table  # fewer rows: old rows do not move
    assert a.column("split").to_pylist()[:200] == b.column("split").to_pylist()
    report = leakage_report(a.filter(pa.compute.is_valid(a.column("user_id"))))
    assert report["shared_users"]["count"] == 0


def test_stratified_split_keeps_labels_on_all_sides() -> None:
    # 30 labels of 5 images and one of 200: a plain 80/10/10 split leaves most small labels
    # off a side; stratified, every label is on all three sides (read from the split column)
    sizes = [5] * 30 + [200]
    labels = [f"L{i}" for i, k in enumerate(sizes) for _ in range(k)]
    t = pa.table(
        {
            "image_id": [f"img{j}" for j in range(len(labels))],
            "label_name": labels,
            "lat": np.zeros(len(labels)),
            "lon": np.zeros(len(labels)),
        }
    )

    def sides_per_label(stratify: str | None) -> list[int]:
        r = assign_split(t, "random", stratify=stratify, seed=1)
        frame = r.table.select(["label_name", "split"]).to_pandas()
        sides: list[int] = frame.groupby("label_name")["split"].nunique().tolist()
        return sides

    assert sides_per_label("label") == [3] * len(sizes)  # `label` stands for the label name
    assert sides_per_label(None).count(3) < len(sizes) // 2


def test_split_bad_input() -> None:
    with pytest.raises(SplitError, match="sum to 1"):
        assign_split(_catalog(), "random", ratios=(0.5, 0.6))
    with pytest.raises(BuildError, match="column 'taken_at' does not exist"):
        assign_split(_catalog(), "time")


def test_random_split_of_real_fg_geo_leaks(shared_data: Path, tmp_path: Path) -> None:
    from geoaware.construct.fg_geo import _read_any

    t = _read_any(shared_data / "fg_geo_yfcc" / "yfcc100m_geolocated_inat2017species.csv.zip")
    s = assign_split(t, "random", seed=0).table
    r = leakage_report(s, map_png=tmp_path / "m.png")
    assert r["same_outing"]["pairs"] > 0 and r["leaks"]
    assert (tmp_path / "m.png").exists()


def test_user_partition_and_outputs(tmp_path: Path) -> None:
    p = UserPartitioner()
    p.catalog = _catalog()
    s = write_partitions(p, tmp_path / "parts")
    assert s["left_out"]["no_user"] > 0
    f = pq.read_table(tmp_path / "parts" / "partitions.parquet")
    assert f.num_rows == s["rows_assigned"]
    assert (
        json.loads((tmp_path / "parts" / "stats.json").read_text())["clients"] == p.num_partitions
    )
    assert (tmp_path / "parts" / "samples_per_client.png").exists()
    with pytest.raises(ValueError, match="only once"):
        p.catalog = _catalog()
    last = p.num_partitions - 1
    with pytest.raises(KeyError) as info:  # still a KeyError, and one of the stage's errors
        p.load_partition(last + 1)
    assert isinstance(info.value, PartitionError)
    assert str(info.value) == f"partition_id {last + 1} is not in 0..{last}"


def test_cell_and_dirichlet_partitions() -> None:
    c = CellPartitioner(max_cell_size=20)
    c.catalog = _catalog()
    assert np.bincount(c.assignment).max() <= 20
    d = DirichletPartitioner(5, 0.3, level="genus", min_size=5)
    d.catalog = _catalog()
    assert np.bincount(d.assignment).min() >= 5


def test_partition_bad_input() -> None:
    with pytest.raises(PartitionError, match="min-size"):
        p = DirichletPartitioner(20, 0.01, min_size=15, max_retries=3)
        p.catalog = _catalog()
        _ = p.assignment
    with pytest.raises(BuildError, match="column 'family' does not exist"):
        make_partitioner("dirichlet", num_partitions=3, level="family").catalog = _catalog()


def test_inat_tables(tmp_path: Path) -> None:
    paths = write_inat_user_tables(_catalog(), tmp_path)
    assert paths[0].read_text().splitlines()[0].startswith('"image_id","user","width"')


def _yfcc_row(
    line: int, tags: str, lat: str = "29.5", lon: str = "-94.3", marker: str = "0"
) -> str:
    f = [
        str(line),
        str(1000 + line),
        f"hash{line:04d}",
        f"{line}@N00",
        "nick",
        "2012-02-16 09:56:37.0",
        "1331840483",
        "",
        "t",
        "",
        tags,
        "",
        lon,
        lat,
        "12",
        "page",
        f"http://d/{line}.jpg",
        "CC BY",
        "lic",
        "1",
        "2",
        "s",
        "so",
        "jpg",
        marker,
    ]
    return "\t".join(f)


def test_build_fg_geo(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("Vireo griseus\tWhite-eyed Vireo\nAnas platyrhynchos\n")
    rows = [
        _yfcc_row(1, "vireo+griseus,bird"),
        _yfcc_row(2, "Vireo_Griseus", marker="1"),  # video
        _yfcc_row(3, "vireo+griseus", lat="", lon=""),  # no coordinates
        _yfcc_row(4, "vireo+griseus,anas+platyrhynchos"),  # two species
        _yfcc_row(5, "notvireo+griseusx"),  # inside another word
        _yfcc_row(6, "white-eyed+vireo"),
    ] + [_yfcc_row(10 + i, "anas%20platyrhynchos") for i in range(12)]
    yfcc = tmp_path / "yfcc100m_dataset"
    yfcc.write_text("\n".join(rows) + "\n")
    out = tmp_path / "fg.parquet"
    r = build_fg_geo(yfcc, names, out)
    assert r["removed"] == {
        "video": 1,
        "not_geotagged": 1,
        "no_label": 1,
        "several_labels": 1,
        "over_per_label": 2,
    }
    t = read_catalog(out)
    assert t.num_rows == 12 and t.column("user_id").null_count == 0
    assert check_fg_geo(out)["ok"]


def test_build_fg_geo_broken_row(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("Vireo griseus\n")
    yfcc = tmp_path / "yfcc100m_dataset"
    yfcc.write_text(_yfcc_row(1, "vireo") + "\n" + "1\t2\t3\n")
    out = tmp_path / "fg.parquet"
    with pytest.raises(InputFileError, match=r"yfcc100m_dataset, record line 2: expected 25"):
        build_fg_geo(yfcc, names, out)
    assert not out.exists()


def test_check_real_fg_geo(shared_data: Path) -> None:
    r = check_fg_geo(shared_data / "fg_geo_yfcc" / "yfcc100m_geolocated_inat2017species.csv.zip")
    assert r["ok"] and r["labels"] == 4472 and r["label_count_histogram"]["10"] == 2960


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"categories": {"a": 1}}', "expected a JSON list"),
        ('["Vireo griseus", 7]', r"record 1: entry is not a name or an object"),
        ('[{"name": 7}]', r"record 0, field 'name': entry has no name"),
    ],
)
def test_vocabulary_json_errors_name_the_record(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "names.json"
    path.write_text(text)
    with pytest.raises(InputFileError, match=message):
        load_vocabulary(path)


def test_vocabulary_text_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_bytes(b"Vireo \xff griseus\n")
    with pytest.raises(InputFileError, match="names.txt"):
        load_vocabulary(path)


def test_check_fg_geo_reads_the_one_csv_of_a_zip(tmp_path: Path) -> None:
    import zipfile

    from geoaware.sources.fg_geo_yfcc import HEADER

    path = tmp_path / "fg.csv.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("any_name.csv", ",".join(HEADER) + "\nab,7,Vireo griseus,29.5,-94.3,f,m\n")
        zf.writestr("__MACOSX/._any_name.csv", b"\x00")
    assert check_fg_geo(path)["rows"] == 1
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("second.csv", "x")
    with pytest.raises(InputFileError, match=r"zip should hold one CSV"):
        check_fg_geo(path)

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from geoaware.catalog import conform, validate_table
from geoaware.errors import DatasetNotFoundError, InputFileError
from geoaware.sources import SOURCES, FgGeoYfcc
from geoaware.sources.fg_geo_yfcc import HEADER, parse_csv

# These tests read hand-made files of each release's layout: no published checksum fits.
pytestmark = pytest.mark.usefixtures("hand_made_releases")


def test_reads_the_real_release(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOAWARE_MIRROR", str(shared_data))
    source = FgGeoYfcc(tmp_path)
    paths = source.fetch(progress=False)
    assert paths["csv"] == shared_data / FgGeoYfcc.files["csv"].path
    t = conform(source.read())
    assert t.num_rows == 36_143
    assert t.column("label_name").unique().to_pylist().__len__() == 4_472
    ids = t.column("image_id").to_pylist()
    assert len(set(ids)) == len(ids)
    assert {len(i) for i in ids} <= set(range(25, 33))
    first = t.slice(0, 1).to_pylist()[0]
    assert first["image_id"] == "da6fd9a9c5666e7b561b842a8c97774f"
    assert (first["lat"], first["lon"]) == (36.1205, -81.8292)
    assert first["label_name"] == first["species"] == "Tiarella cordifolia"
    assert first["genus"] == "Tiarella"
    assert first["url"].startswith("https://multimedia-commons.s3-us-west-2.amazonaws.com/")
    # where fetch-images saves each photo and embed looks: <image_id>.jpg, all distinct
    names = t.column("file_name").to_pylist()
    assert names == [f"{i}.jpg" for i in ids]
    assert json.loads(first["extra"]) == {
        "flickr_url": "http://farm6.staticflickr.com/5140/5725118190_026b3b56e4.jpg",
        "yfcc_line": 33495,
    }
    assert t.column("user_id").null_count == t.num_rows
    per_label = np.unique(
        t.column("label_name").to_numpy(zero_copy_only=False), return_counts=True
    )[1]
    assert per_label.min() == 1 and per_label.max() == 10
    assert validate_table(t).ok


def _zip(tmp_path: Path, text: str, member: str = FgGeoYfcc.member) -> tuple[Path, Path]:
    root = tmp_path / "root"
    path = root / FgGeoYfcc.files["csv"].path
    path.parent.mkdir(parents=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, text)
        zf.writestr("__MACOSX/._" + member, b"\x00\x05junk")
    path.write_bytes(buf.getvalue())
    return root, path


ROW = "abc123,7,Vireo griseus,29.5,-94.3,http://f/x.jpg,https://m/x.jpg"


def test_tiny_fake_release_with_macosx_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    root, _ = _zip(tmp_path, ",".join(HEADER) + "\n" + ROW + "\n0001,8,Anas,1,2,u,v")
    t = FgGeoYfcc(root).read()
    assert t.column("image_id").to_pylist() == ["abc123", "0001"]  # ids stay strings
    assert t.column("genus").to_pylist() == ["Vireo", "Anas"]


def test_wrong_header_names_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    root, path = _zip(tmp_path, "id,lat,lon\n1,2,3")
    with pytest.raises(
        InputFileError,
        match=rf"^{path}:{FgGeoYfcc.member}, record line 1, field .yfcc100m ID.: column missing from header",
    ):
        FgGeoYfcc(root).read()


def test_bad_coordinate_names_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    bad = ROW.replace("29.5", "twenty")
    root, _ = _zip(tmp_path, ",".join(HEADER) + "\n" + ROW + "\n" + bad)
    with pytest.raises(
        InputFileError, match=r"record line 3, field 'latitude': 'twenty' is not a number"
    ):
        FgGeoYfcc(root).read()


def test_missing_member_and_corrupt_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    root, path = _zip(tmp_path, "x", member="other.csv")
    with pytest.raises(
        InputFileError, match="zip holds no yfcc100m_geolocated_inat2017species.csv"
    ):
        FgGeoYfcc(root).read()
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputFileError, match="not a readable zip file"):
        FgGeoYfcc(root).read()


def test_not_fetched_says_how_to_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="run `geoaware fetch fg_geo_yfcc"):
        FgGeoYfcc(tmp_path).read()


def test_registry_and_unknown_part(tmp_path: Path) -> None:
    assert SOURCES["fg_geo_yfcc"] is FgGeoYfcc
    with pytest.raises(ValueError, match="unknown part"):
        FgGeoYfcc(tmp_path).fetch(["nope"])


def test_parse_csv_header_only() -> None:
    assert parse_csv(",".join(HEADER).encode(), "x.csv").num_rows == 0


def test_labels_mapped_to_inat2017_ids_when_categories_are_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    root, _ = _zip(tmp_path, ",".join(HEADER) + "\n" + ROW + "\n0001,8,Anas,1,2,u,v")
    cats = tmp_path / "train2017.json"
    cats.write_text(
        json.dumps(
            {
                "images": [],
                "categories": [{"id": 4242, "name": "Vireo griseus", "supercategory": "Aves"}],
            }
        )
    )
    source = FgGeoYfcc(root, inat2017=cats)
    t = source.read()
    assert t.column("label").to_pylist() == [4242, None]
    assert source.counts == {"labels_without_inat2017_id": 1}
    assert FgGeoYfcc(root).read().column_names.count("label") == 0  # no categories: no ids

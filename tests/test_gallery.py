from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from geoaware.catalog import conform, validate_table
from geoaware.errors import DatasetNotFoundError, InputFileError
from geoaware.sources.gallery import GpsGallery, read_gps_gallery

# These tests read hand-made files of each release's layout: no published checksum fits.
pytestmark = pytest.mark.usefixtures("hand_made_releases")

GALLERY = GpsGallery.files["geoclip_100k"]


def test_real_geoclip_gallery(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOAWARE_MIRROR", str(shared_data))
    source = GpsGallery(tmp_path)
    path = source.fetch(progress=False)["geoclip_100k"]  # checksum verified against the mirror
    assert path == shared_data / GALLERY.path
    points = read_gps_gallery(path)
    assert points.num_rows == 100_000
    assert points.column_names == ["lat", "lon"]
    pairs = np.column_stack([points.column("lat").to_numpy(), points.column("lon").to_numpy()])
    assert len(np.unique(pairs, axis=0)) == 94_123
    assert points.slice(0, 1).to_pylist() == [{"lat": -50.943392, "lon": -72.935664}]
    assert points.slice(99_999).to_pylist() == [{"lat": 42.299347, "lon": -83.661562}]
    assert pairs[:, 0].min() > -56 and pairs[:, 0].max() < 80  # MP-16 has no polar photos

    catalog = source.read()
    assert source.counts == {"duplicate_coordinates": 100_000 - 94_123}
    assert catalog.column("image_id").to_pylist()[:3] == ["0", "1", "2"]
    assert set(catalog.column("split").to_pylist()) == {"gallery"}
    report = validate_table(conform(catalog))
    assert not [f for f in report.findings if f.severity == "error"]


def test_tiny_gallery_as_a_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    path = tmp_path / GALLERY.path
    path.parent.mkdir(parents=True)
    path.write_text(
        "LAT,LON\n-50.943392,-72.935664\n34.201047,-118.599931\n-50.943392,-72.935664\n"
    )
    source = GpsGallery(tmp_path)
    catalog = source.read()
    assert catalog.column("lat").to_pylist() == [-50.943392, 34.201047, -50.943392]
    assert source.counts == {"duplicate_coordinates": 1}
    assert conform(catalog).num_rows == 3


def test_header_only_and_no_trailing_newline() -> None:
    assert read_gps_gallery(b"LAT,LON\n", where="g.csv").num_rows == 0
    assert read_gps_gallery(b"LAT,LON\n1,2", where="g.csv").to_pylist() == [
        {"lat": 1.0, "lon": 2.0}
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lat,lon\n1,2\n", r"record line 1, field 'LAT': column missing from header 'lat,lon'"),
        ("LAT\n1\n", r"record line 1, field 'LON': column missing"),
        ("LON,LAT\n1,2\n", r"record line 1: wrong header 'LON,LAT', expected 'LAT,LON'"),
        ("LAT,LON\n1,2\n\n3,east\n", r"record line 4, field 'LON': 'east' is not a number"),
        ("LAT,LON\n1,2\n-90.5,2\n", r"record line 3, field 'LAT': '-90\.5' is out of range"),
        ("LAT,LON\n1,2\n1,nan\n", r"record line 3, field 'LON': 'nan' is out of range"),
        ("LAT,LON\n1,2\n,2\n", r"record line 3, field 'LAT': empty value"),
        ("LAT,LON\n1,2\n1,2,3\n", r"record line 3: 3 fields where the header has 2"),
    ],
)
def test_bad_gallery_names_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "coordinates.csv"
    path.write_text(text)
    with pytest.raises(InputFileError, match=rf"^{re.escape(str(path))}, {message}"):
        read_gps_gallery(path)


def test_not_fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="geoclip_gallery/coordinates_100K.csv"):
        GpsGallery(tmp_path).read()

from __future__ import annotations

import io
import json
import random
import re
import tarfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from geoaware.catalog import conform, validate_table
from geoaware.errors import DatasetNotFoundError, InputFileError
from geoaware.sources.csvio import json_objects
from geoaware.sources.inat import (
    Inat2017,
    Inat2018,
    Inat2021,
    inat2017_category_ids,
    read_inat2021_user_images,
    read_inat2021_users,
)
from geoaware.sources.inat.dates import parse_timestamps
from geoaware.sources.inat.stream import Field, JsonScanner, RecordSpec, decode_records, reload

# These tests read hand-made files of each release's layout: no published checksum fits.
pytestmark = pytest.mark.usefixtures("hand_made_releases")

UTC = timezone.utc


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)


# --------------------------------------------------------------------------------------------
# Small files of the published shapes


def dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()  # one line, ", " and ": " separators, like the releases


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("__MACOSX/._junk", b"\x00\x05")
    return path


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


LICENSES = [
    {"id": 1, "name": "Attribution-NonCommercial License", "url": "http://x/1"},
    {"id": 2, "name": "Attribution License", "url": "http://x/2"},
]
CATS_2017 = [
    {"id": 0, "name": "Vireo griseus", "supercategory": "Aves"},
    {"id": 1, "name": "Anas", "supercategory": "Aves"},
    {"id": 2, "name": "Abies concolor", "supercategory": "Plantae"},
]


def img2017(i: int, cat: int, split: str = "train_val_images") -> dict[str, Any]:
    sup = {0: "Aves", 1: "Aves", 2: "Plantae"}[cat]
    name = CATS_2017[cat]["name"]
    return {
        "id": i,
        "width": 800,
        "height": 600 + i,
        "file_name": f"{split}/{sup}/{name}/{i:04x}.jpg",
        "license": 1 + i % 2,
        "rights_holder": f"holder {i}",
    }


def coco(
    images: list[dict[str, Any]],
    annotations: list[dict[str, Any]] | None = None,
    categories: list[dict[str, Any]] = CATS_2017,
    key_order: list[str] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "info": {"year": 2017, "version": "1.0", "description": "x", "date_created": "2017"},
        "images": images,
        "categories": categories,
        "licenses": LICENSES,
    }
    if annotations is not None:
        doc["annotations"] = annotations
    if key_order:
        doc = {k: doc[k] for k in key_order if k in doc}
    return doc


def ann(i: int, image_id: int, cat: int) -> dict[str, Any]:
    return {"id": i, "image_id": image_id, "category_id": cat}


TRAIN_2017 = coco(
    [img2017(10, 0), img2017(11, 1), img2017(12, 2), img2017(13, 0)],
    [ann(0, 10, 0), ann(1, 11, 1), ann(2, 12, 2), ann(3, 13, 0)],
)
VAL_2017 = coco([img2017(20, 0), img2017(21, 2)], [ann(0, 20, 0), ann(1, 21, 2)])
TEST_2017 = coco([img2017(30, 0, "test2017"), img2017(31, 1, "test2017")])
LOC_TRAIN_2017: list[dict[str, Any]] = [
    {"id": 10, "lat": 29.5, "lon": -94.3, "date": "2017-05-01 10:23:00+00:00", "user_id": 77},
    {"id": 11, "lat": None, "lon": None, "date": "2011-06-03 08:32:21", "user_id": 78},
    {"id": 12, "lat": 40.0, "lon": -120.5, "date": "2010-07-17", "user_id": None},
    # image 13 has no location record
]
LOC_VAL_2017 = [
    {"id": 20, "lat": -33.9, "lon": 151.2, "date": "2012-01-01 05:00:00-05:30", "user_id": 5},
    {"id": 21, "lat": 10.0, "lon": 10.0, "date": None, "user_id": 5},
]


def bbox(i: int, image_id: int, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    return {"id": i, "image_id": image_id, "category_id": 0, "bbox": [x, y, w, h],
            "area": w * h / 2.0, "iscrowd": 0}  # fmt: skip


BOX_TRAIN_2017 = coco(
    [img2017(10, 0), img2017(11, 1)],
    [bbox(0, 10, 1, 2, 30, 40), bbox(1, 11, 5, 5, 10, 10), bbox(2, 10, 7, 8, 9, 10)],
)
BOX_VAL_2017 = coco([img2017(20, 0)], [bbox(0, 20, 0.5, 1.5, 100, 50)])


def make_2017(
    root: Path, override: dict[str, object] | None = None, *, zipped: bool = True
) -> Path:
    files = {
        "train2017.json": dumps(TRAIN_2017),
        "val2017.json": dumps(VAL_2017),
        "test2017.json": dumps(TEST_2017),
        "train2017_locations.json": dumps(LOC_TRAIN_2017),
        "val2017_locations.json": dumps(LOC_VAL_2017),
        "train_2017_bboxes.json": dumps(BOX_TRAIN_2017),
        "val_2017_bboxes.json": dumps(BOX_VAL_2017),
    }
    files.update({k: v if isinstance(v, bytes) else dumps(v) for k, v in (override or {}).items()})
    folder = root / "inat2017"
    folder.mkdir(parents=True, exist_ok=True)
    if not zipped:
        for name, data in files.items():
            (folder / name).write_bytes(data)
        return folder
    write_zip(
        folder / "train_val2017.zip",
        {"train2017.json": files["train2017.json"], "val2017.json": files["val2017.json"]},
    )
    write_zip(folder / "test2017.zip", {"test2017.json": files["test2017.json"]})
    write_zip(
        folder / "inat2017_locations.zip",
        {
            "train2017_locations.json": files["train2017_locations.json"],
            "val2017_locations.json": files["val2017_locations.json"],
        },
    )
    write_zip(
        folder / "train_2017_bboxes.zip",
        {"train_2017_bboxes.json": files["train_2017_bboxes.json"]},
    )
    write_zip(folder / "val_2017_bboxes.zip",
              {"val_2017_bboxes.json": files["val_2017_bboxes.json"]})  # fmt: skip
    return folder


def rows_by_id(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {r["image_id"]: r for r in table.to_pylist()}


# --------------------------------------------------------------------------------------------
# iNat2017


def test_inat2017_zipped_release_joins_everything(tmp_path: Path) -> None:
    make_2017(tmp_path)
    source = Inat2017(tmp_path)
    t = source.read()
    conformed = conform(t)
    assert conformed.num_rows == 8
    assert t.column("source").unique().to_pylist() == ["inat2017"]
    splits = t.column("split").to_pylist()
    assert splits == ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    r = rows_by_id(t)
    assert set(r) == {"10", "11", "12", "13", "20", "21", "30", "31"}
    first = r["10"]
    assert first["file_name"] == "train_val_images/Aves/Vireo griseus/000a.jpg"
    assert (first["lat"], first["lon"]) == (29.5, -94.3)
    assert first["taken_at"] == datetime(2017, 5, 1, 10, 23, tzinfo=UTC)
    assert first["user_id"] == "77"
    assert (first["label"], first["label_name"]) == (0, "Vireo griseus")
    assert (first["kingdom"], first["phylum"], first["class"]) == ("Animalia", "Chordata", "Aves")
    assert (first["genus"], first["species"], first["supercategory"]) == (
        "Vireo", "Vireo griseus", "Aves"
    )  # fmt: skip
    assert (first["width"], first["height"]) == (800, 610)
    assert first["license"] == "Attribution-NonCommercial License"
    assert first["bboxes"] == [
        {"x": 1.0, "y": 2.0, "w": 30.0, "h": 40.0, "area": 600.0},
        {"x": 7.0, "y": 8.0, "w": 9.0, "h": 10.0, "area": 45.0},
    ]
    assert json.loads(first["extra"]) == {"rights_holder": "holder 10"}
    # genus-level category: no species; null location with a user; a date without a zone
    assert (r["11"]["genus"], r["11"]["species"]) == ("Anas", None)
    assert r["11"]["lat"] is None and r["11"]["user_id"] == "78"
    assert r["11"]["taken_at"] == datetime(2011, 6, 3, 8, 32, 21, tzinfo=UTC)
    assert r["11"]["bboxes"] == [{"x": 5.0, "y": 5.0, "w": 10.0, "h": 10.0, "area": 50.0}]
    # a plant: kingdom only; a date alone is midnight UTC; no user; no boxes
    assert (r["12"]["kingdom"], r["12"]["class"]) == ("Plantae", None)
    assert r["12"]["taken_at"] == datetime(2010, 7, 17, tzinfo=UTC)
    assert r["12"]["user_id"] is None and r["12"]["bboxes"] is None
    # no location record at all: kept, with nulls
    assert r["13"]["lat"] is None and r["13"]["taken_at"] is None and r["13"]["label"] == 0
    # an offset of -05:30 is converted to UTC
    assert r["20"]["taken_at"] == datetime(2012, 1, 1, 10, 30, tzinfo=UTC)
    assert r["20"]["bboxes"][0]["area"] == 2500.0
    # test images: no label, no location
    assert r["30"]["label"] is None and r["30"]["label_name"] is None
    assert r["30"]["file_name"].startswith("test2017/")
    assert source.counts == {
        "images_without_location_record": 1,
        "images_without_location": 4,  # 11 (null), 13 (no record), 30 and 31 (test)
        "images_without_date": 4,  # 13, 21, 30, 31
        "images_without_user": 4,  # 12, 13, 30, 31
    }
    assert conformed.schema.field("taken_at").type == pa.timestamp("us", tz="UTC")
    report = validate_table(conformed)
    assert not [f for f in report.findings if f.severity == "error"]


def test_inat2017_extracted_files_read_the_same(tmp_path: Path) -> None:
    zipped = (
        Inat2017(tmp_path / "a", splits=["train", "val"]).read
        if make_2017(tmp_path / "a")
        else None
    )
    make_2017(tmp_path / "b", zipped=False)
    assert zipped is not None
    assert Inat2017(tmp_path / "b", splits=["train", "val"]).read().equals(zipped())


def test_inat2017_extracted_one_folder_deeper_and_preferred_to_the_zip(tmp_path: Path) -> None:
    folder = make_2017(tmp_path)
    deeper = folder / "train_val2017"
    deeper.mkdir()
    changed = json.loads(json.dumps(TRAIN_2017))
    changed["images"][0]["file_name"] = "extracted.jpg"
    (deeper / "train2017.json").write_bytes(dumps(changed))
    t = Inat2017(tmp_path, splits=["train"]).read()
    assert t.column("file_name")[0].as_py() == "extracted.jpg"


def test_read_batches_are_bounded_and_concatenate_to_read(tmp_path: Path) -> None:
    make_2017(tmp_path)
    source = Inat2017(tmp_path, batch_rows=2)
    source.chunk_bytes = 150  # about one image record per chunk
    batches = list(source.read_batches())
    assert [b.num_rows for b in batches] == [2, 2, 2, 2]
    assert pa.concat_tables(batches).equals(Inat2017(tmp_path).read())


def test_annotations_before_images_read_in_one_pass(tmp_path: Path) -> None:
    order = ["annotations", "categories", "licenses", "info", "images"]
    train = coco(TRAIN_2017["images"], TRAIN_2017["annotations"], key_order=order)
    make_2017(tmp_path / "a", {"train2017.json": train})
    make_2017(tmp_path / "b")
    a = Inat2017(tmp_path / "a", splits=["train"]).read()
    assert a.equals(Inat2017(tmp_path / "b", splits=["train"]).read())


def test_files_checksums_and_s3_paths() -> None:
    """A published md5 is well formed and a file's own; every URL names the same object."""
    seen: dict[str, str] = {}
    for cls in (Inat2017, Inat2018, Inat2021):
        assert set(cls.catalog_parts) <= set(cls.files)
        for part, remote in cls.files.items():
            where = f"{cls.name}.{part}"
            assert remote.path.startswith(f"{cls.name}/") and remote.extract, where
            if remote.md5 is not None:  # not every file has a published checksum
                assert re.fullmatch(r"[0-9a-f]{32}", remote.md5), where
                assert seen.setdefault(remote.md5, where) == where, f"{where} repeats a checksum"
            https, *s3 = remote.urls
            m = re.fullmatch(r"https://([\w.-]+)\.s3\.amazonaws\.com/(.+)", https)
            assert m, where
            key = m.group(2)
            # the S3 fallbacks hold the same key: the competition bucket first
            assert s3 and s3[0] == f"s3://{m.group(1)}/{key}", where
            assert all(u.startswith("s3://") and u.endswith(key) for u in s3), where
            assert key.rsplit("/", 1)[-1] == remote.name, where


def test_unknown_split_and_not_fetched(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown split"):
        Inat2017(tmp_path, splits=["bogus"])
    with pytest.raises(DatasetNotFoundError, match="run `geoaware fetch inat2017"):
        Inat2017(tmp_path).read()


def test_category_ids_for_fg_geo_names(tmp_path: Path) -> None:
    folder = make_2017(tmp_path)
    expected = {"Vireo griseus": 0, "Anas": 1, "Abies concolor": 2}
    assert inat2017_category_ids(tmp_path) == expected
    assert inat2017_category_ids(folder / "train_val2017.zip") == expected
    plain = folder / "cats.json"
    plain.write_bytes(dumps(CATS_2017))
    assert inat2017_category_ids(plain) == expected
    plain.write_bytes(dumps([*CATS_2017, {"id": 9, "name": "Anas"}]))
    with pytest.raises(InputFileError, match=r"record \[3\], field 'name': name 'Anas' has two"):
        inat2017_category_ids(plain)


# --------------------------------------------------------------------------------------------
# Bad input: one clear error naming file, record and field


def where(tmp_path: Path, member: str) -> str:
    return re.escape(f"{tmp_path / 'inat2017' / 'train_val2017.zip'}:{member}")


def test_truncated_json_names_file_and_record(tmp_path: Path) -> None:
    text = dumps(TRAIN_2017)
    make_2017(tmp_path / "a", {"train2017.json": text[: text.index(b'"id": 12') + 8]})
    with pytest.raises(
        InputFileError, match=r"record images\[2\]: truncated: the file ends inside the 'images'"
    ):
        Inat2017(tmp_path / "a", splits=["train"]).read()
    cut = text[: text.index(b'"id": 12') + 3]
    make_2017(tmp_path, {"train2017.json": cut})
    with pytest.raises(
        InputFileError,
        match=rf"^{where(tmp_path, 'train2017.json')}, record images\[2\]: truncated: the file "
        r"ends inside a string in the 'images' array",
    ):
        Inat2017(tmp_path, splits=["train"]).read()


def test_invalid_json_inside_a_record(tmp_path: Path) -> None:
    text = dumps(TRAIN_2017).replace(b'"height": 611', b'"height": 6?1')
    make_2017(tmp_path, {"train2017.json": text})
    with pytest.raises(InputFileError, match=r"record images\[1\]: malformed JSON"):
        Inat2017(tmp_path, splits=["train"]).read()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ((b'{"id": 12, ', b"{"), r"record images\[2\], field 'id': missing required key"),
        ((b'"width": 800, "height": 611', b'"width": "wide", "height": 611'),
         r"record images\[1\], field 'width': Expected int \| null, got str"),
        ((b'"image_id": 11, "category_id": 1', b'"image_id": 11'),
         r"record annotations\[1\], field 'category_id': missing required key"),
        ((b'{"id": 10, "width"', b'7, {"id": 10, "width"'),
         r"record images\[0\]: record is not a JSON object"),
        ((b'"height": 611, ', b'"height": 611,, '), r"record images\[1\]: malformed JSON"),
        ((b"}, {\"id\": 12", b"} {\"id\": 12"), r"malformed JSON"),
        ((b"}], \"categories\"", b"},], \"categories\""), r"trailing comma"),
    ],
)  # fmt: skip
def test_bad_records_name_record_and_field(
    tmp_path: Path, edit: tuple[bytes, bytes], message: str
) -> None:
    text = dumps(TRAIN_2017)
    assert edit[0] in text
    make_2017(tmp_path, {"train2017.json": text.replace(edit[0], edit[1], 1)})
    with pytest.raises(InputFileError, match=rf"^{where(tmp_path, 'train2017.json')}.*{message}"):
        Inat2017(tmp_path, splits=["train"]).read()


def test_missing_top_level_keys(tmp_path: Path) -> None:
    no_ann = {k: v for k, v in TRAIN_2017.items() if k != "annotations"}
    make_2017(tmp_path / "a", {"train2017.json": no_ann})
    with pytest.raises(InputFileError, match=r"field 'annotations': missing key 'annotations'"):
        Inat2017(tmp_path / "a", splits=["train"]).read()
    no_images = {k: v for k, v in TRAIN_2017.items() if k != "images"}
    make_2017(tmp_path / "b", {"train2017.json": no_images})
    with pytest.raises(InputFileError, match=r"field 'images': missing key 'images'"):
        Inat2017(tmp_path / "b", splits=["train"]).read()


def test_location_without_image_is_an_error_or_counted(tmp_path: Path) -> None:
    locs = [*LOC_TRAIN_2017, {"id": 99, "lat": 1.0, "lon": 2.0, "date": None, "user_id": 1}]
    make_2017(tmp_path, {"train2017_locations.json": locs})
    loc_file = re.escape(f"{tmp_path / 'inat2017' / 'inat2017_locations.zip'}")
    with pytest.raises(
        InputFileError,
        match=rf"^{loc_file}:train2017_locations.json, record \[3\], field 'id': image id 99 "
        r"is not in the images of .*train2017.json",
    ):
        Inat2017(tmp_path, splits=["train"]).read()
    lenient = Inat2017(tmp_path, splits=["train"], strict=False)
    assert lenient.read().num_rows == 4
    assert lenient.counts["locations_without_image"] == 1


def test_duplicate_location_record(tmp_path: Path) -> None:
    locs = [*LOC_TRAIN_2017, LOC_TRAIN_2017[0]]
    make_2017(tmp_path, {"train2017_locations.json": locs})
    with pytest.raises(InputFileError, match=r"record \[3\], field 'id': image id 10 has a loc"):
        Inat2017(tmp_path, splits=["train"]).read()


def test_location_of_wrong_shape(tmp_path: Path) -> None:
    make_2017(tmp_path, {"train2017_locations.json": {"locations": LOC_TRAIN_2017}})
    with pytest.raises(InputFileError, match="train2017_locations.json: missing a top-level"):
        Inat2017(tmp_path, splits=["train"]).read()
    bad = [dict(LOC_TRAIN_2017[0], lat="north"), *LOC_TRAIN_2017[1:]]
    make_2017(tmp_path, {"train2017_locations.json": bad})
    with pytest.raises(InputFileError, match=r"record \[0\], field 'lat': Expected float"):
        Inat2017(tmp_path, splits=["train"]).read()


def test_references_to_images_not_in_the_split(tmp_path: Path) -> None:
    train = coco(TRAIN_2017["images"], [*TRAIN_2017["annotations"], ann(4, 55, 0)])
    make_2017(tmp_path / "a", {"train2017.json": train})
    with pytest.raises(
        InputFileError, match=r"record annotations\[4\], field 'image_id': image id 55 is not in"
    ):
        Inat2017(tmp_path / "a", splits=["train"]).read()
    boxes = coco([], [*BOX_TRAIN_2017["annotations"], bbox(3, 56, 0, 0, 1, 1)])
    make_2017(tmp_path / "b", {"train_2017_bboxes.json": boxes})
    with pytest.raises(
        InputFileError,
        match=r"train_2017_bboxes.json, record annotations\[3\], field 'image_id': image id 56",
    ):
        Inat2017(tmp_path / "b", splits=["train"]).read()
    cat = coco(TRAIN_2017["images"], [*TRAIN_2017["annotations"][:3], ann(3, 13, 42)])
    make_2017(tmp_path / "c", {"train2017.json": cat})
    with pytest.raises(
        InputFileError, match=r"record annotations\[3\], field 'category_id': category id 42"
    ):
        Inat2017(tmp_path / "c", splits=["train"]).read()


def test_duplicate_image_id_and_bad_box(tmp_path: Path) -> None:
    dup = coco([*TRAIN_2017["images"], img2017(11, 1)], TRAIN_2017["annotations"])
    make_2017(tmp_path / "a", {"train2017.json": dup})
    with pytest.raises(InputFileError, match=r"record images\[4\], field 'id': duplicate image"):
        Inat2017(tmp_path / "a", splits=["train"]).read()
    boxes = coco([], [dict(bbox(0, 10, 1, 2, 3, 4), bbox=[1, 2, 3])])
    make_2017(tmp_path / "b", {"train_2017_bboxes.json": boxes})
    with pytest.raises(InputFileError, match=r"record annotations\[0\], field 'bbox': a box is"):
        Inat2017(tmp_path / "b", splits=["train"]).read()


def test_archive_without_the_member_and_corrupt_archive(tmp_path: Path) -> None:
    folder = make_2017(tmp_path)
    write_zip(folder / "train_val2017.zip", {"other.json": b"{}"})
    with pytest.raises(InputFileError, match="archive holds no train2017.json"):
        Inat2017(tmp_path, splits=["train"]).read()
    (folder / "train_val2017.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputFileError, match="not a readable zip or tar archive"):
        Inat2017(tmp_path, splits=["train"]).read()


# --------------------------------------------------------------------------------------------
# iNat2018


CATS_2018_OBFUSCATED = [
    {"id": 0, "name": "8f3a", "supercategory": "Aves", "kingdom": "k1", "phylum": "p1",
     "class": "c1", "order": "o1", "family": "f1", "genus": "g1"},
    {"id": 1, "name": "22b1", "supercategory": "Plantae", "kingdom": "k2", "phylum": "p2",
     "class": "c2", "order": "o2", "family": "f2", "genus": "g2"},
]  # fmt: skip
CATS_2018 = [
    {"id": 0, "name": "Turdus migratorius", "supercategory": "Aves", "kingdom": "Animalia",
     "phylum": "Chordata", "class": "Aves", "order": "Passeriformes", "family": "Turdidae",
     "genus": "Turdus"},
    {"id": 1, "name": "Quercus alba", "supercategory": "Plantae", "kingdom": "Plantae",
     "phylum": "Tracheophyta", "class": "Magnoliopsida", "order": "Fagales",
     "family": "Fagaceae", "genus": "Quercus"},
]  # fmt: skip


def make_2018(root: Path, *, categories: bool = True) -> Path:
    folder = root / "inat2018"

    def image(i: int) -> dict[str, Any]:
        return {"id": i, "width": 800, "height": 533, "file_name": f"train_val2018/Aves/0/{i}.jpg",
                "license": 2, "rights_holder": "someone"}  # fmt: skip

    train = coco([image(1), image(2)], [ann(0, 1, 0), ann(1, 2, 1)], CATS_2018_OBFUSCATED)
    val = coco([image(3)], [ann(0, 3, 1)], CATS_2018_OBFUSCATED)
    test = coco([image(4)], None, CATS_2018_OBFUSCATED)
    write_tar(folder / "train2018.json.tar.gz", {"train2018.json": dumps(train)})
    write_tar(folder / "val2018.json.tar.gz", {"val2018.json": dumps(val)})
    write_tar(folder / "test2018.json.tar.gz", {"test2018.json": dumps(test)})
    locs = [
        {"id": 1, "lat": 1.5, "lon": 2.5, "date": "2016-04-01 08:00:00+00:00", "user_id": 3},
        {"id": 2, "lat": 3.0, "lon": 4.0, "date": None, "user_id": "abc"},
    ]
    write_zip(folder / "inat2018_locations.zip", {
        "train2018_locations.json": dumps(locs),
        "val2018_locations.json": dumps([{"id": 3, "lat": None, "lon": None, "date": None,
                                          "user_id": None}]),
    })  # fmt: skip
    if categories:
        write_tar(folder / "categories.json.tar.gz", {"categories.json": dumps(CATS_2018)})
    return folder


def test_inat2018_tar_gz_with_real_category_names(tmp_path: Path) -> None:
    make_2018(tmp_path)
    source = Inat2018(tmp_path)
    t = source.read()
    r = rows_by_id(t)
    assert len(r) == 4 and t.column("split").to_pylist() == ["train", "train", "val", "test"]
    one = r["1"]
    assert (one["label_name"], one["species"], one["genus"], one["family"]) == (
        "Turdus migratorius", "Turdus migratorius", "Turdus", "Turdidae"
    )  # fmt: skip
    assert (one["kingdom"], one["phylum"], one["class"], one["order"]) == (
        "Animalia", "Chordata", "Aves", "Passeriformes"
    )  # fmt: skip
    assert (one["lat"], one["lon"], one["user_id"]) == (1.5, 2.5, "3")
    assert r["2"]["user_id"] == "abc"  # numbers and text mixed: all read as text
    assert r["2"]["label_name"] == "Quercus alba"
    assert r["3"]["lat"] is None and r["4"]["label"] is None
    assert "categories_obfuscated" not in source.counts
    assert source.counts["images_without_location"] == 2


def test_inat2018_without_real_names_counts_the_obfuscation(tmp_path: Path) -> None:
    make_2018(tmp_path, categories=False)
    source = Inat2018(tmp_path, splits=["train"])
    t = source.read()
    assert t.column("label_name").to_pylist() == ["8f3a", "22b1"]
    assert source.counts["categories_obfuscated"] == 1


# --------------------------------------------------------------------------------------------
# iNat2021


CATS_2021 = [
    {"id": 0, "name": "Lumbricus terrestris", "common_name": "Common Earthworm",
     "supercategory": "Animalia", "kingdom": "Animalia", "phylum": "Annelida",
     "class": "Clitellata", "order": "Haplotaxida", "family": "Lumbricidae",
     "genus": "Lumbricus", "specific_epithet": "terrestris",
     "image_dir_name": "00000_Animalia_Annelida_Clitellata_Haplotaxida_Lumbricidae_Lumbricus_"
                       "terrestris"},
    {"id": 1, "name": "Lygodium japonicum", "common_name": "Japanese climbing fern",
     "supercategory": "Plants", "kingdom": "Plantae", "phylum": "Tracheophyta",
     "class": "Polypodiopsida", "order": "Schizaeales", "family": "Lygodiaceae",
     "genus": "Lygodium", "specific_epithet": None,
     "image_dir_name": "00001_Plantae_Tracheophyta_Polypodiopsida_Schizaeales_Lygodiaceae_"
                       "Lygodium_japonicum"},
]  # fmt: skip


def img2021(i: int, cat: int, *, date: str = "2007-10-31 00:00:00+00:00",
            lat: float | None = -21.93073, lon: float | None = 114.12239,
            unc: int | None = 977, holder: str = "megatherium",
            split: str = "train") -> dict[str, Any]:  # fmt: skip
    return {"id": i, "width": 284, "height": 222,
            "file_name": f"{split}/{CATS_2021[cat]['image_dir_name']}/{i:08x}.jpg",
            "license": 2, "rights_holder": holder, "date": date, "latitude": lat,
            "longitude": lon, "location_uncertainty": unc}  # fmt: skip


TRAIN_2021 = coco(
    [
        img2021(0, 0),
        img2021(1, 1, date="2018-09-18 10:52:00+00:00", unc=None, holder="Glenn Caspers"),
        img2021(2, 0, lat=None, lon=None, unc=None, holder=""),  # private location, no user
        img2021(3, 1, unc=-80, date="yesterday"),  # junk uncertainty, unparseable date
        img2021(4, 0, unc=106807033, date="2019-05-04T23:30:00+05:45"),
    ],
    [ann(i, i, c) for i, c in enumerate([0, 1, 0, 1, 0])],
    CATS_2021,
)
VAL_2021 = coco([img2021(5, 1, split="val")], [ann(0, 5, 1)], CATS_2021)
TEST_2021 = coco([img2021(6, 0, split="public_test")], None, CATS_2021)


def make_2021(root: Path, train: dict[str, Any] | bytes = TRAIN_2021, *, tar: bool = True) -> Path:
    folder = root / "inat2021"
    folder.mkdir(parents=True, exist_ok=True)
    docs: dict[str, dict[str, Any] | bytes] = {
        "train": train,
        "val": VAL_2021,
        "public_test": TEST_2021,
    }
    for name, doc in docs.items():
        data = doc if isinstance(doc, bytes) else dumps(doc)
        if tar:
            write_tar(folder / f"{name}.json.tar.gz", {f"{name}.json": data})
        else:
            (folder / f"{name}.json").write_bytes(data)
    return folder


def test_inat2021_locations_users_dates_and_junk_uncertainty(tmp_path: Path) -> None:
    make_2021(tmp_path)
    source = Inat2021(tmp_path)
    t = source.read()
    r = rows_by_id(t)
    assert t.column("split").to_pylist() == ["train"] * 5 + ["val", "test"]
    zero = r["0"]
    assert (zero["lat"], zero["lon"], zero["location_uncertainty_m"]) == (-21.93073, 114.12239, 977)
    assert zero["taken_at"] == datetime(2007, 10, 31, tzinfo=UTC)
    assert zero["user_id"] == "megatherium" and zero["license"] == "Attribution License"
    assert (zero["label"], zero["label_name"], zero["species"]) == (
        0, "Lumbricus terrestris", "Lumbricus terrestris"
    )  # fmt: skip
    assert (zero["phylum"], zero["class"], zero["order"], zero["family"], zero["genus"]) == (
        "Annelida", "Clitellata", "Haplotaxida", "Lumbricidae", "Lumbricus"
    )  # fmt: skip
    assert zero["supercategory"] == "Animalia"
    assert json.loads(zero["extra"]) == {"common_name": "Common Earthworm"}
    assert r["1"]["species"] == "Lygodium japonicum"  # no epithet: the name
    assert r["1"]["location_uncertainty_m"] is None and r["1"]["user_id"] == "Glenn Caspers"
    assert r["2"]["lat"] is None and r["2"]["user_id"] is None
    assert r["3"]["location_uncertainty_m"] == -80 and r["3"]["taken_at"] is None
    assert json.loads(r["3"]["extra"]) == {
        "common_name": "Japanese climbing fern", "date_raw": "yesterday"
    }  # fmt: skip
    assert r["4"]["location_uncertainty_m"] == 106807033
    assert r["4"]["taken_at"] == datetime(2019, 5, 4, 17, 45, tzinfo=UTC)
    assert r["6"]["label"] is None and r["6"]["lat"] == -21.93073
    assert source.counts == {
        "images_without_location_uncertainty": 2,
        "location_uncertainty_invalid": 2,
        "images_without_location": 1,
        "unparseable_date": 1,
        "images_without_user": 1,
    }
    assert conform(t).num_rows == 7


def test_inat2021_nan_coordinates_and_extracted_files(tmp_path: Path) -> None:
    text = dumps(TRAIN_2021).replace(b'"latitude": -21.93073', b'"latitude": NaN', 1)
    make_2021(tmp_path, text, tar=False)
    source = Inat2021(tmp_path, splits=["train"])
    t = source.read()
    assert t.column("lat")[0].as_py() is None
    assert source.counts["nan_coordinates"] == 1
    assert source.counts["images_without_location"] == 2


def test_inat2021_test_split_without_categories(tmp_path: Path) -> None:
    folder = make_2021(tmp_path)
    bare = {"images": TEST_2021["images"]}
    write_tar(folder / "public_test.json.tar.gz", {"public_test.json": dumps(bare)})
    t = Inat2021(tmp_path, splits=["test"]).read()
    assert t.column("label_name").null_count == 1 and t.column("user_id")[0].as_py()
    assert t.column("extra").to_pylist() == [None]


def test_inat2021_train_mini_is_optional(tmp_path: Path) -> None:
    folder = make_2021(tmp_path)
    write_tar(folder / "train_mini.json.tar.gz", {"train_mini.json": dumps(VAL_2021)})
    t = Inat2021(tmp_path, splits=["train_mini"]).read()
    assert t.column("split").to_pylist() == ["train_mini"]


# --------------------------------------------------------------------------------------------
# The fast path for images (cut at "}, {", checked) against the exact walk


def read_both(
    root: Path, cls: type[Inat2017 | Inat2021] = Inat2021, **kw: Any
) -> tuple[pa.Table, pa.Table, Inat2017 | Inat2021, Inat2017 | Inat2021]:
    fast = cls(root, **kw)
    exact = cls(root, **kw)
    exact.guess = False
    return fast.read(), exact.read(), fast, exact


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    from geoaware.sources.inat import reader, stream

    calls = {"stretch": 0, "exact": 0}
    stretch = stream.scan_stretch
    read_images = reader.InatSource._read_images

    def spy_stretch(*args: Any, **kwargs: Any) -> Any:
        calls["stretch"] += 1
        return stretch(*args, **kwargs)

    def spy_read(self: Any, *args: Any, guess: bool, **kwargs: Any) -> Any:
        calls["exact"] += not guess
        return read_images(self, *args, guess=guess, **kwargs)

    monkeypatch.setattr(reader, "scan_stretch", spy_stretch)
    monkeypatch.setattr(reader.InatSource, "_read_images", spy_read)
    return calls


def test_fast_path_matches_the_exact_walk(tmp_path: Path, spies: dict[str, int]) -> None:
    make_2021(tmp_path)
    fast, exact, a, b = read_both(tmp_path)
    assert fast.equals(exact) and a.counts == b.counts
    assert spies == {"stretch": 0, "exact": 3}  # only the exact reader walked exactly


@pytest.mark.parametrize("block_size", [1, 5, 64, 333])
def test_fast_path_with_tiny_blocks(tmp_path: Path, spies: dict[str, int], block_size: int) -> None:
    make_2021(tmp_path, tar=False)
    fast = Inat2021(tmp_path, splits=["train"])
    fast.block_size, fast.chunk_bytes = block_size, 300
    exact = Inat2021(tmp_path, splits=["train"])
    exact.guess = False
    assert fast.read().equals(exact.read())
    assert spies == {"stretch": 0, "exact": 1}


@pytest.mark.parametrize(
    ("holder", "expected"),
    [
        ("a}, {b", {"stretch": 1, "exact": 1}),  # a piece refused: the rest walked exactly
        ('x}], "n": [1], "y', {"exact": 2}),  # a wrong end: all read again
        ("}]", {"stretch": 0, "exact": 1}),  # not followed by ',' or '}': no guess made
    ],
)
def test_fast_path_falls_back_on_separators_inside_strings(
    tmp_path: Path, spies: dict[str, int], holder: str, expected: dict[str, int]
) -> None:
    images = [dict(im) for im in TRAIN_2021["images"]]
    images[2]["rights_holder"] = holder
    make_2021(tmp_path, coco(images, TRAIN_2021["annotations"], CATS_2021))
    fast, exact, _, _ = read_both(tmp_path, splits=["train"])
    assert fast.equals(exact)
    assert fast.column("user_id")[2].as_py() == holder
    assert {k: spies[k] for k in expected} == expected


@pytest.mark.parametrize("style", [{"indent": 1}, {"separators": (",", ":")}])
def test_fast_path_falls_back_on_other_layouts(tmp_path: Path, style: dict[str, Any]) -> None:
    make_2021(tmp_path, json.dumps(TRAIN_2021, **style).encode())
    fast, exact, _, _ = read_both(tmp_path, splits=["train"])
    assert fast.equals(exact) and fast.num_rows == 5


def test_fast_path_in_small_pieces_and_errors_after_good_pieces(
    tmp_path: Path, spies: dict[str, int]
) -> None:
    make_2017(tmp_path)
    fast = Inat2017(tmp_path, splits=["train"])
    fast.chunk_bytes = 120  # a piece per record or two
    exact = Inat2017(tmp_path, splits=["train"])
    exact.guess = False
    assert fast.read().equals(exact.read())
    text = dumps(TRAIN_2017).replace(b'{"id": 13, ', b'{"idx": 13, ')
    make_2017(tmp_path, {"train2017.json": text})
    fast.counts = {}
    with pytest.raises(InputFileError, match=r"record images\[3\], field 'id': missing required"):
        fast.read()
    assert spies["stretch"] == 1


# --------------------------------------------------------------------------------------------
# Dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-05-01 10:23:00+00:00", datetime(2017, 5, 1, 10, 23, tzinfo=UTC)),
        ("2011-06-03 08:32:21", datetime(2011, 6, 3, 8, 32, 21, tzinfo=UTC)),
        ("2010-07-17", datetime(2010, 7, 17, tzinfo=UTC)),
        ("2012-01-01T05:00:00Z", datetime(2012, 1, 1, 5, tzinfo=UTC)),
        ("2012-01-01 05:00", datetime(2012, 1, 1, 5, tzinfo=UTC)),
        ("2012-01-01 05:00:00+0530", datetime(2011, 12, 31, 23, 30, tzinfo=UTC)),
        ("2012-01-01 05:00:00-03", datetime(2012, 1, 1, 8, tzinfo=UTC)),
        ("2012-01-01 05:00:00-04:56:02", datetime(2012, 1, 1, 9, 56, 2, tzinfo=UTC)),
        ("2012-01-01 05:00:00.25+01:00", datetime(2012, 1, 1, 4, 0, 0, 250000, tzinfo=UTC)),
        ("2016-02-29", datetime(2016, 2, 29, tzinfo=UTC)),
        ("  2016-02-29 ", datetime(2016, 2, 29, tzinfo=UTC)),
        ("2019/05/04", datetime(2019, 5, 4, tzinfo=UTC)),
        ("2017-02-29", None),
        ("2017-13-01", None),
        ("2017-05-01 25:00:00", None),
        ("2017-05-01 10:00:00+19:00", None),
        ("May 2017", None),
    ],
)
def test_parse_timestamps(text: str, expected: datetime | None) -> None:
    ts, missing, bad = parse_timestamps(pa.array([text]))
    assert ts.to_pylist() == [expected]
    assert (missing, bad) == (0, int(expected is None))


def test_parse_timestamps_nulls_empty_and_chunked() -> None:
    values = pa.chunked_array([["2010-07-17", None], ["", "x"]])
    ts, missing, bad = parse_timestamps(values)
    assert ts.null_count == 3 and (missing, bad) == (2, 1)
    assert parse_timestamps(pa.array([], pa.string()))[0].type == pa.timestamp("us", tz="UTC")


# --------------------------------------------------------------------------------------------
# The streaming scanner against json.loads


def test_scanner_matches_json_loads_at_any_block_size() -> None:
    rng = random.Random(7)
    alphabet = ["a", "{", "}", "[", "]", '"', "\\", ",", ":", " ", "é", "\n"]
    spec = RecordSpec("r", [Field("id", pa.int64(), required=True, nullable=False),
                            Field("s", pa.string())])  # fmt: skip
    for _ in range(80):
        records = [
            {"id": i, "s": "".join(rng.choice(alphabet) for _ in range(rng.randrange(8))),
             "deep": {"x": [1, {"y": "]}"}]}}
            for i in range(rng.randrange(6))
        ]  # fmt: skip
        doc = {"info": {"q": "[{"}, "images": records, "n": [1, [2]], "m": 3}
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 2]))
        data = text.encode()
        scanner = JsonScanner(
            io.BytesIO(data), "t.json", {"images"},
            block_size=rng.choice([1, 3, 16, 4096]), chunk_bytes=rng.choice([1, 50, 1 << 20]),
        )  # fmt: skip
        chunks = list(scanner)
        got = [row for c in chunks for row in decode_records(c, spec, "t.json").to_pylist()]
        assert got == [{"id": r["id"], "s": r["s"]} for r in records]
        assert scanner.arrays == {"images": len(records), "n": 0}
        assert scanner.values == {"info": {"q": "[{"}, "m": 3}
        again = list(reload(io.BytesIO(data), [c.ref() for c in chunks]))
        assert [c.data for c in again] == [c.data for c in chunks]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "empty file"),
        (b"  42", "not a JSON object or array"),
        (b'{"images": [{"id": 1}]} x', "data after the end"),
        (b'{"images": [{"id": 1}]]', "mismatched"),
        (b'{"images": [{"id": 1}]}}', "data after the end"),
        (b'{"images": [{"id": 1}}', "mismatched"),
        (b'{"images" [{"id": 1}]}', "no key before the array"),
        (b'{"a": 1 "images": [{"id": 1}]}', "malformed JSON outside the record arrays"),
        (b'{"images": [{"id": "a\\"]}', "truncated: the file ends inside a string"),
        (b'{"images": [,{"id": 1}]}', r"record images\[0\]: unexpected ','"),
    ],
)
def test_scanner_errors(text: bytes, message: str) -> None:
    with pytest.raises(InputFileError, match=rf"^doc.json.*{message}"):
        list(JsonScanner(io.BytesIO(text), "doc.json", {"images"}, block_size=4))


def test_json_objects_escapes_and_skips_nulls() -> None:
    out = json_objects(
        {"a": pa.array(['q"\\', "tab\there", None]), "b": pa.array([1.5, None, None])}
    )
    assert [json.loads(x) if x else x for x in out.to_pylist()] == [
        {"a": 'q"\\', "b": 1.5}, {"a": "tab\there"}, None
    ]  # fmt: skip


def test_json_objects_null_handling() -> None:
    # a null value is left out of its row; NaN and infinities too; a row left with nothing is
    # null (never "{}"), so the catalog's extra stays null where a source has nothing more
    out = json_objects(
        {
            "f": pa.array([float("nan"), float("inf"), None, 0.0]),
            "s": pa.array([None, None, None, ""]),
            "i": pa.chunked_array([[None, 2], [None, None]], pa.int64()),
        }
    ).to_pylist()
    assert out == [None, '{"i":2}', None, '{"f":0,"s":""}']
    assert json_objects({"x": pa.nulls(3, pa.string())}).to_pylist() == [None] * 3
    assert json_objects({}).to_pylist() == []


# --------------------------------------------------------------------------------------------
# The federated-learning tables


def test_user_tables_round_trip_with_the_writer(tmp_path: Path) -> None:
    from geoaware.construct.stats import write_inat_user_tables

    catalog = pa.table(
        {
            "image_id": ["10", "11", "12", "13", "14"],
            "user_id": ["ann", "bo, jr.", None, "ann", 'say "x"'],
            "width": pa.array([500, 640, 300, None, 800], pa.int32()),
            "height": pa.array([375, 480, 200, 600, None], pa.int32()),
            "file_name": ["train/a/1.jpg", "train/b/2.jpg", "c.jpg", "train/a/4.jpg", "d.jpg"],
            "phylum": ["Chordata", "Arthropoda", "Chordata", "Chordata", None],
            "class": ["Aves", "Insecta", "Aves", "Aves", None],
            "order": ["Passeriformes", "Lepidoptera", "X", "Anseriformes", None],
            "species": ["Turdus migratorius", "Danaus plexippus", "x y", "Anas acuta", "Zz"],
        }
    )
    info_csv, users_csv = write_inat_user_tables(catalog, tmp_path)
    images = read_inat2021_user_images(info_csv)
    with_user = catalog.filter(pa.compute.is_valid(catalog.column("user_id")))
    assert images.num_rows == with_user.num_rows == 4
    for column in ("image_id", "user_id", "width", "height", "file_name", "phylum", "class"):
        assert images.column(column).to_pylist() == with_user.column(column).to_pylist(), column
    assert images.column("label_name").to_pylist() == with_user.column("species").to_pylist()
    assert images.column("genus").to_pylist() == ["Turdus", "Danaus", "Anas", "Zz"]
    users = read_inat2021_users(users_csv).to_pylist()
    assert users == [
        {"user_id": "ann", "images": 2, "phyla": 1, "classes": 1, "orders": 2, "species": 2},
        {"user_id": "bo, jr.", "images": 1, "phyla": 1, "classes": 1, "orders": 1, "species": 1},
        {"user_id": 'say "x"', "images": 1, "phyla": 0, "classes": 0, "orders": 0, "species": 1},
    ]


USER_IMAGES_CSV = (
    ",image_id,user,width,height,file_name,phylum,class,order,species,category_id\n"
    "0,0,megatherium,284,222,train/00000_x/a.jpg,Annelida,Clitellata,Haplotaxida,"
    "Lumbricus terrestris,0\n"
    "1,1,Glenn Caspers,500,335,train/00001_y/b.jpg,Tracheophyta,Polypodiopsida,Schizaeales,"
    "Lygodium japonicum,1\n"
)


def test_read_user_images_csv(tmp_path: Path) -> None:
    path = tmp_path / "training_image_info.csv"
    path.write_text(USER_IMAGES_CSV)
    t = read_inat2021_user_images(path)
    assert t.num_rows == 2
    row = t.to_pylist()[1]
    assert row["image_id"] == "1" and row["user_id"] == "Glenn Caspers"
    assert (row["width"], row["height"], row["label"]) == (500, 335, 1)
    assert (row["genus"], row["species"], row["label_name"]) == (
        "Lygodium", "Lygodium japonicum", "Lygodium japonicum"
    )  # fmt: skip
    assert (row["source"], row["split"], row["order"]) == ("inat2021", "train", "Schizaeales")
    assert conform(t).num_rows == 2


def test_read_user_images_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "training_image_info.csv"
    path.write_text(USER_IMAGES_CSV.replace(",user,", ",owner,"))
    with pytest.raises(InputFileError, match=r"record line 1, field 'user': missing column"):
        read_inat2021_user_images(path)
    path.write_text(USER_IMAGES_CSV.replace(",500,", ",wide,"))
    with pytest.raises(InputFileError, match=r"record line 3, field 'width': 'wide' is not"):
        read_inat2021_user_images(path)
    with pytest.raises(InputFileError, match="no such file"):
        read_inat2021_user_images(tmp_path / "nope.csv")


def test_read_users_csv(tmp_path: Path) -> None:
    path = tmp_path / "images_and_categories_per_users.csv"
    path.write_text("user,image_id,phylum,class,order,species\nann,12,2,3,4,9\nbo b,1,1,1,1,1\n")
    t = read_inat2021_users(path)
    assert t.column_names == ["user_id", "images", "phyla", "classes", "orders", "species"]
    assert t.column("user_id").to_pylist() == ["ann", "bo b"]
    assert t.schema.field("images").type == pa.int64()
    path.write_text(",n_images,n_phylum,n_class,n_order,n_species\n7,1,1,1,1,1\n")
    assert read_inat2021_users(path).to_pylist() == [
        {"user_id": "7", "images": 1, "phyla": 1, "classes": 1, "orders": 1, "species": 1}
    ]
    path.write_text("user,images,phylum,class,order\nann,1,1,1,1\n")
    with pytest.raises(InputFileError, match=r"field 'species': no column for species"):
        read_inat2021_users(path)
    path.write_text("user,images,phylum,class,order,species\nann,1.5,1,1,1,1\n")
    with pytest.raises(InputFileError, match=r"record line 2, field 'images'"):
        read_inat2021_users(path)

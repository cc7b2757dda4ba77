"""The iNat competition releases, one class each: their files, URLs, checksums and splits.

Each class also says how its categories become the catalog's taxonomy columns and where its
images' location, date and user come from (:meth:`InatSource._locate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from geoaware.errors import DatasetNotFoundError, InputFileError
from geoaware.sources.download import RemoteFile
from geoaware.sources.inat.coco import Lookup, SplitContext, concat_records, int_array, true_count
from geoaware.sources.inat.reader import InatSource, Split
from geoaware.sources.inat.records import (
    CATEGORY2017_SPEC,
    CATEGORY2018_SPEC,
    CATEGORY2021_SPEC,
    IMAGE2021_SPEC,
    RANKS,
    words,
)
from geoaware.sources.inat.stream import JsonFile, JsonScanner, RecordSpec, decode_records
from geoaware.typing import PathLike

__all__ = ["Inat2017", "Inat2018", "Inat2021", "inat2017_category_ids"]

BUCKET = "ml-inat-competition-datasets"
"""The AWS Open Data bucket of the competitions (free HTTPS and S3 access)."""
REQUESTER_PAYS_BUCKET = "inaturalist-datasets"
"""The 2020 requester-pays copy of the 2017 and 2018 files."""
MAX_UNCERTAINTY_M = 20_037_508.0
"""Half the equator: a larger location uncertainty (in metres) says nothing."""

# 2017 super-categories and the ranks they name (Mollusca is a phylum, Animalia a kingdom)
_SUPER_RANKS: dict[str, tuple[str | None, str | None, str | None]] = {
    "Plantae": ("Plantae", None, None),
    "Fungi": ("Fungi", None, None),
    "Chromista": ("Chromista", None, None),
    "Protozoa": ("Protozoa", None, None),
    "Animalia": ("Animalia", None, None),
    "Mollusca": ("Animalia", "Mollusca", None),
    "Insecta": ("Animalia", "Arthropoda", "Insecta"),
    "Arachnida": ("Animalia", "Arthropoda", "Arachnida"),
    "Aves": ("Animalia", "Chordata", "Aves"),
    "Reptilia": ("Animalia", "Chordata", "Reptilia"),
    "Mammalia": ("Animalia", "Chordata", "Mammalia"),
    "Amphibia": ("Animalia", "Chordata", "Amphibia"),
    "Actinopterygii": ("Animalia", "Chordata", "Actinopterygii"),
}


def _remote(year: int, name: str, md5: str | None = None, *, requester_pays: bool) -> RemoteFile:
    urls = [
        f"https://{BUCKET}.s3.amazonaws.com/{year}/{name}",
        f"s3://{BUCKET}/{year}/{name}",
    ]
    if requester_pays:
        urls.append(f"s3://{REQUESTER_PAYS_BUCKET}/{year}/{name}")
    return RemoteFile(path=f"inat{year}/{name}", urls=tuple(urls), md5=md5, extract=True)


class Inat2017(InatSource):
    """The iNaturalist 2017 competition (5,089 categories; 579,184 train, 95,986 val images).

    Parameters
    ----------
    root
        Folder with (or to receive) the release; its files go under ``root/inat2017/``.
    splits
        Splits to read, from ``train``, ``val`` and ``test`` (default: all three).
    batch_rows
        About how many images each batch of :meth:`read_batches` holds.
    strict
        Whether a location record naming no image of its split is an error (else counted).

    Examples
    --------
    >>> source = Inat2017("data", splits=["val"])
    >>> source.fetch(source.catalog_parts)  # doctest: +SKIP
    >>> source.read().num_rows  # doctest: +SKIP
    95986
    >>> sorted(Inat2017.files)[:3]
    ['locations', 'test_images', 'test_info']
    """

    name: ClassVar[str] = "inat2017"
    description: ClassVar[str] = (
        "iNaturalist 2017: 5,089 species, 675k train/val images with location, date, user"
    )
    year: ClassVar[int] = 2017
    files: ClassVar[dict[str, RemoteFile]] = {
        "train_val_images": _remote(  # 186 GB
            2017, "train_val_images.tar.gz", "7c784ea5e424efaec655bd392f87301f",
            requester_pays=True,
        ),
        "train_val_annotations": _remote(2017, "train_val2017.zip", requester_pays=True),
        "train_bboxes": _remote(2017, "train_2017_bboxes.zip", requester_pays=True),
        "val_bboxes": _remote(2017, "val_2017_bboxes.zip", requester_pays=True),
        "locations": _remote(
            2017, "inat2017_locations.zip", "afc1956f9a100b165b89f3923d040912",
            requester_pays=True,
        ),
        "test_images": _remote(  # 53 GB
            2017, "test2017.tar.gz", "7d9b096fa1cd94d67a0fa779ea301234", requester_pays=True
        ),
        "test_info": _remote(2017, "test2017.zip", requester_pays=True),
    }  # fmt: skip
    splits: ClassVar[dict[str, Split]] = {
        "train": Split(
            "train", "train_val_annotations", "train2017.json",
            locations=("locations", "train2017_locations.json"),
            bboxes=("train_bboxes", "train_2017_bboxes.json"),
        ),
        "val": Split(
            "val", "train_val_annotations", "val2017.json",
            locations=("locations", "val2017_locations.json"),
            bboxes=("val_bboxes", "val_2017_bboxes.json"),
        ),
        "test": Split("test", "test_info", "test2017.json", labelled=False),
    }  # fmt: skip
    default_splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    catalog_parts: ClassVar[tuple[str, ...]] = (
        "train_val_annotations", "train_bboxes", "val_bboxes", "locations", "test_info"
    )  # fmt: skip
    category_spec: ClassVar[RecordSpec] = CATEGORY2017_SPEC

    def _categories(self, table: pa.Table) -> pa.Table:
        names = table.column("name").combine_chunks()
        supers = table.column("supercategory").combine_chunks()
        ranks = [_SUPER_RANKS.get(s, (None, None, None)) for s in supers.to_pylist()]
        return pa.table(
            {
                "label_name": names,
                "kingdom": pa.array([r[0] for r in ranks], pa.string()),
                "phylum": pa.array([r[1] for r in ranks], pa.string()),
                "class": pa.array([r[2] for r in ranks], pa.string()),
                "genus": words(names, 1),
                "species": words(names, 2),
                "supercategory": supers,
            }
        )


class Inat2018(InatSource):
    """The iNaturalist 2018 competition (8,142 species; 437,513 train, 24,426 val images).

    Category names in the split files are obfuscated; fetch the ``categories`` part for the
    real ones. Parameters as for :class:`Inat2017`.

    Examples
    --------
    >>> Inat2018.files["train_annotations"].md5
    'bfa29d89d629cbf04d826a720c0a68b0'
    """

    name: ClassVar[str] = "inat2018"
    description: ClassVar[str] = (
        "iNaturalist 2018: 8,142 species, 462k train/val images with location, date, user"
    )
    year: ClassVar[int] = 2018
    files: ClassVar[dict[str, RemoteFile]] = {
        "train_val_images": _remote(  # 120 GB
            2018, "train_val2018.tar.gz", "b1c6952ce38f31868cc50ea72d066cc3",
            requester_pays=True,
        ),
        "train_annotations": _remote(
            2018, "train2018.json.tar.gz", "bfa29d89d629cbf04d826a720c0a68b0",
            requester_pays=True,
        ),
        "val_annotations": _remote(
            2018, "val2018.json.tar.gz", "f2ed8bfe3e9901cdefceb4e53cd3775d",
            requester_pays=True,
        ),
        "locations": _remote(
            2018, "inat2018_locations.zip", "1704763abc47b75820aa5a3d93c6c0f3",
            requester_pays=True,
        ),
        "categories": _remote(2018, "categories.json.tar.gz", requester_pays=True),
        "test_images": _remote(  # 40 GB
            2018, "test2018.tar.gz", "4b71d44d73e27475eefea68886c7d1b1", requester_pays=True
        ),
        "test_info": _remote(
            2018, "test2018.json.tar.gz", "fc717a7f53ac72ed8b250221a08a4502",
            requester_pays=True,
        ),
    }  # fmt: skip
    splits: ClassVar[dict[str, Split]] = {
        "train": Split(
            "train", "train_annotations", "train2018.json",
            locations=("locations", "train2018_locations.json"),
        ),
        "val": Split(
            "val", "val_annotations", "val2018.json",
            locations=("locations", "val2018_locations.json"),
        ),
        "test": Split("test", "test_info", "test2018.json", labelled=False),
    }  # fmt: skip
    default_splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    catalog_parts: ClassVar[tuple[str, ...]] = (
        "train_annotations", "val_annotations", "locations", "categories", "test_info"
    )  # fmt: skip
    category_spec: ClassVar[RecordSpec] = CATEGORY2018_SPEC

    def _categories(self, table: pa.Table) -> pa.Table:
        names = table.column("name").combine_chunks()
        columns = {"label_name": names}
        for rank in RANKS:
            columns[rank] = table.column(rank).combine_chunks()
        columns["species"] = names
        columns["supercategory"] = table.column("supercategory").combine_chunks()
        return pa.table(columns)

    def _categories_override(self) -> Lookup | None:
        try:
            doc = self.document("categories", "categories.json")
        except DatasetNotFoundError:
            self.count("categories_obfuscated", 1)
            return None
        table = self._read_table(doc, None, CATEGORY2018_SPEC)
        lookup = Lookup(
            int_array(table.column("id")), self._category_table(table), doc.where, "category"
        )
        dups = lookup.duplicates()
        if dups.size:
            raise InputFileError(
                doc.where, "duplicate category id", record=f"[{int(dups[0])}]", field="id"
            )
        return lookup


class Inat2021(InatSource):
    """The iNaturalist 2021 competition (10,000 species; 2.7M train, 100k val images).

    Images carry their own location, location uncertainty, date and user (``rights_holder``).
    ``splits`` may include ``train_mini`` (500k images, a subset of ``train``: reading both
    gives each of those images twice). Other parameters as for :class:`Inat2017`.

    Examples
    --------
    >>> source = Inat2021("data", splits=["val"])
    >>> source.fetch(["val_annotations"])  # doctest: +SKIP
    >>> source.read().column("user_id").null_count  # doctest: +SKIP
    0
    >>> Inat2021.splits["test"].member
    'public_test.json'
    """

    name: ClassVar[str] = "inat2021"
    description: ClassVar[str] = (
        "iNaturalist 2021: 10,000 species, 2.8M train/val images with location, date, user"
    )
    year: ClassVar[int] = 2021
    files: ClassVar[dict[str, RemoteFile]] = {
        "train_images": _remote(  # 224 GB
            2021, "train.tar.gz", "e0526d53c7f7b2e3167b2b43bb2690ed", requester_pays=False
        ),
        "train_annotations": _remote(
            2021, "train.json.tar.gz", "38a7bb733f7a09214d44293460ec0021", requester_pays=False
        ),
        "train_mini_images": _remote(  # 42 GB
            2021, "train_mini.tar.gz", "db6ed8330e634445efc8fec83ae81442", requester_pays=False
        ),
        "train_mini_annotations": _remote(
            2021, "train_mini.json.tar.gz", "395a35be3651d86dc3b0d365b8ea5f92",
            requester_pays=False,
        ),
        "val_images": _remote(  # 8.4 GB
            2021, "val.tar.gz", "f6f6e0e242e3d4c9569ba56400938afc", requester_pays=False
        ),
        "val_annotations": _remote(
            2021, "val.json.tar.gz", "4d761e0f6a86cc63e8f7afc91f6a8f0b", requester_pays=False
        ),
        "test_images": _remote(  # 43 GB
            2021, "public_test.tar.gz", "7124b949fe79bfa7f7019a15ef3dbd06", requester_pays=False
        ),
        "test_info": _remote(
            2021, "public_test.json.tar.gz", "7a9413db55c6fa452824469cc7dd9d3d",
            requester_pays=False,
        ),
    }  # fmt: skip
    splits: ClassVar[dict[str, Split]] = {
        "train": Split("train", "train_annotations", "train.json"),
        "train_mini": Split("train_mini", "train_mini_annotations", "train_mini.json"),
        "val": Split("val", "val_annotations", "val.json"),
        "test": Split("test", "test_info", "public_test.json", labelled=False),
    }
    default_splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    catalog_parts: ClassVar[tuple[str, ...]] = ("train_annotations", "val_annotations", "test_info")
    image_spec: ClassVar[RecordSpec] = IMAGE2021_SPEC
    category_spec: ClassVar[RecordSpec] = CATEGORY2021_SPEC
    category_extra: ClassVar[tuple[str, ...]] = ("common_name",)

    def _categories(self, table: pa.Table) -> pa.Table:
        names = table.column("name").combine_chunks()
        columns = {"label_name": names}
        for rank in RANKS:
            columns[rank] = table.column(rank).combine_chunks()
        binomial = pc.binary_join_element_wise(
            columns["genus"], table.column("specific_epithet").combine_chunks(), " "
        )
        columns["species"] = pc.coalesce(binomial, names)
        columns["supercategory"] = table.column("supercategory").combine_chunks()
        columns["common_name"] = table.column("common_name").combine_chunks()
        return pa.table(columns)

    def _locate(self, images: pa.Table, ctx: SplitContext) -> dict[str, pa.Array]:
        unc = images.column("location_uncertainty").combine_chunks()
        self.count("images_without_location_uncertainty", unc.null_count)
        finite = pc.is_finite(unc)
        invalid = pc.or_(
            pc.invert(finite),
            pc.or_(pc.less(unc, 0.0), pc.greater(unc, MAX_UNCERTAINTY_M)),
        ).fill_null(False)
        self.count("location_uncertainty_invalid", true_count(invalid))
        return {
            "lat": images.column("latitude").combine_chunks(),
            "lon": images.column("longitude").combine_chunks(),
            "location_uncertainty_m": unc,
            "date": images.column("date").combine_chunks(),
            "user_id": images.column("rights_holder").combine_chunks(),
        }

    def _image_extra(self, images: pa.Table) -> dict[str, pa.Array]:
        return {}


# --------------------------------------------------------------------------------------------
# The iNat2017 category vocabulary


def inat2017_category_ids(root_or_json: PathLike, member: str = "train2017.json") -> dict[str, int]:
    """Map each iNat2017 category's scientific name to its category id.

    Parameters
    ----------
    root_or_json
        An :class:`Inat2017` root (the annotations are looked up as :meth:`Inat2017.read`
        does), a COCO JSON file of the release (``train2017.json``, ``val2017.json``, a
        bounding-box file) or its zip, or a plain JSON list of ``{id, name}`` records.
    member
        The JSON file to read inside a zip.

    Raises
    ------
    InputFileError
        If the document has no categories, or a name is given two ids.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train2017.json"
    >>> _ = p.write_text('{"images": [], "categories": [{"id": 3, "name": "Vireo griseus", '
    ...                  '"supercategory": "Aves"}]}')
    >>> inat2017_category_ids(p)
    {'Vireo griseus': 3}
    """
    path = Path(root_or_json)
    if path.is_dir():
        doc = Inat2017(path).document("train_val_annotations", member)
    elif path.suffix.lower() in (".zip", ".gz", ".tgz", ".tar"):
        doc = JsonFile(path, member)
    else:
        doc = JsonFile(path)
    tables = []
    with doc.open() as fh:
        scanner = JsonScanner(fh, doc.where, {"categories", None})
        for chunk in scanner:
            tables.append(decode_records(chunk, CATEGORY2017_SPEC, doc.where))
    if "categories" not in scanner.arrays and None not in scanner.arrays:
        raise InputFileError(doc.where, "missing key 'categories'", field="categories")
    table = concat_records(tables, CATEGORY2017_SPEC)
    result: dict[str, int] = {}
    for i, (name, cid) in enumerate(
        zip(table.column("name").to_pylist(), table.column("id").to_pylist(), strict=True)
    ):
        if result.get(name, cid) != cid:
            key = "categories" if "categories" in scanner.arrays else ""
            raise InputFileError(
                doc.where,
                f"name {name!r} has two ids ({result[name]} and {cid})",
                record=f"{key}[{i}]",
                field="name",
            )
        result[name] = cid
    return result

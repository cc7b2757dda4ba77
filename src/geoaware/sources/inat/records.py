"""The record types of the iNat competition files (what :mod:`.stream` decodes), and names.

Examples
--------
>>> IMAGE_SPEC.schema.names[:2]
['id', 'file_name']
>>> words(pa.array(["Vireo griseus", "Vireo"]), 2).to_pylist()
['Vireo griseus', None]
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from geoaware.sources.inat.stream import Field, RecordSpec

RANKS = ("kingdom", "phylum", "class", "order", "family", "genus")
"""The taxonomy ranks of the 2018 and 2021 categories."""

IMAGE_FIELDS = [
    Field("id", pa.int64(), required=True, nullable=False),
    Field("file_name", pa.string(), required=True, nullable=False),
    Field("width", pa.int32()),
    Field("height", pa.int32()),
    Field("license", pa.int64()),
    Field("rights_holder", pa.string(), loose=True),
]
IMAGE_SPEC = RecordSpec("image", IMAGE_FIELDS)
IMAGE2021_SPEC = RecordSpec(
    "image2021",
    [
        *IMAGE_FIELDS,
        Field("date", pa.string()),
        Field("latitude", pa.float64()),
        Field("longitude", pa.float64()),
        Field("location_uncertainty", pa.float64()),
    ],
)
ANNOTATION_SPEC = RecordSpec(
    "annotation",
    [
        Field("image_id", pa.int64(), required=True, nullable=False),
        Field("category_id", pa.int64(), required=True, nullable=False),
    ],
)
BBOX_SPEC = RecordSpec(
    "bbox",
    [
        Field("image_id", pa.int64(), required=True, nullable=False),
        Field("bbox", pa.list_(pa.float64()), required=True, nullable=False),
        Field("area", pa.float64()),
    ],
)
LOCATION_SPEC = RecordSpec(
    "location",
    [
        Field("id", pa.int64(), required=True, nullable=False),
        Field("lat", pa.float64()),
        Field("lon", pa.float64()),
        Field("date", pa.string()),
        Field("user_id", pa.string(), loose=True),
    ],
)
LICENSE_SPEC = RecordSpec(
    "license",
    [Field("id", pa.int64(), required=True, nullable=False), Field("name", pa.string())],
)
_CATEGORY_BASE = [
    Field("id", pa.int64(), required=True, nullable=False),
    Field("name", pa.string(), required=True, nullable=False),
    Field("supercategory", pa.string()),
]
CATEGORY2017_SPEC = RecordSpec("category2017", _CATEGORY_BASE)
CATEGORY2018_SPEC = RecordSpec(
    "category2018", [*_CATEGORY_BASE, *(Field(r, pa.string()) for r in RANKS)]
)
CATEGORY2021_SPEC = RecordSpec(
    "category2021",
    [
        *_CATEGORY_BASE,
        *(Field(r, pa.string()) for r in RANKS),
        Field("specific_epithet", pa.string()),
        Field("common_name", pa.string()),
        Field("image_dir_name", pa.string()),
    ],
)


def words(names: pa.Array, count: int) -> pa.Array:
    """Return the first ``count`` words of each name (null when it has fewer)."""
    parts = pc.split_pattern(names, " ")
    enough = pc.greater_equal(pc.list_value_length(parts), count)
    first = pc.list_slice(parts, 0, count)
    joined = pc.binary_join(first, " ")
    return pc.if_else(enough, joined, pa.scalar(None, pa.string()))

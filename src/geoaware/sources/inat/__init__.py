"""The iNaturalist species-classification competitions (2017, 2018, 2021) as catalog sources.

Released by Visipedia (``github.com/visipedia/inat_comp``) on the AWS Open Data bucket
``ml-inat-competition-datasets``; the 2017 and 2018 files are also in the older requester-pays
bucket ``inaturalist-datasets``. Each split is one COCO-style JSON document (``images``,
``categories``, ``annotations``, ``licenses``; the test split has no ``annotations``), shipped
zipped (2017) or as ``.json.tar.gz`` (2018, 2021). Quirks handled here:

* a document is read already extracted under ``root`` (``<root>/inat2017/train2017.json``, or
  one folder deeper) or, failing that, straight from its archive, streamed: the 2.7 million
  image records of iNat2021's ``train.json`` are decoded in chunks of whole records into Arrow
  columns (see :mod:`geoaware.sources.inat.stream`), never into one Python object each. iNat
  writes ``images`` before the ``annotations`` they are joined with, so a first pass reads the
  other arrays while a worker thread already decodes the first image records, and the images
  are joined in a second pass (the keys may come in any order). Reading runs in background
  threads one batch ahead of the caller, so it overlaps with writing the catalog;
* 2017 and 2018 locations are separate files (``train2017_locations.json``, ...): a JSON list
  of ``{id, lat, lon, date, user_id}`` with ``null`` where unknown, joined on the image id. An
  image without a location record keeps a null location (counted
  ``images_without_location_record``); a location record whose id is no image of the split
  is an error (with ``strict=False``: counted ``locations_without_image``);
* 2017 bounding boxes (``train_2017_bboxes.json``, ``val_2017_bboxes.json``: COCO annotations
  with ``bbox [x, y, w, h]`` in pixels, ``area`` = w * h / 2 as published, ``iscrowd`` 0) become
  a list per image, in file order; an image without boxes has a null list;
* 2017 categories carry only ``name`` and ``supercategory``: ``genus`` is the name's first word,
  ``species`` its first two (null for a genus-level category), and kingdom, phylum and class
  follow from the super-category where it is one (``Aves`` is a class of Chordata, ...);
* 2018 category names are obfuscated in the split files; the un-obfuscated ``categories.json``
  replaces them when it has been fetched (otherwise counted ``categories_obfuscated``);
* 2021 images carry ``latitude``, ``longitude``, ``location_uncertainty`` (metres; null when the
  observation's location is private, and junk such as -80 or 106807033 as published: kept
  as is, counted ``location_uncertainty_invalid`` when negative, not finite or more than half
  the equator), ``date`` and ``rights_holder`` (the user); species is ``genus`` plus
  ``specific_epithet``, or the name;
* dates come as ``2017-05-01 10:23:00+00:00``, ``2011-06-03 08:32:21``, ``2010-07-17`` or
  with other offsets: all become UTC; an unparseable one is null (counted
  ``unparseable_date``) and its text is kept in ``extra["date_raw"]``; ``NaN`` coordinates are
  null (counted ``nan_coordinates``);
* ids stay the release's integers, written as strings (``image_id``); ``label`` is the
  category id and ``label_name`` its name; ``license`` is the licence's name; ``extra`` holds
  what has no column: the image's ``rights_holder`` (2017, 2018, whose ``user_id`` is the
  numeric iNaturalist user of the locations file), the category's ``common_name`` (2021) and
  ``date_raw``.

Every image row is kept. Truncated or malformed JSON, a missing key, a value of the wrong type,
a duplicate image id, or an annotation, box or location naming an image that is not in the
split raises :class:`~geoaware.errors.InputFileError` naming file, record and field.

The federated-learning tables some work derives from iNat2021 (one row per image with its user,
one row per user) are read by :func:`read_inat2021_user_images` and
:func:`read_inat2021_users`.

The modules, by job: :mod:`.releases` (one class per release: files, URLs, checksums,
splits, taxonomy), :mod:`.reader` (what the releases share: documents, two-pass batched
reads), :mod:`.coco` (the join of images, annotations, categories, locations and boxes into
catalog rows), :mod:`.records` (the record types), :mod:`.stream` (the streaming JSON
reader), :mod:`.dates` (date strings to UTC) and :mod:`.users` (the per-user tables).
"""

from geoaware.sources.inat.releases import (
    BUCKET,
    REQUESTER_PAYS_BUCKET,
    Inat2017,
    Inat2018,
    Inat2021,
    inat2017_category_ids,
)
from geoaware.sources.inat.users import (
    USER_COLUMNS,
    USER_IMAGE_COLUMNS,
    read_inat2021_user_images,
    read_inat2021_users,
)

__all__ = [
    "BUCKET",
    "REQUESTER_PAYS_BUCKET",
    "USER_COLUMNS",
    "USER_IMAGE_COLUMNS",
    "Inat2017",
    "Inat2018",
    "Inat2021",
    "inat2017_category_ids",
    "read_inat2021_user_images",
    "read_inat2021_users",
]

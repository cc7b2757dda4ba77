"""Streaming reader of the YFCC100M metadata table (``yfcc100m_dataset``, tab-separated).

The file has no header; each line holds 25 fields (the multimedia-commons layout): line
number, photo id, hash, user NSID, user nickname, date taken, date uploaded, capture device,
title, description, user tags, machine tags, longitude, latitude, accuracy, page URL,
download URL, licence name, licence URL, server id, farm id, secret, secret original,
extension, photo/video marker (0 = photo, 1 = video). It is read in record batches, never
whole; a line with another number of fields stops the read with an error naming the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from geoaware.errors import InputFileError
from geoaware.typing import PathLike

__all__ = ["YFCC_COLUMNS", "iter_yfcc"]

YFCC_COLUMNS = (
    "line_number", "photo_id", "hash", "user_nsid", "user_nickname", "date_taken",
    "date_uploaded", "capture_device", "title", "description", "user_tags", "machine_tags",
    "longitude", "latitude", "accuracy", "page_url", "download_url", "license_name",
    "license_url", "server_id", "farm_id", "secret", "secret_original", "extension", "marker",
)  # fmt: skip


def iter_yfcc(path: PathLike, *, block_size: int = 1 << 24) -> Iterator[pa.RecordBatch]:
    r"""Yield the YFCC100M metadata as record batches of string columns (plus typed numbers).

    ``longitude``, ``latitude`` are float64 (null where empty), ``marker`` int8; every other
    column stays a string. ``.bz2``/``.gz`` files are decompressed on the fly.

    Raises
    ------
    InputFileError
        Naming the file and line, for a line with a broken number of fields.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> row = ["1", "6985418911", "ab", "39089491@N00", "n", "2012-02-16 09:56:37.0", "1",
    ...        "", "t", "", "vireo+griseus", "", "-81.8", "24.5", "12", "p", "d", "CC", "u",
    ...        "7205", "8", "s", "so", "jpg", "0"]
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "yfcc100m_dataset"
    >>> _ = f.write_text("\t".join(row) + "\n")
    >>> next(iter_yfcc(f)).column("latitude").to_pylist()
    [24.5]
    """
    p = Path(path)
    bad: list[tuple[int | None, int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append((row.number, row.actual_columns, row.text[:80]))
        return "skip"

    types = {c: pa.string() for c in YFCC_COLUMNS}
    types.update(longitude=pa.float64(), latitude=pa.float64(), marker=pa.int8())
    try:
        reader = pacsv.open_csv(
            p,
            read_options=pacsv.ReadOptions(
                column_names=list(YFCC_COLUMNS), block_size=block_size, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except FileNotFoundError as exc:
        raise InputFileError(p, "no such file") from exc
    except pa.ArrowInvalid as exc:
        raise InputFileError(p, f"not a YFCC100M metadata table ({exc})") from exc
    lines = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise InputFileError(p, f"cannot parse ({exc})", record=f"after line {lines}") from exc
        if bad:
            number, found, text = bad[0]
            line = number if number is not None else lines + 1
            raise InputFileError(
                p,
                f"expected {len(YFCC_COLUMNS)} tab-separated fields, found {found} "
                f"(line starts {text!r})",
                record=f"line {line}",
            )
        lines += batch.num_rows
        yield batch

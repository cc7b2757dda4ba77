"""The Ray Data engine writes what the local engine writes."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from geoaware.vision.embed import embed_catalog
from geoaware.vision.embeddings import read_embeddings, read_info

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytest.importorskip("efficientnet_lite_pytorch")


@pytest.mark.slow
def test_ray_engine_matches_local(shared_data: Path, tmp_path: Path) -> None:
    folder = "exif_gps_samples"
    names = sorted(n for n in os.listdir(shared_data / folder) if n.endswith(".jpg"))
    files: list[str | None] = [f"{folder}/{n}" for n in names[:6]]
    files.insert(2, f"{folder}/missing.jpg")
    ids = [f or "x" for f in files]
    catalog = pa.table({"source": ["t"] * len(ids), "image_id": ids, "file_name": files})
    kwargs: dict[str, Any] = {"batch": 4, "shard_size": 3, "device": "cpu"}
    local = embed_catalog(catalog, shared_data, tmp_path / "local", workers=1, **kwargs)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = embed_catalog(
            catalog, shared_data, tmp_path / "ray", engine="ray", workers=1, **kwargs
        )
    finally:
        ray.shutdown()
    assert (remote.embedded, remote.failed, remote.shards_written) == (6, 1, 3)
    same = ("images", "shards", "embedded", "failed", "encoder", "encoder_version", "dim")
    assert {k: remote.to_dict()[k] for k in same} == {k: local.to_dict()[k] for k in same}
    assert sorted(p.name for p in (tmp_path / "ray").glob("*.parquet")) == [
        f"part-{i:05d}.parquet" for i in range(3)
    ]
    assert read_info(tmp_path / "ray") == read_info(tmp_path / "local")
    a, b = read_embeddings(tmp_path / "local"), read_embeddings(tmp_path / "ray")
    assert a.ids.tolist() == b.ids.tolist()
    assert np.allclose(a.vectors, b.vectors, atol=2e-3, rtol=1e-2)
    with open(tmp_path / "ray" / "failed.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["image_id"], r["reason"]) for r in rows] == [
        (f"{folder}/missing.jpg", "FileNotFoundError: no such file")
    ]

"""What a person reads: tables and sentences (JSON only with --json), clear errors, --version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from geoaware.catalog import write_catalog
from geoaware.cli import app

runner = CliRunner()


def _catalog(tmp_path: Path, n: int = 300, users: bool = True) -> Path:
    rng = np.random.default_rng(0)
    t = pa.table(
        {
            "source": ["t"] * n,
            "image_id": [f"img{i}" for i in range(n)],
            "user_id": pa.array(
                [f"u{i % 25}" for i in range(n)] if users else [None] * n, pa.string()
            ),
            "label_name": [f"Genus{g} sp{g}" for g in rng.integers(0, 8, n)],
            "lat": rng.uniform(-50, 60, n),
            "lon": rng.uniform(-170, 170, n),
        }
    )
    return write_catalog(t, tmp_path / "cat.parquet")


def _not_json(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_split_leakage_partition_print_tables_and_json_only_on_request(tmp_path: Path) -> None:
    cat = _catalog(tmp_path)
    split = tmp_path / "split.parquet"
    r = runner.invoke(app, ["split", str(cat), "--by", "user", "--out", str(split)])
    assert r.exit_code == 0, r.output
    _not_json(r.stdout)
    assert "split by user" in r.stdout and "train" in r.stdout and "share" in r.stdout
    r = runner.invoke(app, ["split", str(cat), "--out", str(split), "--overwrite", "--json"])
    assert json.loads(r.stdout)["rows"] == 300

    r = runner.invoke(app, ["leakage", str(split), "--map", str(tmp_path / "leak.png")])
    assert r.exit_code == 0, r.output
    _not_json(r.stdout)
    assert "users on two sides" in r.stdout and "labels per side" in r.stdout
    assert (tmp_path / "leak.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads(runner.invoke(app, ["leakage", str(split), "--json"]).stdout)["rows"] == 300

    parts = tmp_path / "parts"
    r = runner.invoke(app, ["partition", str(split), "--by", "user", "--out", str(parts)])
    assert r.exit_code == 0, r.output
    _not_json(r.stdout)
    assert "25 clients" in r.stdout and "label entropy (bits)" in r.stdout
    for png in ("samples_per_client.png", "labels_per_client.png"):
        assert (parts / png).read_bytes()[:4] == b"\x89PNG"


def test_check_fg_geo_prints_rules_table(shared_data: Path) -> None:
    path = shared_data / "fg_geo_yfcc" / "yfcc100m_geolocated_inat2017species.csv.zip"
    r = runner.invoke(app, ["check", "fg-geo", str(path)])
    assert r.exit_code == 0, r.output
    _not_json(r.stdout)
    assert "at_most_10_per_label" in r.stdout and "2,960" in r.stdout
    assert "OK: every rule holds" in r.stdout


def test_partition_by_user_without_users_is_one_clear_error(tmp_path: Path) -> None:
    cat = _catalog(tmp_path, users=False)
    r = runner.invoke(app, ["partition", str(cat), "--by", "user", "--out", str(tmp_path / "p")])
    assert r.exit_code == 2
    assert "no row has a user" in r.output
    assert not (tmp_path / "p").exists()


def test_partition_level_on_an_empty_column_names_the_column(tmp_path: Path) -> None:
    cat = _catalog(tmp_path)  # the catalog schema has a family column, here all null
    r = runner.invoke(
        app,
        ["partition", str(cat), "--by", "dirichlet", "--level", "family",
         "--num-partitions", "3", "--out", str(tmp_path / "p")],
    )  # fmt: skip
    assert r.exit_code == 2
    message = r.output
    assert "column family is empty" in message and "--num-partitions" not in message


def test_validate_counts_rows_not_findings(tmp_path: Path) -> None:
    cat = _catalog(tmp_path, users=False)  # every row: no user and no date (two warnings each)
    r = runner.invoke(app, ["validate", str(cat), "--json"])
    report = json.loads(r.stdout)
    assert sum(f["count"] for f in report["findings"] if f["severity"] == "warning") == 600
    assert report["warnings"] == 300 and report["errors"] == 0
    text = runner.invoke(app, ["validate", str(cat)]).stdout
    assert "300 with a warning" in text and "600" not in text.splitlines()[0]


def test_piped_tables_are_not_cut_to_80_columns(tmp_path: Path) -> None:
    long_id = "x" * 150
    t = pa.table({"source": ["t"], "image_id": [long_id], "lat": [0.0], "lon": [0.0]})
    cat = write_catalog(t, tmp_path / "c.parquet")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    exe = Path(sys.executable).with_name("geoaware")
    proc = subprocess.run(
        [str(exe), "validate", str(cat)], capture_output=True, text=True, env=env, timeout=120
    )
    assert long_id in proc.stdout  # the (0,0) example row, whole on one line
    assert "…" not in proc.stdout


def test_version_and_group_examples() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.startswith("geoaware ")
    top = runner.invoke(app, ["--help"], terminal_width=200)
    assert "Example: geoaware demo" in top.stdout
    for group in ("build", "check", "fl", "eval", "submission", "prior", "geolocate"):
        r = runner.invoke(app, [group, "--help"], terminal_width=200)
        assert r.exit_code == 0, r.output
        assert f"Example: geoaware {group} " in r.stdout, group


def test_fetch_all_plans_metadata_first_and_warns_before_image_archives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from geoaware.sources import SOURCES
    from geoaware.sources.commands import _warn_large_parts

    src = SOURCES["inat2017"]("unused")
    order = src.plan(["all"])
    assert set(order) == set(src.files)
    assert src.catalog_parts is not None
    archives = [p for p in order if p not in src.catalog_parts]
    assert archives == order[-len(archives) :] and "train_val_images" in archives
    _warn_large_parts(src, ["all"])
    warning = capsys.readouterr().err
    assert "train_val_images" in warning and "metadata first" in warning
    _warn_large_parts(src, None)  # the catalog's parts only: nothing to announce
    assert capsys.readouterr().err == ""
    # a small part the catalog does not need (the README's fetch line) is not announced
    _warn_large_parts(SOURCES["im2gps"]("unused"), ["demo_predictions"])
    assert capsys.readouterr().err == ""


def test_scan_images_piped_leaves_no_empty_line(shared_data: Path, tmp_path: Path) -> None:
    # piped, as in the README walk: no progress bar, so no empty line before the summary
    photos, out = shared_data / "exif_gps_samples", tmp_path / "photos.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "geoaware", "scan-images", str(photos), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("wrote 9 rows to "), proc.stdout


def test_report_of_one_run_says_one_run(shared_data: Path, tmp_path: Path) -> None:
    pred = shared_data / "im2gps" / "demo" / "scene_M_p_im2gps.csv"
    r = runner.invoke(app, ["eval", "geo", str(pred), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", str(tmp_path / "run"), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert "(1 run)" in r.stdout, r.stdout

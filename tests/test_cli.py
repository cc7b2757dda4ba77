from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geoaware.catalog import write_catalog
from geoaware.cli import app

runner = CliRunner()
COMMANDS = [
    "demo",
    "validate",
    "stats",
    "query",
    "sources",
    "fetch",
    "ingest",
    "fetch-images",
    "scan-images",
    "report",
    "eval geo",
    "eval classify",
    "submission check",
    "submission write",
]


def geoaware(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("geoaware")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)


def test_help_lists_every_command_and_each_has_an_example() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in COMMANDS:
        assert cmd.split()[0] in result.output
        sub = runner.invoke(app, [*cmd.split(), "--help"], terminal_width=200)
        assert sub.exit_code == 0, sub.output
        assert f"Example: geoaware {cmd}" in sub.output


#: The top-level commands, in the help's order: plain commands, then groups.
TOP_LEVEL = ["demo", "validate", "stats", "query", "sources", "fetch", "ingest", "fetch-images",
             "scan-images",
             "report", "info", "split", "leakage", "partition", "embed",
             "eval", "submission", "build", "check", "fl", "prior", "geolocate"]  # fmt: skip


def test_stage_apps_merge_into_the_top_level_and_every_command_has_an_example() -> None:
    """cli.py adds each stage's commands app; every command keeps its name and its example."""
    import click
    import typer

    root = typer.main.get_command(app)
    assert isinstance(root, click.Group)
    ctx = click.Context(root)
    assert root.list_commands(ctx) == TOP_LEVEL
    evals = root.get_command(ctx, "eval")
    assert isinstance(evals, click.Group)
    assert evals.list_commands(ctx) == ["geo", "classify", "zeroshot", "retrieval"]
    leaves = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])
        else:
            leaves.append(" ".join(path))

    walk(root, [])
    assert len(leaves) == 32, leaves
    for cmd in leaves:
        sub = runner.invoke(app, [*cmd.split(), "--help"], terminal_width=200)
        assert sub.exit_code == 0, sub.output
        assert f"Example: geoaware {cmd}" in sub.output, cmd


def _bad_catalog(tmp_path: Path) -> Path:
    return write_catalog(
        pa.table(
            {
                "source": ["s"] * 3,
                "image_id": ["a", "b", "a"],
                "lat": [0.0, 95.0, 1.0],
                "lon": [0.0, 1.0, 1.0],
            }
        ),
        tmp_path / "bad.parquet",
    )


def test_validate_strict_exit_codes_and_json(tmp_path: Path) -> None:
    path = _bad_catalog(tmp_path)
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert set(report) == {"path", "rows", "ok", "errors", "warnings", "findings"}
    checks = {f["check"] for f in report["findings"]}
    assert {"null_island", "lat_out_of_range", "duplicate_image_id"} <= checks
    assert runner.invoke(app, ["validate", str(path), "--strict"]).exit_code == 1


def test_stats_json_and_map(tmp_path: Path) -> None:
    path = _bad_catalog(tmp_path)
    png = tmp_path / "m.png"
    result = runner.invoke(app, ["stats", str(path), "--map", str(png), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {
        "rows",
        "by_source_split",
        "labels",
        "located",
        "users",
        "continents",
        "map",
    }
    assert data["rows"] == 3 and data["located"] == 2  # the 95-degree row is not located
    assert png.exists()


def test_query_writes_csv(tmp_path: Path) -> None:
    path = _bad_catalog(tmp_path)
    out = tmp_path / "r.csv"
    result = runner.invoke(
        app, ["query", str(path), "SELECT image_id FROM catalog ORDER BY 1", "--out", str(out)]
    )
    assert result.exit_code == 0
    assert out.read_text().split() == ['"image_id"', '"a"', '"a"', '"b"']


def test_bad_input_gives_one_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    proc = geoaware("validate", str(broken))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {broken}: not a readable Parquet file")

    nocol = tmp_path / "nocol.parquet"
    pq.write_table(pa.table({"image_id": ["1"]}), nocol)
    proc = geoaware("stats", str(nocol))
    assert proc.returncode == 2
    assert f"{nocol}, field 'source': required column is missing" in proc.stderr

    proc = geoaware("query", str(_bad_catalog(tmp_path)), "SELEC nonsense")
    assert proc.returncode == 2 and "query failed" in proc.stderr

    proc = geoaware("fetch", "no_such_source")
    assert proc.returncode == 2 and "unknown source 'no_such_source'" in proc.stderr


def test_sources_fetch_and_ingest(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOAWARE_MIRROR", str(shared_data))
    result = runner.invoke(app, ["sources", "--json"])
    data = json.loads(result.stdout)
    part = data["sources"][0]["parts"][0]
    assert part["size"] == (shared_data / part["path"]).stat().st_size
    assert runner.invoke(app, ["fetch", "fg_geo_yfcc", "--dest", str(tmp_path)]).exit_code == 0
    out = tmp_path / "cat"
    result = runner.invoke(
        app, ["ingest", "fg_geo_yfcc", "--root", str(tmp_path), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"out": str(out), "rows": 36_143, "counts": {}}
    assert pq.ParquetDataset(out).read().num_rows == 36_143


@pytest.mark.parametrize("cmd", ["validate", "stats"])
def test_missing_catalog(cmd: str, tmp_path: Path) -> None:
    proc = geoaware(cmd, str(tmp_path / "missing.parquet"))
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr


def test_scan_images_on_the_real_photos(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "photos.parquet"
    result = runner.invoke(
        app, ["scan-images", str(shared_data / "exif_gps_samples"), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["rows"], data["with_gps"], data["corrupt"]) == (9, 9, 0)
    table = pq.read_table(out)
    assert table.num_rows == 9 and table.column("lat").null_count == 0


def test_eval_geo_reproduces_the_published_im2gps_table(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "im2gps/demo/scene_M_p_im2gps.csv"
    result = runner.invoke(app, ["eval", "geo", str(path), "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert list(s)[:10] == [
        "n",
        "acc_1km",
        "acc_25km",
        "acc_200km",
        "acc_750km",
        "acc_2500km",
        "median_km",
        "mean_km",
        "geoscore",
        "skipped_rows",
    ]
    assert list(s)[10:] == [
        "skipped",
        "footer",
        "published_summary",
        "tables",
        "reference",
        "warnings",
    ]
    # Mueller-Budack et al. 2018, Table 3, base (M, f*) with scene partitioning (p) on Im2GPS:
    # 16.9 / 43.0 / 51.9 / 66.7 / 80.2 percent.
    assert [round(100 * s[k], 1) for k in list(s)[1:6]] == [16.9, 43.0, 51.9, 66.7, 80.2]
    assert s["n"] == 237 and s["skipped_rows"] == 0


def test_eval_geo_run_folder_and_html_report(shared_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    osv = shared_data / "osv5m/select.csv"
    result = runner.invoke(
        app,
        [
            "eval",
            "geo",
            str(shared_data / "im2gps/demo/scene_M_p_im2gps.csv"),
            str(osv),
            "--by",
            "continent",
            "--out",
            str(run),
        ],
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in run.iterdir())
    assert (
        "error_cdf.png" in names
        and "select.geo.json" in names
        and "scene_M_p_im2gps.geo.json" in names
    )
    data = json.loads((run / "select.geo.json").read_text())
    assert data["kind"] == "geo" and data["summary"]["n"] == 50
    assert all((run / f).exists() for f in data["figures"])
    html = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(run), "--out", str(html), "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(r["name"] for r in json.loads(result.stdout)["runs"]) == [
        "scene_M_p_im2gps",
        "select",
    ]
    text = html.read_text()
    assert "data:image/png;base64," in text and "by continent" in text


def test_eval_geo_bad_columns_option(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("a,b,c,d\n1,2,3,4\n")
    result = runner.invoke(app, ["eval", "geo", str(p), "--columns", "a,b,c"])
    assert result.exit_code == 2 and "four names" in result.output


def _labelled_catalog(tmp_path: Path) -> Path:
    return write_catalog(
        pa.table(
            {
                "source": ["inat"] * 6,
                "split": ["train", "train", "val", "val", "test", "test"],
                "image_id": ["t1", "t2", "v1", "v2", "x1", "x2"],
                "label": [3, 7, 3, 7, 3, 7],
                "genus": ["Anas", "Anas", "Anas", "Anas", "Anas", "Anas"],
                "supercategory": ["Aves"] * 6,
            }
        ),
        tmp_path / "labels.parquet",
    )


def test_eval_classify_and_submissions(tmp_path: Path) -> None:
    import numpy as np

    catalog = _labelled_catalog(tmp_path)
    preds = tmp_path / "val.csv"
    preds.write_text("id,predicted\nv1,7 3\nv2,7\n")
    result = runner.invoke(
        app,
        [
            "eval",
            "classify",
            str(preds),
            "--truth",
            str(catalog),
            "--split",
            "val",
            "--json",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)["summary"]
    assert (s["n"], s["top1_acc"], s["top5_acc"]) == (2, 0.5, 1.0)
    assert (tmp_path / "run/val.classify.json").exists()

    bad = tmp_path / "bad.csv"
    bad.write_text("id,predicted\nx1,3 x\nx1,7\nzz,1\n")
    result = runner.invoke(
        app, ["submission", "check", str(bad), "--truth", str(catalog), "--json"]
    )
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert {p["line"] for p in problems if p["line"]} >= {2, 3, 4}

    np.savez(
        tmp_path / "scores.npz",
        image_id=np.array(["x1", "x2"]),
        scores=np.array([[0.1, 0.9], [0.8, 0.2]]),
        class_ids=np.array([3, 7]),
    )
    sub = tmp_path / "sub.csv"
    result = runner.invoke(
        app, ["submission", "write", str(tmp_path / "scores.npz"), "--out", str(sub), "--k", "2"]
    )
    assert result.exit_code == 0, result.output
    assert sub.read_text().splitlines() == ["id,predicted", "x1,7 3", "x2,3 7"]
    assert (
        runner.invoke(app, ["submission", "check", str(sub), "--truth", str(catalog)]).exit_code
        == 0
    )


def test_help_imports_no_heavy_library() -> None:
    """`geoaware --help` stays fast: importing the CLI (every stage's commands module) loads
    no numpy, pandas, pyarrow, torch, DuckDB or matplotlib."""
    code = (
        "import sys, geoaware.cli; "
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'torch', 'duckdb', "
        "'matplotlib') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"

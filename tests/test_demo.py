"""`geoaware demo --quick` on the real fg_geo and Im2GPS files: every step, the report, rerun."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_report import CHROMIUM, _chromium

pytestmark = pytest.mark.slow


def _geoaware(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("geoaware")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str]]:
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not shared.is_dir():
        pytest.skip(f"{shared} not present")
    tmp = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "GEOAWARE_MIRROR": str(shared), "GEOAWARE_CACHE": str(tmp / "cache")}
    proc = _geoaware("demo", "--quick", "--out", str(tmp / "out"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), env


def test_every_step_reports_the_real_figures(demo: tuple[dict[str, Any], dict[str, str]]) -> None:
    summary, _ = demo
    steps = summary["steps"]
    assert summary["quick"] is True
    assert steps["validate"]["result"]["rows"] == 36_143
    assert steps["validate"]["result"]["errors"] == 0
    assert steps["stats"]["result"]["labels"] == 4_472
    # the random split puts thousands of images within 100 m of the other side; cells none
    assert steps["leakage_random"]["result"]["same_outing"]["images"] > 5_000
    assert steps["leakage_cell"]["result"]["same_outing"]["images"] == 0
    test_rows = steps["split_random"]["result"]["rows_per_split"]["test"]
    assert 0.18 < test_rows / 36_143 < 0.22
    methods = {m["method"] for m in steps["prior_eval"]["result"]["rows"]}
    assert {"prior", "nearest_neighbours", "frequency"} <= methods
    geo = steps["eval_geo"]["result"]
    assert geo["n"] == 237 and round(100 * geo["acc_1km"], 1) == 16.9
    for key in ("range_danaus_plexippus", "range_erithacus_rubecula"):
        assert Path(steps[key]["result"]["png"]).read_bytes()[:4] == b"\x89PNG"


def test_commands_file_reruns_a_step_with_the_same_figures(
    demo: tuple[dict[str, Any], dict[str, str]],
) -> None:
    summary, env = demo
    lines = Path(summary["commands"]).read_text().splitlines()
    commands = [line for line in lines if line.startswith("geoaware ")]
    assert len(commands) == len(summary["steps"])
    evaluation = next(c for c in commands if c.startswith("geoaware prior eval"))
    proc = _geoaware(*shlex.split(evaluation)[1:], "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["rows"] == summary["steps"]["prior_eval"]["result"]["rows"]


def test_the_catalog_answers_sql(demo: tuple[dict[str, Any], dict[str, str]]) -> None:
    summary, env = demo
    catalog = summary["steps"]["ingest"]["result"]["out"]
    sql = "SELECT genus, count(*) AS n FROM catalog GROUP BY genus ORDER BY n DESC, genus LIMIT 3"
    proc = _geoaware("query", catalog, sql, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    q = json.loads(proc.stdout)
    assert q["rows"] == 3 and q["columns"] == ["genus", "n"]
    assert q["data"][0]["n"] >= q["data"][1]["n"] >= q["data"][2]["n"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed")
def test_report_shows_every_step_in_headless_chromium(
    demo: tuple[dict[str, Any], dict[str, str]], tmp_path: Path
) -> None:
    summary, _ = demo
    report = Path(summary["report"])
    done = _chromium("--dump-dom", report.resolve().as_uri(), user_data=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    for section in (
        "Catalogs runs",
        "Splits and their leakage runs",
        "Geographic priors runs",
        "Geolocation runs",
        "validation findings",
        "random against spatial split",
        "all test points",
    ):
        assert section in dom, section
    # map, two leakage maps, three range maps, the Im2GPS figures
    assert dom.count('src="data:image/png;base64,') >= 9

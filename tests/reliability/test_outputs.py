"""Output rules on real files: nothing of the user's is replaced, ours only with --overwrite.

Every command that writes is tried against an output path that already holds a user's file
(or a folder with one): the command must exit 2 with one line naming the path, and every file
that was there must be intact. Then the manifest: `geoaware info` names the command, and the
recorded command, run again, gives the same figures.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from geoaware.catalog import write_catalog
from geoaware.sources import FgGeoYfcc

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _geoaware(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("geoaware")
    env = {**os.environ, "GEOAWARE_MIRROR": str(SHARED)}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 rows of the real fg_geo release, with a 80/20 split column."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    os.environ.setdefault("GEOAWARE_MIRROR", str(SHARED))
    table = FgGeoYfcc(tmp_path_factory.mktemp("data")).read().slice(0, 3000)
    path = write_catalog(table, tmp_path_factory.mktemp("cat") / "fg.parquet")
    split = path.with_name("fg-split.parquet")
    proc = _geoaware("split", str(path), "--ratios", "0.8,0,0.2", "--out", str(split))
    assert proc.returncode == 0, proc.stderr
    return split


def _users_folder(tmp_path: Path) -> dict[Path, bytes]:
    """A folder of the user's with two files; returns what must survive."""
    (tmp_path / "mine").mkdir()
    files = {tmp_path / "mine" / "notes.txt": b"precious", tmp_path / "keep.csv": b"a,b\n1,2\n"}
    for path, data in files.items():
        path.write_bytes(data)
    return files


def _refused(proc: subprocess.CompletedProcess[str], path: Path, files: dict[Path, bytes]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-500:])
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr, proc.stderr
    for f, data in files.items():
        assert f.read_bytes() == data, f


@pytest.mark.parametrize(
    ("command", "target"),
    [
        (["split", "{cat}", "--out", "{t}"], "keep.csv"),
        (["split", "{cat}", "--out", "{t}"], "mine"),
        (["scan-images", str(SHARED / "exif_gps_samples"), "--out", "{t}"], "mine"),
        (["fetch-images", "{cat}", "--out", "{t}"], "mine"),  # refused before any download
        (["fetch-images", "{cat}", "--out", "{t}"], "keep.csv"),
        (["ingest", "fg_geo_yfcc", "--root", "{tmp}/data", "--out", "{t}"], "mine"),
        (["ingest", "fg_geo_yfcc", "--root", "{tmp}/data", "--out", "{t}"], "keep.csv"),
        (["partition", "{cat}", "--by", "iid", "--num-partitions", "2", "--out", "{t}"], "mine"),
        (["prior", "train", "{cat}", "--epochs", "1", "--out", "{t}"], "mine"),
        (["stats", "{cat}", "--map", "{t}"], "keep.csv"),
        (["leakage", "{cat}", "--map", "{t}"], "keep.csv"),
        (["query", "{cat}", "SELECT 1 AS x", "--out", "{t}"], "keep.csv"),
        (["eval", "geo", str(SHARED / "im2gps/demo/scene_M_p_im2gps.csv"), "--out", "{t}"], "mine"),
        (["report", "{tmp}/mine", "--out", "{t}"], "keep.csv"),
    ],
)
def test_a_users_file_or_folder_is_never_replaced(
    catalog: Path, tmp_path: Path, command: list[str], target: str
) -> None:
    files = _users_folder(tmp_path)
    t = tmp_path / target
    args = [a.format(cat=catalog, t=t, tmp=tmp_path) for a in command]
    _refused(_geoaware(*args), t, files)


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        (["split", "{cat}", "--out", "{tmp}/x.csv"], ".parquet"),
        (["stats", "{cat}", "--map", "{tmp}/map.txt"], ".png"),
        (["query", "{cat}", "SELECT 1", "--out", "{tmp}/r.json"], ".csv"),
        (["report", "{tmp}", "--out", "{tmp}/r.pdf"], ".html"),
    ],
)
def test_an_extension_of_another_format_is_refused(
    catalog: Path, tmp_path: Path, command: list[str], needle: str
) -> None:
    args = [a.format(cat=catalog, tmp=tmp_path) for a in command]
    proc = _geoaware(*args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_only_geoawares_own_output(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    assert _geoaware("split", str(catalog), "--seed", "1", "--out", str(out)).returncode == 0
    again = _geoaware("split", str(catalog), "--seed", "2", "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert (
        _geoaware("split", str(catalog), "--seed", "2", "--out", str(out), "--overwrite").returncode
        == 0
    )
    manifest = json.loads(_geoaware("info", str(out), "--json").stdout)
    assert manifest["seed"] == 2 and manifest["command"].startswith("geoaware split")
    assert manifest["inputs"][0]["path"] == str(catalog.resolve())
    assert len(manifest["inputs"][0]["sha256"]) == 64


def test_leftovers_of_a_killed_write_are_removed(catalog: Path, tmp_path: Path) -> None:
    dead = tmp_path / ".s.parquet.999999999.abcd.parquet.part"  # no such process
    dead.write_bytes(b"half a file")
    others = tmp_path / ".other.parquet.999999999.x.part"  # another target's: not ours to clean
    others.write_bytes(b"x")
    proc = _geoaware("split", str(catalog), "--out", str(tmp_path / "s.parquet"))
    assert proc.returncode == 0, proc.stderr
    assert not dead.exists() and others.exists()


def _recorded(path: Path) -> list[str]:
    doc = json.loads(_geoaware("info", str(path), "--json").stdout)
    command = doc.get("history", [doc])[-1]["command"]
    args = shlex.split(command)
    assert args[0] == "geoaware"
    return args[1:]


def test_recorded_commands_give_the_same_figures(catalog: Path, tmp_path: Path) -> None:
    # split
    out = tmp_path / "s.parquet"
    assert (
        _geoaware(
            "split", str(catalog), "--by", "cell", "--seed", "5", "--out", str(out)
        ).returncode
        == 0
    )
    first = pq.read_table(out, columns=["image_id", "split"])
    assert _geoaware(*_recorded(out), "--overwrite").returncode == 0
    assert pq.read_table(out, columns=["image_id", "split"]).equals(first)
    # eval geo into a run folder
    run = tmp_path / "run"
    preds = SHARED / "im2gps/demo/scene_M_p_im2gps.csv"
    a = _geoaware("eval", "geo", str(preds), "--out", str(run), "--json")
    assert a.returncode == 0, a.stderr
    b = _geoaware(*_recorded(run), "--json")
    assert json.loads(a.stdout)["acc_25km"] == json.loads(b.stdout)["acc_25km"]
    # prior train, then the same evaluation of both models
    model = tmp_path / "prior"
    train = [
        "prior",
        "train",
        str(catalog),
        "--split",
        "train",
        "--epochs",
        "1",
        "--out",
        str(model),
    ]
    assert _geoaware(*train).returncode == 0
    evaluate = ["prior", "eval", str(model), str(catalog), "--json"]
    before = json.loads(_geoaware(*evaluate).stdout)["rows"][0]
    assert _geoaware(*_recorded(model), "--overwrite").returncode == 0
    after = json.loads(_geoaware(*evaluate).stdout)["rows"][0]
    assert before == after

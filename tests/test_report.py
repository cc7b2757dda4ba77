from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from PIL import Image

from geoaware.errors import InputFileError
from geoaware.report import (
    build_report,
    empirical_cdf,
    error_cdf,
    error_map,
    format_value,
    group_bars,
    read_run,
    read_runs,
)
from geoaware.report.html import CLASSIFY_SUMMARY_KEYS, GEO_SUMMARY_KEYS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")
TAB_BLUE, TAB_ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib's first two colours


def _pixels(png: Path) -> np.ndarray:
    with Image.open(png) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB")).astype(int)


def _share_near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 30) -> float:
    return float((np.abs(pixels - rgb).sum(axis=2) < tol).mean())


def _non_white(pixels: np.ndarray) -> float:
    return float((pixels.sum(axis=2) < 3 * 245).mean())


# ----------------------------------------------------------------------------------------------
# empirical_cdf


def test_empirical_cdf_is_exact() -> None:
    x, y = empirical_cdf([30.0, np.nan, 10.0, 20.0, np.inf, 40.0, 20.0])
    assert x.tolist() == [10.0, 20.0, 20.0, 30.0, 40.0]
    assert y.tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert x.dtype == y.dtype == np.float64


def test_empirical_cdf_of_nothing_and_of_a_grid() -> None:
    x, y = empirical_cdf([np.nan, np.nan])
    assert x.size == 0 and y.size == 0
    x, y = empirical_cdf(np.arange(1000, 0, -1, dtype=float).reshape(10, 100))
    np.testing.assert_array_equal(x, np.arange(1, 1001))
    np.testing.assert_array_equal(y, np.arange(1, 1001) / 1000)
    # The curve reaches 50 % exactly at the median.
    assert x[np.searchsorted(y, 0.5)] == 500.0


def test_empirical_cdf_crosses_half_at_the_median_of_a_known_distribution() -> None:
    rng = np.random.default_rng(1)
    errors = rng.lognormal(mean=np.log(300.0), sigma=1.2, size=20_001)  # median 300 km
    errors[::10] = np.nan
    x, y = empirical_cdf(errors)
    at_half = x[np.searchsorted(y, 0.5)]
    assert at_half == pytest.approx(np.nanmedian(errors), rel=1e-3)
    assert at_half == pytest.approx(300.0, rel=0.05)
    # And it agrees with the fraction within each threshold, computed directly.
    for t in (1, 25, 200, 750, 2500):
        i = np.searchsorted(x, t, side="right")
        within = y[i - 1] if i else 0.0
        assert within == pytest.approx(np.mean(x <= t))


# ----------------------------------------------------------------------------------------------
# plots


def test_error_cdf_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    errors = {
        "model A": rng.lognormal(np.log(100), 1.0, 500),
        "model B": np.append(rng.lognormal(np.log(2000), 1.0, 500), [np.nan, 0.0]),
        "empty": np.array([np.nan]),
    }
    png = error_cdf(errors, tmp_path / "sub" / "cdf.png", title="synthetic")
    assert png == tmp_path / "sub" / "cdf.png"
    pixels = _pixels(png)
    assert pixels.shape[1] >= 900 and pixels.shape[0] >= 600
    assert 0.03 < _non_white(pixels) < 0.6
    # Both curves are drawn in their colours.
    assert _share_near(pixels, TAB_BLUE) > 0.001
    assert _share_near(pixels, TAB_ORANGE) > 0.001
    assert not list(png.parent.glob(".*part"))


def test_error_map_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-50, 60, 400), rng.uniform(-170, 170, 400)
    err = rng.lognormal(np.log(500), 1.5, 400)
    lat[0], err[1] = np.nan, np.nan
    png = error_map(lat, lon, err, tmp_path / "map.png", title="model A")
    pixels = _pixels(png)
    assert pixels.shape[1] > 1000 and pixels.shape[0] > 500
    assert _share_near(pixels, (200, 200, 192), tol=10) > 0.05  # land
    assert _share_near(pixels, (219, 233, 244), tol=10) > 0.1  # water
    # The colour bar runs through plasma, dark blue to yellow.
    from matplotlib import colormaps

    for level in (0.1, 0.5, 0.9):
        rgb = np.round(np.array(colormaps["plasma"](level)[:3]) * 255)
        assert (np.abs(pixels - rgb).sum(axis=2) < 30).sum() > 200, level


def test_error_map_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        error_map([1.0, 2.0], [1.0, 2.0], [5.0], tmp_path / "m.png")
    with pytest.raises(ValueError, match="vmin"):
        error_map([1.0], [1.0], [5.0], tmp_path / "m.png", vmin=0.0)
    assert not (tmp_path / "m.png").exists()


CONTINENT_TABLE: dict[str, list[Any]] = {
    "columns": ["continent", "n", "acc_25km", "acc_2500km"],
    "rows": [
        ["Europe", 1200, 0.12, 0.83],
        ["North America", 2300, 0.10, 0.88],
        ["Africa", 35, 0.0, None],
    ],
}


@pytest.mark.parametrize(
    "table",
    [
        CONTINENT_TABLE,
        pd.DataFrame(CONTINENT_TABLE["rows"], columns=CONTINENT_TABLE["columns"]),
        [dict(zip(CONTINENT_TABLE["columns"], r, strict=True)) for r in CONTINENT_TABLE["rows"]],
    ],
    ids=["contract-table", "dataframe", "records"],
)
def test_group_bars_png(tmp_path: Path, table: Any) -> None:
    png = group_bars(table, tmp_path / "bars.png", value=["acc_25km", "acc_2500km"])
    pixels = _pixels(png)
    assert pixels.shape[1] >= 600 and pixels.shape[0] >= 500
    assert _share_near(pixels, TAB_BLUE) > 0.003
    assert _share_near(pixels, TAB_ORANGE) > 0.01


def test_group_bars_one_column_and_missing_columns(tmp_path: Path) -> None:
    png = group_bars(CONTINENT_TABLE, tmp_path / "one.png")
    assert _share_near(_pixels(png), TAB_BLUE) > 0.02
    with pytest.raises(KeyError, match="acc_1km"):
        group_bars(CONTINENT_TABLE, tmp_path / "bad.png", value="acc_1km")
    with pytest.raises(KeyError, match="'country'"):
        group_bars(CONTINENT_TABLE, tmp_path / "bad.png", label="country")
    with pytest.raises(ValueError, match="no rows"):
        group_bars({"columns": ["continent", "n", "acc_2500km"], "rows": []}, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_error_cdf_of_no_curves_still_draws_the_axes(tmp_path: Path) -> None:
    png = error_cdf({}, tmp_path / "empty.png", thresholds=(10.0,))
    assert _non_white(_pixels(png)) > 0.005


# ----------------------------------------------------------------------------------------------
# the run folder and the report

GEO_A = {
    "n": 3000,
    "acc_1km": 0.0312,
    "acc_25km": 0.1234,
    "acc_200km": 0.3456,
    "acc_750km": 0.5678,
    "acc_2500km": 0.7891,
    "median_km": 412.345,
    "mean_km": 1234.567,
    "geoscore": 2345.678,
    "skipped_rows": 7,
}
GEO_B = {
    "n": 2990,
    "acc_1km": None,
    "acc_25km": 0.05,
    "acc_200km": 0.2,
    "acc_750km": 0.4,
    "acc_2500km": 0.655,
    "median_km": 987.6,
    "mean_km": 2222.25,
    "geoscore": 1500.0,
    "skipped_rows": 0,
}
CLASSIFY = {
    "n": 1000,
    "top1_error": 0.31,
    "top5_error": 0.12,
    "top1_acc": 0.69,
    "top5_acc": 0.88,
    "mean_per_class_acc": 0.615,
    "classes": 5089,
}


def _write_run(folder: Path, doc: dict[str, Any]) -> Path:
    path = folder / f"{doc['name']}.{doc['kind']}.json"
    path.write_bytes(orjson.dumps(doc))
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-50, 60, 300), rng.uniform(-170, 170, 300)
    for name, summary, median in (("geoA", GEO_A, 400.0), ("geoB", GEO_B, 1000.0)):
        errors = rng.lognormal(np.log(median), 1.3, 300)
        figs = [f"{name}/cdf.png", f"{name}/map.png", f"{name}/bars.png"]
        error_cdf({name: errors}, folder / figs[0])
        error_map(lat, lon, errors, folder / figs[1], title=name)
        group_bars(CONTINENT_TABLE, folder / figs[2], value=["acc_25km", "acc_2500km"])
        _write_run(
            folder,
            {
                "kind": "geo",
                "name": name,
                "source": f"im2gps3k <{name}> & co.csv",
                "summary": summary,
                "tables": {f"accuracy by continent ({name})": CONTINENT_TABLE},
                "figures": figs,
            },
        )
    _write_run(
        folder,
        {
            "kind": "classify",
            "name": "effnet",
            "source": "see https://example.org/val.csv",
            "summary": CLASSIFY,
            "tables": {
                "worst <classes>": {
                    "columns": ["label", "n", "top1_acc"],
                    "rows": [[f"species {i}", 10 + i, i / 40] for i in range(30)],
                },
                "empty table": {"columns": ["label"], "rows": []},
            },
            "figures": [],
        },
    )
    (folder / "config.json").write_text('{"seed": 1, "kind": "experiment"}')
    (folder / "notes.json").write_text("not json at all")
    return folder


class _Page(HTMLParser):
    """Collect tags, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.img_src: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            self.attrs.append((k, v or ""))
            if tag == "img" and k == "src":
                self.img_src.append(v or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_read_runs_checks_and_skips(run_dir: Path) -> None:
    runs = read_runs(run_dir)
    assert [(r.kind, r.name) for r in runs] == [
        ("classify", "effnet"),
        ("geo", "geoA"),
        ("geo", "geoB"),
    ]
    geo_a = runs[1]
    assert geo_a.summary == GEO_A
    assert [t.title for t in geo_a.tables] == ["accuracy by continent (geoA)"]
    assert geo_a.tables[0].rows[2] == ("Africa", 35, 0.0, None)
    assert all(f.is_absolute() and f.read_bytes()[:8] == PNG_SIGNATURE for f in geo_a.figures)


def test_build_report_contains_everything(run_dir: Path, tmp_path: Path) -> None:
    out = build_report(run_dir, tmp_path / "out" / "report.html", title="Benchmarks <v1>")
    assert out == tmp_path / "out" / "report.html"
    assert not list(out.parent.glob(".*part"))
    page = out.read_text(encoding="utf-8")
    parser = _Page()
    parser.feed(page)
    text = "".join(parser.text)

    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Benchmarks &lt;v1&gt;</title>" in page
    assert "Geolocation runs" in text and "Classification runs" in text
    # Every summary number, formatted as shown: accuracies as percentages.
    for summary in (GEO_A, GEO_B, CLASSIFY):
        for key, value in summary.items():
            assert format_value(key, value) in text, (key, value)
    for shown in ("3.1%", "12.3%", "78.9%", "412.3", "1,234.6", "2,345.7", "3,000", "65.5%"):
        assert shown in text
    for shown in ("31.0%", "88.0%", "61.5%", "5,089"):
        assert shown in text
    # Every table title and every cell.
    for title in ("accuracy by continent (geoA)", "accuracy by continent (geoB)"):
        assert title in text
    assert "worst <classes>" in text and "empty table" in text
    for row in CONTINENT_TABLE["rows"]:
        for column, cell in zip(CONTINENT_TABLE["columns"], row, strict=True):
            assert format_value(column, cell) in text
    assert "species 29" in text and "72.5%" in text
    # Strings from the files are escaped, never markup.
    assert "<classes>" not in page and "worst &lt;classes&gt;" in page
    assert "im2gps3k &lt;geoA&gt; &amp; co.csv" in page
    # Skipped files are named.
    assert "config.json" in text and "notes.json" in text

    # Self-contained: no scripts, styles sheets, fonts, frames; URLs only in text.
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(parser.tags)
    for _name, attr in parser.attrs:
        assert not re.match(r"\s*(https?:|//|file:)", attr, re.I), attr
    assert "https://example.org/val.csv" in text  # allowed: it is text
    assert "url(" not in page and "@import" not in page and "@font-face" not in page
    for match in re.finditer(r"https?://", page):
        before = page[: match.start()]
        assert before.rfind("<") < before.rfind(">"), "a URL inside a tag"

    # Six figures, each embedded and decoding to the PNG on disk.
    assert len(parser.img_src) == 6
    on_disk = {p.read_bytes() for p in run_dir.glob("*/*.png")}
    for src in parser.img_src:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == PNG_SIGNATURE
        assert data in on_disk


def test_build_report_best_values_and_default_title(run_dir: Path, tmp_path: Path) -> None:
    page = build_report(run_dir, tmp_path / "r.html").read_text()
    assert "<h1>Evaluation report: run</h1>" in page
    # Higher accuracy and lower error are better: geoA wins every column but skipped rows.
    assert "<strong>78.9%</strong>" in page and "<strong>412.3</strong>" in page
    assert "<strong>65.5%</strong>" not in page and "<strong>7</strong>" not in page
    # Values that look the same are not singled out (3.1% against a missing value is).
    _write_run(run_dir, {**_doc(), "name": "geoC", "summary": {**GEO_B, "acc_25km": 0.1231}})
    page = build_report(run_dir, tmp_path / "r.html").read_text()
    assert page.count("<strong>12.3%</strong>") == 2
    # A single classify run has nothing to compare.
    assert "<strong>69.0%</strong>" not in page


def _doc() -> dict[str, Any]:
    return {
        "kind": "geo",
        "name": "m",
        "source": "s",
        "summary": dict(GEO_A),
        "tables": {"t": {"columns": ["a", "b"], "rows": [[1, 2]]}},
        "figures": [],
    }


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        del doc[key]

    return edit


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        doc[key] = value

    return edit


def _del_summary(doc: dict[str, Any]) -> None:
    del doc["summary"]["n"]


def _bad_summary_value(doc: dict[str, Any]) -> None:
    doc["summary"]["acc_1km"] = "12%"


def _short_row(doc: dict[str, Any]) -> None:
    doc["tables"]["t"]["rows"].append([1])


def _table_without_rows(doc: dict[str, Any]) -> None:
    del doc["tables"]["t"]["rows"]


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (_drop("summary"), "summary", "missing key"),
        (_drop("figures"), "figures", "missing key"),
        (_drop("name"), "name", "missing key"),
        (_set("kind", "regress"), "kind", "must be one of"),
        (_set("kind", "classify"), "kind", "file name says 'geo'"),
        (_set("name", 3), "name", "expected a string"),
        (_set("tables", []), "tables", "expected an object"),
        (_del_summary, "summary.n", "missing key"),
        (_bad_summary_value, "summary.acc_1km", "number or null"),
        (_short_row, "tables['t'].rows", "2 cells"),
        (_table_without_rows, "tables['t'].rows", "missing key"),
        (_set("figures", ["missing.png"]), "figures[0]", "cannot read figure"),
        (_set("figures", ["../outside.png"]), "figures[0]", "inside the run folder"),
        (_set("figures", ["/etc/passwd"]), "figures[0]", "inside the run folder"),
        (_set("figures", ["m.geo.json"]), "figures[0]", "not a PNG"),
    ],
)
def test_malformed_contract_files_name_file_and_key(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], field: str, problem: str
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (tmp_path / "outside.png").write_bytes(PNG_SIGNATURE)
    doc = _doc()
    edit(doc)
    path = folder / "m.geo.json"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(InputFileError) as info:
        build_report(folder, tmp_path / "r.html")
    message = str(info.value)
    assert message.startswith(str(path))
    assert f"field {field!r}" in message
    assert problem in message
    assert info.value.field == field
    assert not (tmp_path / "r.html").exists()


def test_malformed_json_and_empty_folders(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(InputFileError, match="no evaluation results"):
        build_report(folder, tmp_path / "r.html")
    with pytest.raises(InputFileError, match="not a folder"):
        build_report(tmp_path / "nope", tmp_path / "r.html")
    (folder / "x.classify.json").write_text('{"kind": "classify", ')
    with pytest.raises(InputFileError, match=r"x\.classify\.json: not valid JSON"):
        read_runs(folder)
    (folder / "x.classify.json").write_text("[1, 2]")
    with pytest.raises(InputFileError, match="expected a JSON object"):
        read_run(folder / "x.classify.json")


def test_a_json_that_says_its_kind_is_an_evaluation_file(tmp_path: Path) -> None:
    doc = {**_doc(), "kind": "classify", "summary": dict.fromkeys(CLASSIFY_SUMMARY_KEYS, None)}
    (tmp_path / "results.json").write_bytes(orjson.dumps(doc))
    (runs,) = [read_runs(tmp_path)]
    assert [r.kind for r in runs] == ["classify"]
    del doc["summary"]["n"]
    (tmp_path / "results.json").write_bytes(orjson.dumps(doc))
    with pytest.raises(InputFileError, match="summary.n"):
        read_runs(tmp_path)
    assert set(GEO_SUMMARY_KEYS) == set(GEO_A)


def test_other_thresholds_and_ks_are_columns_in_order(tmp_path: Path) -> None:
    # An evaluation with thresholds 10 and 100 km, beside one with the defaults.
    custom = {"n": 5, "acc_100km": 0.8, "median_km": 42.0, "acc_10km": 0.4, "extra": 3}
    _write_run(tmp_path, {**_doc(), "name": "custom", "summary": custom})
    _write_run(tmp_path, {**_doc(), "name": "default"})
    top1_only = {"n": 4, "top1_acc": 0.5, "top1_error": 0.5, "missing_predictions": 1}
    _write_run(tmp_path, {**_doc(), "kind": "classify", "name": "top1", "summary": top1_only})
    page = build_report(tmp_path, tmp_path / "r.html").read_text()
    geo = page[page.index('id="summary-geo"') : page.index('id="summary-classify"')]
    heads = re.findall(r'<th class="\w+" scope="col" title="([^"]+)"', geo)
    assert heads == [
        "run",
        "n",
        "acc_1km",
        "acc_10km",
        "acc_25km",
        "acc_100km",
        "acc_200km",
        "acc_750km",
        "acc_2500km",
        "median_km",
        "mean_km",
        "geoscore",
        "skipped_rows",
        "extra",
    ]
    assert "≤ 10 km" in geo and "≤ 100 km" in geo and "≤ 2500 km" in geo
    found = re.search(r"<tr><td[^>]*><a href=[^>]*>custom</a>.*?</tr>", geo)
    assert found is not None
    custom_row = found.group(0)
    assert custom_row.count('<td class="na">–</td>') == 8  # the keys it lacks
    assert "40.0%" in custom_row and "80.0%" in custom_row
    assert "missing_predictions" in page


def test_long_tables_are_cut_with_a_note(tmp_path: Path) -> None:
    rows = [[f"class {i}", i] for i in range(50)]
    doc = {**_doc(), "tables": {"per class": {"columns": ["label", "n"], "rows": rows}}}
    _write_run(tmp_path, doc)
    page = build_report(tmp_path, tmp_path / "r.html", max_table_rows=20).read_text()
    assert "class 19" in page and "class 20" not in page
    assert "The first 20 of 50 rows" in page and "m.geo.json" in page
    full = build_report(tmp_path, tmp_path / "full.html", max_table_rows=None).read_text()
    assert "class 49" in full and "The first" not in full
    with pytest.raises(ValueError, match="max_table_rows"):
        build_report(tmp_path, tmp_path / "x.html", max_table_rows=0)


def test_format_value() -> None:
    assert format_value("acc_25km", 0.4123) == "41.2%"
    assert format_value("top5_error", 0.1) == "10.0%"
    assert format_value("mean_per_class_acc", 1) == "100.0%"
    assert format_value("median_km", 12.34) == "12.3"
    assert format_value("hit_rate", 0.5) == "50.0%" and format_value("rate", 1) == "100.0%"
    assert format_value("n", 1234567) == "1,234,567"
    assert format_value("geoscore", 4999.96) == "5,000.0"
    assert format_value("x", 0.000123456) == "0.0001235"
    assert format_value("x", None) == "–"
    assert format_value("x", float("inf")) == "∞"
    assert format_value("x", True) == "yes"
    assert format_value("x", [1, "a"]) == '[1,"a"]'


# ----------------------------------------------------------------------------------------------
# headless browser


def _chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={user_data}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed")
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    report = build_report(run_dir, tmp_path / "report.html", title="Browser check")
    shot = tmp_path / "shot.png"
    done = _chromium(
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        report.resolve().as_uri(),
        user_data=tmp_path / "profile-1",
    )
    assert shot.exists(), done.stderr[-2000:]
    pixels = _pixels(shot)
    assert pixels.shape == (2000, 1200, 3)
    assert 0.02 < _non_white(pixels) < 0.9
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, tables and images
    assert _share_near(pixels, TAB_BLUE) > 0.0005  # a figure is on screen

    done = _chromium("--dump-dom", report.resolve().as_uri(), user_data=tmp_path / "profile-2")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<h1>Browser check</h1>" in dom
    assert "Geolocation runs" in dom and "Classification runs" in dom
    assert "accuracy by continent (geoA)" in dom and "worst &lt;classes&gt;" in dom
    assert dom.count("<table>") == 2 + 2 + 2  # two summaries, a table per geo run, two classify
    assert dom.count('src="data:image/png;base64,') == 6


def test_runs_sharing_a_name_headers_and_captions_are_readable(tmp_path: Path) -> None:
    import orjson

    summary = {"n": 4, "top1_acc": 0.5, "top5_acc": 1.0, "classes": 3, "templates": 2,
               "embeddings_without_truth": 1, "unlabelled": 0}  # fmt: skip
    retrieval = {"n": 4, "captions": 20, "i2t_r1": 0.25, "embeddings_without_caption": 2}
    for kind, s in (("zeroshot", summary), ("retrieval", retrieval)):
        doc = {"kind": kind, "name": "emb", "source": "src", "summary": s, "tables": {},
               "figures": []}  # fmt: skip
        (tmp_path / f"emb.{kind}.json").write_bytes(orjson.dumps(doc))
    error_cdf({"emb": np.array([1.0, 20.0])}, tmp_path / "emb.error_map.png")
    geo = {"kind": "geo", "name": "emb", "source": "p.csv", "summary": {"n": 1},
           "tables": {}, "figures": ["emb.error_map.png"],
           "warnings": ["5 of 5 test locations (100.0%) lie within 1 km"]}  # fmt: skip
    (tmp_path / "emb.geo.json").write_bytes(orjson.dumps(geo))
    page = build_report(tmp_path, tmp_path / "r.html").read_text()
    parser = _Page()
    parser.feed(page)
    text = " ".join(parser.text)
    for name in ("emb (geo)", "emb (zeroshot)", "emb (retrieval)"):
        assert name in text
    # raw keys become a label and a second line, never one cut-off word
    assert "no truth" in text and "no caption" in text and "prompts" in text
    assert ">embeddings_without_truth<" not in page
    assert "Where the test images are, coloured by their error (emb (geo))" in text
    assert '<p class="warning"><strong>Warning:</strong> 5 of 5 test locations' in page
    assert "⚠ see warning" in text


def _figcaptions(page: str) -> list[str]:
    """The sentence of each figure caption (the file name under it left out)."""
    return [
        re.sub(r"<span class=\"file\">.*?</span>", "", c).strip()
        for c in re.findall(r"<figcaption>(.*?)</figcaption>", page)
    ]


def test_captions_describe_the_figures_not_their_file_names(tmp_path: Path) -> None:
    png = error_cdf({"x": np.array([1.0, 20.0])}, tmp_path / "map.png")
    for name in ("leakage-random.png", "range-danaus-plexippus.png", "p.reference_im2gps.png",
                 "leakage-cell.png"):  # fmt: skip
        (tmp_path / name).write_bytes(png.read_bytes())
    runs: dict[str, dict[str, Any]] = {
        "fg_geo.catalog.json": {"kind": "catalog", "figures": ["map.png"]},
        "splits.split.json": {
            "kind": "split",
            "figures": ["leakage-random.png", "leakage-cell.png"],
            "captions": {"leakage-cell.png": "Spatial split: the same check"},
        },
        "prior.prior.json": {"kind": "prior", "figures": ["range-danaus-plexippus.png"]},
        "p.geo.json": {"kind": "geo", "figures": ["p.reference_im2gps.png"]},
    }
    for file, doc in runs.items():
        body = {"name": file.split(".")[0], "source": "s", "summary": {"n": 1}, "tables": {},
                **doc}  # fmt: skip
        (tmp_path / file).write_bytes(orjson.dumps(body))
    page = build_report(tmp_path, tmp_path / "r.html").read_text()
    assert _figcaptions(page) == [
        "Where the catalog&#x27;s located images are (fg_geo)",
        "Where the random split leaks: images with a same-outing twin on another side (splits)",
        "Spatial split: the same check",  # the run file's own caption wins
        "Predicted range of Danaus plexippus with its training points (prior)",
        "Accuracy by distance threshold on im2gps: this run beside the published methods (p)",
    ]
    # a caption for a figure the run does not list, or an empty one, names the key
    bad = dict(runs["splits.split.json"], captions={"other.png": "x"})
    (tmp_path / "splits.split.json").write_bytes(orjson.dumps(
        {"name": "splits", "source": "s", "summary": {"n": 1}, "tables": {}, **bad}))  # fmt: skip
    with pytest.raises(InputFileError, match="captions.*not among the figures"):
        build_report(tmp_path, tmp_path / "r2.html")
    bad["captions"] = {"leakage-cell.png": " "}
    (tmp_path / "splits.split.json").write_bytes(orjson.dumps(
        {"name": "splits", "source": "s", "summary": {"n": 1}, "tables": {}, **bad}))  # fmt: skip
    with pytest.raises(InputFileError, match="figure path -> sentence"):
        build_report(tmp_path, tmp_path / "r3.html")

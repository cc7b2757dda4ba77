from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geoaware.catalog import conform
from geoaware.errors import InputFileError
from geoaware.evaluate.geo import evaluate_geo, geo_summary, geoscore, grouped_geo_summary
from geoaware.geo.geocode import countries
from geoaware.predictions.geo import read_geo_predictions

KEYS = [
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


def test_published_im2gps_result_file(shared_data: Path) -> None:
    path = shared_data / "im2gps/demo/scene_M_p_im2gps.csv"
    preds = read_geo_predictions(path)
    assert preds.columns == ("gt_lat", "gt_long", "predicted_lat", "predicted_long")
    assert preds.n == 237 and not preds.skipped and preds.footer_rows == 0
    report = evaluate_geo(preds, hit_rates=False)
    published = pd.read_csv(path)["great_circle_distance"].to_numpy()
    np.testing.assert_allclose(report.errors_km, published, atol=0.0051)
    s = report.summary
    assert list(s) == KEYS
    # Summary rows recomputed from the published per-image distances (2 dp, so compare at 1e-9
    # only where no distance sits within rounding of a threshold).
    for t in (1, 25, 200, 750, 2500):
        assert s[f"acc_{t}km"] == pytest.approx(np.mean(published <= t), abs=1 / 237)
    assert s["median_km"] == pytest.approx(np.median(published), abs=0.01)


def test_published_osv5m_scores_for_both_models(shared_data: Path) -> None:
    path = shared_data / "osv5m/select.csv"
    table = pd.read_csv(path)
    for cols, dist, score in (
        (("true_lat", "true_lon", "pred_lat", "pred_lon"), "distance", "score"),
        (("true_lat", "true_lon", "pred_lat_base", "pred_lon_base"), "distance_base", "score_base"),
    ):
        report = evaluate_geo(read_geo_predictions(path, cols), hit_rates=False)
        np.testing.assert_allclose(report.errors_km, table[dist], rtol=1e-6)
        np.testing.assert_allclose(geoscore(report.errors_km), table[score], rtol=1e-6)
        assert report.summary["geoscore"] == pytest.approx(table[score].mean(), rel=1e-6)


def test_osv5m_countries_agree_with_published_labels(shared_data: Path) -> None:
    t = pd.read_csv(shared_data / "osv5m/select.csv")
    ours = {
        "country": countries(t.true_lat, t.true_lon),
        "pred_country": countries(t.pred_lat, t.pred_lon),
        "pred_country_base": countries(t.pred_lat_base, t.pred_lon_base),
    }
    disagreements = [
        (int(i), col, t[col][i], ours[col][i])
        for col in ours
        for i in np.flatnonzero(ours[col] != t[col].to_numpy())
    ]
    # One point in the Strait of Otranto: the published labels come from a nearest-city search
    # in raw degrees; ours measures on the sphere and finds Italy nearer.
    assert disagreements == [(0, "pred_country_base", "AL", "IT")]
    np.testing.assert_array_equal(ours["country"] == ours["pred_country"], t.country_hit)
    hit_base = ours["country"] == ours["pred_country_base"]
    assert (hit_base == t.country_hit_base).all()


def test_hand_computed_summary_and_thresholds_inclusive() -> None:
    d = np.array([0.0, 1.0, 24.9, 25.0, 199.0, 800.0, 2500.0, 2600.0, math.pi * 6371.0])
    s = geo_summary(d)
    assert s["acc_1km"] == pytest.approx(2 / 9)
    assert s["acc_25km"] == pytest.approx(4 / 9)
    assert s["acc_200km"] == pytest.approx(5 / 9)
    assert s["acc_750km"] == pytest.approx(5 / 9)
    assert s["acc_2500km"] == pytest.approx(7 / 9)
    assert s["median_km"] == 199.0
    assert s["geoscore"] == pytest.approx(np.mean(5000 * np.exp(-d / 1492.7)))
    empty = geo_summary([])
    assert empty["n"] == 0 and empty["median_km"] is None


def test_grouped_summary_matches_per_group_loop() -> None:
    rng = np.random.default_rng(3)
    d = rng.exponential(500, 1000)
    g = rng.choice(["Europe", "Asia", "Africa", "Oceania"], 1000, p=[0.5, 0.3, 0.15, 0.05])
    rows = grouped_geo_summary(d, g)
    assert [r["group"] for r in rows] == ["Europe", "Asia", "Africa", "Oceania"]
    for r in rows:
        ref = geo_summary(d[g == r["group"]])
        for k in (
            "n",
            "acc_1km",
            "acc_25km",
            "acc_200km",
            "acc_750km",
            "acc_2500km",
            "mean_km",
            "geoscore",
        ):
            assert r[k] == pytest.approx(ref[k])
        assert r["median_km"] == pytest.approx(ref["median_km"])


def test_classic_distance_cases_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "id,lat,lon,pred_lat,pred_lon\n"
        "antipode,10,20,-10,-160\n"
        "pole,90,0,90,123\n"
        "antimeridian,0,179.9,0,-179.9\n"
    )
    r = evaluate_geo(read_geo_predictions(path), hit_rates=False)
    np.testing.assert_allclose(
        r.errors_km, [math.pi * 6371.0, 0.0, 2 * math.pi * 6371.0 * 0.2 / 360], atol=5e-4
    )
    g = evaluate_geo(read_geo_predictions(path), geodesic=True, hit_rates=False)
    assert g.errors_km[2] == pytest.approx(22.2639, abs=1e-3)  # WGS84 equator, 0.2 degrees


def test_bad_rows_are_listed_with_line_numbers_and_footer_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(
        "img_id,gt_lat,gt_long,predicted_lat,predicted_long\n"
        "a,48.85,2.35,48.80,2.30\n"
        "b,,2.35,48.80,2.30\n"
        "c,48.85,2.35,north,2.30\n"
        "d,95.0,2.35,48.80,2.30\n"
        "e,-33.87,151.21,-33.80,151.00\n"
        "mean,,,,\n"
        "accuracy 2500km,0.5,,,\n"
    )
    preds = read_geo_predictions(path)
    assert preds.n == 2 and preds.footer_rows == 2
    assert [(s.record, s.field, s.value, s.reason) for s in preds.skipped] == [
        ("line 3", "gt_lat", "", "not a number"),
        ("line 4", "predicted_lat", "north", "not a number"),
        ("line 5", "gt_lat", "95.0", "out of range"),
    ]
    assert preds.image_id is not None
    assert list(preds.image_id) == ["a", "e"]
    report = evaluate_geo(preds, hit_rates=False)
    assert report.summary["skipped_rows"] == 3  # data rows; the 2 footer rows are apart
    assert report.to_dict()["footer"]["rows"] == 2
    assert report.to_dict()["tables"]["skipped rows"]["rows"][0][0] == "line 3"
    with pytest.raises(
        InputFileError, match=r"results.csv, record line 3, field 'gt_lat': '' is not a number"
    ):
        read_geo_predictions(path, strict=True)


def test_columns_option_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("a,b,c,d\n1,2,1,2\n")
    with pytest.raises(InputFileError, match="no predicted latitude/longitude columns"):
        read_geo_predictions(path)
    assert read_geo_predictions(path, ("a", "b", "c", "d")).n == 1
    with pytest.raises(InputFileError, match=r"columns \['x'\] not in the file"):
        read_geo_predictions(path, ("a", "b", "c", "x"))


def test_truth_from_catalog_and_breakdowns(tmp_path: Path) -> None:
    catalog = conform(
        pa.table(
            {
                "source": ["s"] * 4,
                "image_id": ["p", "s", "t", "n"],
                "lat": [48.8566, -33.8688, 35.6762, None],
                "lon": [2.3522, 151.2093, 139.6503, None],
                "supercategory": ["Aves", "Aves", "Plantae", "Aves"],
            }
        )
    )
    path = tmp_path / "pred.parquet"
    pq.write_table(
        pa.table(
            {
                "image_id": ["p", "s", "t", "n", "zz"],
                "pred_lat": [48.0, -33.8688, 51.5074, 0.0, 0.0],
                "pred_lon": [2.0, 151.2093, -0.1278, 0.0, 0.0],
            }
        ),
        path,
    )
    preds = read_geo_predictions(path, truth=catalog)
    assert preds.n == 3
    assert [(s.record, s.reason) for s in preds.skipped] == [
        ("row 3", "truth has no location"),
        ("row 4", "not in the truth catalog"),
    ]
    report = evaluate_geo(preds, by=["continent", "supercategory"])
    by_cont = report.tables["by continent"]
    assert by_cont["columns"][:2] == ["continent", "n"]
    assert sorted(r[0] for r in by_cont["rows"]) == ["Asia", "Europe", "Oceania"]
    sup = {r[0]: r for r in report.tables["by supercategory"]["rows"]}
    assert sup["Aves"][1] == 2 and sup["Plantae"][1] == 1
    hits = {r[0]: r[1] for r in report.tables["country and continent hit rates"]["rows"]}
    assert hits["country hit rate"] == pytest.approx(2 / 3)  # Tokyo predicted in London
    assert hits["continent hit rate"] == pytest.approx(2 / 3)
    assert hits["truth on land"] == 1.0
    with pytest.raises(ValueError, match="cannot break down by 'nope'"):
        evaluate_geo(preds, by=["nope"], hit_rates=False)
    with pytest.raises(InputFileError, match="pass --truth CATALOG"):
        read_geo_predictions(path)


def test_unreadable_file(tmp_path: Path) -> None:
    p = tmp_path / "x.parquet"
    p.write_bytes(b"nope")
    with pytest.raises(InputFileError, match="not a readable CSV or Parquet file"):
        read_geo_predictions(p)
    with open(tmp_path / "e.csv", "w", newline="") as fh:
        csv.writer(fh).writerow(["id", "pred_lat", "pred_lon", "true_lat", "true_lon"])
    with pytest.raises(InputFileError, match=r"e.csv: has no prediction rows"):
        read_geo_predictions(tmp_path / "e.csv")  # header only: an error, not n = 0


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1001, 20_000])
def test_median_from_counts_equals_numpy_median(n: int) -> None:
    from geoaware.evaluate.geo import median_from_counts

    rng = np.random.default_rng(n)
    d = np.round(rng.lognormal(np.log(300), 2.0, n), 1)  # ties on purpose
    for pivots in ((1, 25, 200, 750, 2500), (), (1e9,), (0.0,)):
        counts = {float(t): int(np.count_nonzero(d <= t)) for t in pivots}
        assert median_from_counts(d, counts) == float(np.median(d))
    assert np.isnan(median_from_counts(np.array([1.0, np.nan]), {}))


def test_grouped_medians_with_ties_and_many_groups() -> None:
    rng = np.random.default_rng(11)
    d = np.round(rng.lognormal(np.log(300), 2.5, 50_000), 0)
    g = rng.integers(0, 150, 50_000).astype(str)
    rows = {r["group"]: r for r in grouped_geo_summary(d, g)}
    for name in ("0", "7", "149"):
        part = d[g == name]
        assert rows[name]["median_km"] == float(np.median(part))
        assert rows[name]["acc_750km"] == pytest.approx(np.mean(part <= 750))
    one = grouped_geo_summary([5.0], ["x"])[0]
    assert (one["n"], one["median_km"], one["acc_1km"]) == (1, 5.0, 0.0)


@pytest.mark.parametrize("n", [7, 1_100_003])  # one block; many blocks on all cores
def test_block_summaries_equal_plain_numpy(n: int) -> None:
    """The blocked, threaded passes give numpy's own figures, per group and overall."""
    rng = np.random.default_rng(n)
    d = rng.exponential(800, n)
    d[: n // 3] = rng.choice([1.0, 25.0, 200.0], n // 3)  # exact threshold values (inclusive)
    g = rng.choice(list("abcdefgh"), n)
    s = geo_summary(d)
    assert s["median_km"] == float(np.median(d))
    assert s["mean_km"] == pytest.approx(float(d.mean()), rel=1e-12)
    assert s["geoscore"] == pytest.approx(float(np.mean(5000 * np.exp(-d / 1492.7))), rel=1e-12)
    assert s["acc_25km"] == np.count_nonzero(d <= 25.0) / n
    for row in grouped_geo_summary(d, g):
        x = d[g == row["group"]]
        assert row["n"] == x.size and row["median_km"] == float(np.median(x))
        assert row["acc_200km"] == np.count_nonzero(x <= 200.0) / x.size
        assert row["mean_km"] == pytest.approx(float(x.mean()), rel=1e-12)


def test_grouped_summary_of_a_categorical_skips_unused_categories() -> None:
    cat = pd.Categorical(["b", "b", "c"], categories=["a", "b", "c"])
    rows = grouped_geo_summary([10.0, 30.0, 5.0], cat)
    assert [(r["group"], r["n"], r["median_km"]) for r in rows] == [("b", 2, 20.0), ("c", 1, 5.0)]

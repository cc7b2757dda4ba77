from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geoaware.catalog import read_catalog, write_catalog
from geoaware.errors import InputFileError
from geoaware.evaluate import (
    Bucket,
    ClassificationReport,
    EvaluationError,
    TopK,
    evaluate_classification,
    first_match_rank,
    read_predictions,
    top_k_error,
    top_k_from_scores,
    write_submission,
)

# label -> (genus, family, supercategory); train images per label
TAXA = {
    0: ("G1", "F1", "Plantae"),
    1: ("G1", "F1", "Plantae"),
    2: ("G2", "F1", "Plantae"),
    3: ("G3", "F2", "Aves"),
    4: ("G3", "F2", "Aves"),
}
TRAIN_COUNTS = {0: 25, 1: 5, 2: 150, 3: 0, 4: 100}
VAL = [("v1", 0), ("v2", 1), ("v3", 2), ("v4", 3), ("v5", 4), ("v6", 3)]
PREDICTED = {
    "v1": [0, 1],  # right at rank 1
    "v2": [0, 1],  # right at rank 2; genus right at rank 1
    "v3": [1, 3, 4, 0, 2],  # right at rank 5; genus at 5; family at 1
    "v4": [4],  # fewer than k labels; wrong, but the genus is right
    # v5: no prediction at all
    "v6": [3, 3, 3],  # a duplicate label counts once
    "x9": [0],  # an id not in the val split
}


def catalog_rows() -> pa.Table:
    rows = [(image_id, "val", label) for image_id, label in VAL]
    rows += [
        (f"t{label}-{i}", "train", label) for label, n in TRAIN_COUNTS.items() for i in range(n)
    ]
    return pa.table(
        {
            "source": ["inat2017"] * len(rows),
            "image_id": [r[0] for r in rows],
            "split": [r[1] for r in rows],
            "label": [r[2] for r in rows],
            "label_name": [f"species {r[2]}" for r in rows],
            "genus": [TAXA[r[2]][0] for r in rows],
            "family": [TAXA[r[2]][1] for r in rows],
            "supercategory": [TAXA[r[2]][2] for r in rows],
        }
    )


@pytest.fixture
def catalog(tmp_path: Path) -> pa.Table:
    return read_catalog(write_catalog(catalog_rows(), tmp_path / "catalog.parquet"))


def hand_predictions() -> TopK:
    return TopK.from_lists(list(PREDICTED), list(PREDICTED.values()))


def table_rows(report: ClassificationReport, title: str) -> dict[str, dict[str, object]]:
    table = report.to_dict()["tables"][title]
    return {row[0]: dict(zip(table["columns"], row, strict=True)) for row in table["rows"]}


# --- the metric -------------------------------------------------------------------------------
def test_first_match_rank_and_error_by_hand() -> None:
    predicted = [[4, 2, 9], [1, 1, -1], [5, 6, 7], [-1, -1, -1]]
    truth = [2, 1, 0, 3]
    assert first_match_rank(predicted, truth).tolist() == [2, 1, 0, 0]
    assert top_k_error(predicted, truth, k=1) == 0.75
    assert top_k_error(predicted, truth, k=2) == 0.5
    assert top_k_error(predicted, truth, k=5) == 0.5


def test_padding_never_matches_a_negative_truth() -> None:
    assert first_match_rank([[-1, -1]], [-1]).tolist() == [0]


def test_summary_by_hand(catalog: pa.Table) -> None:
    report = evaluate_classification(hand_predictions(), catalog, split="val")
    s = report.summary
    assert s["n"] == 6
    assert s["top1_acc"] == pytest.approx(2 / 6)
    assert s["top1_error"] == pytest.approx(4 / 6)
    assert s["top5_acc"] == pytest.approx(4 / 6)
    assert s["top5_error"] == pytest.approx(2 / 6)
    # classes 0: 1/1, 1: 0/1, 2: 0/1, 3: 1/2, 4: 0/1
    assert s["mean_per_class_acc"] == pytest.approx(1.5 / 5)
    assert s["missing_predictions"] == 1
    assert s["unknown_ids"] == 1
    assert list(s) == [
        "n",
        "top1_error",
        "top5_error",
        "top1_acc",
        "top5_acc",
        "mean_per_class_acc",
        "missing_predictions",
        "unknown_ids",
    ]
    assert report.rank.tolist() == [1, 2, 5, 0, 0, 1]
    assert report.error(2) == pytest.approx(3 / 6)
    notes = " | ".join(r[0] for r in report.to_dict()["tables"]["notes"]["rows"])
    assert "1 of 6 truth images have no prediction; they count as errors" in notes
    assert "'x9'" in notes


def test_per_supercategory_and_taxonomic_levels(catalog: pa.Table) -> None:
    report = evaluate_classification(hand_predictions(), catalog, split="val")
    sc = table_rows(report, "by supercategory")
    assert sc["Plantae"]["n"] == 3 and sc["Aves"]["n"] == 3
    assert sc["Plantae"]["top1_acc"] == pytest.approx(1 / 3)
    assert sc["Plantae"]["top5_acc"] == pytest.approx(1.0)
    assert sc["Aves"]["top1_acc"] == pytest.approx(1 / 3)
    assert sc["Aves"]["top5_error"] == pytest.approx(2 / 3)
    assert sc["Aves"]["classes"] == 2
    levels = table_rows(report, "by taxonomic level")
    assert list(levels) == ["label", "genus", "family"]
    assert levels["label"]["top1_acc"] == pytest.approx(2 / 6)
    assert levels["genus"]["n"] == 6 and levels["genus"]["taxa"] == 3
    assert levels["genus"]["top1_acc"] == pytest.approx(4 / 6)  # v1 v2 v4 v6
    assert levels["genus"]["top5_acc"] == pytest.approx(5 / 6)  # + v3 at rank 5
    assert levels["family"]["top1_acc"] == pytest.approx(5 / 6)  # v3's first guess is in F1
    assert levels["family"]["top1_error"] == pytest.approx(1 / 6)


def test_frequency_buckets_from_the_catalog_train_rows(catalog: pa.Table) -> None:
    report = evaluate_classification(hand_predictions(), catalog, split="val")
    b = table_rows(report, "by train frequency")
    assert list(b) == ["few", "medium", "many"]
    assert b["few"]["train_images"] == "<20" and b["many"]["train_images"] == ">100"
    # few: classes 1 (5 images) and 3 (none) -> v2, v4, v6
    assert (b["few"]["classes"], b["few"]["n"]) == (2, 3)
    assert b["few"]["top1_acc"] == pytest.approx(1 / 3)
    assert b["few"]["top5_acc"] == pytest.approx(2 / 3)
    assert b["few"]["mean_per_class_acc"] == pytest.approx(0.25)
    # medium: classes 0 (25) and 4 (100, the bound is inclusive) -> v1, v5
    assert (b["medium"]["classes"], b["medium"]["n"]) == (2, 2)
    assert b["medium"]["top1_acc"] == pytest.approx(0.5)
    # many: class 2 (150) -> v3
    assert (b["many"]["n"], b["many"]["top1_acc"], b["many"]["top5_acc"]) == (1, 0.0, 1.0)


def test_frequency_buckets_from_a_train_table_and_custom_buckets(catalog: pa.Table) -> None:
    train = pa.table({"label": [0] * 3 + [3] * 7})
    buckets = (Bucket("rare", 0, 4), Bucket("common", 5, None))
    report = evaluate_classification(
        hand_predictions(), catalog, split="val", train_table=train, buckets=buckets
    )
    b = table_rows(report, "by train frequency")
    assert b["rare"]["classes"] == 4  # 0 (3 images), 1, 2, 4 (none in this train table)
    assert b["common"]["classes"] == 1 and b["common"]["n"] == 2  # class 3: v4, v6
    assert b["common"]["top1_acc"] == pytest.approx(0.5)
    with pytest.raises(EvaluationError, match="overlap"):
        evaluate_classification(
            hand_predictions(),
            catalog,
            split="val",
            buckets=(Bucket("a", 0, 10), Bucket("b", 5, None)),
        )


def test_no_train_counts_is_said(catalog: pa.Table) -> None:
    val_only = catalog.filter(pa.compute.equal(catalog.column("split"), "val"))
    report = evaluate_classification(hand_predictions(), val_only, split="val")
    assert "by train frequency" not in report.tables
    notes = [r[0] for r in report.tables["notes"]["rows"]]
    assert any(n.startswith("train counts unavailable") for n in notes)


def test_split_none_takes_every_labelled_row_and_bad_splits_are_clear(catalog: pa.Table) -> None:
    report = evaluate_classification(hand_predictions(), catalog)
    assert report.summary["n"] == catalog.num_rows
    notes = [r[0] for r in report.tables["notes"]["rows"]]
    assert any(
        n.startswith("no split given: the labelled rows of every split (train, val)") for n in notes
    )
    with pytest.raises(EvaluationError, match=r"no rows with split 'test'; its splits: train, val"):
        evaluate_classification(hand_predictions(), catalog, split="test")
    unlabelled = pa.table(
        {"image_id": ["a"], "split": ["test"], "label": pa.array([None], pa.int32())}
    )
    with pytest.raises(EvaluationError, match="no truth row of split 'test' has a label"):
        evaluate_classification(hand_predictions(), unlabelled, split="test")


def test_other_ks_and_catalog_path(tmp_path: Path, catalog: pa.Table) -> None:
    path = write_catalog(catalog_rows(), tmp_path / "cat")
    report = evaluate_classification(hand_predictions(), path, split="val", ks=(2, 1))
    assert list(report.summary)[:5] == ["n", "top1_error", "top2_error", "top1_acc", "top2_acc"]
    assert report.summary["top2_acc"] == pytest.approx(3 / 6)
    with pytest.raises(EvaluationError, match="positive"):
        evaluate_classification(hand_predictions(), catalog, ks=(0,))


def test_duplicate_prediction_ids_are_refused(catalog: pa.Table) -> None:
    preds = TopK.from_lists(["v1", "v1"], [[0], [1]])
    with pytest.raises(EvaluationError, match="'v1' has two predictions"):
        evaluate_classification(preds, catalog, split="val")


def test_to_dict_is_the_run_folder_shape(tmp_path: Path, catalog: pa.Table) -> None:
    report = evaluate_classification(hand_predictions(), catalog, split="val", name="mine")
    d = report.to_dict()
    assert list(d) == ["kind", "name", "source", "summary", "tables", "figures"]
    assert (d["kind"], d["name"], d["source"], d["figures"]) == ("classify", "mine", "<memory>", [])
    for table in d["tables"].values():
        assert set(table) == {"columns", "rows"}
        assert all(len(row) == len(table["columns"]) for row in table["rows"])
    saved = json.loads(report.save(tmp_path / "run" / "classify.json").read_text())
    assert saved == json.loads(orjson.dumps(d))


# --- dense scores: ties and top-k ---------------------------------------------------------------
def test_ties_break_to_the_lower_class_id() -> None:
    scores = [[0.1, 0.4, 0.4, 0.2, 0.4], [1.0, 1.0, 1.0, 1.0, 1.0]]
    labels, top = top_k_from_scores(scores, k=2)
    assert labels.tolist() == [[1, 2], [0, 1]]
    assert top.tolist() == [[0.4, 0.4], [1.0, 1.0]]
    labels, _ = top_k_from_scores(scores, k=4)
    assert labels.tolist() == [[1, 2, 4, 3], [0, 1, 2, 3]]
    # class ids need not be in column order; ties still favour the lower id
    labels, _ = top_k_from_scores([[1.0, 1.0, 1.0]], k=2, class_ids=[30, 10, 20])
    assert labels.tolist() == [[10, 20]]


def test_nan_ranks_last_and_k_above_the_class_count() -> None:
    labels, top = top_k_from_scores([[np.nan, 0.1, np.nan]], k=5)
    assert labels.tolist() == [[1, 0, 2]]
    assert top[0, 0] == 0.1 and np.isneginf(top[0, 1:]).all()


def test_top_k_matches_a_sort_on_random_tied_scores() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(300, 9)).astype(np.float32)  # many ties
    class_ids = rng.permutation(np.arange(100, 109))
    labels, _ = top_k_from_scores(scores, k=5, class_ids=class_ids)
    expected = [
        [class_ids[c] for c in sorted(range(9), key=lambda c: (-row[c], class_ids[c]))][:5]
        for row in scores
    ]
    assert labels.tolist() == expected


# --- the file formats agree -------------------------------------------------------------------
def dense_case() -> tuple[list[str], pa.Table, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n, c = 40, 12
    ids = [f"v{i}" for i in range(n)]
    truth = pa.table(
        {
            "source": ["s"] * n,
            "image_id": ids,
            "split": ["val"] * n,
            "label": (np.arange(n) % c + 100).astype(np.int32),
        }
    )
    scores = rng.integers(0, 6, size=(n, c)).astype(np.float64)  # integer scores: ties
    class_ids = np.arange(100, 100 + c)
    return ids, truth, scores, class_ids


def test_npz_parquet_and_csv_give_the_same_result(tmp_path: Path) -> None:
    ids, truth, scores, class_ids = dense_case()
    expected = TopK.from_scores(ids, scores, class_ids=class_ids, k=5)
    assert expected.scores is not None

    np.savez(tmp_path / "dense.npz", image_id=np.array(ids), scores=scores, class_ids=class_ids)
    np.savez(
        tmp_path / "sparse.npz",
        image_id=np.array(ids),
        labels=expected.labels,
        scores=expected.scores,
    )
    dense_type = pa.list_(pa.float32(), scores.shape[1])
    dense = pa.table(
        {"image_id": ids, "scores": pa.array(list(scores.astype(np.float32)), dense_type)}
    ).replace_schema_metadata({b"geoaware.class_ids": json.dumps(class_ids.tolist()).encode()})
    pq.write_table(dense, tmp_path / "dense.parquet")
    sparse = pa.table(
        {
            "image_id": ids,
            "labels": [row.tolist() for row in expected.labels],
            "scores": [row.tolist() for row in expected.scores],
        }
    )
    pq.write_table(sparse, tmp_path / "sparse.parquet")
    kaggle = pa.table({"id": ids, "predicted": [" ".join(map(str, r)) for r in expected.labels]})
    pq.write_table(kaggle, tmp_path / "kaggle.parquet")
    write_submission(expected, tmp_path / "sub.csv")
    (tmp_path / "sub.csv.gz").write_bytes(gzip.compress((tmp_path / "sub.csv").read_bytes()))

    reports = {
        name: evaluate_classification(tmp_path / name, truth, split="val").to_dict()
        for name in (
            "dense.npz",
            "sparse.npz",
            "dense.parquet",
            "sparse.parquet",
            "kaggle.parquet",
            "sub.csv",
            "sub.csv.gz",
        )
    }
    first = reports["dense.npz"]
    assert 0 < first["summary"]["top5_acc"] < 1
    for name, d in reports.items():
        assert d["summary"] == first["summary"], name
        assert d["tables"] == first["tables"], name
    for name in (
        "dense.npz",
        "sparse.npz",
        "dense.parquet",
        "sparse.parquet",
        "kaggle.parquet",
        "sub.csv",
    ):
        got = read_predictions(tmp_path / name)
        assert got.image_ids.to_pylist() == ids
        assert got.labels.tolist() == expected.labels.tolist(), name


def test_csv_quirks_are_tolerated(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_bytes(b'id,predicted\r\n1 , 3  4\t5 \r\n\r\n   \n2,\n007,9\n"8", " 1 2"\n\n')
    p = read_predictions(f)
    assert p.image_ids.to_pylist() == ["1", "2", "007", "8"]  # ids are text: 007 stays 007
    assert p.labels.tolist() == [[3, 4, 5], [-1, -1, -1], [9, -1, -1], [1, 2, -1]]
    assert read_predictions(f, k=2).labels.shape == (4, 2)
    f.write_text("id,predicted")  # a header alone, without a line break
    assert len(read_predictions(f)) == 0


def test_reader_errors_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("id,predicted\n1,3\n\n2,3 x4 5\n3,y\n")
    with pytest.raises(
        InputFileError,
        match=r"p.csv, record line 4, field 'predicted': label 'x4' is not an integer \(and 1 more\)",
    ):
        read_predictions(f)
    f.write_text("id,predicted\n1,3\n2,4\n1,5\n")
    with pytest.raises(
        InputFileError,
        match=r"record line 4, field 'id': image id '1' appears again \(first at line 2\)",
    ):
        read_predictions(f)
    f.write_text("id,predicted\n1,3\n2,4,5\n")
    with pytest.raises(InputFileError, match=r"record line 3: expected 2 fields, found 3"):
        read_predictions(f)
    f.write_bytes(b"id,predicted\n1,3\n\n2,\xff\n")
    with pytest.raises(InputFileError, match=r"record line 4, field 'predicted': not valid UTF-8"):
        read_predictions(f)
    f.write_text("image,guess\n1,3\n")
    with pytest.raises(InputFileError, match=r"record line 1: header must be 'id,predicted'"):
        read_predictions(f)
    with pytest.raises(InputFileError, match="unknown predictions format"):
        read_predictions(_touch(tmp_path / "p.json"))
    pq.write_table(pa.table({"image_id": ["1"], "labels": [["a"]]}), tmp_path / "bad.parquet")
    with pytest.raises(InputFileError, match="field 'labels': must hold integers"):
        read_predictions(tmp_path / "bad.parquet")


def _touch(path: Path) -> Path:
    path.write_text("{}")
    return path


def test_parquet_dense_without_class_ids_uses_positions(tmp_path: Path) -> None:
    t = pa.table({"image_id": ["a", "b"], "scores": [[0.1, 0.9, 0.5], [0.7, 0.2, 0.1]]})
    pq.write_table(t, tmp_path / "d.parquet")
    p = read_predictions(tmp_path / "d.parquet", k=2)
    assert p.labels.tolist() == [[1, 2], [0, 1]]
    pq.write_table(
        pa.table({"image_id": ["a", "b"], "scores": [[0.1, 0.9], [0.7]]}), tmp_path / "r.parquet"
    )
    with pytest.raises(InputFileError, match=r"record row 1, field 'scores': expected 2 scores"):
        read_predictions(tmp_path / "r.parquet")

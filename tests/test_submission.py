from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from geoaware.catalog import write_catalog
from geoaware.errors import InputFileError
from geoaware.evaluate import EvaluationError, Problem, TopK, check_submission, write_submission


def truth() -> pa.Table:
    test = [f"t{i}" for i in range(1, 8)]
    return pa.table(
        {
            "source": ["s"] * 11,
            "image_id": [*test, "a", "b", "c", "d"],
            "split": ["test"] * 7 + ["train"] * 4,
            "label": pa.array([None] * 7 + [0, 1, 2, 3], pa.int32()),
        }
    )


MANY_FAULTS = (
    "id,predicted,extra\n"  # 1 header
    "t1,0 1 2\n"  # 2 fine
    "t2,0 1 2 3 0 1\n"  # 3 six labels; 0 and 1 twice
    "t1,2\n"  # 4 duplicate id
    "zz,1\n"  # 5 unknown id
    "\n"  # 6 blank: skipped
    "t3,1 x 99\n"  # 7 not an integer; unknown category
    "t4\n"  # 8 one field
    "t5,\n"  # 9 no labels
    ",3\n"  # 10 empty id
    "t6,2.5\n"  # 11 not an integer
    "   \n"  # 12 whitespace only: skipped
)


def test_every_problem_is_listed_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "sub.csv"
    f.write_text(MANY_FAULTS)
    got = [(p.line, p.field, p.message, p.severity) for p in check_submission(f, truth())]
    assert got == [
        (1, "header", "must be exactly 'id,predicted'; found 'id,predicted,extra'", "error"),
        (3, "predicted", "6 labels; at most 5 are allowed", "error"),
        (3, "predicted", "label 0 appears 2 times; it counts once", "warning"),
        (3, "predicted", "label 1 appears 2 times; it counts once", "warning"),
        (4, "id", "duplicate id 't1' (first on line 2)", "error"),
        (5, "id", "unknown image id 'zz' (not an image of split 'test')", "error"),
        (7, "predicted", "label 'x' is not an integer", "error"),
        (7, "predicted", "label 99 is not a known category", "error"),
        (8, "row", "expected 2 fields (id,predicted), found 1: 't4'", "error"),
        (9, "predicted", "no labels", "error"),
        (10, "id", "empty id", "error"),
        (11, "predicted", "label '2.5' is not an integer", "error"),
        (None, "id", "no row for image 't4' of split 'test'", "error"),
        (None, "id", "no row for image 't7' of split 'test'", "error"),
    ]
    assert str(Problem(3, "id", "bad")) == "line 3: id: bad"


def test_round_trip_write_then_check_has_no_problem(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = [f"t{i}" for i in range(1, 8)]
    scores = rng.random((7, 4))
    path = write_submission(TopK.from_scores(ids, scores, k=5), tmp_path / "out" / "sub.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "id,predicted"
    assert lines[1] == "t1," + " ".join(str(c) for c in np.argsort(-scores[0], kind="stable"))
    assert check_submission(path, truth()) == []
    assert [p.name for p in path.parent.iterdir()] == ["sub.csv"]  # no temporary left


def test_write_from_a_scores_file_and_a_catalog_path(tmp_path: Path) -> None:
    ids = np.array([f"t{i}" for i in range(1, 8)])
    np.savez(tmp_path / "scores.npz", image_id=ids, scores=np.eye(7, 4), class_ids=[0, 1, 2, 3])
    path = write_submission(tmp_path / "scores.npz", tmp_path / "sub.csv", k=2)
    assert path.read_text().splitlines()[1:3] == ["t1,0 1", "t2,1 0"]
    catalog = write_catalog(truth(), tmp_path / "catalog.parquet")
    assert check_submission(path, catalog, split="test") == []


def test_crlf_whitespace_and_trailing_blank_lines_are_fine(tmp_path: Path) -> None:
    f = tmp_path / "sub.csv"
    body = "".join(f"t{i}, {i % 4} 0 \r\n" for i in range(1, 8))
    f.write_bytes(("id,predicted\r\n" + body + "\r\n\r\n").encode())
    assert [p for p in check_submission(f, truth()) if p.severity == "error"] == []


def test_a_stray_quote_does_not_shift_later_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "sub.csv"
    rows = [f"t{i},1" for i in range(1, 8)]
    rows[2] = '"t3,1'  # an unclosed quote: quoting is off, so it stays on its own line
    rows[5] = "t6,1 1"
    f.write_text("id,predicted\n" + "\n".join(rows) + "\n")
    got = [(p.line, p.message) for p in check_submission(f, truth())]
    assert got == [
        (4, "unknown image id '\"t3' (not an image of split 'test')"),
        (7, "label 1 appears 2 times; it counts once"),
        (None, "no row for image 't3' of split 'test'"),
    ]


def test_header_problems(tmp_path: Path) -> None:
    f = tmp_path / "sub.csv"
    f.write_text("\ufeffid,predicted\n" + "".join(f"t{i},1\n" for i in range(1, 8)))
    (problem,) = check_submission(f, truth())
    assert (problem.line, problem.field) == (1, "header")
    assert "byte-order mark" in problem.message
    f.write_text("")
    got = check_submission(f, truth())
    assert got[0] == Problem(1, "header", "file is empty; expected the header 'id,predicted'")
    assert len(got) == 8  # and all seven test images are missing


def test_bad_catalog_or_split_is_an_error_not_a_problem(tmp_path: Path) -> None:
    f = tmp_path / "sub.csv"
    f.write_text("id,predicted\n")
    with pytest.raises(EvaluationError, match=r"no rows with split 'val'; its splits: test, train"):
        check_submission(f, truth(), split="val")
    with pytest.raises(InputFileError, match="no such file"):
        check_submission(tmp_path / "none.csv", truth())


def test_ids_that_cannot_be_written_unquoted_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="comma"):
        write_submission(TopK.from_lists(["a,b"], [[1]]), tmp_path / "s.csv")
    assert not list(tmp_path.iterdir())

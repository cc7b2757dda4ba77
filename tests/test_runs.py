"""The run-folder format (geoaware.runs): what evaluators write is what the report reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from geoaware.errors import InputFileError
from geoaware.runs import KINDS, read_run, read_runs, run_document, run_path, write_run


def test_write_then_read_every_kind(tmp_path: Path) -> None:
    for kind in KINDS:
        doc = run_document(
            kind, f"m-{kind}", "test.csv", {"n": np.int64(4), "top1_acc": np.float32(0.5)},
            {"t": {"columns": ["a", "b"], "rows": [[1, None]]}}, warnings=["w"],
        )  # fmt: skip
        path = write_run(run_path(tmp_path / "run", f"m-{kind}", kind), doc)
        assert path.name == f"m-{kind}.{kind}.json"
        run = read_run(path)
        assert (run.kind, run.name, run.summary) == (kind, f"m-{kind}", {"n": 4, "top1_acc": 0.5})
        assert run.tables[0].rows == ((1, None),) and run.warnings == ("w",)
    assert sorted(r.kind for r in read_runs(tmp_path / "run")) == sorted(KINDS)
    leftovers = [p.name for p in (tmp_path / "run").iterdir() if not p.name.endswith(".json")]
    assert leftovers == []  # atomic writes leave no temporary file behind


def test_write_run_refuses_a_document_the_report_could_not_read(tmp_path: Path) -> None:
    doc = run_document("geo", "m", "p.csv", {"n": 1})
    with pytest.raises(ValueError, match="file name says 'classify'"):
        write_run(tmp_path / "m.classify.json", doc)
    with pytest.raises(ValueError, match="missing \\['figures'\\]"):
        write_run(tmp_path / "m.geo.json", {k: v for k, v in doc.items() if k != "figures"})
    with pytest.raises(ValueError, match="kind must be one of"):
        run_document("plot", "m", "p.csv", {"n": 1})  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_read_run_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "m.geo.json"
    path.write_bytes(orjson.dumps({**run_document("geo", "m", "p.csv", {}), "summary": {}}))
    with pytest.raises(InputFileError, match=r"m\.geo\.json.*summary\.n"):
        read_run(path)

"""Zero-shot classification and image-text retrieval, on constructed vectors with known answers."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from geoaware.catalog import write_catalog
from geoaware.errors import EvaluationError, GeoawareError, InputFileError, SchemaError
from geoaware.evaluate.commands import app as stage_app
from geoaware.evaluate.imagetext import (
    DEFAULT_TEMPLATES,
    Ties,
    average_template_vectors,
    class_ranks,
    class_text_embeddings,
    fill_templates,
    retrieval_ranks,
    retrieval_report,
    zeroshot_report,
    zeroshot_scores,
)
from geoaware.evaluate.imagetext_files import (
    caption_ids,
    evaluate_retrieval,
    evaluate_zeroshot,
    read_captions,
    read_class_names,
    read_templates,
)
from geoaware.vision.embeddings import EmbeddingInfo, write_embeddings
from tests.conftest import command_app

runner = CliRunner()


# ----------------------------------------------------------------------------------------------
# Reference: per-query loops over sorted scores (the obvious, slow way).
def _ref_ranks(
    img: np.ndarray, txt: np.ndarray, owner: np.ndarray, pessimistic: bool
) -> tuple[np.ndarray, np.ndarray]:
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    s = img @ txt.T
    i2t = []
    for i in range(len(img)):
        right = owner == i
        if not right.any():
            i2t.append(0)
            continue
        best = s[i, right].max()
        wrong = s[i, ~right]
        i2t.append(1 + int(np.sum(wrong >= best if pessimistic else wrong > best)))
    t2i = []
    for j in range(len(txt)):
        true = s[owner[j], j]
        wrong = np.delete(s[:, j], owner[j])
        t2i.append(1 + int(np.sum(wrong >= true if pessimistic else wrong > true)))
    return np.array(i2t), np.array(t2i)


# ----------------------------------------------------------------------------------------------
# Retrieval metrics
def test_identity_embeddings_give_perfect_recall() -> None:
    eye = np.eye(6, dtype=np.float32)
    r = retrieval_report(eye, eye, np.arange(6))
    assert r.summary["images"] == 6 and r.summary["captions"] == 6
    for key in ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "mean_recall"):
        assert r.summary[key] == 1.0


# img = identity, so cos(image i, text j) = t_j[i] / |t_j|.
_TXT = np.array(
    [
        [0.5, 0, 0, 1],  # image 0's caption: 0.447 with image 0, 0.894 with image 3
        [0.9, 1, 0, 0],  # image 1's: 0.669 with image 0
        [0.8, 0, 1, 0],  # image 2's: 0.625 with image 0
        [0, 0, 0, 1],  # image 3's
    ],
    dtype=np.float32,
)


def test_true_caption_ranked_third() -> None:
    i2t, t2i = retrieval_ranks(np.eye(4), _TXT, [0, 1, 2, 3])
    assert i2t.tolist() == [3, 1, 1, 1]  # image 0: captions 1 and 2 beat its own
    assert t2i.tolist() == [2, 1, 1, 1]  # caption 0: image 3 beats image 0
    r = retrieval_report(np.eye(4), _TXT, [0, 1, 2, 3], ks=(1, 2, 5))
    s = r.summary
    assert (s["i2t_r1"], s["i2t_r2"], s["i2t_r5"]) == (0.75, 0.75, 1.0)
    assert (s["t2i_r1"], s["t2i_r2"], s["t2i_r5"]) == (0.75, 1.0, 1.0)
    assert s["mean_recall"] == pytest.approx((0.75 + 0.75 + 1 + 0.75 + 1 + 1) / 6)
    # image 0 alone: R@1 = 0, R@5 = 1
    assert (r.i2t_rank[0] <= 1, r.i2t_rank[0] <= 5) == (False, True)


def test_several_captions_per_image_best_one_counts() -> None:
    img = np.eye(3)
    txt = np.array(
        [
            [1, 0, 0],  # image 0, exact
            [0.1, 1, 0],  # image 0, but close to image 1
            [0, 1, 0],  # image 1
            [0, 0, 1],  # image 2
            [0, 0.2, 1],  # image 2
        ]
    )
    owner = np.array([0, 0, 1, 2, 2])
    i2t, t2i = retrieval_ranks(img, txt, owner)
    assert i2t.tolist() == [1, 1, 1]
    assert t2i.tolist() == [1, 2, 1, 1, 1]
    r = retrieval_report(img, txt, owner)
    assert r.summary["images"] == 3 and r.summary["captions"] == 5
    assert r.summary["i2t_r1"] == 1.0 and r.summary["t2i_r1"] == 0.8


def test_other_true_captions_never_count_against_an_image() -> None:
    img = np.eye(2)
    txt = np.array([[1, 0.1], [1, 0.1], [1, 0.1], [0, 1]])  # image 0's three captions tie
    i2t, _ = retrieval_ranks(img, txt, [0, 0, 0, 1], ties="pessimistic")
    assert i2t.tolist() == [1, 1]


def test_images_without_captions_are_only_distractors() -> None:
    img = np.array([[1, 0], [0.9, 0.1], [0, 1]])  # image 1 has no caption but is near caption 0
    txt = np.array([[0.9, 0.1], [0, 1]])
    r = retrieval_report(img, txt, [0, 2], ks=(1,))
    assert r.i2t_rank.tolist() == [1, 0, 1]
    assert r.summary["images"] == 2  # image 1 is not a query
    assert r.t2i_rank.tolist() == [2, 1]  # ... but it beats image 0 for caption 0
    assert r.summary["t2i_r1"] == 0.5


def test_ties_pessimistic_and_optimistic() -> None:
    img = np.eye(2)
    txt = np.array([[1.0, 1.0], [1.0, 1.0]])  # every score ties
    pes = retrieval_report(img, txt, [0, 1], ks=(1,), ties="pessimistic")
    opt = retrieval_report(img, txt, [0, 1], ks=(1,), ties="optimistic")
    assert pes.i2t_rank.tolist() == [2, 2] and pes.t2i_rank.tolist() == [2, 2]
    assert pes.summary["mean_recall"] == 0.0
    assert opt.i2t_rank.tolist() == [1, 1] and opt.t2i_rank.tolist() == [1, 1]
    assert opt.summary["mean_recall"] == 1.0
    with pytest.raises(EvaluationError, match="ties"):
        retrieval_report(img, txt, [0, 1], ties="random")  # type: ignore[arg-type]


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
@pytest.mark.parametrize("max_block", [1, 7, 100, 1 << 24])
def test_chunked_ranks_match_reference(ties: Ties, max_block: int) -> None:
    rng = np.random.default_rng(3)
    img = rng.normal(size=(23, 5)).round(1)  # rounding makes ties likely
    owner = np.r_[np.arange(20), rng.integers(0, 23, 31)]  # images 20..22 may lack captions
    txt = img[owner] + rng.normal(scale=1.0, size=(owner.size, 5)).round(1)
    txt[::5] = img[owner[::5]]  # exact duplicates: ties with the image's other candidates
    i2t, t2i = retrieval_ranks(img, txt, owner, ties=ties, max_block=max_block)
    ref_i2t, ref_t2i = _ref_ranks(img, txt, owner, pessimistic=ties == "pessimistic")
    assert i2t.tolist() == ref_i2t.tolist()
    assert t2i.tolist() == ref_t2i.tolist()


def test_retrieval_input_errors() -> None:
    with pytest.raises(EvaluationError, match="3 dimensions but text vectors 2"):
        retrieval_report(np.eye(3), np.eye(2), [0, 1])
    with pytest.raises(EvaluationError, match="text 1: image index 5"):
        retrieval_report(np.eye(3), np.eye(3)[:2], [0, 5])
    with pytest.raises(EvaluationError, match="2 entries for 3 texts"):
        retrieval_report(np.eye(3), np.eye(3), [0, 1])
    with pytest.raises(EvaluationError, match="text vectors, row 1: zero length"):
        retrieval_report(np.eye(2), [[1, 0], [0, 0]], [0, 1])


# ----------------------------------------------------------------------------------------------
# Zero-shot metrics
def test_template_averaging_by_hand() -> None:
    table = {
        "photo of a": [3.0, 4.0],  # -> (0.6, 0.8)
        "map of a": [0.0, 2.0],  # -> (0, 1)
        "photo of b": [1.0, 0.0],
        "map of b": [0.0, -5.0],
    }
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([table[t] for t in texts])

    got = class_text_embeddings(encode, ["a", "b"], ["photo of {}", "map of {}"])
    assert calls == [["photo of a", "map of a", "photo of b", "map of b"]]
    # a: mean (0.3, 0.9), length sqrt(0.9); b: mean (0.5, -0.5)
    expected = np.array([[0.3, 0.9] / np.sqrt(0.9), [1 / np.sqrt(2), -1 / np.sqrt(2)]])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.dtype == np.float32
    # batching does not change the answer
    np.testing.assert_allclose(
        class_text_embeddings(encode, ["a", "b"], ["photo of {}", "map of {}"], batch_size=3), got
    )
    np.testing.assert_allclose(
        average_template_vectors(np.array(list(table.values())), 2), expected, rtol=1e-6
    )


def test_fill_templates_and_defaults() -> None:
    assert all("{}" in t for t in DEFAULT_TEMPLATES)
    assert "a satellite image of {}." in DEFAULT_TEMPLATES
    assert fill_templates(["x {y}"], ["{} and {}"]) == ["x {y} and x {y}"]  # braces are safe
    with pytest.raises(EvaluationError, match="template 1"):
        fill_templates(["a"], ["{}", "no slot"])


def test_zeroshot_identity_is_perfect() -> None:
    eye = np.eye(4)
    scores = zeroshot_scores(eye * 3, eye)
    r = zeroshot_report(scores, [0, 1, 2, 3], ["a", "b", "c", "d"], k=(1, 5))
    assert r.summary["top1_acc"] == 1.0 and r.summary["top5_acc"] == 1.0
    assert r.summary["mean_per_class_acc"] == 1.0
    assert [c["n"] for c in r.per_class] == [1, 1, 1, 1]


def test_zeroshot_report_known_answer() -> None:
    names = ["a", "b", "c"]
    scores = np.array(
        [
            [0.9, 0.1, 0.5],  # truth c: rank 2
            [0.2, 0.3, 0.7],  # truth c: rank 1
            [0.1, 0.8, 0.0],  # truth b: rank 1
            [0.3, 0.2, 0.1],  # truth b: rank 2
            [0.5, 0.6, 0.7],  # truth a: rank 3
        ]
    )
    truth = ["c", "c", "b", "b", "a"]
    r = zeroshot_report(scores, truth, names, k=(1, 2))
    assert r.rank.tolist() == [2, 1, 1, 2, 3]
    assert r.summary["top1_acc"] == pytest.approx(2 / 5)
    assert r.summary["top2_acc"] == pytest.approx(4 / 5)
    assert r.summary["mean_per_class_acc"] == pytest.approx((0 + 0.5 + 0.5) / 3)
    assert r.per_class == [
        {"class": "a", "n": 1, "top1_acc": 0.0, "top2_acc": 0.0},
        {"class": "b", "n": 2, "top1_acc": 0.5, "top2_acc": 1.0},
        {"class": "c", "n": 2, "top1_acc": 0.5, "top2_acc": 1.0},
    ]
    # integer truth gives the same, and a class without images has no accuracy
    r2 = zeroshot_report(np.c_[scores, np.zeros(5)], [2, 2, 1, 1, 0], [*names, "d"], k=(1, 2))
    assert r2.summary["top1_acc"] == r.summary["top1_acc"]
    assert r2.per_class[3] == {"class": "d", "n": 0, "top1_acc": None, "top2_acc": None}
    assert r2.summary["mean_per_class_acc"] == r.summary["mean_per_class_acc"]


def test_zeroshot_ties_and_chunks() -> None:
    scores = np.array([[0.5, 0.5, 0.1], [0.2, 0.2, 0.2]])
    assert class_ranks(scores, [0, 2]).tolist() == [2, 3]
    assert class_ranks(scores, [0, 2], ties="optimistic").tolist() == [1, 1]
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, size=(50, 9)).astype(np.float32)  # many ties
    t = rng.integers(0, 9, 50)
    full = class_ranks(s, t)
    assert class_ranks(s, t, max_block=1).tolist() == full.tolist()
    ref = [1 + int(np.sum(np.delete(row, g) >= row[g])) for row, g in zip(s, t, strict=True)]
    assert full.tolist() == ref


def test_zeroshot_input_errors() -> None:
    with pytest.raises(EvaluationError, match="truth row 1: class 'z' is not a known class"):
        zeroshot_report(np.eye(2), ["a", "z"], ["a", "b"])
    with pytest.raises(EvaluationError, match="image vectors have 3 dimensions but text vectors 2"):
        zeroshot_scores(np.eye(3), np.eye(2))
    with pytest.raises(EvaluationError, match="one column per class"):
        zeroshot_report(np.eye(2), [0, 1], ["a", "b", "c"])


# ----------------------------------------------------------------------------------------------
# Files
def test_read_class_names_and_templates(tmp_path: Path) -> None:
    p = tmp_path / "classes.txt"
    p.write_text("beach\n\n  dense forest \nport\n")
    assert read_class_names(p) == ["beach", "dense forest", "port"]
    p.write_text("beach\nport\nbeach\n")
    with pytest.raises(InputFileError, match=r"classes\.txt, record line 3: class 'beach' repeats"):
        read_class_names(p)
    p.write_text("\n  \n")
    with pytest.raises(InputFileError, match=r"classes\.txt: empty: expected one class name"):
        read_class_names(p)
    with pytest.raises(InputFileError, match="no such class name file"):
        read_class_names(tmp_path / "missing.txt")
    t = tmp_path / "t.txt"
    t.write_text("a satellite image of {}.\nan aerial photo of {}.\n")
    assert read_templates(t) == ["a satellite image of {}.", "an aerial photo of {}."]
    t.write_text("")
    with pytest.raises(InputFileError, match=r"t\.txt: empty"):
        read_templates(t)


def test_caption_ids_and_read_captions(tmp_path: Path) -> None:
    assert caption_ids(["b", "a", "b", "c", "a", "b"]) == ["b#0", "a#0", "b#1", "c#0", "a#1", "b#2"]
    assert caption_ids([]) == []
    csv = tmp_path / "caps.csv"
    csv.write_text("image_id,caption\n007,a port\n007,ships\n8,\n9,a field\n")
    t = read_captions(csv)
    assert t.column("image_id").to_pylist() == ["007", "007", "9"]  # ids stay strings
    assert t.column("caption_id").to_pylist() == ["007#0", "007#1", "9#0"]
    assert t.schema.metadata[b"empty_captions"] == b"1"
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,text\n1,x\n")
    with pytest.raises(SchemaError, match=r"bad\.csv, field 'caption': no 'caption' column"):
        read_captions(bad)


# ----------------------------------------------------------------------------------------------
# End to end: files and the CLI
def _app() -> typer.Typer:
    return command_app(stage_app)


CLASSES = ["beach", "forest", "port"]


@pytest.fixture
def zs_files(tmp_path: Path) -> dict[str, Path]:
    """Images 1..5 (classes beach, forest, port, port, beach); image 5 points at forest."""
    info = EmbeddingInfo("fake:clip", dim=3)
    vecs = np.array([[1, 0.1, 0], [0, 1, 0.2], [0.1, 0, 1], [0, 0.3, 1], [0.1, 1, 0], [1, 1, 1]])
    write_embeddings(tmp_path / "img.parquet", ["1", "2", "3", "4", "5", "99"], vecs, info)
    write_embeddings(tmp_path / "text.parquet", CLASSES, np.eye(3), info)
    prompts = [f"{c}|a photo of {c}" for c in CLASSES] + [f"{c}|a map of {c}" for c in CLASSES]
    pv = np.r_[np.eye(3), np.eye(3) + 0.1]
    write_embeddings(tmp_path / "prompts.parquet", prompts, pv, info)
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    catalog = pa.table(
        {
            "source": ["s"] * 6,
            "split": ["test"] * 5 + ["train"],
            "image_id": ["1", "2", "3", "4", "5", "6"],
            "label_name": ["beach", "forest", "port", "port", "beach", "beach"],
        }
    )
    write_catalog(catalog, tmp_path / "catalog.parquet")
    return {k: tmp_path / f for k, f in [("img", "img.parquet"), ("text", "text.parquet"),
            ("prompts", "prompts.parquet"), ("classes", "classes.txt"),
            ("truth", "catalog.parquet")]}  # fmt: skip


def _zs_args(f: dict[str, Path], *extra: str) -> list[str]:
    return ["eval", "zeroshot", str(f["img"]), "--texts", str(f["classes"]), "--truth", str(f["truth"]),
            *extra]  # fmt: skip


def test_cli_zeroshot_json(zs_files: dict[str, Path]) -> None:
    r = runner.invoke(_app(), _zs_args(zs_files, "--text-embeddings", str(zs_files["text"]),
                                       "--split", "test", "--json"))  # fmt: skip
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert list(data) == ["n", "classes", "templates", "top1_acc", "top5_acc",
                          "mean_per_class_acc", "ties", "truth_without_embedding",
                          "embeddings_without_truth", "unlabelled", "per_class", "notes"]  # fmt: skip
    assert data["n"] == 5 and data["classes"] == 3 and data["templates"] == 0
    assert data["top1_acc"] == pytest.approx(4 / 5) and data["top5_acc"] == 1.0
    assert data["mean_per_class_acc"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert data["per_class"][0] == {"class": "beach", "n": 2, "top1_acc": 0.5, "top5_acc": 1.0}
    assert data["embeddings_without_truth"] == 1 and data["truth_without_embedding"] == 0
    assert any("'99'" in note for note in data["notes"])
    # 3 classes: top-5 is a hit for every image, and the notes say so
    assert data["notes"][-1] == (
        "top-5: k is at least the number of classes (3), so every query counts as a hit"
    )
    assert not any(note.startswith("top-1:") for note in data["notes"])


def test_retrieval_notes_when_k_reaches_the_candidates() -> None:
    vecs = np.eye(12, dtype=np.float32)
    few = retrieval_report(vecs[:3], vecs[:3], [0, 1, 2], ks=(1, 5))
    assert few.notes == [
        "image→text R@5: k is at least the number of candidate captions (3), so every query "
        "counts as a hit",
        "text→image R@5: k is at least the number of candidate images (3), so every query "
        "counts as a hit",
    ]
    assert retrieval_report(vecs, vecs, list(range(12)), ks=(1, 5, 10)).notes == []


def test_cli_zeroshot_prompt_keyed_text_and_mismatches(zs_files: dict[str, Path]) -> None:
    r = runner.invoke(_app(), _zs_args(zs_files, "--text-embeddings", str(zs_files["prompts"]),
                                       "--json"))  # fmt: skip
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["templates"] == 2 and data["n"] == 5
    assert data["truth_without_embedding"] == 1  # image 6 (train) has no vector
    assert any("truth images have no vector" in n and "'6'" in n for n in data["notes"])
    # the table output
    r = runner.invoke(_app(), _zs_args(zs_files, "--text-embeddings", str(zs_files["prompts"])))
    assert r.exit_code == 0, r.output
    assert "top-1" in r.stdout and "80.00" in r.stdout and "beach" in r.stdout


def test_cli_zeroshot_errors(zs_files: dict[str, Path], tmp_path: Path) -> None:
    app = _app()
    # unknown class in the truth: file, record and field named
    write_catalog(
        pa.table({"source": ["s"], "image_id": ["1"], "label_name": ["glacier"]}),
        tmp_path / "odd.parquet",
    )
    args = ["eval", "zeroshot", str(zs_files["img"]), "--texts", str(zs_files["classes"]), "--truth",
            str(tmp_path / "odd.parquet"), "--text-embeddings", str(zs_files["text"])]  # fmt: skip
    r = runner.invoke(app, args)
    assert isinstance(r.exception, InputFileError)
    msg = str(r.exception)
    assert "odd.parquet, record image 1, field 'label_name'" in msg and "'glacier'" in msg
    # dimension mismatch between text and image vectors
    write_embeddings(tmp_path / "t2.parquet", CLASSES, np.eye(3, 4), EmbeddingInfo("fake:clip", 4))
    r = runner.invoke(app, _zs_args(zs_files, "--text-embeddings", str(tmp_path / "t2.parquet")))
    assert isinstance(r.exception, InputFileError)
    assert "t2.parquet, field 'embedding': text vectors have 4 dimensions" in str(r.exception)
    # text vectors from another encoder
    write_embeddings(tmp_path / "t3.parquet", CLASSES, np.eye(3), EmbeddingInfo("other", 3))
    r = runner.invoke(app, _zs_args(zs_files, "--text-embeddings", str(tmp_path / "t3.parquet")))
    assert isinstance(r.exception, InputFileError) and "'other'" in str(r.exception)
    # a class without a text vector
    write_embeddings(
        tmp_path / "t4.parquet", CLASSES[:2], np.eye(2, 3), EmbeddingInfo("fake:clip", 3)
    )
    r = runner.invoke(app, _zs_args(zs_files, "--text-embeddings", str(tmp_path / "t4.parquet")))
    assert isinstance(r.exception, InputFileError) and "record port" in str(r.exception)
    # empty class file
    (tmp_path / "empty.txt").write_text("")
    args = ["eval", "zeroshot", str(zs_files["img"]), "--texts", str(tmp_path / "empty.txt"), "--truth",
            str(zs_files["truth"]), "--text-embeddings", str(zs_files["text"])]  # fmt: skip
    r = runner.invoke(app, args)
    assert isinstance(r.exception, InputFileError) and "empty.txt: empty" in str(r.exception)
    # missing label column
    r = runner.invoke(app, _zs_args(zs_files, "--text-embeddings", str(zs_files["text"]),
                                    "--label-column", "habitat"))  # fmt: skip
    assert isinstance(r.exception, SchemaError) and "field 'habitat'" in str(r.exception)
    # no image in common
    write_embeddings(
        tmp_path / "i2.parquet", ["x", "y"], np.eye(2, 3), EmbeddingInfo("fake:clip", 3)
    )
    args = ["eval", "zeroshot", str(tmp_path / "i2.parquet"), "--texts", str(zs_files["classes"]),
            "--truth", str(zs_files["truth"]), "--text-embeddings", str(zs_files["text"])]  # fmt: skip
    r = runner.invoke(app, args)
    assert isinstance(r.exception, EvaluationError) and "no image of" in str(r.exception)
    assert "'x'" in str(r.exception) and "'1'" in str(r.exception)
    # exactly one text source
    r = runner.invoke(app, _zs_args(zs_files))
    assert r.exit_code == 2 and "exactly one of --encoder and --text-embeddings" in r.output
    r = runner.invoke(
        app, _zs_args(zs_files, "--k", "1,x", "--text-embeddings", str(zs_files["text"]))
    )
    assert r.exit_code == 2


class _FakeEncoder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dim = 3
        self.prompts: list[str] = []

    def encode_text(self, texts: list[str]) -> np.ndarray:
        self.prompts += texts
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for i, t in enumerate(texts):
            for j, word in enumerate(("beach", "forest", "port")):
                if word in t:
                    out[i, j] = 1.0
            if "ships" in t or "harbour" in t:
                out[i, 2] = 1.0
            if "sand" in t:
                out[i, 0] = 1.0
            if "trees" in t:
                out[i, 1] = 1.0
        return out


@pytest.fixture
def fake_encoders(monkeypatch: pytest.MonkeyPatch) -> list[_FakeEncoder]:
    made: list[_FakeEncoder] = []

    def load_encoder(name: str, device: str | None = None) -> _FakeEncoder:
        if not name.startswith("fake"):
            raise GeoawareError(f"unknown encoder {name!r}")
        made.append(_FakeEncoder("fake:clip"))
        return made[-1]

    module = types.ModuleType("geoaware.vision.encoders")
    monkeypatch.setattr(module, "load_encoder", load_encoder, raising=False)
    monkeypatch.setitem(sys.modules, "geoaware.vision.encoders", module)
    return made


def test_cli_zeroshot_with_encoder(
    zs_files: dict[str, Path], fake_encoders: list[_FakeEncoder], tmp_path: Path
) -> None:
    (tmp_path / "t.txt").write_text("a satellite image of {}.\nan aerial photo of {}.\n")
    r = runner.invoke(_app(), _zs_args(zs_files, "--encoder", "fake:clip", "--templates",
                                       str(tmp_path / "t.txt"), "--split", "test", "--json"))  # fmt: skip
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["templates"] == 2 and data["top1_acc"] == pytest.approx(4 / 5)
    assert fake_encoders[0].prompts[:2] == [
        "a satellite image of beach.",
        "an aerial photo of beach.",
    ]
    # default templates
    r = runner.invoke(_app(), _zs_args(zs_files, "--encoder", "fake", "--json"))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["templates"] == len(DEFAULT_TEMPLATES)
    # image vectors made by another encoder
    write_embeddings(
        tmp_path / "other.parquet", ["1"], np.eye(1, 3), EmbeddingInfo("open_clip:RN50", 3)
    )
    args = ["eval", "zeroshot", str(tmp_path / "other.parquet"), "--texts", str(zs_files["classes"]),
            "--truth", str(zs_files["truth"]), "--encoder", "fake:clip"]  # fmt: skip
    r = runner.invoke(_app(), args)
    assert isinstance(r.exception, InputFileError)
    assert "other.parquet, field 'encoder'" in str(r.exception)
    assert "'open_clip:RN50', not by 'fake:clip'" in str(r.exception)


@pytest.fixture
def rt_files(tmp_path: Path) -> dict[str, Path]:
    """Images a, b, c (+ z without caption); captions: a x2, b x2, c x1, d (no vector)."""
    tmp_path = tmp_path / "rt"  # apart from the zero-shot files
    tmp_path.mkdir()
    info = EmbeddingInfo("fake:clip", dim=3)
    write_embeddings(tmp_path / "img.parquet", ["a", "b", "c", "z"],
                     np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]), info)  # fmt: skip
    (tmp_path / "caps.csv").write_text(
        "image_id,caption\na,sand beach\na,beach and sea\nb,trees\nb,trees near a harbour with ships\n"
        "c,ships in port\nd,lost caption\ne,\n"
    )
    text = np.array([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0, 0.2, 1], [0, 0, 1], [1, 0, 0]])
    write_embeddings(
        tmp_path / "text.parquet", ["a#0", "a#1", "b#0", "b#1", "c#0", "d#0"], text, info
    )
    catalog = pa.table(
        {
            "source": ["s"] * 3,
            "image_id": ["a", "b", "c"],
            "caption": ["sand beach", "trees", "ships in port"],
        }
    )
    write_catalog(catalog, tmp_path / "catalog.parquet")
    return {"img": tmp_path / "img.parquet", "caps": tmp_path / "caps.csv",
            "text": tmp_path / "text.parquet", "catalog": tmp_path / "catalog.parquet"}  # fmt: skip


def test_cli_retrieval_json(rt_files: dict[str, Path]) -> None:
    args = ["eval", "retrieval", str(rt_files["img"]), "--captions", str(rt_files["caps"]),
            "--text-embeddings", str(rt_files["text"]), "--json"]  # fmt: skip
    r = runner.invoke(_app(), args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert list(data) == ["images", "captions", "i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1",
                          "t2i_r5", "t2i_r10", "mean_recall", "ties", "images_without_embedding",
                          "embeddings_without_caption", "empty_captions", "notes"]  # fmt: skip
    assert data["images"] == 3 and data["captions"] == 5
    # b#1 points at c: image b still hits with b#0; caption b#1 ranks image b second
    assert data["i2t_r1"] == 1.0 and data["t2i_r1"] == pytest.approx(4 / 5)
    assert data["t2i_r5"] == 1.0
    assert data["mean_recall"] == pytest.approx((3 + 4 / 5 + 2) / 6)
    assert data["images_without_embedding"] == 1 and data["embeddings_without_caption"] == 1
    assert data["empty_captions"] == 1
    notes = " ".join(data["notes"])
    assert "'d'" in notes and "'z'" in notes


def test_cli_retrieval_catalog_and_table(rt_files: dict[str, Path]) -> None:
    args = ["eval", "retrieval", str(rt_files["img"]), "--captions", str(rt_files["catalog"]),
            "--text-embeddings", str(rt_files["text"])]  # fmt: skip
    r = runner.invoke(_app(), args)
    assert r.exit_code == 0, r.output
    assert "i2t R@1" in r.stdout and "mean recall" in r.stdout and "100.00" in r.stdout


def test_cli_retrieval_with_encoder(
    rt_files: dict[str, Path], fake_encoders: list[_FakeEncoder]
) -> None:
    args = ["eval", "retrieval", str(rt_files["img"]), "--captions", str(rt_files["caps"]),
            "--encoder", "fake:clip", "--json", "--k", "1"]  # fmt: skip
    r = runner.invoke(_app(), args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(fake_encoders[0].prompts) == {"sand beach", "beach and sea", "trees",
                                             "trees near a harbour with ships", "ships in port"}  # fmt: skip
    assert data["i2t_r1"] == 1.0 and data["t2i_r1"] == pytest.approx(4 / 5)


def test_cli_retrieval_errors(rt_files: dict[str, Path], tmp_path: Path) -> None:
    app = _app()
    base = ["eval", "retrieval", str(rt_files["img"]), "--captions", str(rt_files["caps"])]
    write_embeddings(tmp_path / "t2.parquet", ["a#0"], np.eye(1, 3), EmbeddingInfo("fake:clip", 3))
    r = runner.invoke(app, [*base, "--text-embeddings", str(tmp_path / "t2.parquet")])
    assert isinstance(r.exception, InputFileError)
    assert "t2.parquet, record a#1, field 'image_id': 4 captions" in str(r.exception)
    ids = ["a#0", "a#1", "b#0", "b#1", "c#0"]
    write_embeddings(tmp_path / "t3.parquet", ids, np.ones((5, 2)), EmbeddingInfo("fake:clip", 2))
    r = runner.invoke(app, [*base, "--text-embeddings", str(tmp_path / "t3.parquet")])
    assert isinstance(r.exception, InputFileError)
    assert "2 dimensions but the image vectors" in str(r.exception)
    (tmp_path / "none.csv").write_text("image_id,caption\nq,x\n")
    args = ["eval", "retrieval", str(rt_files["img"]), "--captions", str(tmp_path / "none.csv"),
            "--text-embeddings", str(rt_files["text"])]  # fmt: skip
    r = runner.invoke(app, args)
    assert isinstance(r.exception, EvaluationError) and "no image of" in str(r.exception)
    r = runner.invoke(app, [*base, "--encoder", "x", "--text-embeddings", str(rt_files["text"])])
    assert r.exit_code == 2


def test_encoder_module_missing_is_a_clear_error(
    rt_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "geoaware.vision.encoders", None)  # import fails
    with pytest.raises(GeoawareError, match="--text-embeddings"):
        evaluate_retrieval(rt_files["img"], rt_files["caps"], encoder="fake:clip")


def test_library_calls_take_encoder_objects(zs_files: dict[str, Path]) -> None:
    enc = _FakeEncoder("fake:clip")
    r = evaluate_zeroshot(zs_files["img"], zs_files["classes"], zs_files["truth"], encoder=enc,
                          templates=["{}"], split="test")  # fmt: skip
    assert r.summary["top1_acc"] == pytest.approx(4 / 5)
    with pytest.raises(InputFileError, match="'fake:clip', but the text encoder is 'other'"):
        evaluate_zeroshot(zs_files["img"], zs_files["classes"], zs_files["truth"],
                          encoder=_FakeEncoder("other"))  # fmt: skip


@pytest.mark.parametrize("command", ["zeroshot", "retrieval"])
def test_help_has_example_and_json_keys(command: str) -> None:
    r = runner.invoke(_app(), ["eval", command, "--help"])
    assert r.exit_code == 0
    assert "Example: geoaware eval " + command in r.output and "JSON keys" in r.output


def test_cli_runs_go_into_the_html_report(
    zs_files: dict[str, Path], rt_files: dict[str, Path], tmp_path: Path
) -> None:
    """--out writes run documents that `geoaware report` reads: one page with both kinds."""
    from geoaware.report.html import build_report, read_runs

    run = tmp_path / "run"
    r = runner.invoke(_app(), _zs_args(zs_files, "--text-embeddings", str(zs_files["text"]),
                                       "--split", "test", "--out", str(run), "--json"))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["run_file"] == str(run / "img.zeroshot.json")
    r = runner.invoke(_app(), ["eval", "retrieval", str(rt_files["img"]), "--captions",
                               str(rt_files["caps"]), "--text-embeddings", str(rt_files["text"]),
                               "--out", str(run), "--name", "clip-rs"])  # fmt: skip
    assert r.exit_code == 0, r.output
    runs = {x.kind: x for x in read_runs(run)}
    assert runs["zeroshot"].summary["top1_acc"] == pytest.approx(4 / 5)
    assert runs["zeroshot"].tables[0].rows[0][:2] == ("beach", 2)
    assert runs["retrieval"].name == "clip-rs" and runs["retrieval"].summary["n"] == 3
    assert runs["retrieval"].summary["t2i_r1"] == pytest.approx(4 / 5)
    page = build_report(run, tmp_path / "report.html").read_text()
    assert "Zero-shot classification runs" in page and "Image-text retrieval runs" in page
    assert "80.0%" in page  # t2i R@1 and zero-shot top-1, as percentages


def test_cli_out_follows_the_run_folder_rules(zs_files: dict[str, Path], tmp_path: Path) -> None:
    """--out is a run folder: a folder of someone else's is refused before any work; ours is
    added to and carries a manifest that `geoaware info` reads."""
    from geoaware.outputs import read_manifest

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine\n")
    args = _zs_args(zs_files, "--text-embeddings", str(zs_files["text"]), "--out", str(theirs))
    r = runner.invoke(_app(), args)  # the stage's app alone: the error is not yet one line
    assert isinstance(r.exception, GeoawareError) and "was not written by geoaware" in str(
        r.exception
    )
    assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]
    run = tmp_path / "run"
    for name in ("a", "b"):
        args = _zs_args(zs_files, "--text-embeddings", str(zs_files["text"]), "--out", str(run),
                        "--name", name)  # fmt: skip
        assert runner.invoke(_app(), args).exit_code == 0
    assert sorted(p.name for p in run.glob("*.json")) == ["_manifest.json", "a.zeroshot.json",
                                                          "b.zeroshot.json"]  # fmt: skip
    manifest = read_manifest(run)
    assert manifest is not None and manifest["kind"] == "run"
    assert str(zs_files["img"]) in [i["path"] for i in manifest["inputs"]]


def test_cli_out_keeps_runs_of_embeddings_that_share_a_name(
    zs_files: dict[str, Path], tmp_path: Path
) -> None:
    """a/emb.parquet then b/emb.parquet into one run folder: two files, not one replaced;
    rerunning the second replaces its own file only."""
    run = tmp_path / "run"
    for folder in ("a", "b", "b"):
        emb = tmp_path / folder / "emb.parquet"
        emb.parent.mkdir(exist_ok=True)
        shutil.copy(zs_files["img"], emb)
        args = _zs_args({**zs_files, "img": emb}, "--text-embeddings", str(zs_files["text"]),
                        "--out", str(run))  # fmt: skip
        r = runner.invoke(_app(), args)
        assert r.exit_code == 0, r.output
    files = sorted(p.name for p in run.glob("*.zeroshot.json"))
    assert files == ["b-emb.zeroshot.json", "emb.zeroshot.json"]
    docs = {f: json.loads((run / f).read_text()) for f in files}
    assert docs["emb.zeroshot.json"]["embeddings"] == str(
        (tmp_path / "a" / "emb.parquet").resolve()
    )
    assert docs["b-emb.zeroshot.json"]["name"] == "b-emb"

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path
from typing import Literal

import pytest

from geoaware.errors import InputFileError, UnsafeArchiveError
from geoaware.sources.archive import extract


def make_tar(
    path: Path, members: list[tuple[str, str, bytes]], mode: Literal["w", "w:gz"] = "w:gz"
) -> Path:
    with tarfile.open(path, mode) as tf:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif kind in ("sym", "hard"):
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = payload.decode()
                tf.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tf.addfile(info)
    return path


def make_zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members:
            zf.writestr(name, payload)
    return path


def test_tar_and_zip_extract_with_layout(tmp_path: Path) -> None:
    tar = make_tar(
        tmp_path / "a.tar.gz",
        [
            ("train_val_images", "dir", b""),
            ("train_val_images/Aves/Anas/1.jpg", "file", b"jpg1"),
            ("train_val_images/link.jpg", "sym", b"Aves/Anas/1.jpg"),
        ],
    )
    written = extract(tar, tmp_path / "out")
    assert [p.name for p in written] == ["train_val_images"]
    assert (tmp_path / "out/train_val_images/Aves/Anas/1.jpg").read_bytes() == b"jpg1"
    assert (tmp_path / "out/train_val_images/link.jpg").read_bytes() == b"jpg1"
    z = make_zip(tmp_path / "b.zip", [("x.csv", b"a,b"), ("__MACOSX/._x.csv", b"junk")])
    assert [p.name for p in extract(z, tmp_path / "out", skip=["__MACOSX"])] == ["x.csv"]
    assert not (tmp_path / "out/__MACOSX").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            [("ok.txt", "file", b"1"), ("../evil.txt", "file", b"x")],
            r"member '../evil.txt': path escapes",
        ),
        ([("/etc/evil", "file", b"x")], r"member '/etc/evil': path escapes"),
        ([("a/../../evil", "file", b"x")], "path escapes"),
        ([("link", "sym", b"/etc/passwd")], r"link to '/etc/passwd' points outside"),
        ([("d/link", "sym", b"../../outside")], "points outside"),
        ([("hard", "hard", b"../outside")], "points outside"),
        ([("pipe", "fifo", b"")], "special file refused"),
    ],
)
def test_unsafe_tar_members_are_refused_before_writing(
    tmp_path: Path, members: list[tuple[str, str, bytes]], message: str
) -> None:
    tar = make_tar(tmp_path / "bad.tar", members, mode="w")
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=message):
        extract(tar, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_unsafe_zip_members_are_refused(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "bad.zip", [("fine.txt", b"1"), ("../../escape.txt", b"x")])
    with pytest.raises(UnsafeArchiveError, match=r"bad.zip, member '../../escape.txt'"):
        extract(z, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    # A symlink stored in a zip (unix mode in external_attr) is refused too.
    info = zipfile.ZipInfo("link")
    info.external_attr = 0o120777 << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic links refused"):
        extract(tmp_path / "link.zip", tmp_path / "out")


def test_truncated_archives_leave_nothing(tmp_path: Path) -> None:
    tar = make_tar(tmp_path / "t.tar.gz", [("big.bin", "file", bytes(range(256)) * 4000)])
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match=r"t.tar.gz: not a readable zip or tar archive"):
        extract(tar, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not an archive")
    with pytest.raises(InputFileError, match="junk.zip"):
        extract(junk, tmp_path / "out")


def test_source_fetch_downloads_verifies_and_extracts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    from typing import ClassVar

    import pyarrow as pa

    from geoaware.sources.base import Source
    from geoaware.sources.download import RemoteFile

    from .httpserver import Files, serve

    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    tar = make_tar(tmp_path / "imgs.tar.gz", [("train_val_images/Aves/1.jpg", "file", b"jpeg")])
    data = tar.read_bytes()
    files = Files({"/imgs.tar.gz": data})
    with serve(files) as base:

        class Tiny(Source):
            name: ClassVar[str] = "tiny"
            description: ClassVar[str] = "test"
            files: ClassVar[dict[str, RemoteFile]] = {
                "images": RemoteFile(
                    "tiny/imgs.tar.gz",
                    (base + "/imgs.tar.gz",),
                    md5=hashlib.md5(data).hexdigest(),
                    extract=True,
                )
            }

            def read(self) -> pa.Table:
                raise NotImplementedError

        root = tmp_path / "root"
        Tiny(root).fetch(progress=False)
        assert (root / "tiny/train_val_images/Aves/1.jpg").read_bytes() == b"jpeg"
        (root / "tiny/train_val_images/Aves/1.jpg").write_bytes(b"edited")
        Tiny(root).fetch(progress=False)  # verified and extracted before: nothing redone
        assert (root / "tiny/train_val_images/Aves/1.jpg").read_bytes() == b"edited"
        assert len(files.requests) == 1


def test_fetch_defaults_to_the_catalog_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typing import ClassVar

    import pyarrow as pa

    from geoaware.sources.base import Source
    from geoaware.sources.download import RemoteFile

    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    mirror = tmp_path / "mirror"
    (mirror / "t").mkdir(parents=True)
    for name in ("ann.json", "images.tar"):
        (mirror / "t" / name).write_bytes(name.encode())
    monkeypatch.setenv("GEOAWARE_MIRROR", str(mirror))

    class Two(Source):
        name: ClassVar[str] = "two"
        description: ClassVar[str] = "test"
        files: ClassVar[dict[str, RemoteFile]] = {
            "annotations": RemoteFile("t/ann.json", ()),
            "images": RemoteFile("t/images.tar", ()),
        }
        catalog_parts: ClassVar[tuple[str, ...] | None] = ("annotations",)

        def read(self) -> pa.Table:
            raise NotImplementedError

    assert list(Two(tmp_path).fetch(progress=False)) == ["annotations"]
    assert list(Two(tmp_path).fetch(["all"], progress=False)) == ["annotations", "images"]

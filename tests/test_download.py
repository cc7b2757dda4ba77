from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from geoaware.errors import ChecksumError, DownloadError
from geoaware.sources.download import RemoteFile, fetch

from .httpserver import Files, serve

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def remote(base: str, path: str = "/d/file.bin", **kw: str) -> RemoteFile:
    return RemoteFile(
        path="ds/file.bin",
        urls=(base + path,),
        sha256=kw.get("sha256", SHA),
        md5=kw.get("md5", MD5),
    )


def test_download_verifies_and_renames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    files = Files({"/d/file.bin": PAYLOAD})
    with serve(files) as base:
        path = fetch(remote(base), tmp_path, progress=False)
        assert path == tmp_path / "ds/file.bin"
        assert path.read_bytes() == PAYLOAD
        assert not (tmp_path / "ds/file.bin.part").exists()
        # A second call finds the verified file and makes no request.
        n = len(files.requests)
        assert fetch(remote(base), tmp_path, progress=False) == path
        assert len(files.requests) == n


def test_interrupted_download_resumes_with_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    files = Files({"/d/file.bin": PAYLOAD}, cut_after={"/d/file.bin": 1_000_000})
    with serve(files) as base:
        path = fetch(remote(base), tmp_path, progress=False, retries=3)
    assert path.read_bytes() == PAYLOAD
    assert files.requests[0] == ("/d/file.bin", None)
    assert files.requests[1][1] is not None and files.requests[1][1].startswith("bytes=")
    assert 900_000 <= int(files.requests[1][1].removeprefix("bytes=").rstrip("-")) <= 1_000_000


def test_part_left_by_an_earlier_run_is_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds/file.bin.part").write_bytes(PAYLOAD[:2_000_000])
    files = Files({"/d/file.bin": PAYLOAD})
    with serve(files) as base:
        path = fetch(remote(base), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert files.requests == [("/d/file.bin", "bytes=2000000-")]


def test_server_without_range_support_restarts_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds/file.bin.part").write_bytes(b"garbage" * 10)
    files = Files({"/d/file.bin": PAYLOAD}, ignore_range=True)
    with serve(files) as base:
        assert fetch(remote(base), tmp_path, progress=False).read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    files = Files({"/d/file.bin": PAYLOAD[:-1] + b"!"})
    with (
        serve(files) as base,
        pytest.raises(ChecksumError, match=r"file.bin.part: sha256 is [0-9a-f]{64}, expected"),
    ):
        fetch(remote(base), tmp_path, progress=False)
    assert list((tmp_path / "ds").iterdir()) == []


def test_not_found_tries_the_next_url_then_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    files = Files({"/good": PAYLOAD})
    with serve(files) as base:
        r = RemoteFile("ds/file.bin", (base + "/missing", base + "/good"), sha256=SHA)
        assert fetch(r, tmp_path, progress=False).read_bytes() == PAYLOAD
        assert [p for p, _ in files.requests] == ["/missing", "/good"]  # 404 is not retried
        bad = RemoteFile("ds/other.bin", (base + "/missing",), sha256=SHA)
        with pytest.raises(
            DownloadError, match=r"ds/other.bin: every URL failed:\n  .*/missing: HTTP 404"
        ):
            fetch(bad, tmp_path, progress=False)


def test_mirror_is_used_before_the_network_and_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "ds").mkdir(parents=True)
    (mirror / "ds/file.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("GEOAWARE_MIRROR", str(mirror))
    r = RemoteFile("ds/file.bin", ("http://127.0.0.1:9/never",), sha256=SHA, md5=MD5)
    assert fetch(r, tmp_path / "dl", progress=False) == mirror / "ds/file.bin"
    (mirror / "ds/file.bin").write_bytes(PAYLOAD + b"x")
    with pytest.raises(ChecksumError, match=r"mirror/ds/file.bin: sha256 is"):
        fetch(r, tmp_path / "dl", progress=False)


def test_changed_file_is_verified_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    files = Files({"/d/file.bin": PAYLOAD})
    with serve(files) as base:
        path = fetch(remote(base), tmp_path, progress=False)
        path.write_bytes(b"tampered")
        with pytest.raises(ChecksumError, match="md5|sha256"):
            fetch(remote(base), tmp_path, progress=False)


def test_a_url_with_wrong_bytes_is_skipped_for_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    files = Files({"/stale": PAYLOAD + b"changed upstream", "/good": PAYLOAD})
    with serve(files) as base:
        r = RemoteFile("ds/file.bin", (base + "/stale", base + "/good"), sha256=SHA)
        assert fetch(r, tmp_path, progress=False).read_bytes() == PAYLOAD
        both_bad = RemoteFile("ds/x.bin", (base + "/stale", base + "/stale"), sha256=SHA)
        with pytest.raises(
            ChecksumError, match=r"ds/x.bin: every URL failed:\n  .*/stale: .*sha256 is"
        ):
            fetch(both_bad, tmp_path, progress=False)

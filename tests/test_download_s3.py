"""Requester-pays S3 downloads against a real S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from geoaware.errors import DownloadError
from geoaware.sources.download import RemoteFile, fetch

from .httpserver import Files, serve

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str]]]:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    boto3.setup_default_session()
    client = boto3.client("s3")
    client.create_bucket(Bucket="inat-bucket")
    client.put_object(Bucket="inat-bucket", Key="2017/file.bin", Body=PAYLOAD)
    sent: list[dict[str, str]] = []
    boto3.DEFAULT_SESSION.events.register(
        "before-send.s3.*",
        lambda request, **kw: sent.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        ),
    )
    yield sent
    boto3.DEFAULT_SESSION = None


def test_s3_download_is_requester_pays_and_verified(
    s3: list[dict[str, str]], tmp_path: Path
) -> None:
    r = RemoteFile("inat/file.bin", ("s3://inat-bucket/2017/file.bin",), sha256=SHA)
    path = fetch(r, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert s3 and all(h.get("x-amz-request-payer") == "requester" for h in s3)


def test_s3_download_resumes_from_part(s3: list[dict[str, str]], tmp_path: Path) -> None:
    (tmp_path / "inat").mkdir()
    (tmp_path / "inat/file.bin.part").write_bytes(PAYLOAD[:100_000])
    r = RemoteFile("inat/file.bin", ("s3://inat-bucket/2017/file.bin",), sha256=SHA)
    assert fetch(r, tmp_path, progress=False).read_bytes() == PAYLOAD
    get = [h for h in s3 if "Range" in h]
    assert get and get[-1]["Range"] == "bytes=100000-"


def test_https_mirror_is_tried_before_s3(s3: list[dict[str, str]], tmp_path: Path) -> None:
    files = Files({"/pub/file.bin": PAYLOAD})
    with serve(files) as base:
        r = RemoteFile(
            "inat/file.bin", ("s3://inat-bucket/2017/file.bin", base + "/pub/file.bin"), sha256=SHA
        )
        assert fetch(r, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert files.requests == [("/pub/file.bin", None)]
    assert s3 == []


def test_missing_key_and_missing_credentials(
    s3: list[dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = RemoteFile("inat/none.bin", ("s3://inat-bucket/2017/none.bin",), sha256=SHA)
    with pytest.raises(DownloadError, match=r"s3://inat-bucket/2017/none.bin: .*404"):
        fetch(r, tmp_path, progress=False)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    boto3.setup_default_session()
    r = RemoteFile("inat/file.bin", ("s3://inat-bucket/2017/file.bin",), sha256=SHA)
    with pytest.raises(DownloadError, match="requester-pays S3 needs your AWS credentials"):
        fetch(r, tmp_path, progress=False)

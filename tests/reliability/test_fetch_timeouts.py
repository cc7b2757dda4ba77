"""A network that accepts connections and never answers: fetch gives up in time, and says so."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import pytest

from geoaware.errors import DownloadError, UsageError
from geoaware.sources.base import Source
from geoaware.sources.download import RemoteFile, Timeouts, fetch
from tests.httpserver import silent
from tests.reliability.conftest import run


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAWARE_MIRROR", raising=False)


def test_read_timeout_ends_each_attempt(tmp_path: Path) -> None:
    with silent() as base:
        remote = RemoteFile("ds/f.bin", (base + "/f.bin",), sha256="0" * 64)
        start = time.monotonic()
        with pytest.raises(DownloadError, match=r"sent nothing for 0.3 s \(--read-timeout\)"):
            fetch(remote, tmp_path, retries=2, timeouts=Timeouts(read=0.3), progress=False)
        # two attempts of 0.3 s and one 0.5 s pause, not 60 s each
        assert time.monotonic() - start < 5


def test_deadline_bounds_the_whole_file(tmp_path: Path) -> None:
    with silent() as base:
        urls = (base + "/a", base + "/b")
        remote = RemoteFile("ds/f.bin", urls, sha256="0" * 64)
        start = time.monotonic()
        with pytest.raises(DownloadError) as info:
            fetch(
                remote,
                tmp_path,
                retries=5,
                timeouts=Timeouts(read=30, deadline=1.0),
                progress=False,
            )
        assert time.monotonic() - start < 5
        assert "1 s deadline for this file (--deadline)" in str(info.value)
        assert "/b" not in str(info.value)  # the deadline is per file, not per URL


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(UsageError, match="--read-timeout must be a positive number"):
        Timeouts(read=0)


def test_fetch_command_takes_the_limits_and_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with silent() as base:

        class Silent(Source):
            name: ClassVar[str] = "silent"
            description: ClassVar[str] = "a server that never answers"
            files: ClassVar[dict[str, RemoteFile]] = {
                "f": RemoteFile("silent/f.bin", (base + "/f.bin",), sha256="0" * 64)
            }

            def read(self) -> None:  # pragma: no cover - never reached
                raise AssertionError

        from geoaware import sources

        monkeypatch.setitem(sources.SOURCES, "silent", Silent)
        start = time.monotonic()
        result = run(
            "fetch", "silent", "--dest", tmp_path, "--read-timeout", "0.2", "--deadline", "20"
        )
        assert time.monotonic() - start < 6
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert lines[0] == f"silent/f.bin: GEOAWARE_MIRROR is not set; downloading {base}/f.bin"
    # The error lists each URL tried (one line each) and where else it looked.
    assert lines[1] == "error: silent/f.bin: every URL failed:"
    assert lines[2].strip() == f"{base}/f.bin: the server sent nothing for 0.2 s (--read-timeout)"
    assert lines[3].strip() == "GEOAWARE_MIRROR is not set"
    assert not (tmp_path / "silent" / "f.bin").exists()

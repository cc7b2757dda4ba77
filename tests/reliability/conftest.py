"""What the reliability tests share: the real fg_geo catalog, built once, and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from geoaware.catalog import write_catalog
from geoaware.cli import app
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="session")
def real_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalog of the real fg_geo YFCC file (36,143 rows), read from ../shared/data."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    from geoaware.sources.fg_geo_yfcc import FgGeoYfcc

    root = SHARED_DATA  # the release's relative paths sit under it, as under a mirror
    out = tmp_path_factory.mktemp("real") / "fg_geo.parquet"
    write_catalog(FgGeoYfcc(root).read(), out)
    return out


def run(*args: str | Path) -> Result:
    """Run ``geoaware ARGS`` in this process, as the console script does."""
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=400)


def one_error_line(result: Result) -> str:
    """Assert the command ended with exit 2 and exactly one ``error:`` line; return it."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]

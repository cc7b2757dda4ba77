from __future__ import annotations

from pathlib import Path

import pytest
import typer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FG_GEO_ZIP = SHARED_DATA / "fg_geo_yfcc" / "yfcc100m_geolocated_inat2017species.csv.zip"


@pytest.fixture
def shared_data() -> Path:
    """The real reference files beside the repository; skip cleanly where absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test gets its own download cache; the map background cache is shared per session."""
    monkeypatch.setenv("GEOAWARE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def command_app(stage_app: typer.Typer) -> typer.Typer:
    """A typer app holding one stage's commands (its ``commands.app``), called by name."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    app.add_typer(stage_app)
    return app


@pytest.fixture
def hand_made_releases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let sources read hand-made files of a release's layout (their checksums cannot match)."""
    from geoaware.sources.base import Source

    monkeypatch.setattr(Source, "verify", False)

"""The package layout keeps the design's one-way flow: no module imports from a stage above it.

Each top-level module or sub-package of ``geoaware`` has a floor number; a library module may
import geoaware code only from its own floor or below (and models from the models they build
on, listed in ``_MODELS_ON``). The command line (``cli.py``, every ``commands.py``,
``__main__``, ``demo.py``) sits above every stage and may import anything. Imports are read
with :mod:`ast`, so a lazy import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import geoaware

SRC = Path(geoaware.__file__).parent

# The design's stages, bottom to top (docs/design.md draws the same picture).
FLOORS: dict[str, int] = {
    # ground floor: shared helpers and geometry
    "__init__": 0, "errors": 0, "fileio": 0, "blocks": 0, "lazy": 0, "paths": 0,
    "outputs": 0, "typing": 0, "runs": 0, "clikit": 0, "ranking": 0, "geo": 0,
    "sources": 1,
    "catalog": 2,
    "construct": 3, "predictions": 3,
    "vision": 4, "priors": 4,
    "geolocate": 5, "federated": 5,
    "evaluate": 6,
    "report": 7,
}  # fmt: skip
# The command line: above every stage.
CLI_MODULES = {"cli", "__main__", "demo", "demo_commands"}


def _stage(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _is_cli(path: Path) -> bool:
    return _stage(path) in CLI_MODULES or path.name == "commands.py"


def _imported_stages(path: Path) -> set[tuple[str, int]]:
    """The geoaware top-level names that ``path`` imports, with line numbers."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "geoaware":
                names = [f"geoaware.{a.name}" for a in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "geoaware" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def _library_modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if not _is_cli(p))


def test_every_stage_has_a_floor() -> None:
    stages = {_stage(p) for p in SRC.rglob("*.py")} - CLI_MODULES
    assert stages <= set(FLOORS), f"add these to FLOORS: {sorted(stages - set(FLOORS))}"


@pytest.mark.parametrize("path", _library_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_from_a_stage_above(path: Path) -> None:
    own = FLOORS.get(_stage(path), 0)
    above = [
        f"line {line}: geoaware.{name} (floor {FLOORS[name]} > {own})"
        for name, line in sorted(_imported_stages(path))
        if name in FLOORS and FLOORS[name] > own
    ]
    cli = [f"line {line}: geoaware.{name}" for name, line in _imported_stages(path)
           if name in CLI_MODULES]  # fmt: skip
    assert not above + cli, f"{path.relative_to(SRC)} reaches up: {above + cli}"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from geoaware.evaluate import geo\n    import geoaware.report\n")
    assert {name for name, _ in _imported_stages(bad)} == {"evaluate", "report"}

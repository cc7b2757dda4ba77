"""The main job behind ``make demo``: a real release walked to an honest report.

The demo is the path a researcher takes with a new dataset, run on the fg_geo YFCC100M release
(Chu et al. 2019) and the published Im2GPS predictions of Müller-Budack et al. (2018):

1. release → catalog, validated, with its stats and map;
2. a random and a spatial (H3 cell) 80/20 split, each with its leakage report, so the reader
   sees what a random split lets through;
3. a geographic prior trained with the default recipe on the random split, evaluated beside
   the baselines on all test points and on those with no same-species twin nearby;
4. range maps of three well-known species;
5. ``eval geo`` of the published Im2GPS file;
6. one HTML report of all of it.

Every step is a ``geoaware`` command, run as its own process with ``--json``; the commands are
written to ``commands.sh`` in the output folder, so any step can be rerun by hand, and their
outputs land under the names those commands give them. The output folder is also the run
folder that ``geoaware report`` reads: the demo adds one run file per stage to it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from geoaware.errors import GeoawareError
from geoaware.fileio import atomic_write_text
from geoaware.outputs import OutputError, claim_output, record_output
from geoaware.paths import cache_dir
from geoaware.runs import RunKind, run_document, run_path, write_run
from geoaware.typing import PathLike

__all__ = ["DEMO_SPECIES", "Step", "demo_steps", "run_demo"]

#: Three well-known species of the fg_geo release, on three continents, for the range maps.
DEMO_SPECIES: tuple[str, ...] = ("Danaus plexippus", "Erithacus rubecula", "Phoenicopterus roseus")


@dataclass(frozen=True)
class Step:
    """One ``geoaware`` command of the demo.

    Attributes
    ----------
    key : str
        Short name; the step's JSON output is kept under it.
    title : str
        What the step does, as the console says it.
    args : tuple of str
        The command line after ``geoaware`` (``--json`` is added when the demo runs it).
    weight : float
        Rough share of the demo's time, for the progress bar.
    """

    key: str
    title: str
    args: tuple[str, ...]
    weight: float = 1.0

    @property
    def command(self) -> str:
        """The command as a reader would type it.

        Examples
        --------
        >>> Step("v", "check", ("validate", "demo output/catalog.parquet")).command
        "geoaware validate 'demo output/catalog.parquet'"
        """
        return shlex.join(("geoaware", *self.args))


def _slug(name: str) -> str:
    return "-".join(name.lower().split())


def demo_steps(
    out: Path, data: Path, predictions: Path, *, quick: bool = False, overwrite: bool = False
) -> list[Step]:
    """Return the demo's commands, in order.

    Parameters
    ----------
    out
        The output folder (also the run folder of the report).
    data
        Where the fg_geo release was fetched (or the mirror's copy is found).
    predictions
        The published Im2GPS predictions file.
    quick
        Train the prior for 2 epochs instead of the recipe's count (for tests).
    overwrite
        Pass ``--overwrite`` to every command that writes (replaces outputs geoaware wrote).

    Examples
    --------
    >>> steps = demo_steps(Path("demo-output"), Path("data"), Path("im2gps.csv"))
    >>> [s.key for s in steps][:4]
    ['ingest', 'validate', 'stats', 'split_random']
    >>> steps[3].args[:4]
    ('split', 'demo-output/catalog.parquet', '--by', 'random')
    """
    ow = ("--overwrite",) if overwrite else ()
    catalog = str(out / "catalog.parquet")
    random_split = str(out / "split-random.parquet")
    cell_split = str(out / "split-cell.parquet")
    prior = str(out / "prior")
    epochs = ("--epochs", "2") if quick else ()
    steps = [
        Step(
            "ingest",
            "read the fg_geo release into a catalog",
            ("ingest", "fg_geo_yfcc", "--root", str(data), "--out", catalog, *ow),
        ),
        Step("validate", "validate every row", ("validate", catalog)),
        Step(
            "stats",
            "count and map the catalog",
            ("stats", catalog, "--map", str(out / "map.png"), *ow),
        ),
        Step(
            "split_random",
            "random 80/20 split",
            (
                "split",
                catalog,
                "--by",
                "random",
                "--ratios",
                "0.8,0,0.2",
                "--seed",
                "0",
                "--out",
                random_split,
                *ow,
            ),
        ),
        Step(
            "split_cell",
            "spatial 80/20 split (whole H3 cells of ~60,000 km² on one side)",
            (
                "split",
                catalog,
                "--by",
                "cell",
                "--cell",
                "h3:3",
                "--ratios",
                "0.8,0,0.2",
                "--seed",
                "0",
                "--out",
                cell_split,
                *ow,
            ),
        ),
        Step(
            "leakage_random",
            "what the random split leaks",
            ("leakage", random_split, "--map", str(out / "leakage-random.png"), *ow),
            2.0,
        ),
        Step(
            "leakage_cell",
            "what the spatial split leaks",
            ("leakage", cell_split, "--map", str(out / "leakage-cell.png"), *ow),
            2.0,
        ),
        Step(
            "prior_train",
            "train the geographic prior (default recipe)",
            ("prior", "train", random_split, "--split", "train", "--out", prior, *epochs, *ow),
            4.0 if quick else 60.0,
        ),
        Step(
            "prior_eval",
            "the prior against the baselines",
            ("prior", "eval", prior, random_split, "--split", "test"),
            6.0,
        ),
    ]
    steps += [
        Step(
            f"range_{_slug(species).replace('-', '_')}",
            f"range map of {species}",
            (
                "prior",
                "map",
                prior,
                "--label",
                species,
                "--scale",
                "log",
                "--out",
                str(out / f"range-{_slug(species)}.png"),
                *ow,
            ),
        )
        for species in DEMO_SPECIES
    ]
    steps.append(
        Step(
            "eval_geo",
            "score the published Im2GPS predictions",
            (
                "eval",
                "geo",
                str(predictions),
                "--by",
                "continent",
                "--reference",
                "im2gps",
                "--out",
                str(out),
            ),
        )
    )
    return steps


def _run(step: Step, env: dict[str, str]) -> dict[str, Any]:
    """Run one step as its own process; return its JSON object."""
    proc = subprocess.run(
        [sys.executable, "-m", "geoaware", *step.args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise GeoawareError(
            f"demo step '{step.key}' failed (exit {proc.returncode}): {step.command}"
            + (f": {said[-1]}" if said else "")
        )
    try:
        doc = orjson.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, orjson.JSONDecodeError) as exc:
        raise GeoawareError(
            f"demo step '{step.key}' printed no JSON object: {step.command}"
        ) from exc
    if not isinstance(doc, dict):
        raise GeoawareError(f"demo step '{step.key}' printed {type(doc).__name__}, not an object")
    return doc


def _fetch_inputs(data: Path, *, progress: bool) -> Path:
    """Fetch (or find in ``GEOAWARE_MIRROR``) the fg_geo file and the Im2GPS predictions."""
    from geoaware.sources import FgGeoYfcc, Im2gps

    FgGeoYfcc(data).fetch(progress=progress)
    return Im2gps(data).fetch(["demo_predictions"], progress=progress)["demo_predictions"]


def run_demo(
    out: PathLike = "demo-output",
    *,
    quick: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_step: Callable[[Step, int, int], None] | None = None,
) -> dict[str, Any]:
    """Walk the fg_geo release to ``out/report.html``; return every step's figures.

    Parameters
    ----------
    out
        Output folder: the catalog, the splits, the prior, the maps, the run files, the
        report and ``commands.sh`` (the commands, to rerun any step by hand).
    quick
        Fewer training epochs (for tests); the figures are then not the demo's.
    overwrite
        Replace the outputs of an earlier demo in ``out``.
    progress
        Show the download progress.
    on_step
        Called before each step with ``(step, index, count)``.

    Returns
    -------
    dict
        ``out``, ``report``, ``commands`` (the file), ``seconds`` and ``steps`` (key → the
        command, its seconds and its JSON object).

    Examples
    --------
    >>> summary = run_demo("demo-output")  # doctest: +SKIP
    >>> summary["steps"]["validate"]["result"]["rows"]  # doctest: +SKIP
    36143
    """
    t0 = time.perf_counter()
    out_dir = Path(out)
    claim_output(out_dir, "run")  # a folder of anything else is refused before any work
    if not overwrite and (out_dir / "commands.sh").exists():
        raise OutputError(f"{out_dir} holds an earlier demo; pass --overwrite to replace it")
    record_output(out_dir, "run")  # the steps write into a folder of geoaware's
    data = cache_dir("data")
    predictions = _fetch_inputs(data, progress=progress)
    steps = demo_steps(out_dir, data, predictions, quick=quick, overwrite=overwrite)
    env = {**os.environ, "COLUMNS": "120"}
    done: dict[str, dict[str, Any]] = {}
    for i, step in enumerate(steps):
        if on_step is not None:
            on_step(step, i, len(steps))
        s0 = time.perf_counter()
        result = _run(step, env)
        done[step.key] = {
            "command": step.command,
            "seconds": round(time.perf_counter() - s0, 2),
            "result": result,
        }
    _write_run_files(out_dir, done, quick=quick)
    report = Step(
        "report",
        "one HTML report of every step",
        (
            "report",
            str(out_dir),
            "--out",
            str(out_dir / "report.html"),
            "--title",
            "geoaware demo: fg_geo and Im2GPS",
            *(("--overwrite",) if overwrite else ()),
        ),
    )
    if on_step is not None:
        on_step(report, len(steps), len(steps) + 1)
    s0 = time.perf_counter()
    done["report"] = {
        "command": report.command,
        "seconds": round(time.perf_counter() - s0, 2),
        "result": _run(report, env),
    }
    commands = out_dir / "commands.sh"
    atomic_write_text(
        commands,
        "#!/usr/bin/env bash\n# The commands of `geoaware demo`, in order.\nset -euo pipefail\n"
        + "".join(f"{v['command']}\n" for v in done.values()),
    )
    return {
        "out": str(out_dir),
        "report": str(out_dir / "report.html"),
        "commands": str(commands),
        "quick": quick,
        "seconds": round(time.perf_counter() - t0, 2),
        "steps": done,
    }


# ----------------------------------------------------------------------------------------------
# Run files for the report: one per stage, in the run-folder format of geoaware.runs


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    return {"columns": list(columns), "rows": [list(r) for r in rows]}


def _write_run(
    out: Path,
    name: str,
    kind: RunKind,
    source: str,
    *,
    summary: dict[str, Any],
    tables: dict[str, Any],
    figures: list[str],
    **extra: Any,
) -> None:
    doc = run_document(kind, name, source, summary, tables, figures, **extra)
    write_run(run_path(out, name, kind), doc)


def _write_run_files(out: Path, done: dict[str, dict[str, Any]], *, quick: bool) -> None:
    """Add the catalog, split and prior run files that ``geoaware report`` shows."""
    validation = done["validate"]["result"]
    stats = done["stats"]["result"]
    continents = stats.get("continents") or {}
    located = sum(continents.values()) or 1
    _write_run(
        out,
        "fg_geo",
        "catalog",
        "catalog.parquet",
        summary={
            "n": validation["rows"],
            "labels": stats.get("labels"),
            "located": stats.get("located"),
            "errors": validation["errors"],
            "warnings": validation["warnings"],
        },
        tables={
            "validation findings": _table(
                ["check", "severity", "column", "count", "description"],
                [
                    [f["check"], f["severity"], f["column"], f["count"], f["description"]]
                    for f in validation["findings"]
                ],
            ),
            "located images per continent": _table(
                ["continent", "images", "share"],
                [[c, n, n / located] for c, n in continents.items()],
            ),
        },
        figures=["map.png"],
        captions={"map.png": "Where the catalog's located images are (stats --map)"},
    )
    rows = []
    for key, label in (("random", "random (image id)"), ("cell", "spatial (H3 cells)")):
        split = done[f"split_{key}"]["result"]
        leak = done[f"leakage_{key}"]["result"]
        outing = leak.get("same_outing", {})
        rows.append(
            [
                label,
                split["rows_per_split"].get("train", 0),
                split["rows_per_split"].get("test", 0),
                outing.get("images", 0),
                outing.get("pairs", 0),
                leak.get("labels", {}).get("test", {}).get("not_in_reference", 0),
            ]
        )
    _write_run(
        out,
        "splits",
        "split",
        "split-random.parquet, split-cell.parquet",
        summary={"n": done["split_random"]["result"]["rows"], "splits": 2},
        tables={
            "random against spatial split": _table(
                [
                    "split",
                    "train rows",
                    "test rows",
                    "images in cross-split pairs (100 m)",
                    "cross-split pairs",
                    "test labels unseen in train",
                ],
                rows,
            )
        },
        figures=["leakage-random.png", "leakage-cell.png"],
        captions={
            "leakage-random.png": "Random split: test and train images taken within 100 m of "
            "each other (same outing), drawn on top of the images without such a twin",
            "leakage-cell.png": "Spatial split (whole H3 cells on one side): the same check; "
            "pairs can only meet across a cell border",
        },
    )
    evaluation = done["prior_eval"]["result"]
    train = done["prior_train"]["result"]
    methods = evaluation["rows"]
    table_rows = [
        [m["method"], m.get("n"), m.get("top1_acc"), m.get("top5_acc"), m.get("top10_acc")]
        for m in methods
    ]
    tables = {
        "all test points": _table(["method", "n", "top1_acc", "top5_acc", "top10_acc"], table_rows)
    }
    twin_free = evaluation.get("twin_free")
    if isinstance(twin_free, dict) and twin_free.get("rows"):
        tables[f"test points without a same-species training point within {twin_free['km']} km"] = (
            _table(
                ["method", "n", "top1_acc", "top5_acc", "top10_acc"],
                [
                    [
                        m["method"],
                        m.get("n"),
                        m.get("top1_acc"),
                        m.get("top5_acc"),
                        m.get("top10_acc"),
                    ]
                    for m in twin_free["rows"]
                ],
            )
        )
    prior_row: dict[str, Any] = next((m for m in methods if m["method"] == "prior"), {})
    _write_run(
        out,
        "prior",
        "prior",
        "split-random.parquet (test)",
        summary={
            "n": evaluation["n"],
            "top1_acc": prior_row.get("top1_acc"),
            "top5_acc": prior_row.get("top5_acc"),
            "epochs": train.get("config", {}).get("epochs"),
        },
        tables=tables,
        figures=[f"range-{_slug(s)}.png" for s in DEMO_SPECIES],
        captions={
            f"range-{_slug(s)}.png": f"Predicted range of {s}: p({s} | location) on a log "
            "colour scale up to the map's largest p, with its training points"
            for s in DEMO_SPECIES
        },
        notes=["quick run: 2 epochs, the figures are not the demo's"] if quick else [],
    )

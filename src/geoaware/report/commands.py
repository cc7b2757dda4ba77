"""The report commands: ``report`` (a run folder as one HTML page) and ``info`` (provenance).

``report`` calls :func:`geoaware.report.build_report`; ``info`` prints the manifest that
:mod:`geoaware.outputs` keeps beside every output. ``cli.py`` adds this module's ``app`` to
the top-level app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geoaware.clikit import JsonOpt, OverwriteOpt, emit_json, out, table
from geoaware.errors import GeoawareError

__all__ = ["app", "info", "report"]

app = typer.Typer()


@app.command(
    epilog="Example: geoaware report runs/exp1 --out report.html.  "
    "JSON keys: report, runs (each: name, kind, source, file).",
)
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder of <name>.<kind>.json files.")],
    out_html: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "report.html"
    ),
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML report (tables and embedded figures) of a run folder."""
    from geoaware.outputs import claim_output, record_output
    from geoaware.report import build_report, read_runs

    claim_output(out_html, overwrite=overwrite, suffixes=(".html", ".htm"))
    path = build_report(run_dir, out_html, title=title)
    record_output(path, inputs=[run_dir])
    runs = [
        {"name": r.name, "kind": r.kind, "source": r.source, "file": r.path.name}
        for r in read_runs(run_dir)
    ]
    if json:
        emit_json({"report": str(path), "runs": runs})
        return
    out.print(f"[bold]report[/] {path} ({len(runs)} run{'' if len(runs) == 1 else 's'})")


@app.command(
    epilog="Example: geoaware info runs/split.parquet.  JSON keys: the manifest's (tool, "
    "version, git_revision, command, seed, time, output, kind, inputs (each: path, bytes, "
    "mtime, sha256 or files), history (run folders: each command that added to it)).",
)
def info(
    path: Annotated[Path, typer.Argument(help="Any output geoaware wrote (file or folder).")],
    json: JsonOpt = False,
) -> None:
    """How an output was made: command, version, git revision, seed, inputs and time."""
    from geoaware.outputs import manifest_path, read_manifest

    if not path.exists():
        raise GeoawareError(f"{path}: no such file or folder")
    doc = read_manifest(path)
    if doc is None:
        raise GeoawareError(
            f"{path}: no geoaware manifest ({manifest_path(path)}); it was not written by "
            "geoaware, or by a version before manifests"
        )
    if json:
        emit_json(doc)
        return
    out.print(f"[bold]{doc['output']}[/] ({doc['kind']})", highlight=False)
    for key in ("command", "seed", "time", "version", "git_revision"):
        if doc.get(key) is not None:
            out.print(f"  {key.replace('_', ' ')}: {doc[key]}", highlight=False)
    rows = [
        [i["path"], i.get("bytes"), i.get("mtime"), (i.get("sha256") or "")[:16]]
        for i in doc.get("inputs", [])
    ]
    if rows:
        out.print(table("inputs", ["path", "bytes", "modified", "sha256 (first 16)"], rows))
    history = doc.get("history") or []
    if len(history) > 1:
        out.print(
            table("commands that wrote here", ["time", "command"],
                  [[h["time"], h["command"]] for h in history])
        )  # fmt: skip

"""The ``geoaware demo`` command: :func:`geoaware.demo.run_demo` with a progress bar.

The command sits beside :mod:`geoaware.demo` (the library function it calls); ``cli.py`` adds
its ``app`` to the top-level app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geoaware.clikit import JsonOpt, emit_json, err, fmt_metric, out, table

__all__ = ["app", "demo"]

app = typer.Typer()


@app.command(
    epilog="Example: geoaware demo --out demo-output.  JSON keys: out, report, commands, quick, "
    "seconds, steps (each step: command, seconds, result = that command's JSON object).",
)
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for every output and the report.")
    ] = Path("demo-output"),
    quick: Annotated[
        bool, typer.Option("--quick", help="Train the prior for 2 epochs (a smoke test).")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the outputs of an earlier demo.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Walk the fg_geo release to an honest report: catalog, splits, prior, Im2GPS, HTML.

    Every step is a geoaware command; they are written to OUT/commands.sh to rerun by hand.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from geoaware.demo import Step, run_demo

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        disable=json,
    ) as bar:
        task = bar.add_task("demo", total=None)

        def on_step(step: Step, index: int, count: int) -> None:
            bar.update(task, total=count, completed=index, description=step.title)

        summary = run_demo(
            out_dir, quick=quick, overwrite=overwrite, progress=not json, on_step=on_step
        )
        bar.update(task, completed=bar.tasks[0].total, description="done")
    if json:
        emit_json(summary)
        return
    _print_demo(summary)


def _print_demo(summary: dict[str, Any]) -> None:
    steps = summary["steps"]
    val = steps["validate"]["result"]
    stats = steps["stats"]["result"]
    out.print(
        f"[bold]catalog[/] {val['rows']:,} images, {stats['labels']:,} species, "
        f"{val['errors']:,} validation errors"
    )
    for key, name in (("random", "random"), ("cell", "spatial")):
        leak = steps[f"leakage_{key}"]["result"]["same_outing"]
        out.print(
            f"[bold]{name} split[/] {leak['images']:,} images lie within 100 m of an image on "
            "the other side"
        )
    ev = steps["prior_eval"]["result"]
    twin_free = {m["method"]: m for m in (ev.get("twin_free") or {}).get("rows", [])}
    rows = [
        [
            m["method"],
            *(fmt_metric(k, m[k]) for k in ("top1_acc", "top5_acc")),
            fmt_metric("top5_acc", twin_free.get(m["method"], {}).get("top5_acc")),
        ]
        for m in ev["rows"]
    ]
    recipe = steps["prior_train"]["result"].get("recipe") or {}
    if recipe:
        out.print(f"[bold]prior recipe[/] {recipe.get('name')}: {recipe.get('reason')}")
    out.print(
        table(
            f"prior against the baselines ({ev['n']:,} test points)",
            ["method", "top1_acc", "top5_acc", "top5_acc, no twin within 1 km"],
            rows,
        )
    )
    geo = steps["eval_geo"]["result"]
    accs = " / ".join(f"{100 * geo[k]:.1f}" for k in geo if k.startswith("acc_"))
    out.print(f"[bold]Im2GPS[/] accuracy at 1/25/200/750/2500 km: {accs} %")
    if summary["quick"]:
        out.print("[yellow]quick run: the prior trained for 2 epochs[/]")
    out.print(f"[bold]report[/] {summary['report']}  ({summary['seconds']:.0f} s)")
    out.print(f"[bold]commands[/] {summary['commands']}")

"""CLI commands of the federated stage: ``geoaware fl simulate``.

``app`` carries the ``fl`` group; ``geoaware.cli`` adds it with ``app.add_typer(app)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geoaware.clikit import JsonOpt, emit_json, out

__all__ = ["app", "fl_app", "fl_rerun", "fl_simulate"]

app = typer.Typer()
fl_app = typer.Typer(
    name="fl",
    help="Federated learning on partition folders.",
    epilog="Example: geoaware fl simulate parts/ --catalog catalog.parquet --rounds 3",
    no_args_is_help=True,
)
app.add_typer(fl_app, name="fl")


@fl_app.command(
    "simulate",
    epilog="Example: geoaware fl simulate parts/ --catalog catalog.parquet --model prior "
    "--rounds 3 --out runs/fl (or --model head --embeddings emb.parquet --with-location; "
    "--model softmax is a softmax regression on the location).  Needs flwr\\[simulation] "
    "(Ray: --num-cpus CPUs, 1 per client and 1 BLAS thread each; started and shut down by the "
    "command, also on Ctrl-C or SIGTERM).  --model prior picks its recipe as `prior train` "
    "does (--recipe auto: small-data below a median of 50 training rows per class).  "
    "With --out RUN: Flower's log goes to RUN/NAME.flower.log and the run (settings, "
    "accuracy by round, client sizes) to RUN/NAME.federated.json for `geoaware report`.  "
    "JSON keys: partitions, partitioning, catalog, clients, classes, rows_train, "
    "rows_heldout, rows_dropped, client_sizes, settings, rounds, local_epochs, fraction_fit, "
    "seed, lr, batch_size, moments (prior: shared or fresh), holdout, model, strategy, "
    "model_settings, recipe (asked, name, "
    "reason, median_per_class, classes; null but for the prior), initial_accuracy, per_round "
    "(each: round, federated_accuracy, centralised_accuracy, federated_top5, "
    "centralised_top5, train_loss, seconds), final (the same four accuracies), baselines "
    "(each: top1_acc, top5_acc), seconds_per_round, centralised_seconds, seconds, log and "
    "run_file (with --out).",
)
def fl_simulate(
    partitions_dir: Annotated[Path, typer.Argument(help="Folder written by `geoaware partition`.")],
    catalog: Annotated[Path, typer.Option(help="The catalog it was built from.")],
    rounds: Annotated[int, typer.Option(help="Federated rounds.")] = 3,
    local_epochs: Annotated[int, typer.Option(help="Client epochs per round.")] = 1,
    fraction_fit: Annotated[
        float, typer.Option(help="Share of clients trained per round (drawn from --seed).")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of hold-out, sampling and SGD.")] = 0,
    model: Annotated[
        str, typer.Option(help="softmax (location), prior (prior network) or head.")
    ] = "softmax",
    recipe: Annotated[
        str, typer.Option(help="With --model prior: auto, published or small-data.")
    ] = "auto",
    moments: Annotated[
        str,
        typer.Option(
            help="With --model prior: shared (Adam's moments travel with the weights and are "
            "averaged) or fresh (each client restarts Adam every round)."
        ),
    ] = "shared",
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Mini-batch size, clients and centralised alike (default: the model's: "
            "softmax/head 32, prior its recipe's)."
        ),
    ] = None,
    embeddings: Annotated[
        Path | None, typer.Option(help="With --model head: image embeddings file/folder.")
    ] = None,
    with_location: Annotated[
        bool, typer.Option(help="With --model head: append the location features.")
    ] = False,
    proximal_mu: Annotated[float, typer.Option(help="FedProx proximal weight (0: FedAvg).")] = 0.0,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate (default: softmax/head 0.5, prior its recipe's)."),
    ] = None,
    holdout: Annotated[float, typer.Option(help="Share of rows held out for testing.")] = 0.2,
    compare: Annotated[
        bool, typer.Option(help="Also train centrally and fit the baselines.")
    ] = True,
    num_cpus: Annotated[int, typer.Option(help="CPUs given to Ray (1 per client).")] = 2,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder: Flower's log and the report.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Run name (default fedavg-MODEL-PARTITIONS).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """FedAvg (Flower simulation) of a location prior or image head, beside central training."""
    from geoaware.federated.simulate import SimulationSettings

    settings = SimulationSettings(
        rounds=rounds, local_epochs=local_epochs, fraction_fit=fraction_fit, seed=seed,
        lr=lr, num_cpus=num_cpus, model=model, with_location=with_location,
        embeddings=None if embeddings is None else str(embeddings),
        proximal_mu=proximal_mu, recipe=recipe, holdout=holdout, compare=compare,
        moments=moments, batch_size=batch_size,
    )  # fmt: skip
    run_name = name or f"fedavg-{model}-{partitions_dir.name}"
    report = _simulate(partitions_dir, catalog, settings, out_dir, run_name)
    if json:
        emit_json(report)
        return
    _show_simulation(report, out_dir)


@fl_app.command(
    "rerun",
    epilog="Example: geoaware fl rerun runs/fl/prior-d1.0.federated.json --out runs/again  "
    "(run it from the folder the first run ran in: the partition folder and catalog are "
    "read from the paths recorded there).  Prints the run's table and how far its final "
    "figures are from the recorded ones.  JSON keys: run_file, partitions, catalog, "
    "settings, recorded (federated_accuracy, centralised_accuracy, federated_top5, "
    "centralised_top5), rerun (the same four), max_difference, same (all four within "
    "--tolerance), rerun_file (with --out).",
)
def fl_rerun(
    run_file: Annotated[Path, typer.Argument(help="A RUN/NAME.federated.json of fl simulate.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder for the new run (optional).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Name of the new run (default: the old one's).")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="Largest difference of a final figure still called the same.")
    ] = 1e-9,
    json: JsonOpt = False,
) -> None:
    """Run a recorded federated simulation again from its settings; compare its final figures."""
    from geoaware.federated.simulate import recorded_settings

    parts, catalog, settings, recorded = recorded_settings(run_file)
    run_name = name or run_file.name.removesuffix(".federated.json")
    report = _simulate(parts, catalog, settings, out_dir, run_name)
    keys = ("federated_accuracy", "centralised_accuracy", "federated_top5", "centralised_top5")
    diffs = [
        abs(report["final"][k] - recorded[k])
        for k in keys
        if report["final"][k] is not None and recorded.get(k) is not None
    ]
    summary = {
        "run_file": str(run_file),
        "partitions": parts,
        "catalog": catalog,
        "settings": report["settings"],
        "recorded": {k: recorded.get(k) for k in keys},
        "rerun": {k: report["final"][k] for k in keys},
        "max_difference": max(diffs, default=0.0),
        "same": max(diffs, default=0.0) <= tolerance,
    }
    if out_dir is not None:
        summary["rerun_file"] = report["run_file"]
    if json:
        emit_json(summary)
        return
    _show_simulation(report, out_dir)
    verdict = "the same" if summary["same"] else "different"
    out.print(
        f"final figures {verdict} as recorded in {run_file} "
        f"(largest difference {100 * summary['max_difference']:.4f} points)",
        highlight=False,
    )


def _simulate(
    parts: Path | str, catalog: Path | str, settings: Any, out_dir: Path | None, run_name: str
) -> dict[str, Any]:
    """Run the simulation; with ``out_dir``, Flower's log and the run file go there."""
    from geoaware.federated.simulate import simulate_fedavg
    from geoaware.outputs import claim_output, record_output

    if out_dir is not None:
        claim_output(out_dir, "run")  # a folder geoaware did not write is refused, untouched
    log = None if out_dir is None else out_dir / f"{run_name}.flower.log"
    report = simulate_fedavg(parts, catalog, settings, log_file=log)
    if out_dir is not None:
        from geoaware.federated.report import write_federated_run

        report["log"] = str(log)
        report["run_file"] = str(write_federated_run(report, out_dir, run_name))
        record_output(out_dir, "run", inputs=[parts, catalog], seed=settings.seed)
    return report


def _show_simulation(report: dict[str, Any], out_dir: Path | None) -> None:
    from geoaware.clikit import fmt_metric, table

    def pct(key: str, value: float | None) -> str:
        return "-" if value is None else fmt_metric(key, value)

    rows = [
        [
            r["round"],
            pct("federated_acc", r["federated_accuracy"]),
            pct("centralised_acc", r["centralised_accuracy"]),
            pct("federated_acc", r["federated_top5"]),
            pct("centralised_acc", r["centralised_top5"]),
            "" if r["train_loss"] is None else f"{r['train_loss']:.4f}",
            "" if r.get("seconds") is None else f"{r['seconds']:.1f}",
        ]
        for r in report["per_round"]
    ]
    scheme = report.get("partitioning")
    title = (
        f"FedAvg of {report['model']}, {report['clients']:,} clients"
        + (f" ({scheme})" if scheme else "")
        + f", {report['classes']:,} labels, "
        f"{report['rows_train']:,} train / {report['rows_heldout']:,} held-out rows "
        f"(initial accuracy {fmt_metric('acc_0', report['initial_accuracy'])})"
    )
    columns = ["round", "federated top-1", "centralised top-1", "federated top-5",
               "centralised top-5", "client loss", "seconds"]  # fmt: skip
    out.print(table(title, columns, rows))
    recipe = report.get("recipe")
    if recipe:
        out.print(f"recipe {recipe['name']}: {recipe['reason']}", highlight=False)
    base = [
        [name, fmt_metric("top1_acc", b["top1_acc"]), fmt_metric("top5_acc", b["top5_acc"])]
        for name, b in report.get("baselines", {}).items()
    ]
    if base:
        out.print(table("baselines (held-out rows)", ["baseline", "top-1", "top-5"], base))
    if out_dir is not None:
        out.print(
            f"[bold]run folder[/] {out_dir}: {report['run_file']}, Flower's log {report['log']}"
        )

"""Benchmark: federated training of the geographic prior, ours against Flower's quickstart.

Two parts, one JSON line at the end.

**Seconds per round at iNat2021's shape.** A synthetic catalog with iNat2021's users (158,873
photographers, long-tailed images per user: lognormal, every user at least one image),
iNat2021's 10,000 species and 2,686,843 images (iNat2021 train; ``--quick``: 300,000) is
partitioned by user (one client per photographer). Both sides train the same prior network
(:class:`geoaware.federated.models.PriorModel`, the recipe ``auto`` picks from the catalog)
with FedAvg, 100 clients sampled per round, one local epoch, Ray with 2 CPUs, and evaluate the
global model on the same held-out rows (0.5 % of the images, by image-id hash) after each
round:

* ours: :func:`geoaware.federated.simulate.simulate_fedavg` (what ``geoaware fl simulate``
  runs; ``compare=False``: no centralised run at this size);
* the baseline, written as in Flower's quickstart (``flwr new``'s PyTorch template with the
  NumPyClient API): a ``NumPyClient`` whose ``client_fn`` loads its partition from a
  ``FederatedDataset`` over the catalog's Parquet with a ``NaturalIdPartitioner`` on
  ``user_id``, cached in a module global per worker process as the template does (the
  functions live at module level so that Ray's workers import them by reference; as closures
  they travelled by value with every message and every client rebuilt the partition index,
  about 5 s a client: a round did not end within 180 s, our harness's fault), ``FedAvg``
  with server-side ``evaluate_fn``, ``run_simulation``. It runs in a child process with
  ``OPENBLAS_NUM_THREADS=1`` (without it Ray's start can deadlock in OpenBLAS, the bug that
  ``fl simulate`` fixes) and the processes it leaves are ended afterwards. Each client reports
  its data-loading and fit seconds (``client_load_s_mean``, ``client_fit_s_mean`` per round).

Seconds per round are measured the same way on both sides, between the server's evaluations:
``steady`` from round 2 on (the first round of each pays its start: the baseline builds its
partition index in every worker) and ``whole`` from the initial evaluation to the last.
``ratio`` = baseline steady s/round / ours, ``ratio_whole`` the same with the start (only
when the baseline ran 100 clients a round: its start does not scale with clients). With
``--baseline-clients K`` below 100 (quick: 25) the baseline samples K clients a round and its
seconds per round are multiplied by 100 / K (each client is loaded and fitted in turn on the
same two workers, so a round's time is linear in its clients); the JSON's ``scaling`` says
so. Ours always runs 100 clients a round.

**What federation costs on fg_geo.** The fg_geo catalog is built from the release (from
``GEOAWARE_MIRROR`` or ``/work/shared/data``, as ``geoaware demo`` does), partitioned at species
level by cell (H3 resolution 2, 836 clients, 50 sampled a round), by Dirichlet alpha 0.1
and 1.0 (20 clients, all trained each round) and by 2,000 SYNTHETIC photographers (``partition
--by synthetic-user``: fg_geo has no ``user_id``; 1,570 get photos, 100 sampled a round); each
runs ``fl simulate --model prior --batch-size 128`` (``--fg-batch-size``; Adam's moments shared,
the default) with the centralised model beside it. The gap is federated minus centralised
top-1/top-5 on the held-out rows after the last round.

The baseline has a deadline (``--timeout``; quick 300 s): a baseline that has not finished
its rounds by then is stopped, and ``ratio`` is then a lower bound (``ratio_at_least``: the
deadline over the rounds, against ours over the whole run, start included).

``--quick`` (or ``GEOAWARE_BENCH_QUICK=1``, what ``make bench`` sets): a tenth of iNat2021
(15,888 users, 268,684 images, the same 10,000 species and 100 clients a round), 2 rounds at
scale, the baseline on 25 clients a round, 1 round per fg_geo partitioning (a smoke run of
the gap: one round teaches the prior little; the README's gap table is the full run's
``--fg-rounds 10``).

    python benchmarks/bench_fl.py [--quick] [--rounds 5] [--baseline-clients 100]
        [--fg-rounds 10] [--fg-epochs 1] [--images 2686843]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

USERS = 158_873
SPECIES = 10_000
IMAGES = 2_686_843
CLIENTS_PER_ROUND = 100
HOLDOUT = 0.005
FG_BATCH = 128  # the fg_geo runs' batch size (the README's `fl simulate --batch-size 128`)


def make_catalog(path: Path, images: int, users: int, species: int, seed: int) -> None:
    """The synthetic iNat2021-shaped catalog of ``bench_partition.py``."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_partition import make_catalog as make

    make(path, images, users, species, seed)


def ours(parts: Path, catalog: Path, rounds: int, fraction: float, log: Path) -> dict[str, Any]:
    from geoaware.federated.simulate import SimulationSettings, simulate_fedavg

    s = SimulationSettings(
        rounds=rounds, fraction_fit=fraction, model="prior", compare=False, holdout=HOLDOUT,
        num_cpus=2,
    )  # fmt: skip
    r = simulate_fedavg(parts, catalog, s, log_file=log)
    per = [p["seconds"] for p in r["per_round"]]
    return {
        "steady_s_per_round": float(np.mean(per[1:])) if len(per) > 1 else per[0],
        "whole_s_per_round": r["seconds_per_round"],
        "round_seconds": per,
        "seconds": r["seconds"],
        "clients": r["clients"],
        "recipe": r["recipe"],
        "model_settings": r["model_settings"],
        "final_top5": r["final"]["federated_top5"],
    }


# ---------------------------------------------------------------------------------------------
# the baseline: Flower's quickstart, in a child process
#
# As in ``flwr new``'s PyTorch template, the data loading lives at module level: ``fds`` is a
# module global that caches the FederatedDataset in each worker process. This module is
# imported by name in the child and in Ray's workers (``PYTHONPATH`` names its folder), so
# ``cloudpickle`` sends these functions by reference and the cache lives as long as the worker.
# (Defined as closures inside a function, they travel by value with every message, the cache
# starts empty for every client and every client rebuilds the partition index: about 5 s each,
# our harness's fault, not Flower's.)

fds: Any = None  # cache FederatedDataset, as the template does
_model: Any = None


def load_model() -> Any:
    """The prior network with the settings of ours (from ``BENCH_FL_CONFIG``)."""
    global _model
    if _model is None:
        from geoaware.federated.models import PriorModel
        from geoaware.priors import PriorConfig

        config = PriorConfig(**json.loads(os.environ["BENCH_FL_CONFIG"]))
        _model = PriorModel(SPECIES, config)
    return _model


def load_data(partition_id: int) -> tuple[np.ndarray, np.ndarray]:
    """One client's training rows, loaded as the quickstart's ``load_data`` does."""
    global fds
    from flwr_datasets import FederatedDataset
    from flwr_datasets.partitioner import NaturalIdPartitioner

    from geoaware.construct.keys import unit_hash

    catalog = os.environ["BENCH_FL_CATALOG"]
    if fds is None:
        fds = FederatedDataset(
            dataset="parquet", data_files={"train": catalog},
            cache_dir=str(Path(catalog).parent / "hf"),
            partitioners={"train": NaturalIdPartitioner(partition_by="user_id")},
        )  # fmt: skip
    part = fds.load_partition(partition_id).with_format("numpy")
    keep = unit_hash(np.asarray(part["image_id"], dtype=object), 0) >= HOLDOUT
    x = load_model().features(np.asarray(part["lat"])[keep], np.asarray(part["lon"])[keep])
    return x, np.asarray(part["label"], dtype=np.int64)[keep]


def client_fn(context: Any) -> Any:
    """The quickstart's ``client_fn``: load the partition, wrap it in a ``NumPyClient``."""
    from flwr.client import NumPyClient

    class FlowerClient(NumPyClient):  # type: ignore[misc]
        def __init__(self, pid: int, x: np.ndarray, y: np.ndarray, load_s: float) -> None:
            self.pid, self.x, self.y, self.load_s = pid, x, y, load_s

        def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
            t = time.perf_counter()
            rnd = int(config.get("server_round", 1))
            w, loss = load_model().fit(parameters, self.x, self.y, epochs=1,
                                       seed=[0, self.pid, rnd], start_epoch=rnd - 1)  # fmt: skip
            fit_s = time.perf_counter() - t
            return w, len(self.y), {"train_loss": loss, "load_s": self.load_s, "fit_s": fit_s}

    t = time.perf_counter()
    pid = int(context.node_config["partition-id"])
    x, y = load_data(pid)
    return FlowerClient(pid, x, y, time.perf_counter() - t).to_client()


def baseline_child(catalog: Path, rounds: int, clients: int, per_round: int) -> None:
    """Run the quickstart-style simulation and print one JSON line of timings."""
    import flwr
    import pyarrow.parquet as pq
    from flwr.client import ClientApp
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    from geoaware.construct.keys import unit_hash
    from geoaware.federated.simulate import heldout_accuracy

    model = load_model()
    t = pq.read_table(catalog, columns=["image_id", "lat", "lon", "label"])
    ids = np.asarray(t.column("image_id").to_numpy(zero_copy_only=False), dtype=object)
    test = unit_hash(ids, 0) < HOLDOUT
    x_test = model.features(t.column("lat").to_numpy()[test], t.column("lon").to_numpy()[test])
    y_test = t.column("label").to_numpy().astype(np.int64)[test]
    stamps: dict[int, float] = {}
    accs: dict[int, dict[str, float]] = {}
    fits: dict[int, list[tuple[float, float]]] = {}

    def evaluate(server_round: int, parameters: list[np.ndarray], config: Any) -> Any:
        accs[server_round] = heldout_accuracy(model, parameters, x_test, y_test)
        stamps[server_round] = time.perf_counter()
        return 0.0, dict(accs[server_round])

    def fit_metrics(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        fits[len(fits) + 1] = [(float(m["load_s"]), float(m["fit_s"])) for _, m in results]
        return {}

    def server_fn(context: Context) -> ServerAppComponents:
        strategy = FedAvg(
            fraction_fit=per_round / clients, fraction_evaluate=0.0,
            min_fit_clients=per_round, min_available_clients=clients,
            initial_parameters=ndarrays_to_parameters(model.initial()),
            evaluate_fn=evaluate, fit_metrics_aggregation_fn=fit_metrics,
            on_fit_config_fn=lambda rnd: {"server_round": rnd},
        )  # fmt: skip
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

    t0 = time.perf_counter()
    run_simulation(
        server_app=ServerApp(server_fn=server_fn),
        client_app=ClientApp(client_fn=client_fn),
        num_supernodes=clients,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                        "init_args": {"num_cpus": 2}},
    )  # fmt: skip
    per = [stamps[r] - stamps[r - 1] for r in range(1, rounds + 1)]
    print(json.dumps({
        "flwr": flwr.__version__,
        "clients_per_round": per_round,
        "steady_s_per_round": float(np.mean(per[1:])) if len(per) > 1 else per[0],
        "whole_s_per_round": (stamps[rounds] - stamps[0]) / rounds,
        "round_seconds": per,
        "client_load_s_mean": [float(np.mean([a for a, _ in f])) for f in fits.values()],
        "client_fit_s_mean": [float(np.mean([b for _, b in f])) for f in fits.values()],
        "seconds": time.perf_counter() - t0,
        "final_top5": accs[rounds]["top5_acc"],
    }))  # fmt: skip


def baseline(catalog: Path, config: dict[str, Any], rounds: int, clients: int, per_round: int,
             timeout_s: float) -> dict[str, Any]:  # fmt: skip
    from geoaware.federated.runtime import descendants, end_processes

    here = Path(__file__).resolve().parent
    code = "import sys, bench_fl; bench_fl.baseline_child(*bench_fl.child_args(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, str(catalog), str(rounds), str(clients), str(per_round)]
    path = os.pathsep.join(p for p in (str(here), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": path,
           "BENCH_FL_CONFIG": json.dumps(config), "BENCH_FL_CATALOG": str(catalog)}  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    seen: dict[int, str] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            seen.update(descendants(proc.pid))

    threading.Thread(target=watch, daemon=True).start()
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return {"error": f"timed out after {timeout_s:.0f} s", "stderr": err[-1500:]}
    finally:
        done.set()
        left = end_processes(seen, grace_s=3.0)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}", "stderr": err[-1500:]}
    result: dict[str, Any] = json.loads(lines[-1])
    result["processes_ended_after"] = len(left)
    return result


def child_args(argv: list[str]) -> tuple[Path, int, int, int]:
    """Parse the child's command line: catalog, rounds, clients, clients per round."""
    return Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])


# ---------------------------------------------------------------------------------------------
# the gap on fg_geo


def fg_geo_catalog(folder: Path) -> Path:
    from geoaware.catalog import write_catalog
    from geoaware.sources import FgGeoYfcc

    mirror = Path(os.environ.get("GEOAWARE_MIRROR", "/work/shared/data"))
    cat = folder / "fg_geo.parquet"
    write_catalog(FgGeoYfcc(mirror / "fg_geo_yfcc").read(), cat)
    return cat


def partition(catalog: Path, out: Path, by: str, **kw: Any) -> Path:
    from geoaware.catalog import read_catalog
    from geoaware.construct.partition import make_partitioner
    from geoaware.construct.stats import write_partitions

    p = make_partitioner(by, level="species", seed=0, **kw)
    p.catalog = read_catalog(catalog)
    write_partitions(p, out, level="species", plots=False)
    return out


def gap(parts: Path, catalog: Path, rounds: int, epochs: int, per_round: int | None,
        batch_size: int, run: Path) -> dict[str, Any]:  # fmt: skip
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from geoaware.federated.report import write_federated_run
    from geoaware.federated.simulate import SimulationSettings, simulate_fedavg

    ids = pq.read_table(parts / "partitions.parquet", columns=["partition_id"]).column(0)
    clients = int(pc.max(ids).as_py()) + 1
    fraction = 1.0 if per_round is None else min(1.0, per_round / clients)
    s = SimulationSettings(rounds=rounds, local_epochs=epochs, fraction_fit=fraction,
                           model="prior", batch_size=batch_size, num_cpus=2)  # fmt: skip
    r = simulate_fedavg(parts, catalog, s, log_file=run / f"{parts.name}.flower.log")
    write_federated_run(r, run, f"prior-{parts.name}")
    f = r["final"]
    return {
        "clients": r["clients"],
        "clients_per_round": max(1, round(r["clients"] * fraction)),
        "batch_size": r["batch_size"],
        "moments": r["moments"],
        "per_round_top5": [(p["federated_top5"], p["centralised_top5"]) for p in r["per_round"]],
        "fed_top1": f["federated_accuracy"],
        "central_top1": f["centralised_accuracy"],
        "fed_top5": f["federated_top5"],
        "central_top5": f["centralised_top5"],
        "gap_top1": f["federated_accuracy"] - f["centralised_accuracy"],
        "gap_top5": f["federated_top5"] - f["centralised_top5"],
        "nn_top5": r["baselines"]["nearest_neighbours"]["top5_acc"],
        "s_per_round": r["seconds_per_round"],
        "seconds": r["seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("GEOAWARE_BENCH_QUICK", "") not in ("", "0"),
        help="a tenth of iNat2021, 2 rounds at scale, the baseline on 25 clients a round "
        "(scaled to 100), 1 round per fg_geo partitioning",
    )
    ap.add_argument("--images", type=int, default=None, help=f"default {IMAGES:,} (quick 1/10)")
    ap.add_argument("--users", type=int, default=None, help=f"default {USERS:,} (quick 1/10)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds at scale (default 5)")
    ap.add_argument(
        "--baseline-clients", type=int, default=None,
        help=f"clients a round in the baseline (default {CLIENTS_PER_ROUND}, quick 25); "
        f"its seconds per round are scaled linearly to {CLIENTS_PER_ROUND}",
    )  # fmt: skip
    ap.add_argument("--fg-rounds", type=int, default=None, help="rounds on fg_geo (default 10)")
    ap.add_argument("--fg-epochs", type=int, default=1, help="local epochs on fg_geo")
    ap.add_argument(
        "--fg-batch-size", type=int, default=FG_BATCH, help=f"batch size on fg_geo ({FG_BATCH})"
    )
    ap.add_argument("--keep", type=Path, default=None, help="write the fg_geo runs here")
    ap.add_argument("--timeout", type=float, default=None, help="baseline deadline (s)")
    args = ap.parse_args()
    images = args.images or (IMAGES // 10 if args.quick else IMAGES)
    users = args.users or (USERS // 10 + 1 if args.quick else USERS)
    timeout = args.timeout or (300.0 if args.quick else 1800.0)
    rounds = args.rounds or (2 if args.quick else 5)
    sample = args.baseline_clients or (25 if args.quick else CLIENTS_PER_ROUND)
    fg_rounds = args.fg_rounds or (1 if args.quick else 10)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-fl-") as tmp:
        work = Path(tmp)
        cat = work / "inat2021.parquet"
        t0 = time.perf_counter()
        make_catalog(cat, images, users, SPECIES, 0)
        parts = partition(cat, work / "parts-user", "user")
        print(f"catalog and user partition: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        mine = ours(parts, cat, rounds, CLIENTS_PER_ROUND / users, work / "ours.flower.log")
        print(f"ours: {mine['steady_s_per_round']:.2f} s/round", file=sys.stderr)
        base = baseline(cat, mine["model_settings"], rounds, users, sample, timeout)
        print(f"baseline: {base.get('steady_s_per_round', base)}", file=sys.stderr)
        fg = fg_geo_catalog(work)
        run = args.keep or work / "runs"
        gaps: dict[str, Any] = {}
        for name, by, kw, per_round in (
            ("cell", "cell", {"cell": "h3:2"}, 50),
            ("dirichlet_0.1", "dirichlet", {"alpha": 0.1, "num_partitions": 20}, None),
            ("dirichlet_1.0", "dirichlet", {"alpha": 1.0, "num_partitions": 20}, None),
            ("synthetic_user", "synthetic-user", {"users": 2000}, 100),
        ):
            p = partition(fg, work / f"parts-{name}", by, **kw)
            gaps[name] = gap(p, fg, fg_rounds, args.fg_epochs, per_round, args.fg_batch_size, run)
            print(f"fg_geo {name}: {gaps[name]}", file=sys.stderr)
    scale = CLIENTS_PER_ROUND / sample
    measured = "steady_s_per_round" in base
    base_steady = base["steady_s_per_round"] * scale if measured else None
    # a start is not linear in clients: the whole-run figure is only given unscaled
    base_whole = base["whole_s_per_round"] if measured and scale == 1 else None
    at_least = None if measured else timeout / rounds / mine["whole_s_per_round"]
    print(json.dumps({
        "benchmark": "fl simulate --model prior, FedAvg, by user, iNat2021-shaped catalog "
        f"({images:,} images, {users:,} users, {SPECIES:,} species), "
        f"{CLIENTS_PER_ROUND} clients a round, {rounds} rounds",
        "baseline": "Flower quickstart: NumPyClient + FedAvg + run_simulation, "
        "FederatedDataset(NaturalIdPartitioner on user_id) cached per worker",
        "ratio": None if base_steady is None else base_steady / mine["steady_s_per_round"],
        "ratio_whole": None if base_whole is None else base_whole / mine["whole_s_per_round"],
        "ratio_at_least": at_least,
        "ours_s_per_round": mine["steady_s_per_round"],
        "baseline_s_per_round": base_steady,
        "ours_whole_s_per_round": mine["whole_s_per_round"],
        "baseline_whole_s_per_round": base_whole,
        "scaling": "none: the baseline ran 100 clients a round" if scale == 1 else
        f"the baseline ran {sample} clients a round (the same rounds); its seconds per round "
        f"are multiplied by {scale:g} (linear in clients: each client is loaded and fitted "
        "in turn on the same 2 Ray workers); ours ran 100 clients a round, measured in full",
        "ours": mine,
        "baseline_run": base,
        "fg_geo_rounds": fg_rounds,
        "fg_geo_local_epochs": args.fg_epochs,
        "fg_geo_gap": gaps,
        "fg_geo_batch_size": args.fg_batch_size,
        "by_user_on_fg_geo": "the fg_geo release has no user: synthetic_user is 2,000 "
        "SYNTHETIC photographers (partition --by synthetic-user), not real users",
        "quick": args.quick,
        "seconds": time.perf_counter() - t_all,
    }))  # fmt: skip


if __name__ == "__main__":
    main()

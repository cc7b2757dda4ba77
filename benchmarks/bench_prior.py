"""Benchmark of the geographical prior on the real fg_geo YFCC file (36,143 obs, 4,472 species).

Seeded 80/20 split (``--seed``, default 0). Prints epochs per second of our training loop and
of a plain PyTorch loop (SINR-style: sigmoid, log, index assignment, autograd) on the same
model and data, then location-only top-1/top-5/mAP of the prior trained with the defaults of
``geoaware prior train`` (``--recipe auto``: the recipe is chosen from the training data, as
the command does) and of every baseline (and of the frozen GeoCLIP encoder variant when
``geoclip`` is installed), then a batched evaluation of many locations x 5,000 classes in a
subprocess with its peak memory. The last line is one JSON object.

About 30 % of the test points have a training point of the same species within 1 km (often
the very coordinates: one photographer, one site, several photos), which nearest neighbours
turn into easy hits. Every method is therefore also scored on the test points without such a
twin (``twin_free``), beside the plain split. Then the *tries* for few observations per class
(each a function below, each reported with its twin-free top-5, kept or not): the fourier
encoding (since kept as the small-data default), a multiscale-encoding control, stronger
weight decay on the per-class embeddings, pseudo-negatives sampled near the observations
(by range), the prior ensembled with kernel density and with nearest neighbours, and
FS-SINR-style class embeddings computed feed-forward from each class's few points.

Precision: bfloat16 where the CPU computes it natively (AVX-512 BF16 or AMX), float32
otherwise (``--precision`` overrides). ``--quick`` (what ``make bench`` runs, through
``GEOAWARE_BENCH_QUICK=1``) trains 8 epochs, evaluates 200k locations at scale and skips
GeoCLIP: minutes on 2 cores.

Epoch times are wall-clock on a shared machine: the load averages before and after are in
the JSON line; ``ours_s_per_epoch`` is the median epoch of the run (the mean is given too).

Usage: python benchmarks/bench_prior.py [--quick] [--epochs 30] [--seed 0] [--no-tries]
       [--data ../shared/data] [--no-geoclip]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchkit import add_quick
from geoaware.priors.baselines import KernelDensity, NearestNeighbours, fit_baselines
from geoaware.priors.checkpoint import LocationPrior
from geoaware.priors.config import PriorConfig
from geoaware.priors.data import Observations, observations_from_table
from geoaware.priors.evaluate import location_ranks, rank_metrics, same_class_twins
from geoaware.priors.features import encode_inputs
from geoaware.priors.losses import FullLossHead
from geoaware.priors.model import PriorNet
from geoaware.priors.recipes import choose_recipe, recipe_config
from geoaware.priors.sampling import balanced_indices, uniform_sphere
from geoaware.priors.train import bf16_supported, fit_prior, set_threads
from geoaware.sources.fg_geo_yfcc import FgGeoYfcc

HERE = Path(__file__).resolve().parent


def load(data: Path, seed: int) -> tuple[Observations, Observations]:
    obs = observations_from_table(FgGeoYfcc(data).read(), "label_name")
    rng = np.random.default_rng(seed)
    test = rng.random(len(obs)) < 0.2
    return obs.subset(np.flatnonzero(~test)), obs.subset(np.flatnonzero(test))


def plain_epoch(obs: Observations, cfg: PriorConfig) -> float:
    """One epoch of the textbook loop: full loss through autograd, new tensors everywhere."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = PriorNet(cfg, len(obs.vocabulary))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    x_all = torch.from_numpy(encode_inputs(obs.lat, obs.lon, cfg))
    y_all = torch.from_numpy(obs.labels)
    t0 = time.perf_counter()
    idx = balanced_indices(obs.labels, cfg.max_per_class, rng)
    for s in range(0, idx.size, cfg.batch_size):
        i = torch.from_numpy(idx[s : s + cfg.batch_size])
        b = i.numel()
        lat, lon = uniform_sphere(b, rng)
        x = torch.cat([x_all[i], torch.from_numpy(encode_inputs(lat, lon, cfg))])
        p = torch.sigmoid(net(x))
        p_obs, p_bg = p[:b], p[b:]
        loss_pos = -torch.log(1 - p_obs + 1e-5)
        rows = torch.arange(b)
        loss_pos[rows, y_all[i]] = cfg.pos_weight * -torch.log(p_obs[rows, y_all[i]] + 1e-5)
        loss = loss_pos.mean() + (-torch.log(1 - p_bg + 1e-5)).mean()
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    return time.perf_counter() - t0


def score(name: str, scorer: object, test: Observations, twin: np.ndarray) -> dict[str, Any]:
    t0 = time.perf_counter()
    ranks = location_ranks(scorer, test.lat, test.lon, test.labels)  # type: ignore[arg-type]
    m = rank_metrics(ranks, (1, 5, 10))
    free = rank_metrics(ranks[~twin], (1, 5, 10))
    row = {
        "method": name,
        **m,
        "free_top1_acc": free["top1_acc"],
        "free_top5_acc": free["top5_acc"],
        "eval_s": round(time.perf_counter() - t0, 2),
    }
    print(
        f"  {name:<22} top1 {m['top1_acc']:.4f}  top5 {m['top5_acc']:.4f}  "
        f"top10 {m['top10_acc']:.4f}  mAP {m['map']:.4f}  | twin-free top1 "
        f"{free['top1_acc']:.4f}  top5 {free['top5_acc']:.4f}  ({row['eval_s']} s)",
        flush=True,
    )
    return row


def train(train_obs: Observations, cfg: PriorConfig) -> tuple[LocationPrior, dict[str, float]]:
    stamps = [time.perf_counter()]
    net, losses = fit_prior(
        train_obs, cfg, progress=lambda _e, _v: stamps.append(time.perf_counter())
    )
    epochs = np.diff(stamps)
    seconds = stamps[-1] - stamps[0]
    timing = {
        "mean": float(seconds / cfg.epochs),
        "median": float(np.median(epochs)),
        "min": float(epochs.min()),
        "first": float(epochs[0]),
    }
    print(
        f"  {cfg.encoding}/{cfg.precision}: {cfg.epochs} epochs in {seconds:.1f} s "
        f"(epoch: mean {timing['mean']:.2f} s, median {timing['median']:.2f} s, min "
        f"{timing['min']:.2f} s, first {timing['first']:.2f} s), final loss {losses[-1]:.4f}",
        flush=True,
    )
    return LocationPrior(cfg, train_obs.vocabulary, net), timing


# ---- tries for few observations per class (each reported with its twin-free top-5) ----


def fit_variant(
    obs: Observations, cfg: PriorConfig, *, head_decay: float = 0.0, near_share: float = 0.0,
    near_km: float = 300.0,
) -> PriorNet:  # fmt: skip
    """Our training loop (full loss, float32) with the two options of the training tries.

    ``head_decay``: an L2 penalty on the per-class embeddings (rows of the class head), the
    "stronger regularisation of per-class embeddings" for classes with a handful of points.
    ``near_share``: that share of each step's background points is drawn within about
    ``near_km`` of random training observations instead of uniformly on the sphere
    (pseudo-negatives sampled by range: they teach where a species is *not*, near where it is).
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = PriorNet(cfg, len(obs.vocabulary))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=True)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    head = FullLossHead(cfg.pos_weight)
    x_all = torch.from_numpy(encode_inputs(obs.lat, obs.lon, cfg))
    y_all = torch.from_numpy(obs.labels)
    net.train()
    for _ in range(cfg.epochs):
        idx = balanced_indices(obs.labels, cfg.max_per_class, rng)
        for s in range(0, idx.size, cfg.batch_size):
            i = idx[s : s + cfg.batch_size]
            b = i.size
            n_near = round(near_share * b)
            lat, lon = uniform_sphere(b - n_near, rng)
            if n_near:
                j = rng.integers(0, len(obs), n_near)
                sd = near_km / 111.2
                nlat = np.clip(obs.lat[j] + rng.normal(0, sd, n_near), -89.9, 89.9)
                coslat = np.maximum(np.cos(np.radians(nlat)), 0.05)
                nlon = obs.lon[j] + rng.normal(0, sd, n_near) / coslat
                nlon = (nlon + 180.0) % 360.0 - 180.0
                lat, lon = np.concatenate([lat, nlat]), np.concatenate([lon, nlon])
            x = torch.cat([x_all[i], torch.from_numpy(encode_inputs(lat, lon, cfg))])
            h = net.embed(x)
            loss = head(h, net.head.weight, net.head.bias, y_all[i])
            if head_decay:
                loss = loss + head_decay * net.head.weight.pow(2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        sched.step()
    return net.eval()


class Ensemble:
    """Weighted geometric mean of two scorers' normalised scores (prior x a kernel baseline)."""

    def __init__(self, a: Any, b: Any, weight: float = 0.5, eps: float = 1e-4) -> None:
        self.a, self.b, self.w, self.eps = a, b, weight, eps

    def predict_proba(self, lat: Any, lon: Any, date_fraction: Any = None) -> np.ndarray:
        p = self.a.predict_proba(lat, lon)
        q = self.b.predict_proba(lat, lon)
        p = p / p.sum(axis=1, keepdims=True)
        q = q / q.sum(axis=1, keepdims=True)
        out = self.w * np.log(p + self.eps) + (1 - self.w) * np.log(q + self.eps)
        return out.astype(np.float32)


class Prototypes:
    """FS-SINR-style class embeddings computed feed-forward from each class's few points.

    A class's embedding is the mean (unit-normalised) location embedding of its training
    points under the prior's trained trunk; a location scores each class by cosine
    similarity, with no class head. A class seen at one place needs no training step.
    """

    def __init__(self, prior: LocationPrior, obs: Observations) -> None:
        self.prior = prior
        h = self._embed(obs.lat, obs.lon)
        proto = np.zeros((prior.n_classes, h.shape[1]), dtype=np.float32)
        np.add.at(proto, obs.labels, h)
        self.proto = proto / np.maximum(np.linalg.norm(proto, axis=1, keepdims=True), 1e-8)

    def _embed(self, lat: Any, lon: Any) -> np.ndarray:
        x = torch.from_numpy(encode_inputs(lat, lon, self.prior.config))
        with torch.inference_mode():
            h = self.prior.net.embed(x).numpy()
        return h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-8)

    def predict_proba(self, lat: Any, lon: Any, date_fraction: Any = None) -> np.ndarray:
        return (self._embed(lat, lon) @ self.proto.T).astype(np.float32)


def run_tries(
    train_obs: Observations,
    test_obs: Observations,
    twin: np.ndarray,
    cfg: PriorConfig,
    prior: LocationPrior,
    default_row: dict[str, Any],
) -> list[dict[str, Any]]:
    """Run every try; return one row each (twin-free top-5 beside the default's)."""
    n_cls = len(train_obs.vocabulary)
    f32 = cfg.replace(precision="float32")
    trained: list[tuple[str, str, Any]] = [
        ("multiscale encoding (the earlier small-data input)", "no: stripes along the "
         "observations' parallel and meridian in range maps", None),
        ("weight decay 1e-3 on the per-class embeddings", "", {"head_decay": 1e-3}),
        ("half the background within ~300 km of observations", "", {"near_share": 0.5}),
    ]  # fmt: skip
    kd = KernelDensity(train_obs.lat, train_obs.lon, train_obs.labels, n_cls)
    nn = NearestNeighbours(train_obs.lat, train_obs.lon, train_obs.labels, n_cls)
    cheap: list[tuple[str, Any]] = [
        ("prior x kernel density (geometric mean)", Ensemble(prior, kd)),
        ("prior x nearest neighbours (geometric mean)", Ensemble(prior, nn)),
        ("FS-SINR-style class embeddings from the points", Prototypes(prior, train_obs)),
    ]
    rows = []
    for name, verdict, opts in trained:
        t0 = time.perf_counter()
        if opts is None:
            c = f32.replace(encoding="multiscale")
            net, _ = fit_prior(train_obs, c)
        else:
            c = f32
            net = fit_variant(train_obs, c, **opts)
        row = score(name, LocationPrior(c, train_obs.vocabulary, net), test_obs, twin)
        row["train_s"] = round(time.perf_counter() - t0, 1)
        row["verdict"] = verdict
        rows.append(row)
    for name, scorer in cheap:
        row = score(name, scorer, test_obs, twin)
        row["verdict"] = ""
        rows.append(row)
    for row in rows:
        gain = float(row["free_top5_acc"]) - float(default_row["free_top5_acc"])
        row["twin_free_top5_gain"] = round(gain, 4)
        if not row["verdict"]:
            row["verdict"] = (
                "better on twin-free top-5 in this run"
                if gain > 0.002
                else "not kept: no better than the default on twin-free top-5"
            )
    return rows


SCALE_CODE = """
import resource, sys, time, numpy as np, torch
from geoaware.priors.checkpoint import LocationPrior
from geoaware.priors.config import PriorConfig
from geoaware.priors.evaluate import location_ranks
from geoaware.priors.model import PriorNet
from geoaware.priors.sampling import uniform_sphere
torch.set_num_threads(int(sys.argv[3]))
n, c = int(sys.argv[1]), int(sys.argv[2])
cfg = PriorConfig(width=64, blocks=1)
torch.manual_seed(0)
prior = LocationPrior(cfg, [str(i) for i in range(c)], PriorNet(cfg, c))
lat, lon = uniform_sphere(n, np.random.default_rng(0))
labels = np.random.default_rng(1).integers(0, c, n)
t0 = time.perf_counter()
ranks = location_ranks(prior, lat, lon, labels, batch_size=4096)
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("GEOAWARE_MIRROR", HERE.parents[1] / "shared" / "data")),
    )
    add_quick(ap)  # 8 epochs, 200k scale points, no GeoCLIP
    ap.add_argument("--epochs", type=int, default=None, help="default 30 (8 with --quick)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split")
    ap.add_argument("--precision", default="auto", help="auto, float32 or bfloat16")
    ap.add_argument("--no-geoclip", action="store_true")
    ap.add_argument("--no-tries", action="store_true")
    ap.add_argument("--twin-km", type=float, default=1.0)
    ap.add_argument("--scale-points", type=int, default=None)
    args = ap.parse_args()
    epochs = args.epochs or (8 if args.quick else 30)
    scale_points = args.scale_points or (200_000 if args.quick else 1_000_000)
    bf16 = bf16_supported()
    precision = args.precision
    if precision == "auto":
        precision = "bfloat16" if bf16 else "float32"
    load_before = os.getloadavg()
    threads = set_threads(os.cpu_count())
    train_obs, test_obs = load(args.data, args.seed)
    n_cls = len(train_obs.vocabulary)
    print(
        f"fg_geo: {len(train_obs):,} train / {len(test_obs):,} test observations (split seed "
        f"{args.seed}), {n_cls:,} classes, {threads} threads, load average {load_before}, "
        f"bfloat16 {'native' if bf16 else 'not native'}: training in {precision}",
        flush=True,
    )
    twin = same_class_twins(
        train_obs.lat,
        train_obs.lon,
        train_obs.labels,
        test_obs.lat,
        test_obs.lon,
        test_obs.labels,
        radius_km=args.twin_km,
    )
    print(
        f"test points with a same-species training point within {args.twin_km:g} km: "
        f"{twin.mean():.1%} ({int(twin.sum()):,}); twin-free test points: {int((~twin).sum()):,}",
        flush=True,
    )
    # exactly what `geoaware prior train` does with no options (the recipe from the data)
    choice = choose_recipe(train_obs.labels)
    cfg = recipe_config(choice, {"epochs": epochs, "precision": precision})
    print(f"default recipe: {choice.name} ({choice.reason})", flush=True)
    print("plain PyTorch loop (1 epoch, float32):", flush=True)
    plain_s = plain_epoch(train_obs, cfg.replace(precision="float32"))
    print(f"  {plain_s:.2f} s/epoch", flush=True)
    print(f"training (full loss, {cfg.width} wide, {cfg.blocks} blocks):", flush=True)
    f32 = None
    if precision != "float32":
        _, f32 = train(train_obs, cfg.replace(epochs=3, precision="float32"))
    prior, timing = train(train_obs, cfg)
    epoch_s = timing["median"]
    f32_epoch = f32["median"] if f32 else epoch_s
    print("location-only evaluation on the 20 % test split:", flush=True)
    rows = [score(f"prior ({cfg.encoding}, default recipe)", prior, test_obs, twin)]
    for name, scorer in fit_baselines(
        train_obs.lat, train_obs.lon, train_obs.labels, n_cls
    ).items():
        rows.append(score(name, scorer, test_obs, twin))
    geoclip_row = None
    if not (args.no_geoclip or args.quick):
        try:
            import geoclip  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            print("geoclip not installed: GeoCLIP-encoder variant skipped", flush=True)
        else:
            gcfg = cfg.replace(encoding="geoclip", geoclip_pool=20_000)
            gprior, _ = train(train_obs, gcfg)
            geoclip_row = score("prior (geoclip frozen)", gprior, test_obs, twin)
            rows.append(geoclip_row)
    load_after_train = os.getloadavg()
    baselines = [r for r in rows if not str(r["method"]).startswith("prior")]
    best = max(baselines, key=lambda r: float(r["top5_acc"]))
    best_free = max(baselines, key=lambda r: float(r["free_top5_acc"]))
    beats = all(float(rows[0]["top5_acc"]) > float(r["top5_acc"]) for r in baselines)
    beats_free = all(float(rows[0]["free_top5_acc"]) > float(r["free_top5_acc"]) for r in baselines)
    print(
        f"default recipe: top-5 {rows[0]['top5_acc']:.1%} (best baseline {best['method']} "
        f"{best['top5_acc']:.1%}); twin-free top-5 {rows[0]['free_top5_acc']:.1%} (best "
        f"baseline {best_free['method']} {best_free['free_top5_acc']:.1%})",
        flush=True,
    )
    tries: list[dict[str, Any]] = []
    if not args.no_tries:
        print(f"tries for few observations per class ({epochs} epochs each):", flush=True)
        tries = run_tries(train_obs, test_obs, twin, cfg, prior, rows[0])
        for t in tries:
            print(
                f"  {t['method']}: twin-free top-5 {t['free_top5_acc']:.2%} "
                f"({t['twin_free_top5_gain']:+.2%} vs default): {t['verdict']}",
                flush=True,
            )
    print(f"scale: {scale_points:,} locations x 5,000 classes, batched (subprocess):", flush=True)
    proc = subprocess.run(
        [sys.executable, "-c", SCALE_CODE, str(scale_points), "5000", str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    scale_s, scale_gb = (float(v) for v in proc.stdout.split())
    print(f"  {scale_s:.1f} s, peak RSS {scale_gb:.2f} GB", flush=True)
    result = {
        "benchmark": "prior_train_epoch_fg_geo_full_loss",
        "baseline": "plain PyTorch loop (float32, autograd loss)",
        "baseline_s_per_epoch": round(plain_s, 3),
        "ours_s_per_epoch": round(epoch_s, 3),
        "ours_mean_s_per_epoch": round(timing["mean"], 3),
        "ours_min_s_per_epoch": round(timing["min"], 3),
        "ours_precision": precision,
        "cpu_bf16_native": bf16,
        "ours_float32_s_per_epoch": round(f32_epoch, 3),
        "ratio": round(plain_s / epoch_s, 2),
        "ratio_float32": round(plain_s / f32_epoch, 2),
        "epochs_per_second": round(1 / epoch_s, 4),
        "target_epoch_s": 3.0,
        "target_met": epoch_s <= 3.0,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after_training": [round(v, 2) for v in load_after_train],
        "quick": args.quick,
        "epochs": epochs,
        "split_seed": args.seed,
        "recipe": {
            "name": choice.name,
            "reason": choice.reason,
            **{
                k: cfg.to_dict()[k]
                for k in (
                    "encoding",
                    "levels",
                    "batch_size",
                    "lr",
                    "lr_decay",
                    "dropout",
                    "width",
                    "blocks",
                    "pos_weight",
                    "loss",
                )
            },
        },
        "threads": threads,
        "train": len(train_obs),
        "test": len(test_obs),
        "classes": n_cls,
        "twin_km": args.twin_km,
        "twin_fraction": round(float(twin.mean()), 4),
        "twin_free_test": int((~twin).sum()),
        "prior_top1": rows[0]["top1_acc"],
        "prior_top5": rows[0]["top5_acc"],
        "prior_map": rows[0]["map"],
        "prior_twin_free_top5": rows[0]["free_top5_acc"],
        "baselines": {
            r["method"]: {
                "top1": r["top1_acc"],
                "top5": r["top5_acc"],
                "twin_free_top5": r["free_top5_acc"],
            }
            for r in baselines
        },
        "best_baseline_top5": {"method": best["method"], "top5": best["top5_acc"]},
        "prior_beats_every_baseline_top5": beats,
        "prior_beats_every_baseline_twin_free_top5": beats_free,
        "tries": [
            {
                "try": t["method"],
                "top5": t["top5_acc"],
                "twin_free_top5": t["free_top5_acc"],
                "twin_free_top5_gain": t["twin_free_top5_gain"],
                "verdict": t["verdict"],
            }
            for t in tries
        ],
        "geoclip": None
        if geoclip_row is None
        else {
            "top1": geoclip_row["top1_acc"],
            "top5": geoclip_row["top5_acc"],
            "twin_free_top5": geoclip_row["free_top5_acc"],
            "beats_prior_top5": float(geoclip_row["top5_acc"]) > float(rows[0]["top5_acc"]),
        },
        "scale_points": scale_points,
        "scale_classes": 5000,
        "scale_eval_s": round(scale_s, 1),
        "scale_peak_rss_gb": round(scale_gb, 2),
        "scale_within_4gb": scale_gb < 4.0,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

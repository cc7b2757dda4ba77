"""What the benchmarks share: the ``--quick`` size that ``make bench`` runs.

``make bench`` sets ``GEOAWARE_BENCH_QUICK=1`` so that every benchmark runs at a size that
finishes in minutes on 2 cores; each script names its full and quick sizes in one call::

    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=None)
    add_quick(ap)
    args = ap.parse_args()
    sized(args, pairs=(10_000_000, 2_000_000))  # full, quick

An option given on the command line always wins over both sizes.
"""

from __future__ import annotations

import argparse
import os


def quick_from_env() -> bool:
    """True when ``GEOAWARE_BENCH_QUICK`` is set to anything but ``""`` or ``"0"``."""
    return os.environ.get("GEOAWARE_BENCH_QUICK", "") not in ("", "0")


def add_quick(ap: argparse.ArgumentParser) -> None:
    """Add ``--quick`` / ``--full``; the default comes from ``GEOAWARE_BENCH_QUICK``."""
    ap.add_argument(
        "--quick",
        action="store_true",
        default=quick_from_env(),
        help="the smaller sizes `make bench` runs (default when GEOAWARE_BENCH_QUICK=1)",
    )
    ap.add_argument("--full", dest="quick", action="store_false", help="the full sizes")


def sized(args: argparse.Namespace, **sizes: tuple[object, object]) -> None:
    """Fill each option left at None with its full or quick size (``name=(full, quick)``)."""
    for name, (full, quick) in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)

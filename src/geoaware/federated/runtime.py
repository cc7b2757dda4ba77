"""The Ray and Flower runtime of geoaware's federated simulations: start, log, stop.

Three things go wrong when Flower's ``run_simulation`` is called as it is documented, and
this module is where each is handled:

* **A deadlock at start.** Flower runs the ``ServerApp`` in a thread while the main thread
  starts Ray, which forks its processes. If the server thread is inside a BLAS call (it
  evaluates the initial model at once) when the main thread forks, OpenBLAS's fork handler
  waits for its own worker threads forever and the process ignores every signal but
  ``SIGKILL``. :func:`ray_session` starts Ray *before* Flower starts any thread, so nothing
  runs BLAS while Ray forks; Flower then finds Ray running and does not start it again. Ray's
  workers get one BLAS/OpenMP thread each (through the runtime environment's ``env_vars``):
  a simulation runs one client per CPU, so more threads would only fight for the same cores.
* **No clean stop.** ``SIGINT`` raises :class:`KeyboardInterrupt` and ``SIGTERM`` raises
  :class:`SystemExit` (143) in the main thread while the session is open; the server thread,
  which would otherwise wait up to an hour for replies that never come, stops at its next
  poll (:func:`stoppable_grid`), and Ray is shut down on the way out. Ray's shutdown can leave
  its agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) running after an interrupt
  (and Flower shuts Ray down itself first, after which they are no longer our children), so
  the processes Ray starts are recorded while the session runs and ended if they outlive it.
  Flower's backend threads may still call an actor after Ray is shut down, and Ray would then
  start a new local cluster on its own (its "auto connect"), which nobody shuts down: the
  session turns that off for the process.
* **Noise.** Flower's log (with its deprecation warnings) and Python warnings raised during
  the run go to a log file instead of the console; Ray's start banner and worker output stay
  out of the console too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from geoaware.errors import DependencyNotFoundError

__all__ = [
    "THREAD_ENV",
    "SimulationStoppedError",
    "descendants",
    "end_processes",
    "flower_log_to",
    "ray_session",
    "server_stopped",
    "stop_on_signals",
    "stoppable_grid",
]

#: Environment variables that size the BLAS/OpenMP thread pools of Ray's worker processes.
THREAD_ENV: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class SimulationStoppedError(Exception):
    """Raised in Flower's server thread when the run is being stopped."""


def _require_flower() -> None:
    try:
        import flwr.simulation  # noqa: F401
        import ray  # noqa: F401
    except ImportError as exc:
        raise DependencyNotFoundError(
            "geoaware fl simulate needs Flower's simulation engine: pip install 'flwr[simulation]'"
        ) from exc


def object_store_mb(message_bytes: int, num_cpus: int) -> int:
    """Return a Ray object store size (MB) for messages of ``message_bytes`` on ``num_cpus``.

    Four messages per CPU (the weights in and out of each running client, and the replies
    waiting for the average), plus 64 MB, and never under 100 MB.

    Examples
    --------
    >>> object_store_mb(36 * 2**20, 2), object_store_mb(1000, 2)
    (352, 100)
    """
    return max(100, 4 * num_cpus * -(-message_bytes // 2**20) + 64)


@contextlib.contextmanager
def ray_session(num_cpus: int, *, object_store_mb: int = 100) -> Iterator[None]:
    """Start a local Ray for one simulation; shut it down on the way out, whatever happens.

    Call it from the main thread before Flower starts any thread (see the module notes).
    Worker processes get one BLAS/OpenMP thread each and this interpreter's ``sys.path``.
    ``object_store_mb`` sizes Ray's shared-memory store, which carries the weights to and from
    each client; :func:`object_store_mb` gives a size that holds a round's messages in flight
    (a store too small for them spills to disk: at iNat2021's shape with Adam's moments, 36 MB
    a message, 124 s a round in a 100 MB store).

    Examples
    --------
    >>> with ray_session(2):  # doctest: +SKIP
    ...     run_simulation(...)
    """
    _require_flower()
    import ray
    from ray._private import auto_init_hook

    # a Flower thread calling an actor after the shutdown must fail, not start a new Ray
    os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
    auto_init_hook.enable_auto_connect = False
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # no GPU is used
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    paths = [p for p in sys.path if p]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    env = dict.fromkeys(THREAD_ENV, "1")
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if ray.is_initialized():  # pragma: no cover - a caller's own Ray would be shut down below
        ray.shutdown()
    main = threading.current_thread() is threading.main_thread()
    term = signal.getsignal(signal.SIGTERM) if main else None
    # Flower's backend shuts Ray down itself on the way out; the agents that outlive raylet
    # are then no longer our descendants, so the processes are recorded while the run goes.
    seen: dict[int, str] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            seen.update(descendants())

    watcher = threading.Thread(target=watch, name="geoaware-ray-watch", daemon=True)
    try:
        ray.init(
            num_cpus=num_cpus,
            num_gpus=0,
            include_dashboard=False,
            object_store_memory=object_store_mb * 1024 * 1024,
            log_to_driver=False,
            logging_level=logging.WARNING,
            runtime_env={"env_vars": env},
        )
        if main:  # ray.init sets its own SIGTERM handler (sys.exit) and never puts ours back
            signal.signal(signal.SIGTERM, term)
        watcher.start()
        yield
    finally:
        done.set()
        if watcher.is_alive():
            watcher.join()
        seen.update(descendants())
        if ray.is_initialized():
            ray.shutdown()
        end_processes(seen)


def _proc_table() -> dict[int, tuple[int, str]]:
    """Map ``pid -> (parent pid, start time)`` of live processes (Linux ``/proc``; no zombies)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def descendants(pid: int | None = None) -> dict[int, str]:
    """Return ``{pid: start time}`` of the processes started (transitively) by ``pid``.

    Empty where ``/proc`` is absent. The start time tells a process from a later one that
    reuses its pid.

    Examples
    --------
    >>> import subprocess
    >>> child = subprocess.Popen(["sleep", "5"])
    >>> child.pid in descendants()
    True
    >>> child.kill(); child.wait()
    -9
    """
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for p, (parent, _) in table.items():
        children.setdefault(parent, []).append(p)
    found: dict[int, str] = {}
    todo = [os.getpid() if pid is None else pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = table[child][1]
                todo.append(child)
    return found


def end_processes(procs: dict[int, str], grace_s: float = 5.0) -> list[int]:
    """Wait up to ``grace_s`` for these processes to end; ``SIGTERM``, then ``SIGKILL`` them.

    Only a process whose pid still has the recorded start time is signalled. Returns the
    pids that had to be signalled.

    Examples
    --------
    >>> import subprocess
    >>> child = subprocess.Popen(["sleep", "30"])
    >>> end_processes({child.pid: descendants()[child.pid]}, grace_s=0.1) == [child.pid]
    True
    >>> child.wait()
    -15
    """

    def alive() -> list[int]:
        table = _proc_table()
        return [p for p, start in procs.items() if p in table and table[p][1] == start]

    deadline = time.monotonic() + grace_s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    signalled = alive()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        deadline = time.monotonic() + 2.0
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
    return signalled


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Turn ``SIGTERM`` into :class:`SystemExit`; on any exit, set ``stop`` for the threads.

    ``SIGINT`` keeps Python's :class:`KeyboardInterrupt`. Outside the main thread (where
    signal handlers cannot be set) only ``stop`` is handled.

    Examples
    --------
    >>> stop = threading.Event()
    >>> with stop_on_signals(stop):
    ...     pass
    >>> stop.is_set()
    True
    """
    main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _raise_system_exit) if main else None
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler) if main else None
    try:
        yield
    finally:
        stop.set()
        if main:
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, old_int)


@contextlib.contextmanager
def server_stopped(
    stop: threading.Event, done: threading.Event, timeout_s: float = 15.0
) -> Iterator[None]:
    """On the way out, set ``stop`` and wait (up to ``timeout_s``) for ``done``.

    The server thread sets ``done`` when it ends; waiting for it before Ray is shut down
    and the log handlers are put back keeps its last lines in the log file.

    Examples
    --------
    >>> stop, done = threading.Event(), threading.Event()
    >>> done.set()
    >>> with server_stopped(stop, done):
    ...     pass
    >>> stop.is_set()
    True
    """
    try:
        yield
    finally:
        stop.set()
        done.wait(timeout_s)


@contextlib.contextmanager
def flower_log_to(path: Path) -> Iterator[Path]:
    """Send Flower's and Ray's log records and Python warnings to ``path`` (appended).

    The loggers' console handlers are taken off for the duration and put back afterwards.

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "flower.log"
    >>> with flower_log_to(f):
    ...     logging.getLogger("flwr").warning("DEPRECATED FEATURE")
    >>> "DEPRECATED FEATURE" in f.read_text()
    True
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    saved: list[tuple[logging.Logger, list[logging.Handler], bool, int]] = []
    for name in ("flwr", "ray", "py.warnings"):
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate, logger.level))
        for h in list(logger.handlers):
            logger.removeHandler(h)
        logger.addHandler(handler)
        logger.propagate = False
        if name == "flwr":
            logger.setLevel(logging.DEBUG if os.environ.get("GEOAWARE_FL_DEBUG") else logging.INFO)
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            yield path
    finally:
        logging.captureWarnings(False)
        for logger, handlers, propagate, level in saved:
            logger.removeHandler(handler)
            for h in handlers:
                logger.addHandler(h)
            logger.propagate = propagate
            logger.setLevel(level)
        handler.close()


def _grid_base() -> type:
    from flwr.serverapp import Grid

    return Grid  # type: ignore[no-any-return]


def stoppable_grid(grid: Any, stop: threading.Event, poll_s: float = 0.1) -> Any:
    """Wrap a Flower grid so that waiting for replies ends with the ``stop`` event.

    Flower's in-memory grid waits for the clients' replies up to the strategy's timeout (an
    hour); the wrapper polls instead and raises :class:`SimulationStoppedError` once ``stop`` is
    set, which ends the server thread.

    Examples
    --------
    >>> g = stoppable_grid(grid, threading.Event())  # doctest: +SKIP
    """
    base = _grid_base()

    class _Grid(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self._grid = grid

        def set_run(self, run: Any) -> None:
            self._grid.set_run(run)

        @property
        def run(self) -> Any:
            return self._grid.run

        def create_message(self, *args: Any, **kwargs: Any) -> Any:
            return self._grid.create_message(*args, **kwargs)

        def get_node_ids(self) -> Iterable[int]:
            if stop.is_set():
                raise SimulationStoppedError("the simulation is being stopped")
            return self._grid.get_node_ids()  # type: ignore[no-any-return]

        def push_messages(self, messages: Iterable[Any]) -> Iterable[str]:
            return self._grid.push_messages(messages)  # type: ignore[no-any-return]

        def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Any]:
            return self._grid.pull_messages(message_ids)  # type: ignore[no-any-return]

        def send_and_receive(
            self, messages: Iterable[Any], *, timeout: float | None = None
        ) -> Iterable[Any]:
            pending = set(self.push_messages(messages))
            end = None if timeout is None else time.monotonic() + timeout
            replies: list[Any] = []
            while pending and (end is None or time.monotonic() < end):
                if stop.is_set():
                    raise SimulationStoppedError("the simulation is being stopped")
                got = list(self.pull_messages(pending))
                replies.extend(got)
                pending.difference_update(m.metadata.reply_to_message_id for m in got)
                if pending:
                    stop.wait(poll_s)
            return replies

    return _Grid()

"""``python -m wnrl.grid ... --ray``: the grid's cells as Ray tasks, on a cluster or on a local Ray.

Each cell is one task that runs the cell's train command as a subprocess on the node Ray picks,
exactly as the local grid runs it (:func:`wnrl.grid.launch`), its console output appended to
``<logdir>/<name>.log``. The grid's directory must be one path that every node and the driver see
(a shared filesystem): the driver plans the cells and counts their checkpoints there, the nodes write
the runs there. A task asks for ``--cpus-per-run`` CPUs, and one GPU when the cluster has GPUs; a cell
of ``--nproc-per-run N`` processes (torchrun) asks for N times the CPUs and N GPUs, which Ray finds on
one node (a task runs on one node). A
task whose worker or node dies is retried by Ray (up to ``RETRIES`` times); the retry plans its cell
again from the directory (:attr:`wnrl.grid.Cell.replan`), so it resumes from the newest checkpoint,
and the run, which dies with its task's worker, leaves no second writer behind (under torchrun its ranks
die with torchrun: :func:`wnrl.distributed.from_env`). A run's own failure
(a nonzero exit) is not retried: it is reported, as in the local grid.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

import ray
from ray.exceptions import RayError, TaskCancelledError

from wnrl.config import CliError
from wnrl.distributed import die_with_parent
from wnrl.grid import Cell, Outcome, Overall, _progress, launch, outcome

# Ray's retries of a task whose worker or node died (Ray's default for tasks)
RETRIES = 3
# ray.init blocks for minutes on an address where nothing answers: a plain TCP connect first
CONNECT_TIMEOUT = 10.0
# Ray's default GCS port, for an address given without one
RAY_PORT = 6379
# the checkout wnrl is imported from (None when installed)
_WNRL_ROOT = str(Path(__file__).resolve().parents[1])
if Path(_WNRL_ROOT).name in ("site-packages", "dist-packages"):
    _WNRL_ROOT = None


@ray.remote(num_cpus=0)
class _Events:
    """What the tasks tell the driver, in order: a line to print, or a cell (as the task planned it)
    started on a node."""

    def __init__(self):
        self.lines: list[tuple[str, Cell | None]] = []

    def put(self, text: str, cell: Cell | None = None) -> None:
        self.lines.append((text, cell))

    def take(self) -> list[tuple[str, Cell | None]]:
        lines, self.lines = self.lines, []
        return lines


@ray.remote
def _run_cell(cell: Cell, logdir: Path, threads: int, events) -> Outcome:
    """One cell on the node Ray chose: plans it again from its directory (a retry resumes), runs it, and
    returns how it ended. Cancelled (the driver's Ctrl-C), it stops its run with SIGTERM: a checkpoint."""
    node = ray.util.get_node_ip_address()
    if not logdir.is_dir():
        return Outcome(2, f"--logdir {logdir} is not on node {node}: use a directory every node shares", None, None)
    cell = cell.replan() if cell.replan is not None else cell
    if cell.cmd is None:  # a retry of a run that had reached its length
        return outcome(cell, 0, logdir, 0)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    # the run imports the wnrl this task imported (a checkout on the shared filesystem, or an install)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_WNRL_ROOT, env.get("PYTHONPATH")]))
    proc, offset = launch(cell, logdir, env, lambda text: ray.get(events.put.remote(text)),
                          preexec_fn=die_with_parent)  # fmt: skip
    ray.get(events.put.remote(node, cell))
    stopping = False
    while proc.poll() is None:
        try:
            time.sleep(0.5)
        except (KeyboardInterrupt, TaskCancelledError):
            if not stopping:
                proc.terminate()  # train's SIGTERM: a checkpoint, then exit
                stopping = True
    return outcome(cell, proc.returncode, logdir, offset)


def _check_reachable(address: str) -> None:
    """A one-line CliError if nothing listens at ``address`` (host:port, ray://host:port); "auto" and
    "local" are Ray's own words."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", str(RAY_PORT))
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as e:
        why = e.strerror or str(e) if isinstance(e, OSError) else f"bad port {port!r}"
        raise CliError(
            f"--ray-address {address}: no Ray cluster answers there ({why}); start one with `ray start --head` "
            "or give its head's host:port"
        ) from None


def connect(address: str | None) -> tuple[bool, str]:
    """Ray for the grid: the one this process already started, else the cluster at ``address``, else a
    local Ray started now. Returns whether this call started or joined it (the grid then shuts it
    down) and what it is, in words."""
    started = False
    if address:
        _check_reachable(address)
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CliError(f"Ray at {address or 'a new local instance'}: {first}") from None
        started = True
    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    where = f"the Ray cluster at {address}" if address else "a local Ray"
    return started, f"{where} ({nodes} node(s), {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs)"


def node_gpus() -> list[float]:
    """The GPUs of each live node of the cluster."""
    return [n.get("Resources", {}).get("GPU", 0) for n in ray.nodes() if n.get("Alive")]


def task_resources(nproc: int, cpus_per_run: float, gpus_of_nodes: list[float]) -> dict[str, float]:
    """What each cell's task asks Ray for: ``cpus_per_run`` CPUs per process of its run and, on a cluster
    with GPUs, a GPU per process, all on one node (a task runs on one node); a CliError when no node has
    as many GPUs as a run has processes (its task would wait for ever)."""
    most = max(gpus_of_nodes, default=0)
    if 0 < most < nproc:
        raise CliError(f"--nproc-per-run {nproc}: no node of the Ray cluster has {nproc} GPUs (at most {most:g})")
    return {"num_cpus": nproc * cpus_per_run, "num_gpus": nproc if most else 0}


def per_run(asks: dict[str, float]) -> str:
    """What each cell's task asks for (:func:`task_resources`), in words."""
    return f"{asks['num_cpus']:g} CPU(s)" + (f" and {asks['num_gpus']:g} GPU(s)" if asks["num_gpus"] else "")


def run_grid_on_ray(cells: list[Cell], logdir: Path, cpus_per_run: float, asks: dict[str, float]) -> dict[str, int]:
    """The cells that have a command, each a Ray task asking for ``asks`` (:func:`task_resources`), its
    run's processes ``cpus_per_run`` threads each; returns each one's exit code, as
    :func:`wnrl.grid.run_grid`. A task whose retries ran out (its node died each time) counts as failed
    with Ray's reason."""
    threads = max(1, int(cpus_per_run))
    logdir.mkdir(parents=True, exist_ok=True)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    events = _Events.options(scheduling_strategy=here).remote()
    task = _run_cell.options(**asks, max_retries=RETRIES, retry_exceptions=False)
    refs = {task.remote(cell, logdir, threads, events): cell for cell in cells if cell.cmd is not None}
    starts: dict[str, int] = {}
    codes: dict[str, int] = {}
    overall = Overall(cells)

    def show_events() -> None:
        for text, cell in ray.get(events.take.remote()):
            if cell is None:
                overall.say(text)
                continue
            retry = starts[cell.name] = starts.get(cell.name, -1) + 1
            overall.started(cell, text + (f" (Ray's retry {retry}: its last worker or node died)" if retry else ""))

    cancelled = False
    try:
        while refs:
            try:
                ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0.5)
            except KeyboardInterrupt:
                if cancelled:
                    raise
                overall.say("stopping: each run writes a checkpoint and stops (Ctrl-C again to leave at once)")
                for ref in refs:
                    ray.cancel(ref)
                cancelled = True
                continue
            show_events()
            for ref in ready:
                cell = refs.pop(ref)
                try:
                    out = ray.get(ref)
                except TaskCancelledError:  # Ctrl-C: stopped, as a run stopped by a signal
                    out = Outcome(0, "", *_progress(cell))
                except RayError as e:  # its retries ran out, or Ray failed it
                    first = (str(e).strip().splitlines() or [""])[0]
                    out = Outcome(1, f"Ray: {type(e).__name__}: {first}"[:300], *_progress(cell))
                codes[cell.name] = out.code
                overall.ended(cell, out)
            overall.tick()
    finally:
        overall.close()
        ray.kill(events)
    return codes

"""Run independent fold tasks serially, in local processes, or on a Ray cluster.

Results always come back in task order, so a parallel run is identical to a serial one. A progress
bar shows finished folds on a terminal (silent otherwise). Ctrl-C cancels the folds not yet
started, stops the worker processes and re-raises ``KeyboardInterrupt``.

Worker processes are forked when that is safe, which is fast and needs nothing re-imported. It
is not safe once numba's parallel kernels have started their threading layer in this process
(forking a process that runs GNU OpenMP kills the child); ``local`` then runs the tasks in this
process (see :func:`local_plan`: those kernels already use every core, and spawned workers
would each re-import fw and numba first). Outside Linux workers are *spawned*: they import what
they unpickle by module name, the main script must be guarded by
``if __name__ == "__main__":``, and ``initializer`` lets the caller load modules that are not
importable by name (a strategy from a user's file) before any task arrives.

``ray`` (the ``dist`` extra) joins the cluster at ``address``, or starts a local instance of
``workers`` CPUs that lives for the one call. Tasks travel pickled and each Ray task runs
``initializer`` before unpickling its task, so a user's strategy file loads on the worker first;
every node must therefore see that file (and fw) at the same path. A failing task raises its own
exception, as with ``local``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from framework.errors import FwError, ParameterError, unknown_name_message

EXECUTORS: tuple[str, ...] = ("local", "serial", "ray")
Task = TypeVar("Task")

_RAY_USAGE_STATS = "RAY_USAGE_STATS_ENABLED"
_CONNECT_TIMEOUT_S = 5.0  # TCP probe of a cluster address before handing it to Ray
_WAIT_S = 0.5  # longest wait for a Ray result before checking for Ctrl-C again
_CANCEL_ROUNDS = 5  # cancel again what a lost cancel left running (see _cancel)


def default_workers() -> int:
    """Worker processes for ``local``: the CPUs this process may use, at most 2 by default."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


def run_tasks(
    function: Callable[[Task], Any],
    tasks: Sequence[Task],
    executor: str = "local",
    workers: int | None = None,
    description: str = "walk-forward folds",
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    address: str | None = None,
) -> list[Any]:
    """Apply ``function`` to every task and return the results in task order.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled for worker processes).
    tasks : sequence
        Picklable task objects.
    executor : {"local", "serial", "ray"}
        ``local``: a process pool of ``workers``; ``serial``: in this process (debugging);
        ``ray``: a Ray cluster (needs the ``dist`` extra).
    workers : int, optional
        Process count for ``local``, and CPUs of a local Ray instance (default
        :func:`default_workers`).
    description : str
        Progress bar label.
    initializer, initargs : optional
        Run ``initializer(*initargs)`` once in each worker process before its first task (on
        Ray: before every task, since Ray workers are shared and long-lived).
    address : str, optional
        ``ray`` only: the cluster to join (``HOST:PORT`` of the head node, ``ray://HOST:PORT``
        or ``auto``); by default a local Ray instance is started for this call and stopped
        after it. A Ray connection this process already has is used as is and left open.

    Raises
    ------
    FwError
        ``ray`` is not installed, or the cluster at ``address`` cannot be reached.
    """
    if executor not in EXECUTORS:
        raise ParameterError(unknown_name_message("executor", str(executor), EXECUTORS))
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ParameterError(
            f"address must be a Ray cluster address such as '10.0.0.5:6379'; got {address!r}."
        )
    if address is not None and executor != "ray":
        raise ParameterError(
            f"address {address!r} is only used by executor='ray'; got executor={executor!r}. "
            "Pass --executor ray, or drop --address."
        )
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a positive integer; got {workers!r}.")
    if executor == "ray":
        return _run_ray(function, tasks, workers, description, initializer, initargs, address)
    if executor == "serial" or workers == 1 or len(tasks) <= 1 or local_plan() == "in-process":
        with _Progress(description, len(tasks)) as advance:
            results = []
            for task in tasks:
                results.append(function(task))
                advance()
        return results
    return _run_pool(function, tasks, workers, description, initializer, initargs)


def start_method() -> str:
    """``"fork"`` while no numba threading layer runs in this process (on Linux), else ``"spawn"``."""
    if not sys.platform.startswith("linux") or numba_threads_running():
        return "spawn"
    return "fork"


def numba_threads_running() -> bool:
    """Whether a numba parallel kernel has started its threading layer in this process."""
    import numba

    try:
        numba.threading_layer()
    except ValueError:  # numba raises this until a parallel kernel has started its threads
        return False
    return True


def local_plan() -> str:
    """How ``local`` runs tasks from this process now: ``"fork"``, ``"spawn"`` or ``"in-process"``.

    ``"in-process"`` once numba's parallel kernels have started their threads here: those
    kernels (the grid simulation, PBO) already spread each task over the cores, and forking is
    then unsafe, so workers could only be spawned, each re-importing fw and numba before its
    first task. Measured on the W4 benchmark (17 folds, 2 busy cores): 11.0 s with 2 spawned
    workers against 4.5 s in this process and 4.6 s with 2 forked workers.
    """
    if numba_threads_running():
        return "in-process"
    return start_method()


def _run_pool(
    function: Callable,
    tasks: Sequence,
    workers: int,
    description: str,
    initializer: Callable[..., None] | None,
    initargs: tuple,
) -> list:
    method = local_plan()
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=multiprocessing.get_context(method),
        # forked workers already hold every module of this process
        initializer=initializer if method == "spawn" else None,
        initargs=initargs if method == "spawn" else (),
    )
    futures: dict[Future, int] = {}
    try:
        # submit (and so start the workers) before the progress bar starts its refresh thread
        futures = {pool.submit(function, task): i for i, task in enumerate(tasks)}
        results: list[Any] = [None] * len(tasks)
        pending = set(futures)
        with _Progress(description, len(tasks)) as advance:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=futures.__getitem__):
                    results[futures[future]] = future.result()  # re-raises a worker's exception
                    advance()
    except BaseException:
        # Ctrl-C or a failed fold: drop queued folds instead of finishing them, then re-raise.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _run_ray(
    function: Callable,
    tasks: Sequence,
    workers: int,
    description: str,
    initializer: Callable[..., None] | None,
    initargs: tuple,
    address: str | None,
) -> list:
    ray = _import_ray()
    if not tasks:
        return []
    payloads = _pickle_tasks(tasks)
    opened = _connect(ray, address, workers)
    try:
        remote = ray.remote(num_cpus=1)(_call_in_worker)
        refs = [remote.remote(function, initializer, initargs, payload) for payload in payloads]
        return _gather(ray, refs, description)
    finally:
        if opened:
            # stops a local instance we started; only disconnects from a cluster we joined
            ray.shutdown()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise FwError(
            "--executor ray needs the ray package, which is not installed. Install the dist "
            "extra (pip install 'fw[dist]') or use --executor local."
        ) from exc
    return ray


def _pickle_tasks(tasks: Sequence) -> list[bytes]:
    """Pickle on the driver so a worker can load the task's modules before unpickling it."""
    payloads = []
    for i, task in enumerate(tasks):
        try:
            payloads.append(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise ParameterError(
                f"task {i} cannot be sent to Ray workers ({exc}); define the strategy and "
                "objective at module level (not a lambda or local function), or use "
                "executor='serial'."
            ) from exc
    return payloads


def _connect(ray: Any, address: str | None, workers: int) -> bool:
    """Connect this process to Ray; return whether we did (and so must call ``ray.shutdown``)."""
    if ray.is_initialized():
        return False  # the caller's own connection (a notebook, a test): use it, leave it open
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "ignore_reinit_error": True}
    if address is None or address == "local":
        # "local" always starts a fresh instance (None would join any cluster found on this
        # machine). A local instance would report usage statistics to the internet unless told
        # not to; its processes read the setting when they start.
        try:
            with _environment_default(_RAY_USAGE_STATS, "0"):
                ray.init(address="local", num_cpus=workers, include_dashboard=False, **quiet)
        except BaseException as exc:
            ray.shutdown()  # stop whatever part of the instance did start (Ctrl-C included)
            if isinstance(exc, Exception):
                raise FwError(
                    f"could not start a local Ray instance with {workers} CPUs: {exc}. Check "
                    "that Ray's temp folder (/tmp/ray unless RAY_TMPDIR says otherwise) is "
                    "writable, or use --executor local."
                ) from exc
            raise
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise FwError(
            f"cannot connect to the Ray cluster at {address!r}: {exc}. Check the address the "
            "head node printed (`ray start --head`), or drop --address to run a local instance."
        ) from exc
    return True


def _check_reachable(address: str) -> None:
    """Fail fast: Ray itself retries an unreachable address for minutes."""
    if address == "auto":  # Ray finds the cluster started on this machine, or says it found none
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ParameterError(
            f"Ray address {address!r} is not HOST:PORT; expected the head node's address as "
            "printed by `ray start --head` (e.g. 10.0.0.5:6379), ray://HOST:10001 for Ray "
            "Client, auto for the cluster started on this machine, or no --address at all for "
            "a local instance."
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), _CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise FwError(
            f"cannot reach a Ray cluster at {address!r} ({exc}). Start one with "
            "`ray start --head` and pass the address it prints, check the host, port and "
            "firewall, or drop --address to run a local Ray instance."
        ) from exc


@contextlib.contextmanager
def _environment_default(name: str, value: str) -> Iterator[None]:
    """Set environment variable ``name`` to ``value`` for the block unless the user set it."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _call_in_worker(
    function: Callable,
    initializer: Callable[..., None] | None,
    initargs: tuple,
    payload: bytes,
) -> bytes:
    """Ray task body: load the task's modules, unpickle it, run it, pickle the result.

    The initializer runs before every task because Ray workers are long-lived and shared. The
    result goes back pickled so the driver owns its arrays (Ray would otherwise hand back
    read-only views into its object store, which a local instance unmaps on shutdown).
    """
    host = socket.gethostname()
    if initializer is not None:
        try:
            initializer(*initargs)
        except Exception as exc:
            raise FwError(
                f"a Ray worker on {host} could not prepare the task: "
                f"{initializer.__name__}{initargs!r} failed ({exc}). Every Ray node needs the "
                "files and packages the task uses at the same paths: put a strategy file on a "
                "path all nodes share or install it as a package, or use --executor local."
            ) from exc
    try:
        task = pickle.loads(payload)
    except ImportError as exc:
        raise FwError(
            f"a Ray worker on {host} cannot import {exc.name!r}, which the task needs ({exc}). "
            "Install fw and the strategy's module on every node of the Ray cluster, or use "
            "--executor local."
        ) from exc
    return pickle.dumps(function(task), protocol=pickle.HIGHEST_PROTOCOL)


def _gather(ray: Any, refs: list, description: str) -> list:
    """Results of ``refs`` in task order; on any exception (Ctrl-C too) cancel what is left."""
    position = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    pending = list(refs)
    try:
        with _Progress(description, len(refs)) as advance:
            while pending:
                # a timeout returns control to Python regularly, so Ctrl-C is seen promptly
                done, pending = ray.wait(pending, num_returns=1, timeout=_WAIT_S)
                for ref in sorted(done, key=position.__getitem__):
                    results[position[ref]] = _result(ray, ref, position[ref])
                    advance()
    except BaseException as exc:
        _cancel(ray, pending, exc)
        raise
    return results


def _cancel(ray: Any, refs: list, exc: BaseException) -> None:
    """Cancel ``refs`` (force: a running task's worker is killed) while ``exc`` propagates.

    A cancel that reaches a task while it is being handed to a worker can be lost (seen with
    Ray 2.60), so cancel again whatever is not finished shortly after. Problems are added to
    ``exc`` as notes rather than raised, so the original error stays the one reported.
    """
    for _ in range(_CANCEL_ROUNDS):
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception as cancel_exc:
                exc.add_note(f"could not cancel a Ray task: {cancel_exc!r}")
        try:
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=_WAIT_S)
        except Exception as wait_exc:
            exc.add_note(f"could not check that Ray tasks were cancelled: {wait_exc!r}")
            return
        if not refs:
            return
    exc.add_note(f"{len(refs)} Ray task(s) did not stop when cancelled and may still be running")


def _result(ray: Any, ref: Any, index: int) -> Any:
    try:
        payload = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            # the task's own error, raised as the local executor raises it (remote traceback
            # chained)
            raise cause from exc
        raise
    except ray.exceptions.RayError as exc:
        raise FwError(
            f"Ray could not run task {index} ({type(exc).__name__}: {exc}). Check the cluster "
            "(`ray status`) and the worker logs, or use --executor local."
        ) from exc
    return pickle.loads(payload)


class _Progress:
    """Context manager yielding an ``advance()`` callable; a rich bar on terminals only."""

    def __init__(self, description: str, total: int) -> None:
        self.description, self.total = description, total
        self.bar = None

    def __enter__(self) -> Callable[[], None]:
        from rich.console import Console
        from rich.progress import Progress

        console = Console(stderr=True)
        if not console.is_terminal:
            return lambda: None
        self.bar = Progress(console=console, transient=True)
        self.bar.start()
        task_id = self.bar.add_task(self.description, total=self.total)
        return lambda: self.bar.advance(task_id)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

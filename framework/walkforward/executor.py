"""Run independent fold tasks serially, in local processes, or (later) on Ray.

Results always come back in task order, so a parallel run is identical to a serial one. A progress
bar shows finished folds on a terminal (silent otherwise). Ctrl-C cancels the folds not yet
started, stops the worker processes and re-raises ``KeyboardInterrupt``.

Worker processes are forked when that is safe, which is fast and needs nothing re-imported. It
is not safe once numba's parallel kernels have started their threading layer in this process
(forking a process that runs GNU OpenMP kills the child), nor outside Linux; then workers are
*spawned*: they import what they unpickle by module name, the main script must be guarded by
``if __name__ == "__main__":``, and ``initializer`` lets the caller load modules that are not
importable by name (a strategy from a user's file) before any task arrives.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from framework.errors import FwError, ParameterError, unknown_name_message

EXECUTORS: tuple[str, ...] = ("local", "serial", "ray")
Task = TypeVar("Task")


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
        Process count for ``local`` (default :func:`default_workers`).
    description : str
        Progress bar label.
    initializer, initargs : optional
        Run ``initializer(*initargs)`` once in each worker process before its first task.
    """
    if executor not in EXECUTORS:
        raise ParameterError(unknown_name_message("executor", str(executor), EXECUTORS))
    if executor == "ray":
        return _run_ray(function, tasks)
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a positive integer; got {workers!r}.")
    if executor == "serial" or workers == 1 or len(tasks) <= 1:
        with _Progress(description, len(tasks)) as advance:
            results = []
            for task in tasks:
                results.append(function(task))
                advance()
        return results
    return _run_pool(function, tasks, workers, description, initializer, initargs)


def start_method() -> str:
    """``"fork"`` while no numba threading layer runs in this process (on Linux), else ``"spawn"``."""
    if not sys.platform.startswith("linux"):
        return "spawn"
    import numba

    try:
        numba.threading_layer()
    except ValueError:  # numba raises this until a parallel kernel has started its threads
        return "fork"
    return "spawn"


def _run_pool(
    function: Callable,
    tasks: Sequence,
    workers: int,
    description: str,
    initializer: Callable[..., None] | None,
    initargs: tuple,
) -> list:
    method = start_method()
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


def _run_ray(function: Callable, tasks: Sequence) -> list:
    try:
        import ray
    except ImportError as exc:
        raise FwError(
            "--executor ray needs the ray package, which is not installed. Install the dist "
            "extra (pip install 'fw[dist]') or use --executor local."
        ) from exc
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(function)
    return ray.get([remote.remote(task) for task in tasks])


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

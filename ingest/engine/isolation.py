"""Plug-in flows run apart: each of their window tasks in a process of its own, stopped at a deadline.

Built-in flows share one pass over a month (and a process pool). A plug-in's code is someone
else's: it may raise (its window fails, as any flow's), return rows that do not fit its schema
(the same), or never return. A hung call cannot be interrupted inside a process, and a pool
worker that never comes back would hold the pool's shutdown forever; so a plug-in's task gets a
process of its own (forked from the clean forkserver the pool uses), and one that has not
answered by the deadline (FLEETLAKE_WINDOW_DEADLINE_S) is killed and its windows fail with a
TimeoutError that says so. Other flows and fleets go on.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, Callable, TypeVar

A = TypeVar("A")
R = TypeVar("R")


class WindowTimeout(TimeoutError):
    """A plug-in's window task gave no answer within the deadline and was stopped."""


def _child(conn: Connection, fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        conn.send((True, fn(arg)))
    except BaseException as e:  # noqa: BLE001 - handed back to the parent, which fails the windows
        conn.send((False, e))
    finally:
        conn.close()


def run_isolated(fn: Callable[[A], R], arg: A, deadline_s: float) -> R:
    """fn(arg) in a process of its own; WindowTimeout when it has not answered within `deadline_s`."""
    ctx = multiprocessing.get_context("forkserver")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, arg), daemon=True, name="fleetlake-plugin")
    proc.start()
    child.close()
    try:
        if not parent.poll(deadline_s):
            raise WindowTimeout(f"no answer within {deadline_s:g} s (FLEETLAKE_WINDOW_DEADLINE_S): the window's "
                                "process was stopped")
        try:
            ok, value = parent.recv()
        except EOFError:
            raise RuntimeError(f"the window's process ended without an answer (exit code {proc.exitcode})") from None
        if not ok:
            raise value
        return value  # fn's result, through the pipe
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join()


class IsolatedRunner:
    """Runs tasks with run_isolated, `workers` at a time (threads wait on the processes)."""

    remote = False

    def __init__(self, workers: int, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._threads = ThreadPoolExecutor(max(1, workers), thread_name_prefix="fleetlake-plugin")

    def submit(self, fn: Callable[[A], R], arg: A) -> Future[R]:
        return self._threads.submit(run_isolated, fn, arg, self.deadline_s)

    def close(self) -> None:
        self._threads.shutdown(wait=True)

"""A task backend that runs each task in this process, at submit: for tests that change a flow's code
between runs (a process pool's workers keep the modules they imported)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Callable, TypeVar

A = TypeVar("A")
R = TypeVar("R")


class InlineBackend:
    remote = False

    def submit(self, fn: Callable[[A], R], arg: A) -> Future[R]:
        fut: Future[R] = Future()
        try:
            fut.set_result(fn(arg))
        except Exception as e:  # noqa: BLE001 - handed back as the pool would
            fut.set_exception(e)
        return fut

    def close(self) -> None:
        pass

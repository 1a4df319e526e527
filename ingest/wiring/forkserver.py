"""The one forkserver the daemon's worker processes are forked from, with what they import loaded once.

A forked child of the forkserver first re-runs the parent's main module as `__mp_main__`
(multiprocessing's spawn preparation). Under `python -m ingest.surfaces.cli run` or the
`fleetlake` script that is the CLI with every import it makes; unless the server has loaded
them, every worker (and every replacement of a dead one) imported them again, a second of CPU
each. So the server also preloads the main module: by name when it was run with -m (the server
does not load those itself), and as `__main__` when it was run as a script. The child's re-run
then finds its imports in place and costs only the module's own body.

The forkserver is one per process: the first context to start it fixes its preload, so every
caller names everything its workers need.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import sys
import threading
import time
from collections.abc import Iterable
from multiprocessing.context import ForkServerContext


def forkserver_context(preload: Iterable[str]) -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    names = [*preload, "__main__"]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        names.append(spec.name)
    ctx.set_forkserver_preload(names)
    return ctx


def exit_with(owner_pid: int) -> None:
    """A pool worker's initializer: the worker exits when the process that made the pool is gone.

    A ProcessPoolExecutor worker waits on its call queue, whose write end it holds itself, so it
    never sees the end of a daemon that was killed (OOM, SIGKILL): it waited forever, with the
    forkserver, each holding a few hundred MB. A thread waits on the owner's pidfd instead (or,
    where there is none, asks every second whether the owner still exists).
    """
    def watch() -> None:
        try:
            fd = os.pidfd_open(owner_pid)
        except ProcessLookupError:
            os._exit(1)
        except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
            while _alive(owner_pid):
                time.sleep(1)
            os._exit(1)
        select.select([fd], [], [])  # readable once the owner has exited
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="fleetlake-owner-watch").start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

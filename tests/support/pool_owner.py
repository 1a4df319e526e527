"""Makes a LocalPool, prints its workers' pids, then waits to be killed (tests/test_forkserver.py)."""

from __future__ import annotations

import os
import time

from ingest.engine.backend import LocalPool


def _pid(_: int) -> int:
    time.sleep(0.2)  # long enough that both workers take a task
    return os.getpid()


if __name__ == "__main__":
    pool = LocalPool(2, [])
    pids = sorted({f.result() for f in [pool.submit(_pid, i) for i in range(8)]})
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(600)

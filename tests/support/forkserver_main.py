"""Run with -m: starts three forkserver workers the way the daemon does and prints their answers."""

from __future__ import annotations

import os
import sys

import tests.support.forkserver_dep  # noqa: F401 - imported for its record of the importing process
from ingest.wiring.forkserver import forkserver_context


def _pid(_: int) -> int:
    return os.getpid()


if __name__ == "__main__":
    os.environ["FORKSERVER_DEP_LOG"] = sys.argv[1]  # the children's argv is not ours
    ctx = forkserver_context([])
    with ctx.Pool(3) as pool:
        print(sorted(set(pool.map(_pid, range(30), chunksize=1))))

"""A dependency of tests/support/forkserver_main.py that records each process that imports it."""

import os
import sys

with open(sys.argv[1] if len(sys.argv) > 1 else os.environ["FORKSERVER_DEP_LOG"], "a") as _log:
    _log.write(f"{os.getpid()}\n")

#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite, slow soak tests included.
EXTRAS=test source "$(dirname "$0")/_venv.sh"
ruff check --quiet .
mypy
"$root/scripts/browser.sh"  # the console's browser tests drive Debian's chromium
# Six workers, one test file each at a time: module fixtures (demo stores, daemons) are built once.
# Many tests wait on daemons, hung TSPs and crons; on two cores six workers keep both busy
# (measured: 798 s against 854 s with four, each with the suite's CPU at 2 cores throughout).
exec python -m pytest -n "${FLEETLAKE_TEST_WORKERS:-6}" --dist loadfile --no-loadscope-reorder "$@"

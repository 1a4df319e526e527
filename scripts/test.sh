#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite, slow soak tests included.
EXTRAS=test source "$(dirname "$0")/_venv.sh"
ruff check --quiet .
mypy
"$root/scripts/browser.sh"  # the console's browser tests drive Debian's chromium
# Four workers, one test file each at a time: module fixtures (demo stores, daemons) are built once.
exec python -m pytest -n "${FLEETLAKE_TEST_WORKERS:-4}" --dist loadfile --no-loadscope-reorder "$@"

#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite, slow soak tests included.
EXTRAS=test source "$(dirname "$0")/_venv.sh"
ruff check --quiet .
mypy
"$root/scripts/browser.sh"  # the console's browser tests drive Debian's chromium
exec python -m pytest "$@"

#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite, slow soak tests included.
EXTRAS=test source "$(dirname "$0")/_venv.sh"
ruff check --quiet .
mypy
exec python -m pytest "$@"

#!/usr/bin/env bash
# Set up (first run only) and run the main job on its embedded defaults: sandbox TSPs, local store.
EXTRAS= source "$(dirname "$0")/_venv.sh"
exec fleetlake demo "$@"

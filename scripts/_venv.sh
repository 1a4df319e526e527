# Sourced by the entry scripts: a project virtualenv in .venv with fleetlake installed.
# FLEETLAKE_VENV overrides the location; EXTRAS picks the optional dependency groups.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${FLEETLAKE_VENV:-$root/.venv}
py=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
stamp="$venv/.fleetlake-installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  log="$venv/pip-install.log"
  if ! { "$venv/bin/python" -m pip install --upgrade pip &&
         "$venv/bin/python" -m pip install -e "$root${EXTRAS:+[$EXTRAS]}"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "fleetlake: installing into $venv failed; full log: $log" >&2
    exit 1
  fi
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
# Python's default of caching compiled modules (in __pycache__, ignored by git), whatever the
# environment says: with PYTHONDONTWRITEBYTECODE set, each of the suite's few hundred processes
# (CLI commands, daemons, workers) compiled the project again, and each pytest worker rewrote
# every test file's asserts again; measured, collecting the suite took 11.0 s of CPU against 4.3 s.
unset PYTHONDONTWRITEBYTECODE
cd "$root"

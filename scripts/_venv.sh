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
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -e "$root${EXTRAS:+[$EXTRAS]}"
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$root"

"""Compare two fleetlake data dirs (e.g. `fleetlake demo` run on two code trees): same lake, same manifest?

    python scripts/compare_lakes.py DATA_DIR_A DATA_DIR_B

Compared, after dropping what differs between any two runs of the same code:

- the store's data files, by key (names are content hashes, so equal keys are equal bytes);
- the Delta logs, entry by entry, without timestamps and run ids (random per run);
- the manifest, table by table, without timestamps, run ids, consent nonces and sealed credentials
  (tokens and data keys are random per run); code fingerprints of equal code are mapped to the
  current one, as the planner re-keys them (`ingest.engine.fingerprint.LEGACY`);
- the control records' keys, with the random parts of their names (record ids, nonces) masked.

Prints each difference and exits 1 when there is any; 0 and "identical" otherwise. Columns or
tables that exist on one side only are reported as such (a schema migration shows here).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import duckdb

VOLATILE_KEYS = {"timestamp", "modificationTime", "committed_at", "run_id", "fleetlake.run_id", "pulled_at",
                 "fired_at", "completed_at", "consent_at", "created_at", "updated_at", "started_at", "finished_at",
                 "applied_at", "used_at", "expires_at", "txnId", "clientVersion", "engineInfo", "operationMetrics",
                 "executionTimeMs", "readVersion", "history_start", "deletionTimestamp", "first_seen", "createdTime",
                 "operationParameters"}  # a table's creation names its location and random id there
# history_start depends on the sandbox's clock at consent only; it is the same in two demo runs, but
# a run that consents on a later day must not read as different code.
VOLATILE_TABLES = {"consent_nonces", "credentials", "schema_version"}
RANDOM_NAME = re.compile(r"(_control/(?:checkpoints/[^/]+|consents|keys)/)[^/]+")


def _same_code() -> dict[str, str]:
    """Code fingerprints of equal code (ingest.engine.fingerprint.LEGACY), old -> current."""
    from ingest.engine.fingerprint import LEGACY

    return {old: new for m in LEGACY.values() for old, new in m.items()}


SAME_CODE = _same_code()


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (SAME_CODE.get(v, v) if k in ("code_fp", "fleetlake.code_fp") else _clean(v))
                for k, v in sorted(value.items()) if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        try:
            return _clean(json.loads(value))  # commit metadata holds JSON in strings
        except ValueError:
            return value
    return value


def store_view(store: Path) -> tuple[set[str], dict[str, list[Any]], set[str]]:
    data, logs, control = set(), {}, set()
    for p in sorted(store.rglob("*")):
        if not p.is_file():
            continue
        key = p.relative_to(store).as_posix()
        if "/_delta_log/" in key and key.endswith(".json"):
            entries = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
            for e in entries:
                e.get("metaData", {}).pop("id", None)  # a table's random id
            logs[key] = [_clean(e) for e in entries]
        elif key.startswith("_control/"):
            control.add(RANDOM_NAME.sub(r"\1*", key))
        elif key.endswith(".parquet"):
            data.add(key)
    return data, logs, control


def manifest_view(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for (table,) in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                                     "ORDER BY table_name").fetchall():
            if table in VOLATILE_TABLES:
                continue
            cols = [c for (c,) in conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                                               "table_name = ? ORDER BY ordinal_position", [table]).fetchall()
                    if c not in VOLATILE_KEYS]
            rows = conn.execute(f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)} FROM "{table}"').fetchall()
            out[f"{table}({', '.join(cols)})"] = sorted(
                tuple(json.dumps(SAME_CODE.get(v, v) if c == "code_fp" else _clean(_json(v)), sort_keys=True,
                                 default=str) for c, v in zip(cols, r)) for r in rows)
        return out
    finally:
        conn.close()


def _json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def compare(a: Path, b: Path) -> list[str]:
    diffs: list[str] = []
    (da, la, ca), (db, lb, cb) = store_view(a / "store"), store_view(b / "store")
    for name, x, y in (("data file", da, db), ("control record", ca, cb), ("delta log entry", set(la), set(lb))):
        diffs += [f"{name} only in {a}: {k}" for k in sorted(x - y)]
        diffs += [f"{name} only in {b}: {k}" for k in sorted(y - x)]
    diffs += [f"delta log {k} differs" for k in sorted(set(la) & set(lb)) if la[k] != lb[k]]
    ma, mb = manifest_view(a / "manifest.duckdb"), manifest_view(b / "manifest.duckdb")
    diffs += [f"manifest table only in {a}: {t}" for t in sorted(set(ma) - set(mb))]
    diffs += [f"manifest table only in {b}: {t}" for t in sorted(set(mb) - set(ma))]
    for t in sorted(set(ma) & set(mb)):
        if ma[t] != mb[t]:
            extra_a, extra_b = set(ma[t]) - set(mb[t]), set(mb[t]) - set(ma[t])
            diffs.append(f"manifest {t}: {len(ma[t])} vs {len(mb[t])} rows; {len(extra_a)} only in {a}, "
                         f"{len(extra_b)} only in {b}; e.g. {sorted(extra_a or extra_b)[:1]}")
    return diffs


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    diffs = compare(a, b)
    for d in diffs:
        print(d)
    data, logs, _ = store_view(a / "store")
    print("identical" if not diffs else f"{len(diffs)} differences",
          f"({len(data)} data files, {sum(len(v) for v in logs.values())} log entries,",
          f"{sum(len(v) for v in manifest_view(a / 'manifest.duckdb').values())} manifest rows compared)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())

"""Off-boarding leaves nothing of the fleet but its audit record: over real HTTP against a
`fleetlake run` daemon and the sandbox, with the store on SeaweedFS (and on disk).

Every key of the store is listed and every table of the manifest read; the other fleet's keys and
rows are the same before and after; DuckDB over the Delta tables sees no row of the fleet; its
drivers, assignments, HOS logs and violations go too (no byte of the store, Parquet decoded, names
one of its drivers); the Samsara grant is revoked at the TSP (its refresh token is refused); a
rebuild from the store keeps the fleet gone and the audit record; the CLI off-boards the Motive fleet (no revocation offered: the
outcome says the grant is still open at Motive and what the customer must do). Both fleets' data
keys leave the keyring (tests/test_shredding.py searches every byte for what could still open).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.fernet import Fernet

from connectors.oauth import Vault
from partitions import layout, open_store
from partitions.query import lake_connection
from partitions.store import ObjectStore
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.cli import run_cli
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ports import free_port
from tests.support.seaweed import s3_options

TOKEN = "offboard-" + uuid.uuid4().hex
GONE, KEPT = "acme-freight", "bluebird-logistics"


def _env(tmp_path: Path, store_url: str, request: pytest.FixtureRequest, sandbox: SandboxServer) -> dict[str, str]:
    env = {**os.environ, "FLEETLAKE_DATA_DIR": str(tmp_path / "data"), "FLEETLAKE_STORE_URL": store_url,
           "FLEETLAKE_TOKEN_KEY": Fernet.generate_key().decode(), "FLEETLAKE_API_TOKEN": TOKEN,
           "FLEETLAKE_HTTP_PORT": str(free_port()), "FLEETLAKE_SANDBOX_URL": sandbox.base_url,
           "FLEETLAKE_HISTORY_MONTHS": "1", "FLEETLAKE_LOG_FORMAT": "json",
           "FLEETLAKE_FLOWS_FILE": str(_flows(tmp_path))}
    endpoint = getattr(request.node, "s3_endpoint", None)
    if endpoint:
        o = s3_options(endpoint)
        env.update({"FLEETLAKE_S3_ENDPOINT_URL": str(o.endpoint_url), "FLEETLAKE_S3_REGION": "us-east-1",
                    "FLEETLAKE_S3_ACCESS_KEY_ID": str(o.access_key_id),
                    "FLEETLAKE_S3_SECRET_ACCESS_KEY": str(o.secret_access_key)})
    env.pop("FLEETLAKE_CONFIG_FILE", None)
    return env


def _flows(tmp_path: Path) -> Path:
    """Two flows are enough to prove feature outputs go too, and keep the daemon's passes short."""
    flows = tmp_path / "flows.toml"
    flows.write_text('active = ["data_quality@1", "distance@2"]\n')
    return flows


def _store(store_url: str, request: pytest.FixtureRequest) -> ObjectStore:
    endpoint = getattr(request.node, "s3_endpoint", None)
    return open_store(store_url, s3_options(endpoint) if endpoint else None)


def _idle_and_active(api: httpx.Client) -> bool:
    work = api.get("/work").json()
    fleets = api.get("/fleets").json()
    return (not work["queued"] and work["running"] is None and len(fleets) == 2
            and all(f["status"] == "active" for f in fleets))


def _manifest_cells(path: Path) -> dict[str, list[str]]:
    """Every row of every table of the manifest, as text."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = 'main'").fetchall()]
        return {t: [str(row) for row in con.execute(f'SELECT * FROM "{t}"').fetchall()] for t in tables}
    finally:
        con.close()


def _fleet_rows(con: duckdb.DuckDBPyConnection, fleet: str) -> dict[str, Any]:
    out = {}
    for (view,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall():
        out[view] = con.execute(f'SELECT count(*) FROM "{view}" WHERE fleet = ?', [fleet]).fetchall()[0][0]
    return out


def _holding(store: ObjectStore, people: set[str]) -> list[str]:
    """The keys of every object whose content names one of `people`: Parquet files decoded (their
    strings are compressed), every other object read as text."""
    found = []
    for obj in store.list(""):
        data = store.get(obj.key)
        if obj.key.endswith(".parquet"):
            table = pq.read_table(pa.BufferReader(data))
            text = "\n".join(str(v) for col in table.columns if _stringy(col.type) for v in col.to_pylist())
        else:
            text = data.decode("utf-8", "replace")
        if any(p in text for p in people):
            found.append(obj.key)
    return found


def _stringy(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (
        pa.types.is_dictionary(t) and pa.types.is_string(t.value_type))


def test_offboarding_leaves_only_the_audit_record(store_url: str, request: pytest.FixtureRequest,
                                                   tmp_path: Path) -> None:
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox:
        env = _env(tmp_path, store_url, request, sandbox)
        store = _store(store_url, request)
        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()
        try:
            with loopback.client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as api:
                for fleet, tsp in ((GONE, "samsara"), (KEPT, "motive")):
                    url = api.post(f"/connect/{tsp}", params={"fleet_id": fleet}).json()["consent_url"]
                    assert loopback.get(loopback.get(url).headers["location"], timeout=60).status_code == 200
                wait_for("both fleets pulled and computed", lambda: _idle_and_active(api), 240, 0.5)
                kept_status = api.get(f"/fleets/{KEPT}/status").json()
                # Drivers and hours of service landed for the fleet; its drivers' names are in the store.
                con = lake_connection(store)
                assert {"drivers", "assignments", "hos_logs", "hos_violations"} <= set(_fleet_rows(con, GONE))
                assert all(n > 0 for v, n in _fleet_rows(con, GONE).items() if v in ("drivers", "assignments",
                                                                                        "hos_logs"))
                people = {n for (n,) in con.execute("SELECT name FROM drivers WHERE fleet = ?", [GONE]).fetchall()}
                people -= {n for (n,) in con.execute("SELECT name FROM drivers WHERE fleet = ?", [KEPT]).fetchall()}
                assert people and _holding(store, people), "the search finds the fleet's drivers before"
                all_keys = {o.key for o in store.list("")}
                assert any(f"fleet={GONE}/" in k for k in all_keys)  # there is something to remove
                assert any(k.startswith("features/") and f"fleet={GONE}/" in k for k in all_keys)
                assert any(k.startswith(f"{layout.CONTROL}/checkpoints/{GONE}/") for k in all_keys)
                kept_keys = {k for k in all_keys if KEPT in k}
                sealed = store.get(layout.credentials_key(GONE))
                data_key = Fernet(env["FLEETLAKE_TOKEN_KEY"]).decrypt(store.get(layout.data_key_key(GONE))).decode()
                refresh_token = Vault(data_key).open(sealed).refresh_token
                assert refresh_token

                # Work on the fleet queued or running: refused, nothing removed.
                sandbox_api = loopback.client(base_url=sandbox.base_url, timeout=30)
                request.addfinalizer(sandbox_api.close)
                sandbox_api.post("/samsara/_sandbox/faults/samsara", json={"slow": 1.0, "slow_seconds": 0.3})
                assert api.post(f"/fleets/{GONE}/refresh").status_code == 202
                r = api.delete(f"/fleets/{GONE}", params={"operator": "alice"})
                assert r.status_code == 409 and "nothing was removed" in r.json()["error"], r.text
                sandbox_api.post("/samsara/_sandbox/faults/samsara", json={})
                wait_for("the refresh to finish", lambda: _idle_and_active(api), 240, 0.5)
                assert store.exists(layout.credentials_key(GONE))

                r = api.delete(f"/fleets/{GONE}", params={"operator": "alice"})
                assert r.status_code == 200, r.text
                outcome = r.json()
                assert outcome["revocation"] == "revoked" and outcome["actor"] == "alice via api-token"
                assert outcome["credentials"].startswith("destroyed") and outcome["customer_action"] is None
                assert outcome["manifest_rows"]["fleets"] == 1 and outcome["manifest_rows"]["raw_partitions"] > 0
                assert sum(outcome["store"]["table_files"].values()) > 0
                assert api.delete(f"/fleets/{GONE}").status_code == 404
                assert [f["fleet_id"] for f in api.get("/fleets").json()] == [KEPT]
                assert api.get(f"/fleets/{KEPT}/status").json() == kept_status

            # Revoked at the TSP: the grant's refresh token no longer works there.
            o = loopback.post(f"{sandbox.base_url}/samsara/oauth2/token",
                           data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                           auth=_samsara_app(sandbox))
            assert o.status_code == 400 and o.json()["error"] == "invalid_grant"
            assert sandbox_api.get("/samsara/_sandbox/stats").json()["revocations"]["samsara"] == 1

            # The store: not one key names the fleet but the audit record; DuckDB sees no row of it.
            after = {o.key for o in store.list("")}
            naming = sorted(k for k in after if GONE in k)
            assert len(naming) == 1 and naming[0].startswith(f"{layout.CONTROL}/offboarded/{GONE}-"), naming
            audit = json.loads(store.get(naming[0]))
            assert audit["actor"] == "alice via api-token" and audit["removed"]["revocation"] == "revoked"
            assert {k for k in after if KEPT in k} == kept_keys
            tables = sorted({k.split("/_delta_log/")[0] for k in after if "/_delta_log/" in k})
            con = lake_connection(store, tables)
            assert set(_fleet_rows(con, GONE).values()) == {0}
            assert _holding(store, people) == [], "no byte of the store names one of the fleet's drivers"
            assert all(n > 0 for v, n in _fleet_rows(con, KEPT).items() if v in ("pings",))
            if store_url.startswith("file://"):
                root = Path(store_url[len("file://"):])
                assert not [p for p in root.rglob("*") if GONE in p.name and "offboarded" not in str(p)]
        finally:
            assert d.stop() == 0

        # The manifest: no row of any table names the fleet, but the audit's.
        manifest = tmp_path / "data" / "manifest.duckdb"
        cells = _manifest_cells(manifest)
        assert [t for t, rows in cells.items() if t != "offboardings" and any(GONE in r for r in rows)] == []
        assert len(cells["offboardings"]) == 1 and "alice via api-token" in cells["offboardings"][0]

        # The disk is lost: the store alone restores the kept fleet and the audit, not the fleet.
        shutil.rmtree(tmp_path / "data")
        rebuilt = run_cli(env, "manifest", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        report = json.loads(rebuilt.stdout)
        assert report["problems"] == [] and report["control"]["fleets"] == 1 and report["offboardings"] == 1
        cells = _manifest_cells(manifest)
        assert [t for t, rows in cells.items() if t != "offboardings" and any(GONE in r for r in rows)] == []

        # The CLI off-boards the Motive fleet on its own manifest: Motive offers no revocation.
        assert run_cli(env, "offboard", KEPT, "--by", "bob").returncode == 2  # needs --yes
        done = run_cli(env, "offboard", KEPT, "--by", "bob", "--yes", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        motive = json.loads(done.stdout)
        assert motive["revocation"].startswith("not offered by motive") and "still open" in motive["revocation"]
        assert "Motive account" in motive["customer_action"] and motive["credentials"].startswith("destroyed")
        keyring = manifest.with_name(manifest.name + ".keys")
        assert json.loads(keyring.read_text())["keys"] == {}  # both fleets' data keys are gone
        left = sorted(o.key for o in store.list("") if GONE in o.key or KEPT in o.key)
        assert [k.split("/")[1] for k in left] == ["offboarded", "offboarded"], left


def _samsara_app(sandbox: SandboxServer) -> tuple[str, str]:
    apps = loopback.get(f"{sandbox.base_url}/samsara/_sandbox/apps").json()
    return apps["samsara"]["client_id"], apps["samsara"]["client_secret"]

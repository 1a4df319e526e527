"""Nothing left behind: after off-boarding, no byte fleetlake wrote holds a credential that still opens.

A `fleetlake run` daemon and the sandbox over HTTP, the store on disk and on SeaweedFS. The Motive
fleet is off-boarded (Motive cannot revoke: its access token is still accepted there afterwards,
so our copy is all that matters); every file under the test's directory (manifest, WAL, keyring,
spool, cache, the daemon's log, a file store) and every object of an S3 store is then searched:

- for the token values themselves, of every generation the test saw (a refresh rotates them);
- for Fernet tokens (`gAAAAA...`), each tried with the master key, with every Fernet-key-shaped
  string found in the bytes, and with every key a decryption yields, until no new key turns up.

The other (Samsara) fleet stays connected, and the same search must recover *its* tokens: proof
that the search would find a working credential if one were left. Credentials sealed by an older
fleetlake with the master key alone are re-sealed at start-up and leave no copy in the manifest.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from common.states import FleetStatus
from connectors.oauth import TokenSet, Vault
from ingest.runtime.app import build_app
from ingest.wiring.settings import load_settings
from ingest.wiring.tsps import endpoints
from partitions import Manifest, layout
from partitions.keyring import Keyring, keyring_path
from partitions.store import LocalStore, ObjectStore, S3Store
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.support.daemon import DaemonProcess, wait_for
from tests.test_offboard import TOKEN, _env, _idle_and_active, _store

GONE, KEPT = "bluebird-logistics", "acme-freight"  # Motive (no revocation), Samsara
FERNET_TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_\-]{60,}={0,2}")
FERNET_KEY = re.compile(rb"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{43}=")


def _is_key(candidate: bytes) -> bool:
    try:
        return len(base64.urlsafe_b64decode(candidate)) == 32
    except (binascii.Error, ValueError):
        return False


def _every_byte(root: Path, store: ObjectStore) -> dict[str, bytes]:
    """Every file under `root` (data dir, logs, a file store) and every object of an S3 store."""
    found = {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    if isinstance(store, S3Store):
        found.update({f"s3:{o.key}": store.get(o.key) for o in store.list("")})
    return found


def _opened(blobs: dict[str, bytes], master: str) -> list[tuple[bytes, bytes]]:
    """(key, plaintext) of every Fernet token in `blobs` that any key we can find opens: the master
    key, every key-shaped string in the bytes, and every key a decryption yields (to a fixpoint)."""
    tokens = {t for b in blobs.values() for t in FERNET_TOKEN.findall(b)}
    keys = {master.encode()} | {k for b in blobs.values() for k in FERNET_KEY.findall(b) if _is_key(k)}
    opened: dict[tuple[bytes, bytes], bytes] = {}
    frontier = set(keys)
    while frontier:
        fresh: set[bytes] = set()
        for key in frontier:
            fernet = Fernet(key)
            for token in tokens:
                try:
                    plain = fernet.decrypt(token)
                except InvalidToken:
                    continue
                opened[(key, token)] = plain
                for k in [plain, *FERNET_KEY.findall(plain)]:
                    if _is_key(k) and k not in keys:
                        keys.add(k)
                        fresh.add(k)
        frontier = fresh
    return [(k, p) for (k, _), p in opened.items()]


def _token_sets(opened: list[tuple[bytes, bytes]]) -> list[tuple[bytes, TokenSet]]:
    out = []
    for key, plain in opened:
        try:
            out.append((key, TokenSet.from_json(plain)))
        except (ValueError, KeyError, TypeError):
            continue  # a wrapped data key, not a token set
    return out


def _tokens_of(store: ObjectStore, master: str, fleet: str) -> tuple[bytes, TokenSet]:
    """The fleet's data key and current tokens, as anyone holding the master key and the store could read them."""
    data_key = Fernet(master).decrypt(store.get(layout.data_key_key(fleet)))
    return data_key, Vault(data_key.decode()).open(store.get(layout.credentials_key(fleet)))


def test_an_offboarded_motive_fleet_leaves_no_credential_that_opens(store_url: str, request: pytest.FixtureRequest,
                                                                     tmp_path: Path) -> None:
    base = default_config(seed=11, vehicles=2, ping_interval_s=60, history_months=1, now=NOW)
    with SandboxServer(replace(base, samsara_rate_per_s=5000.0, motive_rate_per_s=5000.0)) as sandbox:
        env = _env(tmp_path, store_url, request, sandbox)
        master = env["FLEETLAKE_TOKEN_KEY"]
        store = _store(store_url, request)
        d = DaemonProcess(env, tmp_path / "daemon.log")
        d.start()
        try:
            with loopback.client(base_url=d.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as api:
                for fleet, tsp in ((GONE, "motive"), (KEPT, "samsara")):
                    url = api.post(f"/connect/{tsp}", params={"fleet_id": fleet}).json()["consent_url"]
                    assert loopback.get(loopback.get(url).headers["location"], timeout=60).status_code == 200
                wait_for("both fleets pulled and computed", lambda: _idle_and_active(api), 240, 0.5)
                gone_key, first = _tokens_of(store, master, GONE)

                # The access token expires at Motive: the next pull refreshes, and the refresh token
                # rotates. Both generations were written (manifest, WAL, store); neither may survive.
                sandbox.world.clock.advance(sandbox.world.authorities["motive"].ttl_s + 60)
                assert api.post(f"/fleets/{GONE}/refresh").status_code == 202
                wait_for("the refresh", lambda: f"refresh:{GONE}" in api.get("/work").json()["last"], 240, 0.5)
                wait_for("both fleets idle", lambda: _idle_and_active(api), 240, 0.5)
                same_key, second = _tokens_of(store, master, GONE)
                rotated = second.refresh_token != first.refresh_token and same_key == gone_key
                assert rotated, "the refresh did not rotate the Motive tokens under the fleet's one data key"
                secrets = [t.encode() for ts in (first, second) for t in (ts.access_token, ts.refresh_token) if t]

                # Before: the search recovers the fleet's tokens (it looks where they are).
                before = {ts.access_token for _, ts in _token_sets(_opened(_every_byte(tmp_path, store), master))}
                found = second.access_token in before
                assert found, "the search cannot find the live credential it must find"

                r = api.delete(f"/fleets/{GONE}", params={"operator": "carol"})
                assert r.status_code == 200, r.text
                outcome = r.json()
                assert outcome["revocation"].startswith("not offered by motive") and \
                    "still open at motive" in outcome["revocation"]
                assert outcome["credentials"].startswith("destroyed: the fleet's data key is deleted")
                assert "Motive account" in outcome["customer_action"] and "App Marketplace" in outcome["customer_action"]
                assert layout.data_key_key(GONE) in outcome["store"]["control_keys"]
                # Motive has no revocation: the grant still opens the account at Motive. That is why
                # our copy must be gone, and why the record tells the operator what the customer must do.
                live = loopback.get(f"{sandbox.base_url}/motive/v1/vehicles",
                                 headers={"Authorization": f"Bearer {second.access_token}"})
                assert live.status_code == 200

                running = _every_byte(tmp_path, store)  # the daemon still runs: its WAL is as it left it
                # The other fleet goes on with its own key, untouched by the rewritten keyring.
                sandbox.world.clock.advance(sandbox.world.authorities["samsara"].ttl_s + 60)
                assert api.post(f"/fleets/{KEPT}/refresh").status_code == 202
                last = wait_for("the kept fleet's refresh", lambda: api.get("/work").json()["last"].get(
                    f"refresh:{KEPT}"), 240, 0.5)
                assert last.startswith("ok"), last
        finally:
            assert d.stop() == 0
        stopped = _every_byte(tmp_path, store)

    assert any(p.endswith(".wal") for p in running), "no WAL was searched while the daemon ran"
    audit = [k for k in stopped if f"offboarded/{GONE}-" in k]
    assert len(audit) == 1 and json.loads(stopped[audit[0]])["removed"]["credentials"].startswith("destroyed")
    kept_key, kept = _tokens_of(store, master, KEPT)
    for name, files in (("while running", running), ("after stopping", stopped)):
        leaked = sorted(path for path, data in files.items() if any(s in data for s in secrets))
        assert leaked == [], f"{name}: token values of {GONE} in {leaked}"
        opened = _opened(files, master)
        recovered = _token_sets(opened)
        # Counts, not values: a failing assert must not print a token or a key.
        others = sum(1 for key, _ in recovered if key != kept_key)
        assert others == 0, f"{name}: {others} token sets open with a key other than {KEPT}'s"
        gone = sum(1 for _, p in opened if any(s in p for s in secrets))
        assert gone == 0, f"{name}: {gone} decryptions yield {GONE}'s tokens"
        if name == "after stopping":
            # The same search does find a credential that is still there: the kept fleet's.
            found = any(ts.refresh_token == kept.refresh_token for _, ts in recovered)
            assert found, "the search misses the kept fleet's live credential"


def _fill(m: Manifest, start: int, rows: int) -> None:
    """Rows after the credentials, so blocks DuckDB frees are inside the file rather than cut off its end."""
    m.conn.execute("INSERT INTO flow_schemas SELECT 'flow' || i, 1, repeat('x', 200), now() FROM range(?, ?) t(i)",
                   [start, start + rows])
    m.conn.execute("CHECKPOINT")


def test_credentials_sealed_with_the_master_key_alone_are_resealed_into_a_fresh_file(tmp_path: Path) -> None:
    master = Fernet.generate_key().decode()
    path = tmp_path / "manifest.duckdb"
    store = LocalStore(tmp_path / "store")
    generations = [TokenSet(f"access-{i}-" + "a" * 24, f"refresh-{i}-" + "r" * 24, 2e9) for i in range(4)]
    with Manifest(path) as m:  # as an older fleetlake left it: four rotations sealed with the master key
        m.upsert_fleet(GONE, "motive", FleetStatus.ACTIVE)
        for i, tokens in enumerate(generations):
            blob = Vault(master).seal(tokens)
            m.save_credentials(GONE, blob)
            store.put(layout.credentials_key(GONE), blob)
            _fill(m, i * 2000, 2000)

        def master_opens() -> list[str]:
            m.conn.execute("CHECKPOINT")
            data = b"".join(p.read_bytes() for p in (path, Path(f"{path}.wal")) if p.exists())
            return [ts.access_token for _, ts in _token_sets(_opened({"m": data}, master))]

        seen = generations[-1].access_token in master_opens()  # booleans and counts: no token in the output
        assert seen, "the search does not see the blob an old file holds"

        settings = load_settings(data_dir=tmp_path, token_key=SecretStr(master))
        svc = build_app(settings, m, store, endpoints(settings), []).vaults
        assert svc.migrate_credentials() == 1
        left = len(master_opens())
        assert left == 0, f"{left} blobs sealed with the master key alone are still in the manifest file"
        reopened = svc.vault_for(GONE).open(m.load_credentials(GONE) or b"") == generations[-1]
        assert reopened, "the re-sealed credentials do not open with the fleet's data key"
        assert store.get(layout.credentials_key(GONE)) == m.load_credentials(GONE)
        assert m.fleet(GONE) is not None and len(m._all("SELECT * FROM flow_schemas")) == 8000
        assert not list(tmp_path.glob("manifest.duckdb.fresh-*"))
        inode = os.stat(path).st_ino
        assert svc.migrate_credentials() == 0 and os.stat(path).st_ino == inode  # once only

    keys = keyring_path(path)
    assert keys.stat().st_mode & 0o777 == 0o600
    wrapped = Keyring(keys, master).wrapped(GONE)
    assert wrapped is not None and store.get(layout.data_key_key(GONE)) == wrapped


def test_the_keyring_is_replaced_whole_and_forgets_a_destroyed_key(tmp_path: Path) -> None:
    master = Fernet.generate_key().decode()
    ring = Keyring(tmp_path / "m.duckdb.keys", master)
    a, b = ring.create(GONE), ring.create(KEPT)
    assert ring.create(GONE) == a != b  # made once
    inode = ring.path.stat().st_ino
    assert ring.destroy(GONE) and not ring.destroy(GONE)
    assert ring.path.stat().st_ino != inode  # a new file renamed into place, not an edit
    data = ring.path.read_bytes()
    assert ring.data_key(GONE) is None and ring.data_key(KEPT) == b
    assert a.encode() not in data and b.encode() not in data  # keys are stored wrapped, never plain
    assert [p.name for p in tmp_path.iterdir()] == ["m.duckdb.keys"]  # no temp file left

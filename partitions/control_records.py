"""Control records mirrored to the store, so that the store alone can rebuild the manifest.

The Delta logs (or commit markers) restore data and feature runs; these restore everything else
a lost disk would take with it: the fleets, their TSP credentials (the Fernet-sealed blob as the
manifest holds it, never plain: the token key stays in the secret store) and the used consent
nonces (so a rebuilt manifest still refuses a replayed consent link).

    _control/fleets/<fleet>.json          fleet record: tsp, status, consent time, history start, error
    _control/credentials/<fleet>.sealed   the sealed token set, rewritten on every rotation
    _control/consents/<nonce>.json        a used consent nonce

Writes go to the manifest first, then to the store before the caller goes on (a rotated refresh
token is the only valid one). A store write that fails is logged, not raised: failing a token
refresh over it would lose the rotated token from memory and turn a store outage into revoked
fleets; `sync` rewrites a fleet's records after each successful pull, which heals any miss.
Pull checkpoints are not mirrored: they save re-pulling an interrupted backfill, and a rebuilt
manifest re-pulls only what its committed partitions do not already hold.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from common import names
from common.errors import StoreError
from common.states import FleetStatus
from partitions.layout import CONTROL, consent_key, credentials_key, fleet_key
from partitions.manifest import Fleet, Manifest
from partitions.store import ObjectStore

log = logging.getLogger("fleetlake.control")
def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ControlMirror:
    """The manifest's control writes, each also written to the store. A CredentialStore for OAuth."""

    def __init__(self, manifest: Manifest, store: ObjectStore) -> None:
        self.manifest = manifest
        self.store = store

    def load_credentials(self, fleet_id: str) -> bytes | None:
        return self.manifest.load_credentials(fleet_id)

    def save_credentials(self, fleet_id: str, blob: bytes) -> None:
        self.manifest.save_credentials(fleet_id, blob)
        self._put(credentials_key(fleet_id), blob)

    def _put(self, key: str, data: bytes) -> None:
        try:
            self.store.put(key, data)
        except StoreError as e:
            log.warning("control record %s not mirrored to the store (%s); rewritten after the next pull", key,
                        type(e).__name__)

    def sync(self, fleet_id: str) -> None:
        """Rewrite one fleet's record and sealed credentials from the manifest."""
        fleet = self.manifest.fleet(fleet_id)
        if fleet is not None:
            self._put_fleet(fleet)
        blob = self.manifest.load_credentials(fleet_id)
        if blob is not None:
            self._put(credentials_key(fleet_id), blob)

    def set_fleet(self, fleet_id: str, tsp: str, status: FleetStatus, consent_at: datetime | None = None,
                  history_start: datetime | None = None, error: str | None = None) -> None:
        self.manifest.upsert_fleet(fleet_id, tsp, status, consent_at=consent_at, history_start=history_start,
                                   error=error)
        fleet = self.manifest.fleet(fleet_id)
        if fleet is not None:
            self._put_fleet(fleet)

    def _put_fleet(self, fleet: Fleet) -> None:
        self._put(fleet_key(fleet.fleet_id), json.dumps(
            {"fleet_id": fleet.fleet_id, "tsp": fleet.tsp, "status": fleet.status.value,
             "consent_at": _iso(fleet.consent_at), "history_start": _iso(fleet.history_start),
             "error": fleet.error}).encode())

    def use_consent_nonce(self, nonce: str, tsp: str, fleet_id: str, expires_at: datetime) -> bool:
        if not self.manifest.use_consent_nonce(nonce, tsp, fleet_id, expires_at):
            return False
        self._put(consent_key(nonce), json.dumps({"nonce": nonce, "tsp": tsp, "fleet_id": fleet_id,
                                                       "expires_at": expires_at.isoformat()}).encode())
        return True


@dataclass(frozen=True)
class ControlReport:
    fleets: int
    credentials: int
    consents: int
    problems: tuple[str, ...]


def restore_control(store: ObjectStore, manifest: Manifest) -> ControlReport:
    """Fleets, sealed credentials and used consent nonces from the store into the manifest."""
    problems: list[str] = []
    fleets = credentials = consents = 0
    for obj in store.list(f"{CONTROL}/fleets/"):
        try:
            d = json.loads(store.get(obj.key))
            f = Fleet(names.fleet_id(d["fleet_id"]), str(d["tsp"]), FleetStatus(d["status"]), _dt(d["consent_at"]),
                      _dt(d["history_start"]), d.get("error"))
            if fleet_key(f.fleet_id) != obj.key:
                raise ValueError("record does not match its key")
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{obj.key}: unreadable fleet record ({type(e).__name__})")
            continue
        manifest.upsert_fleet(f.fleet_id, f.tsp, f.status, consent_at=f.consent_at, history_start=f.history_start,
                              error=f.error)
        fleets += 1
    for obj in store.list(f"{CONTROL}/credentials/"):
        fleet_id = obj.key.rsplit("/", 1)[-1].removesuffix(".sealed")
        try:
            manifest.save_credentials(names.fleet_id(fleet_id), store.get(obj.key))
        except (StoreError, ValueError) as e:
            problems.append(f"{obj.key}: unreadable credentials ({type(e).__name__})")
            continue
        credentials += 1
    for obj in store.list(f"{CONTROL}/consents/"):
        try:
            d = json.loads(store.get(obj.key))
            manifest.use_consent_nonce(str(d["nonce"]), str(d["tsp"]), str(d["fleet_id"]),
                                       datetime.fromisoformat(d["expires_at"]))
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{obj.key}: unreadable consent record ({type(e).__name__})")
            continue
        consents += 1
    return ControlReport(fleets, credentials, consents, tuple(problems))

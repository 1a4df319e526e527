"""Control records mirrored to the store, so that the store alone can rebuild the manifest.

The Delta logs (or commit markers) restore data and feature runs; these restore everything else
a lost disk would take with it: the fleets, their TSP credentials (the blob sealed with the fleet's
data key, as the manifest holds it, never plain), those data keys (sealed with the master key,
which stays in the secret store: partitions/keyring.py), the used consent nonces (so a rebuilt
manifest still refuses a replayed consent link), and the facts that change what the daemon does
next: pull checkpoints, pulled months and fired readiness thresholds (so a rebuilt daemon pulls
nothing twice and announces nothing twice).

    _control/fleets/<fleet>.json          fleet record: tsp, status, consent time, history start, error
    _control/credentials/<fleet>.sealed   the sealed token set, rewritten on every rotation
    _control/keys/<fleet>.key             the fleet's data key, sealed with the master key (written once)
    _control/consents/<nonce>.json        a used consent nonce
    _control/checkpoints/<fleet>/<id>.json pull slices completed by one pull commit (append-only)
    _control/months/<fleet>.json          the fleet's pulled months and when each was first pulled
    _control/readiness/<fleet>.json       the fleet's fired readiness thresholds (span, time, delivered)
    _control/offboarded/<fleet>-<at>.json the audit record of an off-boarding (partitions/offboard.py)

Writes go to the manifest (or the keyring) first, then to the store before the caller goes on (a
rotated refresh token is the only valid one; a readiness alert is mirrored before it is sent). A
store write that fails is logged, not raised: failing a token refresh over it would lose the
rotated token from memory and turn a store outage into revoked fleets; `sync` rewrites a fleet's
records after each successful pull, which heals any miss. Pull checkpoints are mirrored as one
small record per pull commit (the slices it completed), so a manifest rebuilt in the middle of a
backfill resumes it instead of pulling finished slices again.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from common import names
from common.errors import StoreError
from common.states import FleetStatus
from partitions.keyring import Keyring, keyring_path, looks_wrapped
from partitions.layout import (
    CONTROL,
    checkpoints_key,
    consent_key,
    credentials_key,
    data_key_key,
    fleet_key,
    months_key,
    readiness_key,
)
from partitions.manifest import Fleet, Manifest, Offboarding
from partitions.store import ObjectStore

log = logging.getLogger("fleetlake.control")
def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ControlMirror:
    """The manifest's control writes, each also written to the store. A CredentialStore for OAuth."""

    def __init__(self, manifest: Manifest, store: ObjectStore, keyring: Keyring | None = None) -> None:
        self.manifest = manifest
        self.store = store
        self.keyring = keyring or Keyring(keyring_path(manifest.path), None)

    def data_key(self, fleet_id: str, create: bool = False) -> str | None:
        """The fleet's data key; with `create`, a new one when it has none (in the keyring and the store
        before any blob is sealed with it)."""
        key = self.keyring.data_key(fleet_id)
        if key is None and create:
            key = self.keyring.create(fleet_id)
            self._put(data_key_key(fleet_id), self.keyring.wrapped(fleet_id) or b"")
        return key

    def destroy_key(self, fleet_id: str) -> bool:
        """Crypto-shredding: the fleet's data key leaves the keyring (its store copy goes with the
        fleet's control records, partitions/offboard.py); every blob sealed with it is unreadable."""
        return self.keyring.destroy(fleet_id)

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
        """Rewrite one fleet's records (fleet, sealed credentials, pulled months, fired thresholds) from
        the manifest, and its data key when the store lacks it."""
        fleet = self.manifest.fleet(fleet_id)
        if fleet is not None:
            self._put_fleet(fleet)
        blob = self.manifest.load_credentials(fleet_id)
        if blob is not None:
            self._put(credentials_key(fleet_id), blob)
        wrapped = self.keyring.wrapped(fleet_id)
        try:
            # Asked before it is written: a key never changes, and each rewrite would be one more object
            # version that a versioned bucket keeps after off-boarding.
            if wrapped is not None and not self.store.exists(data_key_key(fleet_id)):
                self._put(data_key_key(fleet_id), wrapped)
        except StoreError as e:
            log.warning("data key of %s not checked in the store (%s)", fleet_id, type(e).__name__)
        if self.manifest.pulled_months(fleet_id):
            self.mirror_months(fleet_id)
        if self.manifest.readiness_fired(fleet_id):
            self._put_readiness(fleet_id)

    def mirror_months(self, fleet_id: str, month: str | None = None) -> None:
        """The fleet's pulled months, whole (`month`, just recorded, is among them)."""
        months = self.manifest.pulled_months(fleet_id)
        self._put(months_key(fleet_id), json.dumps(
            {"fleet_id": fleet_id, "months": {m: at.isoformat() for m, at in months.items()}}).encode())

    def record_readiness(self, fleet_id: str, threshold: int, first_month: str, last_month: str,
                         delivered: bool) -> bool:
        """Manifest.record_readiness, then the fleet's fired thresholds to the store (before the alert goes)."""
        if not self.manifest.record_readiness(fleet_id, threshold, first_month, last_month, delivered):
            return False
        self._put_readiness(fleet_id)
        return True

    def readiness_delivered(self, fleet_id: str, threshold: int) -> None:
        self.manifest.readiness_delivered(fleet_id, threshold)
        self._put_readiness(fleet_id)

    def _put_readiness(self, fleet_id: str) -> None:
        fired = self.manifest.readiness_fired(fleet_id)
        self._put(readiness_key(fleet_id), json.dumps(
            {"fleet_id": fleet_id, "thresholds": [
                {"threshold": n, "first_month": first, "last_month": last, "fired_at": at.isoformat(),
                 "delivered": delivered} for n, (first, last, at, delivered) in sorted(fired.items())]}).encode())

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

    def mirror_checkpoints(self, fleet_id: str, stream: str, dataset: str, slices: list[tuple[str, int]]) -> None:
        """Slices the manifest just recorded as complete, as one append-only record (time-ordered id)."""
        record_id = f"{time.time_ns():020d}{secrets.token_hex(4)}"
        self._put(checkpoints_key(fleet_id, record_id), json.dumps(
            {"fleet_id": fleet_id, "stream": stream, "dataset": dataset,
             "slices": [[k, int(r)] for k, r in slices]}).encode())

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
    checkpoints: int = 0  # completed pull slices restored
    offboardings: int = 0  # audit records of off-boarded fleets
    keys: int = 0  # fleets' data keys restored to the keyring
    pulled_months: int = 0  # (fleet, month) pairs known to be pulled
    readiness: int = 0  # fired readiness thresholds (never fired again)


def restore_control(store: ObjectStore, manifest: Manifest, keyring: Keyring | None = None) -> ControlReport:
    """Every control record from the store into the manifest, and the data keys into `keyring`
    (default: the keyring beside the manifest)."""
    keyring = keyring or Keyring(keyring_path(manifest.path), None)
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
    checkpoints = 0
    for obj in store.list(f"{CONTROL}/checkpoints/"):
        try:
            d = json.loads(store.get(obj.key))
            fleet_id = names.fleet_id(d["fleet_id"])
            if not obj.key.startswith(f"{CONTROL}/checkpoints/{fleet_id}/"):
                raise ValueError("record does not match its key")
            stream = str(d["stream"])
            # Records mirrored before checkpoints named their dataset: the stream says it, read once here.
            dataset = str(d.get("dataset") or ("events" if "/events/" in stream else "pings"))
            for key, rows in d["slices"]:
                manifest.complete_slice(fleet_id, stream, str(key), dataset, int(rows))
                checkpoints += 1
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{obj.key}: unreadable checkpoint record ({type(e).__name__})")
    wrapped: dict[str, bytes] = {}
    for obj in store.list(f"{CONTROL}/keys/"):
        fleet_id = obj.key.rsplit("/", 1)[-1].removesuffix(".key")
        try:
            if data_key_key(fleet_id) != obj.key:
                raise ValueError("record does not match its key")
            blob = store.get(obj.key)
            if not looks_wrapped(blob):
                raise ValueError("not a sealed key")
            wrapped[fleet_id] = blob
        except (StoreError, ValueError) as e:
            problems.append(f"{obj.key}: unreadable data key ({type(e).__name__})")
    keyring.restore(wrapped)  # one rewrite of the keyring file for all of them
    months = 0
    for obj in store.list(f"{CONTROL}/months/"):
        try:
            d = json.loads(store.get(obj.key))
            fleet_id = names.fleet_id(d["fleet_id"])
            if months_key(fleet_id) != obj.key:
                raise ValueError("record does not match its key")
            for month, at in d["months"].items():
                manifest.restore_month_pulled(fleet_id, month, datetime.fromisoformat(at))
                months += 1
        except (StoreError, ValueError, KeyError, TypeError, AttributeError) as e:
            problems.append(f"{obj.key}: unreadable pulled-months record ({type(e).__name__})")
    fired = 0
    for obj in store.list(f"{CONTROL}/readiness/"):
        try:
            d = json.loads(store.get(obj.key))
            fleet_id = names.fleet_id(d["fleet_id"])
            if readiness_key(fleet_id) != obj.key:
                raise ValueError("record does not match its key")
            for t in d["thresholds"]:
                manifest.restore_readiness(fleet_id, int(t["threshold"]), str(t["first_month"]),
                                           str(t["last_month"]), datetime.fromisoformat(t["fired_at"]),
                                           bool(t["delivered"]))
                fired += 1
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{obj.key}: unreadable readiness record ({type(e).__name__})")
    audits = 0
    for obj in store.list(f"{CONTROL}/offboarded/"):
        try:
            manifest.restore_offboarding(Offboarding.from_json(json.loads(store.get(obj.key))))
        except (StoreError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{obj.key}: unreadable off-boarding record ({type(e).__name__})")
            continue
        audits += 1
    return ControlReport(fleets, credentials, consents, tuple(problems), checkpoints, audits, len(wrapped), months,
                         fired)

"""Off-boarding a fleet: revoke its grant at the TSP, destroy its credentials, purge its data, audit.

The steps run in an order that can be repeated after any failure: nothing is removed before the
TSP confirmed the revocation (so a failed revocation loses nothing and says so), the store goes
before the manifest (so the fleet stays listed, and `offboard` can run again, until its last
object is gone), and the manifest's rows and its audit record go in one transaction. The audit
record, who, when and what was removed (counts and keys, never data), is written to the store
too, so it survives `manifest rebuild`.

The credentials are crypto-shredded: the fleet's data key leaves the keyring beside the manifest
(and its copy leaves the store with the fleet's control records), so every copy of the sealed
tokens that deleting cannot reach, in DuckDB's free blocks and WAL, in object versions or in
backups, stays ciphertext that no key opens. Where the TSP offers no revocation (Motive), the
grant stays open at the TSP: the outcome says so, and what the customer must do to end it.

The caller makes sure no work on the fleet runs meanwhile: the CLI holds the manifest (one
writer), the daemon refuses while work that could touch the fleet is queued or running and keeps
such work out until the off-boarding is done (`WorkQueue.exclusive`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from common import names
from common.errors import UnknownFleet
from connectors.providers import TSPS, known_tsp
from ingest.wiring.metrics import Metrics
from ingest.wiring.settings import Settings
from ingest.wiring.tsps import TspEndpoint, endpoint_of, oauth_client
from ingest.wiring.vaults import FleetVaults
from partitions.control_records import ControlMirror
from partitions.manifest import Manifest, Offboarding
from partitions.offboard import StorePurge, purge_store, write_audit
from partitions.store import ObjectStore

log = logging.getLogger("fleetlake.offboard")
API_ACTOR = "api-token"  # who an API call is: the token is shared, so it names no person


@dataclass(frozen=True)
class OffboardOutcome:
    fleet_id: str
    tsp: str
    actor: str
    at: datetime
    revocation: str  # "revoked", "not offered by <tsp>: ...", "no credentials", "not revoked: ..."
    store: StorePurge
    manifest_rows: dict[str, int]
    audit_key: str
    credentials: str = ""  # what became of our copy of the tokens (crypto-shredded, or none stored)
    customer_action: str | None = None  # what the customer must do to end a grant we could not revoke

    def to_json(self) -> dict[str, Any]:
        return {"fleet_id": self.fleet_id, "tsp": self.tsp, "actor": self.actor, "at": self.at.isoformat(),
                "revocation": self.revocation, "credentials": self.credentials,
                "customer_action": self.customer_action, "store": self.store.to_json(),
                "manifest_rows": dict(sorted(self.manifest_rows.items())), "audit_key": self.audit_key}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> OffboardOutcome:
        s = d["store"]
        return cls(d["fleet_id"], d["tsp"], d["actor"], datetime.fromisoformat(d["at"]), d["revocation"],
                   StorePurge(dict(s["table_files"]), int(s["bytes"]), tuple(s["control_keys"]), int(s["other_keys"])),
                   {k: int(v) for k, v in d["manifest_rows"].items()}, d["audit_key"], d.get("credentials", ""),
                   d.get("customer_action"))

    def lines(self) -> tuple[str, ...]:
        files = sum(self.store.table_files.values())
        return (f"{self.fleet_id}: off-boarded by {self.actor} at {self.at:%Y-%m-%d %H:%M:%S}Z",
                f"  TSP grant ({self.tsp}): {self.revocation}",
                f"  our copy of the tokens: {self.credentials}",
                *((f"  THE CUSTOMER MUST: {self.customer_action}",) if self.customer_action else ()),
                f"  store: {files} files ({self.store.bytes:,} bytes) in {len(self.store.table_files)} tables, "
                f"{len(self.store.control_keys)} control records, {self.store.other_keys} other keys",
                f"  manifest: {sum(self.manifest_rows.values())} rows "
                f"({', '.join(f'{t} {n}' for t, n in sorted(self.manifest_rows.items()) if n) or 'none'})",
                f"  audit record: {self.audit_key}")


class _Parts(Protocol):
    """What off-boarding needs of the app (ingest.runtime.app.App has it all)."""
    @property
    def settings(self) -> Settings: ...
    @property
    def manifest(self) -> Manifest: ...
    @property
    def store(self) -> ObjectStore: ...
    @property
    def endpoints(self) -> dict[str, TspEndpoint]: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def control(self) -> ControlMirror: ...
    @property
    def vaults(self) -> FleetVaults: ...


def offboard(app: _Parts, fleet_id: str, actor: str) -> OffboardOutcome:
    """Remove every trace of `fleet_id` but the audit record; UnknownFleet (a KeyError) for an unknown fleet."""
    fleet = app.manifest.fleet(names.fleet_id(fleet_id))
    if fleet is None:
        raise UnknownFleet(fleet_id)
    actor = (actor or "").strip()[:120] or "unknown"
    had_credentials = app.manifest.load_credentials(fleet_id) is not None
    revocation, customer_action = _revoke(app, fleet_id, fleet.tsp)
    log.info("fleet %s: TSP grant %s; purging the store", fleet_id, revocation)
    store = purge_store(app.store, fleet_id)  # the data key's store copy goes with the control records
    shredded = app.control.destroy_key(fleet_id)
    credentials = (SHREDDED if shredded else
                   "none stored" if not had_credentials else
                   "destroyed earlier: the fleet's data key was gone already, so no stored copy can be opened")
    _drop_cache(app, fleet_id)
    at = datetime.now(timezone.utc).replace(microsecond=0)
    rows = app.manifest.fleet_rows(fleet_id)
    audit = Offboarding(fleet_id, fleet.tsp, actor, at,
                        {"revocation": revocation, "credentials": credentials, "customer_action": customer_action,
                         "store": store.to_json(), "manifest_rows": rows})
    audit_key = write_audit(app.store, audit)  # before the manifest: a rebuild keeps the audit
    app.manifest.purge_fleet(fleet_id, audit)
    try:
        app.metrics.pings.remove(fleet_id)  # metrics name fleets too
    except KeyError:
        pass  # no pings counted for it in this process
    log.info("fleet %s off-boarded by %s: %d store files, %d manifest rows", fleet_id, actor,
             sum(store.table_files.values()), sum(rows.values()))
    if customer_action:
        log.warning("fleet %s: the grant at %s is still open; the customer must end it: %s", fleet_id, fleet.tsp,
                    customer_action)
    return OffboardOutcome(fleet_id, fleet.tsp, actor, at, revocation, store, rows, audit_key, credentials,
                           customer_action)


SHREDDED = ("destroyed: the fleet's data key is deleted from the keyring and the store, so no copy of its sealed "
            "tokens (manifest, WAL, store, backups) can be opened any more, with FLEETLAKE_TOKEN_KEY or otherwise")


def _revoke(app: _Parts, fleet_id: str, tsp: str) -> tuple[str, str | None]:
    """How the grant ended at the TSP, and what the customer must do when we could not end it."""
    blob = app.manifest.load_credentials(fleet_id)
    if blob is None:
        return "no credentials", None
    known = known_tsp(tsp)
    spec = TSPS[known] if known else None
    ask = (f"end fleetlake's access on {tsp}'s side: "
           + (spec.disconnect if spec and spec.disconnect else "remove (disconnect) fleetlake's app in their account"))
    if tsp not in app.endpoints:
        return f"not revoked: {tsp} is not configured here, so the grant is still open at {tsp}", ask
    with oauth_client(endpoint_of(app.endpoints, tsp), app.settings) as client:
        if not client.p.revoke_url:
            return (f"not offered by {tsp}: {tsp} has no revocation endpoint, so the grant is still open at {tsp} "
                    "until the customer ends it"), ask
        if app.control.data_key(fleet_id) is None:
            # An earlier off-boarding cut short after it revoked and destroyed the key, or a lost keyring:
            # which one cannot be told here, so the customer is asked to make sure.
            return ("not revoked now: the fleet's data key is gone already (an earlier off-boarding that was cut "
                    "short after revoking, or a lost keyring), so no copy of the tokens can be opened to revoke "
                    "with"), ask
        tokens = app.vaults.vault_for(fleet_id).open(blob)
        if tokens.refresh_token:
            client.revoke(tokens.refresh_token, "refresh_token")  # AuthError: nothing removed yet
        else:
            client.revoke(tokens.access_token, "access_token")
    return "revoked", None


def _drop_cache(app: _Parts, fleet_id: str) -> None:
    """Downloaded copies of the fleet's files in the local cache (named after their keys)."""
    cache = app.settings.work_dir / "cache"
    if cache.is_dir():
        for p in cache.glob(f"*fleet={fleet_id}__*"):
            p.unlink(missing_ok=True)

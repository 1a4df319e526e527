"""Off-boarding a fleet: revoke its grant at the TSP, delete its credentials, purge its data, audit.

The steps run in an order that can be repeated after any failure: nothing is removed before the
TSP confirmed the revocation (so a failed revocation loses nothing and says so), the store goes
before the manifest (so the fleet stays listed, and `offboard` can run again, until its last
object is gone), and the manifest's rows and its audit record go in one transaction. The audit
record, who, when and what was removed (counts and keys, never data), is written to the store
too, so it survives `manifest rebuild`.

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
from ingest.wiring.keys import vault_of
from ingest.wiring.metrics import Metrics
from ingest.wiring.settings import Settings
from ingest.wiring.tsps import TspEndpoint, endpoint_of, oauth_client
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
    revocation: str  # "revoked", "not offered by <tsp>", "no credentials"
    store: StorePurge
    manifest_rows: dict[str, int]
    audit_key: str

    def to_json(self) -> dict[str, Any]:
        return {"fleet_id": self.fleet_id, "tsp": self.tsp, "actor": self.actor, "at": self.at.isoformat(),
                "revocation": self.revocation, "store": self.store.to_json(),
                "manifest_rows": dict(sorted(self.manifest_rows.items())), "audit_key": self.audit_key}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> OffboardOutcome:
        s = d["store"]
        return cls(d["fleet_id"], d["tsp"], d["actor"], datetime.fromisoformat(d["at"]), d["revocation"],
                   StorePurge(dict(s["table_files"]), int(s["bytes"]), tuple(s["control_keys"]), int(s["other_keys"])),
                   {k: int(v) for k, v in d["manifest_rows"].items()}, d["audit_key"])

    def lines(self) -> tuple[str, ...]:
        files = sum(self.store.table_files.values())
        return (f"{self.fleet_id}: off-boarded by {self.actor} at {self.at:%Y-%m-%d %H:%M:%S}Z",
                f"  TSP grant ({self.tsp}): {self.revocation}",
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


def offboard(app: _Parts, fleet_id: str, actor: str) -> OffboardOutcome:
    """Remove every trace of `fleet_id` but the audit record; UnknownFleet (a KeyError) for an unknown fleet."""
    fleet = app.manifest.fleet(names.fleet_id(fleet_id))
    if fleet is None:
        raise UnknownFleet(fleet_id)
    actor = (actor or "").strip()[:120] or "unknown"
    revocation = _revoke(app, fleet_id, fleet.tsp)
    log.info("fleet %s: TSP grant %s; purging the store", fleet_id, revocation)
    store = purge_store(app.store, fleet_id)
    _drop_cache(app, fleet_id)
    at = datetime.now(timezone.utc).replace(microsecond=0)
    rows = app.manifest.fleet_rows(fleet_id)
    audit = Offboarding(fleet_id, fleet.tsp, actor, at,
                        {"revocation": revocation, "store": store.to_json(), "manifest_rows": rows})
    audit_key = write_audit(app.store, audit)  # before the manifest: a rebuild keeps the audit
    app.manifest.purge_fleet(fleet_id, audit)
    try:
        app.metrics.pings.remove(fleet_id)  # metrics name fleets too
    except KeyError:
        pass  # no pings counted for it in this process
    log.info("fleet %s off-boarded by %s: %d store files, %d manifest rows", fleet_id, actor,
             sum(store.table_files.values()), sum(rows.values()))
    return OffboardOutcome(fleet_id, fleet.tsp, actor, at, revocation, store, rows, audit_key)


def _revoke(app: _Parts, fleet_id: str, tsp: str) -> str:
    blob = app.manifest.load_credentials(fleet_id)
    if blob is None:
        return "no credentials"
    if tsp not in app.endpoints:
        return f"not revoked: {tsp} is not configured here; our copy of the tokens is deleted"
    with oauth_client(endpoint_of(app.endpoints, tsp), app.settings) as client:
        if not client.p.revoke_url:
            return f"not offered by {tsp}; our copy of the tokens is deleted"
        tokens = vault_of(app.settings).open(blob)
        if tokens.refresh_token:
            client.revoke(tokens.refresh_token, "refresh_token")  # AuthError: nothing removed yet
        else:
            client.revoke(tokens.access_token, "access_token")
    return "revoked"


def _drop_cache(app: _Parts, fleet_id: str) -> None:
    """Downloaded copies of the fleet's files in the local cache (named after their keys)."""
    cache = app.settings.work_dir / "cache"
    if cache.is_dir():
        for p in cache.glob(f"*fleet={fleet_id}__*"):
            p.unlink(missing_ok=True)

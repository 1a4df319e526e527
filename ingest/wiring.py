"""The one place a Service is built from settings: manifest, store, TSP endpoints, flows, clock.

The daemon, the CLI and the sandbox's demo all open their service here, so what runs in a test
is what runs in production.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Iterator

from pydantic import SecretStr

from common.errors import ManifestMissing
from ingest.clock import Clock, clock_at
from ingest.flows.base import Flow
from ingest.flows.registry import active_flows
from ingest.keys import local_token_key
from ingest.service import Service
from ingest.settings import Settings
from ingest.tsps import endpoints
from partitions import Manifest, open_store
from partitions.rebuild import lake_contents, rebuild_manifest
from partitions.store import ObjectStore

log = logging.getLogger("fleetlake.wiring")


def private_data_dir(settings: Settings) -> None:
    """The data dir, made owner-only (0700): it holds the manifest, the local token key and spooled data."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(settings.data_dir, 0o700)
    except PermissionError:
        pass  # a mount point we do not own: the files in it are still 0600


def with_token_key(settings: Settings) -> Settings:
    """Settings with FLEETLAKE_TOKEN_KEY, or else the key kept in the data dir (made on first use)."""
    if settings.token_key is not None:
        return settings
    return settings.model_copy(update={"token_key": SecretStr(local_token_key(settings.data_dir))})


def open_manifest(settings: Settings, store: ObjectStore | None = None) -> Manifest:
    """The settings' manifest, opened for writing (ManifestLocked while another process holds it).

    A missing file is created only over a store that holds nothing yet (a new install). Over a store
    with fleets or tables it is lost state: starting empty would run with no fleets while theirs sit
    in the store, and say nothing. So it is refused with the one command that restores it, or, with
    FLEETLAKE_REBUILD_MISSING_MANIFEST=true, rebuilt from the store first.
    """
    path = settings.resolved_manifest_path
    if not path.exists():
        store = store or open_store(settings.resolved_store_url, settings.s3_options())
        held = lake_contents(store)
        if held is not None and not settings.rebuild_missing_manifest:
            raise ManifestMissing(f"manifest {path} does not exist, but the store holds {held}: starting with an "
                                  "empty manifest would lose them. Run `fleetlake manifest rebuild` (or set "
                                  "FLEETLAKE_REBUILD_MISSING_MANIFEST=true to rebuild it at start)")
        if held is not None:
            log.warning("manifest %s does not exist, but the store holds %s: rebuilding it from the store "
                        "(FLEETLAKE_REBUILD_MISSING_MANIFEST)", path, held)
            r = rebuild_manifest(store, path)
            log.warning("manifest rebuilt: %d fleets, %d windows, %d feature runs, %d problems%s", r.control.fleets,
                        r.raw.windows, r.runs.windows, len(r.problems),
                        "".join(f"\n  {p}" for p in r.problems[:20]))
    return Manifest(path)


@contextmanager
def open_service(settings: Settings, *, manifest: Manifest | None = None, flows: list[Flow] | None = None,
                 clock: Clock | None = None) -> Iterator[Service]:
    """A Service on the settings' manifest (opened here unless given) and store, closed on exit.

    Raises ManifestLocked when another process (a running daemon) holds the manifest, and
    ManifestMissing when its file is gone but the store holds a lake (`open_manifest`).
    """
    flows = active_flows(settings.flows_file) if flows is None else flows
    private_data_dir(settings)
    store = open_store(settings.resolved_store_url, settings.s3_options())
    own = manifest is None
    manifest = open_manifest(settings, store) if manifest is None else manifest
    try:
        service = Service(settings, manifest, store, endpoints(settings), flows,
                          clock=clock or clock_at(settings.resolved_clock_url))
        # Before any work: credentials of an older fleetlake get data keys of their own (a no-op after).
        service.migrate_credentials()
        yield service
    finally:
        if own:
            manifest.close()

"""The one place a Service is built from settings: manifest, store, TSP endpoints, flows, clock.

The daemon, the CLI and the sandbox's demo all open their service here, so what runs in a test
is what runs in production.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from pydantic import SecretStr

from ingest.clock import Clock, clock_at
from ingest.flows.base import Flow
from ingest.flows.registry import active_flows
from ingest.keys import local_token_key
from ingest.service import Service
from ingest.settings import Settings
from ingest.tsps import endpoints
from partitions import Manifest, open_store


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


@contextmanager
def open_service(settings: Settings, *, manifest: Manifest | None = None, flows: list[Flow] | None = None,
                 clock: Clock | None = None) -> Iterator[Service]:
    """A Service on the settings' manifest (opened here unless given) and store, closed on exit.

    Raises ManifestLocked when another process (a running daemon) holds the manifest.
    """
    flows = active_flows(settings.flows_file) if flows is None else flows
    private_data_dir(settings)
    own = manifest is None
    manifest = Manifest(settings.resolved_manifest_path) if manifest is None else manifest
    try:
        store = open_store(settings.resolved_store_url, settings.s3_options())
        service = Service(settings, manifest, store, endpoints(settings), flows,
                          clock=clock or clock_at(settings.resolved_clock_url))
        # Before any work: credentials of an older fleetlake get data keys of their own (a no-op after).
        service.migrate_credentials()
        yield service
    finally:
        if own:
            manifest.close()

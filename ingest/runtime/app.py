"""The one place fleetlake's parts are built from settings: manifest, store, TSP endpoints, flows, clock.

The daemon, the CLI and the sandbox's demo all open their `App` here, so what runs in a test is
what runs in production. An App is the parts, each small and named for one concept:

- `onboarding`: consent links and the OAuth callback (ingest.fleets.onboarding);
- `pulls`: one fleet's pull (ingest.pull.pulls);
- `runs`: feature runs (ingest.engine.runs);
- `reads`: what is reported (ingest.reads.reads), on the manifest's read view;
- `queue`: the work queue, the one owner of what is running (ingest.runtime.workqueue).

Work is queued and run by `ingest.runtime.pipeline`, which the daemon and the CLI both drive.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from pydantic import SecretStr

from common.errors import ManifestMissing
from ingest.engine.runs import FeatureRuns
from ingest.fleets.onboarding import Onboarding
from ingest.flows.base import Flow
from ingest.flows.registry import active_flows
from ingest.pull.pulls import Pulls
from ingest.reads.reads import Reads
from ingest.runtime.alerts import Webhook
from ingest.runtime.workqueue import WorkQueue
from ingest.wiring.clock import Clock, clock_at
from ingest.wiring.disk import DiskHealth
from ingest.wiring.keys import local_token_key
from ingest.wiring.metrics import Metrics
from ingest.wiring.settings import Settings
from ingest.wiring.tsps import TspEndpoint, endpoints
from ingest.wiring.vaults import FleetVaults
from partitions import Manifest, open_store
from partitions.control_records import ControlMirror
from partitions.keyring import Keyring, keyring_path
from partitions.rebuild import lake_contents, rebuild_manifest
from partitions.store import ObjectStore

if TYPE_CHECKING:
    from ingest.engine.ray_backend import RayBackend

log = logging.getLogger("fleetlake.app")


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


@dataclass(frozen=True)
class App:
    settings: Settings
    manifest: Manifest
    store: ObjectStore
    endpoints: dict[str, TspEndpoint]
    flows: list[Flow]
    metrics: Metrics
    clock: Clock
    control: ControlMirror  # fleet, credential, key, consent and readiness writes: mirrored to the store
    vaults: FleetVaults     # each fleet's tokens sealed with a data key of its own
    webhook: Webhook
    disk: DiskHealth        # the last full disk the work met, for /readyz
    queue: WorkQueue
    onboarding: Onboarding
    pulls: Pulls
    runs: FeatureRuns
    reads: Reads


def _ray_backend(address: str) -> RayBackend:
    from ingest.engine.ray_backend import RayBackend  # Ray is imported only when asked for

    return RayBackend(address)


def build_app(settings: Settings, manifest: Manifest, store: ObjectStore, tsp_endpoints: dict[str, TspEndpoint],
              flows: list[Flow], *, metrics: Metrics | None = None, clock: Clock | None = None) -> App:
    """The parts over an open manifest and store (tests build one on their own manifest)."""
    metrics = metrics or Metrics()
    clock = clock or clock_at(settings.resolved_clock_url)
    # Each fleet's tokens are sealed with a data key of its own, kept beside the manifest.
    keyring = Keyring(keyring_path(manifest.path),
                      settings.token_key.get_secret_value() if settings.token_key is not None else None)
    control = ControlMirror(manifest, store, keyring)
    vaults = FleetVaults(settings, control, keyring)
    queue = WorkQueue()
    disk = DiskHealth()
    return App(settings, manifest, store, tsp_endpoints, flows, metrics, clock, control, vaults,
               Webhook(settings.alert_webhook_url, on_result=metrics.alert_result), disk, queue,
               Onboarding(settings, control, vaults, tsp_endpoints, clock),
               Pulls(settings, manifest, store, control, vaults, tsp_endpoints, metrics, clock, disk, ray=_ray_backend),
               FeatureRuns(settings, manifest, store, flows, metrics, clock, disk),
               Reads(settings, manifest, store, [f for f in flows if not f.upstream], clock, live=queue))  # month flows: the grid


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
def open_app(settings: Settings, *, manifest: Manifest | None = None, flows: list[Flow] | None = None,
             clock: Clock | None = None) -> Iterator[App]:
    """An App on the settings' manifest (opened here unless given) and store, closed on exit.

    Raises ManifestLocked when another process (a running daemon) holds the manifest, and
    ManifestMissing when its file is gone but the store holds a lake (`open_manifest`).
    """
    flows = active_flows(settings.flows_file) if flows is None else flows
    private_data_dir(settings)
    store = open_store(settings.resolved_store_url, settings.s3_options())
    own = manifest is None
    manifest = open_manifest(settings, store) if manifest is None else manifest
    try:
        app = build_app(settings, manifest, store, endpoints(settings), flows, clock=clock)
        # Before any work: credentials of an older fleetlake get data keys of their own (a no-op after).
        app.vaults.migrate_credentials()
        try:
            yield app
        finally:
            app.pulls.close()  # its worker processes, if any were started
    finally:
        if own:
            manifest.close()

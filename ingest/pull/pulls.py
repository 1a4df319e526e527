"""A fleet's pull: its tokens, its connector, its months landed; what happens next is the sink's.

`Pulls.pull` backfills or refreshes one fleet (both pull every slice not yet complete, from the
history start to now, newest complete month first: `ingest.pull.backfill`). It never computes
features: it tells the `PullSink` it is handed where it stands and which months are now
complete, and the caller decides what that starts (the pipeline queues one feature work item per
pulled month). The fleet's status records what a restart must resume: `backfilling` or
`refreshing` from before the first request, `active` once everything up to now has landed.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Protocol

from common import names
from common.disk import free_bytes, is_disk_full
from common.errors import ConsentRevoked, DiskFull, FleetlakeError, PullInterrupted, TspError, UnknownFleet
from common.states import FleetStatus, PullResult
from connectors.http import Limits
from connectors.oauth import BearerAuth, FleetCredentials
from connectors.providers import open_connector
from ingest.pull.backfill import PullOptions, PullProgress, PullReport, RemoteSlices, pull_fleet
from ingest.pull.hos_datasets import HosPull
from ingest.pull.workers import SLICE_LANES, PullWorkers, TaskSubmitter, open_pull_workers
from ingest.wiring.clock import Clock
from ingest.wiring.disk import DiskHealth
from ingest.wiring.metrics import Metrics
from ingest.wiring.settings import Settings
from ingest.wiring.tsps import TspEndpoint, endpoint_of, oauth_client
from ingest.wiring.vaults import FleetVaults
from partitions.control_records import ControlMirror
from partitions.manifest import Manifest
from partitions.store import ObjectStore

log = logging.getLogger("fleetlake.pull")


class PullSink(Protocol):
    """Where a running pull reports; the pull never looks at what the sink does with it."""

    def progress(self, p: PullProgress) -> None:
        """A slice landed: where the pull stands (months, pings, pace)."""

    def landed(self) -> None:
        """A TSP page was answered in full: the pull is alive (pages land between slices too)."""

    def month_pulled(self, month: str) -> None:
        """Every slice overlapping `month` (pings and events) is committed: its inputs are final."""


class NullSink:
    """A sink that keeps nothing (tests, benchmarks)."""

    def progress(self, p: PullProgress) -> None:
        pass

    def landed(self) -> None:
        pass

    def month_pulled(self, month: str) -> None:
        pass


@dataclass(frozen=True)
class PullOutcome:
    fleet_id: str
    result: PullResult
    pings: PullReport | None
    events: PullReport | None
    error: str | None = None
    # what a failed pull failed on, for the stuck-work watch (which tells a hung TSP from a bad grant)
    cause: BaseException | None = field(default=None, compare=False, repr=False)


class Pulls:
    def __init__(self, settings: Settings, manifest: Manifest, store: ObjectStore, control: ControlMirror,
                 vaults: FleetVaults, endpoints: dict[str, TspEndpoint], metrics: Metrics, clock: Clock,
                 disk: DiskHealth, ray: Callable[[str], TaskSubmitter] | None = None) -> None:
        self.settings = settings
        self.ray = ray  # opens a Ray backend at an address (the runtime's; the pull imports no engine)
        self.disk = disk
        self.vaults = vaults
        self.manifest = manifest
        self.store = store
        self.control = control
        self.endpoints = endpoints
        self.metrics = metrics
        self.clock = clock
        self._workers: PullWorkers | None = None
        self._workers_lock = threading.Lock()

    def workers(self) -> PullWorkers | None:
        """The pull workers (FLEETLAKE_PULL_EXECUTOR), started at the first pull; None for threads."""
        s = self.settings
        if s.pull_executor == "thread":
            return None
        with self._workers_lock:
            if self._workers is None:
                self._workers = open_pull_workers(s.pull_executor, s.pull_workers, s.pull_worker_threads,
                                                  s.ray_address, self.ray, fleets=s.max_concurrent_fleets,
                                                  lanes=SLICE_LANES)
            return self._workers

    def close(self) -> None:
        with self._workers_lock:
            if self._workers is not None:
                self._workers.close()
                self._workers = None

    @property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(request_deadline_s=s.request_deadline_s, max_response_bytes=int(s.max_response_mb * (1 << 20)),
                      min_ping_interval_s=s.min_ping_interval_s)

    def pull(self, fleet_id: str, stop: threading.Event | None = None, sink: PullSink | None = None) -> PullOutcome:
        """Backfill or refresh one fleet: both pull every slice not yet complete, from history start to now."""
        sink = sink or NullSink()
        fleet = self.manifest.fleet(names.fleet_id(fleet_id))
        if fleet is None:
            raise UnknownFleet(fleet_id)
        if not fleet.status.pullable:
            return PullOutcome(fleet_id, PullResult.REVOKED, None, None, fleet.error)
        ep = endpoint_of(self.endpoints, fleet.tsp)
        opts = PullOptions(work_dir=self.settings.work_dir, memory_limit=self.settings.writer_memory_limit,
                           stop=stop or threading.Event(), progress=sink.progress, with_events=True,
                           on_month=sink.month_pulled, on_checkpoints=self.control.mirror_checkpoints,
                           on_month_pulled=self.control.mirror_months,
                           hos=HosPull(self.settings.hos_lookback_days * 86_400_000))
        start_ms = int((fleet.history_start or datetime(1970, 1, 1, tzinfo=timezone.utc)).timestamp() * 1000)
        if fleet.status is FleetStatus.CONSENTED:
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.BACKFILLING)
        elif fleet.status is FleetStatus.ACTIVE:
            # Recorded before the first request: a refresh the process dies in is found at the next start.
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.REFRESHING)
        t0 = time.monotonic()
        try:
            with ExitStack() as closing:
                pings = self._pull(closing, fleet_id, fleet.tsp, ep, start_ms, opts, sink)
        except PullInterrupted:
            # Stopped before any slice ran (listing vehicles, say): nothing to commit, status kept.
            return PullOutcome(fleet_id, PullResult.STOPPED, None, None)
        except ConsentRevoked as e:
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.REVOKED, error=str(e))
            return PullOutcome(fleet_id, PullResult.REVOKED, None, None, str(e), cause=e)
        except (TspError, FleetlakeError) as e:
            if isinstance(e, DiskFull):
                self.disk.full(e)
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.FAILED, error=str(e))
            return PullOutcome(fleet_id, PullResult.FAILED, None, None, str(e), cause=e)
        except Exception as e:  # noqa: BLE001 - a bug fails this fleet (retried with backoff), not the daemon
            # Left "backfilling", the fleet would be picked up again every re-plan; its message may
            # hold internal paths, so the record names the type and the log has the rest.
            log.exception("fleet %s: pull failed unexpectedly", fleet_id)
            if is_disk_full(e):  # e.g. the manifest's own write (DuckDB) on a full data dir
                full = DiskFull("FLEETLAKE_DATA_DIR", "the data dir", free_bytes(self.settings.data_dir))
                self.disk.full(full)
                error = str(full)
            else:
                error = f"unexpected {type(e).__name__} (a fleetlake bug or a local fault); the daemon's log has details"
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.FAILED, error=error)
            return PullOutcome(fleet_id, PullResult.FAILED, None, None, error, cause=e)
        finally:
            self.metrics.seconds.labels("pull").observe(time.monotonic() - t0)
        self.metrics.pings.labels(fleet_id).inc(pings.rows_accepted)
        events = pings.events
        stopped = pings.stopped or bool(events and events.stopped)
        # A stopped backfill stays "backfilling", a stopped refresh "refreshing": the next start
        # resumes either from its checkpoints.
        backfill = fleet.status in (FleetStatus.CONSENTED, FleetStatus.BACKFILLING)
        self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.ACTIVE if not stopped
                               else FleetStatus.BACKFILLING if backfill else FleetStatus.REFRESHING)
        self.control.sync(fleet_id)  # heals a mirror write that a store hiccup missed
        if not stopped:
            self.disk.wrote()  # a whole pull's spooling and merging went through
        return PullOutcome(fleet_id, PullResult.STOPPED if stopped else PullResult.ACTIVE, pings, events)

    def _pull(self, closing: ExitStack, fleet_id: str, tsp: str, ep: TspEndpoint, start_ms: int,
              opts: PullOptions, sink: PullSink) -> PullReport:
        """GPS and safety events up to now, month by month, on connections that `closing` closes."""
        oauth = closing.enter_context(oauth_client(ep, self.settings))
        creds = FleetCredentials(fleet_id, oauth, self.vaults.vault_for(fleet_id), self.control)

        def on_response(tsp_name: str, status: int) -> None:
            self.metrics.tsp_response(tsp_name, status)
            if 200 <= status < 300:
                sink.landed()  # a whole page landed (the hook runs after the body is read)

        connector = open_connector(tsp, fleet_id, ep.api_url, BearerAuth(creds), ep.rate_per_s,
                                   on_response=on_response, limits=self.limits, stop=opts.stop)
        closing.callback(connector.http.close)
        workers = self.workers()
        if workers is not None:
            # Slices go to the workers with short-lived access tokens; this process keeps the refresh.
            opts.remote = RemoteSlices(workers, ep.api_url, ep.rate_per_s, self.limits, creds.access_token,
                                       creds.refresh_after_401, on_response)
        return pull_fleet(connector, self.store, self.manifest, fleet_id, start_ms, self.clock.now_ms(), opts)

"""What fleetlake does, as plain methods: consent, pull, compute features, report status.

The daemon, its HTTP API and the CLI all call these; none of them holds logic of its own. A
Service owns no threads: callers decide when work runs and pass a stop Event that in-flight
pulls honour (they finish and commit the windows they have, then return).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import pyarrow.parquet as pq

from common import names
from common.disk import free_bytes, is_disk_full
from common.errors import (
    AuthError,
    ConfigError,
    ConsentRefused,
    ConsentRevoked,
    DiskFull,
    FleetlakeError,
    PullInterrupted,
    TspError,
)
from common.states import FleetStatus, PullResult, RunStatus, WindowState
from connectors.backfill import PullOptions, PullProgress, PullReport, pull_fleet
from connectors.http import Limits
from connectors.oauth import BearerAuth, FleetCredentials, StateSigner, Vault
from connectors.providers import open_connector
from ingest.alerts import Alert, Webhook
from ingest.clock import Clock, clock_at
from ingest.features import FeatureReport, run_features
from ingest.flows.base import Flow
from ingest.metrics import Metrics
from ingest.planner import WindowTask, plan
from ingest.readiness import Readiness, readiness
from ingest.settings import Settings
from ingest.tsps import TspEndpoint, oauth_client
from ingest.views import FleetFeatures, FleetGrid, FleetView, MonthRow
from partitions.control_records import ControlMirror
from partitions.keyring import Keyring, keyring_path
from partitions.manifest import Manifest
from partitions.reader import local_files
from partitions.store import ObjectStore

log = logging.getLogger("fleetlake.service")


@dataclass(frozen=True)
class PullOutcome:
    fleet_id: str
    result: PullResult
    pings: PullReport | None
    events: PullReport | None
    error: str | None = None
    # the feature windows computed during the pull, as each month's raw data completed
    features: FeatureReport = FeatureReport(())
    # what a failed pull failed on, for the stuck-work watch (which tells a hung TSP from a bad grant)
    cause: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DiskTrouble:
    """The last time a local write found the disk full, for /readyz until a later write succeeds."""
    error: DiskFull
    at: datetime


def state_key(settings: Settings) -> bytes:
    """The OAuth state signing key, derived from the token key so the CLI and daemon agree on it."""
    if settings.token_key is None:
        raise ConfigError("FLEETLAKE_TOKEN_KEY", "is required (generate one with `fleetlake keygen`)")
    return hmac.new(settings.token_key.get_secret_value().encode(), b"fleetlake oauth state", hashlib.sha256).digest()


def _opens(vault: Vault, blob: bytes) -> bool:
    try:
        vault.open(blob)
    except AuthError:
        return False
    return True


class Service:
    def __init__(self, settings: Settings, manifest: Manifest, store: ObjectStore, endpoints: dict[str, TspEndpoint],
                 flows: list[Flow], metrics: Metrics | None = None, clock: Clock | None = None) -> None:
        self.settings = settings
        self.manifest = manifest
        self.store = store
        self.endpoints = endpoints
        self.flows = flows
        self.metrics = metrics or Metrics()
        self.clock = clock or clock_at(settings.resolved_clock_url)
        # Each fleet's tokens are sealed with a data key of its own, kept beside the manifest.
        self.keyring = Keyring(keyring_path(manifest.path),
                               settings.token_key.get_secret_value() if settings.token_key is not None else None)
        # Fleet, credential, key, consent and readiness writes go through here: mirrored to the store for rebuilds.
        self.control = ControlMirror(manifest, store, self.keyring)
        self.webhook = Webhook(settings.alert_webhook_url, on_result=self.metrics.alert_result)
        # The progress of each pull running in this process, for readiness and the API.
        self.live: dict[str, PullProgress] = {}
        # Set by the daemon: told the fleet id whenever a pull lands something (a page, a slice),
        # and holds what its stuck-work watch found (fleet id or "features" -> reason) for status.
        self.on_progress: Callable[[str], None] | None = None
        # Set by the daemon: told the fleet id when a month of its pull is complete (real progress).
        self.on_landed: Callable[[str], None] | None = None
        self.stuck: dict[str, str] = {}
        # The last full disk met by a pull or feature pass, until one succeeds again (for /readyz).
        self.disk_trouble: DiskTrouble | None = None
        # Fleets whose pull is computing a completed month's features (no TSP pages meanwhile).
        self.computing: set[str] = set()

    @property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(request_deadline_s=s.request_deadline_s, max_response_bytes=int(s.max_response_mb * (1 << 20)),
                      min_ping_interval_s=s.min_ping_interval_s)

    # Only consent, pulls and off-boarding touch tokens: read-only commands need no key.
    def vault_for(self, fleet_id: str, create: bool = False) -> Vault:
        """The Vault of one fleet: its own data key, unwrapped with FLEETLAKE_TOKEN_KEY.

        `create` (a consent) makes the key when the fleet has none. Otherwise a missing key is an
        error that says how to get it back: a new key could not open the tokens already stored.
        """
        if self.settings.token_key is None:
            raise ConfigError("FLEETLAKE_TOKEN_KEY", "is required (generate one with `fleetlake keygen`)")
        key = self.control.data_key(fleet_id, create=create)
        if key is None:
            raise AuthError("vault", f"fleet {fleet_id} has no data key in {self.keyring.path}: run `fleetlake "
                                     "manifest rebuild` to restore the keys from the store, or connect the fleet "
                                     "again (--relink)")
        return Vault(key, key_name=f"fleet {fleet_id}'s data key")

    def migrate_credentials(self) -> int:
        """Re-seal credentials an older fleetlake sealed with FLEETLAKE_TOKEN_KEY alone under data keys
        of their own; returns how many fleets. Run at start-up (wiring.open_service), before any pull.

        The manifest is then rewritten into a fresh file: re-sealed in place, the old blobs would stay
        in its free blocks, where the master key would open them after an off-boarding. A blob that
        opens with neither key is left as it is and logged (its pulls fail with that reason).
        """
        if self.settings.token_key is None:
            return 0
        master = Vault(self.settings.token_key.get_secret_value())
        resealed: dict[str, bytes] = {}
        for fleet_id, blob in self.manifest.all_credentials().items():
            key = self.keyring.data_key(fleet_id)
            if key is not None and _opens(Vault(key), blob):
                continue
            if not _opens(master, blob):
                log.warning("fleet %s: its stored tokens open neither with %s nor with FLEETLAKE_TOKEN_KEY; "
                            "restore the keyring with `fleetlake manifest rebuild` or connect it again", fleet_id,
                            "its data key" if key else "a data key (it has none)")
                continue
            resealed[fleet_id] = self.vault_for(fleet_id, create=True).seal(master.open(blob))
        if not resealed:
            return 0
        self.manifest.rewrite(resealed)
        for fleet_id in resealed:
            self.control.sync(fleet_id)  # the store's credentials record too, and the new key
        log.info("sealed the credentials of %d fleets with data keys of their own; the manifest was rewritten "
                 "into a fresh file, so no blob sealed with FLEETLAKE_TOKEN_KEY alone stays in it", len(resealed))
        aside = sorted(p.name for p in self.manifest.path.parent.glob(f"{self.manifest.path.name}.damaged-*"))
        if aside:
            log.warning("files an earlier `manifest rebuild` kept aside (%s) still hold credentials sealed with "
                        "FLEETLAKE_TOKEN_KEY alone: delete them once they are not needed", ", ".join(aside))
        return len(resealed)

    @property
    def signer(self) -> StateSigner:
        return StateSigner(state_key(self.settings))

    # ------------------------------------------------------------------ consent
    def endpoint(self, tsp: str) -> TspEndpoint:
        ep = self.endpoints.get(tsp)
        if ep is None:
            raise ConfigError(f"FLEETLAKE_{tsp.upper()}_CLIENT_ID",
                              f"TSP {tsp!r} is not configured (known: {', '.join(sorted(self.endpoints)) or 'none'})")
        return ep

    def consent_url(self, tsp: str, fleet_id: str, relink: bool = False) -> str:
        """A consent link for `fleet_id`; for a fleet already connected only when `relink` is asked."""
        names.fleet_id(fleet_id)
        ep = self.endpoint(tsp)
        self._refuse_unless_relink(tsp, fleet_id, relink)
        with oauth_client(ep, self.settings) as client:
            return client.consent_url(self.signer.make(tsp, fleet_id, relink=relink))

    def _refuse_unless_relink(self, tsp: str, fleet_id: str, relink: bool) -> None:
        # A revoked fleet needs a new consent, so it takes one without asking; any other known
        # fleet has live tokens that a consent would replace, which only an operator may ask for.
        fleet = self.manifest.fleet(fleet_id)
        if fleet is not None and fleet.status is not FleetStatus.REVOKED and not relink:
            raise ConsentRefused(tsp, f"fleet {fleet_id} is already connected ({fleet.status.value} on {fleet.tsp}); "
                                      "a re-link must be asked for (`fleetlake connect --relink`, or relink=true)")

    def complete_consent(self, tsp: str, code: str, state: str) -> str:
        """Exchange the code, store the tokens encrypted, register the fleet for backfill. Returns its id.

        The state is used up before the code is exchanged, so two racing callbacks with one state
        cannot both get through; a failed exchange then needs a new consent link.
        """
        ep = self.endpoint(tsp)
        consent = self.signer.verify(state, tsp)
        fleet_id = consent.fleet_id
        if not fleet_id:
            raise ConfigError("state", "this consent was started without a fleet id")
        expires = datetime.fromtimestamp(consent.expires_at, timezone.utc)
        if not self.control.use_consent_nonce(consent.nonce, tsp, fleet_id, expires):
            # Logged without the state: it is a credential until it expires.
            log.warning("refused a consent state used before (fleet %s, %s): a replayed callback", fleet_id, tsp)
            raise ConsentRefused(tsp, "this consent link was used already; start the consent again")
        self._refuse_unless_relink(tsp, fleet_id, consent.relink)
        with oauth_client(ep, self.settings) as client:
            FleetCredentials.connect(fleet_id, client, self.vault_for(fleet_id, create=True), self.control, code)
        now = datetime.fromtimestamp(self.clock.now_ms() / 1000, timezone.utc)
        months = self.settings.history_months
        y, m = divmod(now.year * 12 + now.month - 1 - months, 12)
        self.control.set_fleet(fleet_id, tsp, FleetStatus.CONSENTED, consent_at=now,
                               history_start=datetime(y, m + 1, 1, tzinfo=timezone.utc))
        log.info("fleet %s consented on %s; backfill from %04d-%02d queued", fleet_id, tsp, y, m + 1)
        return fleet_id

    # ------------------------------------------------------------------ pulling
    def pull(self, fleet_id: str, stop: threading.Event | None = None,
             progress: Callable[[PullProgress], None] | None = None) -> PullOutcome:
        """Backfill or refresh one fleet: both pull every window not yet complete, from history start to now.

        Months are pulled newest complete first; each month's features run as soon as its raw data
        is complete (`_month_pulled`), so a preliminary quote does not wait for the oldest months.
        """
        fleet = self.manifest.fleet(names.fleet_id(fleet_id))
        if fleet is None:
            raise ConfigError("fleet", f"unknown fleet {fleet_id}")
        if not fleet.status.pullable:
            return PullOutcome(fleet_id, PullResult.REVOKED, None, None, fleet.error)
        ep = self.endpoint(fleet.tsp)
        def told(p: PullProgress) -> None:
            self.live[fleet_id] = p
            if self.on_progress is not None:
                self.on_progress(fleet_id)  # a slice landed: the stuck-work watch sees progress
            if progress is not None:
                progress(p)

        computed: list[FeatureReport] = []
        opts = PullOptions(work_dir=self.settings.work_dir, memory_limit=self.settings.writer_memory_limit,
                           stop=stop or threading.Event(), progress=told, with_events=True,
                           on_month=lambda month: computed.append(self._month_pulled(fleet_id, month)),
                           on_checkpoints=self.control.mirror_checkpoints,
                           on_month_pulled=self.control.mirror_months)
        start_ms = int((fleet.history_start or datetime(1970, 1, 1, tzinfo=timezone.utc)).timestamp() * 1000)
        if fleet.status is FleetStatus.CONSENTED:
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.BACKFILLING)
        elif fleet.status is FleetStatus.ACTIVE:
            # Recorded before the first request: a refresh the process dies in is found at the next start.
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.REFRESHING)
        t0 = time.monotonic()
        try:
            with ExitStack() as closing:
                pings, events = self._pull(closing, fleet_id, fleet.tsp, ep, start_ms, opts)
        except PullInterrupted:
            # Stopped before any slice ran (listing vehicles, say): nothing to commit, status kept.
            return PullOutcome(fleet_id, PullResult.STOPPED, None, None)
        except ConsentRevoked as e:
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.REVOKED, error=str(e))
            return PullOutcome(fleet_id, PullResult.REVOKED, None, None, str(e), cause=e)
        except (TspError, FleetlakeError) as e:
            if isinstance(e, DiskFull):
                self.disk_trouble = DiskTrouble(e, datetime.now(timezone.utc))
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.FAILED, error=str(e))
            return PullOutcome(fleet_id, PullResult.FAILED, None, None, str(e), cause=e)
        except Exception as e:  # noqa: BLE001 - a bug fails this fleet (retried with backoff), not the daemon
            # Left "backfilling", the fleet would be picked up again every poll; its message may
            # hold internal paths, so the record names the type and the log has the rest.
            log.exception("fleet %s: pull failed unexpectedly", fleet_id)
            if is_disk_full(e):  # e.g. the manifest's own write (DuckDB) on a full data dir
                full = DiskFull("FLEETLAKE_DATA_DIR", "the data dir", free_bytes(self.settings.data_dir))
                self.disk_trouble = DiskTrouble(full, datetime.now(timezone.utc))
                error = str(full)
            else:
                error = f"unexpected {type(e).__name__} (a fleetlake bug or a local fault); the daemon's log has details"
            self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.FAILED, error=error)
            return PullOutcome(fleet_id, PullResult.FAILED, None, None, error, cause=e)
        finally:
            self.live.pop(fleet_id, None)
            self.metrics.seconds.labels("pull").observe(time.monotonic() - t0)
        self.metrics.pings.labels(fleet_id).inc(pings.rows_accepted)
        stopped = pings.stopped or bool(events and events.stopped)
        # A stopped backfill stays "backfilling", a stopped refresh "refreshing": the next start
        # resumes either from its checkpoints.
        backfill = fleet.status in (FleetStatus.CONSENTED, FleetStatus.BACKFILLING)
        self.control.set_fleet(fleet_id, fleet.tsp, FleetStatus.ACTIVE if not stopped
                               else FleetStatus.BACKFILLING if backfill else FleetStatus.REFRESHING)
        self.control.sync(fleet_id)  # heals a mirror write that a store hiccup missed
        if not stopped:
            self.disk_trouble = None  # a whole pull's spooling and merging went through
        return PullOutcome(fleet_id, PullResult.STOPPED if stopped else PullResult.ACTIVE, pings, events,
                           features=FeatureReport(tuple(r for rep in computed for r in rep.results)))

    def _pull(self, closing: ExitStack, fleet_id: str, tsp: str, ep: TspEndpoint, start_ms: int,
              opts: PullOptions) -> tuple[PullReport, PullReport | None]:
        """GPS and safety events up to now, month by month, on connections that `closing` closes."""
        oauth = closing.enter_context(oauth_client(ep, self.settings))
        creds = FleetCredentials(fleet_id, oauth, self.vault_for(fleet_id), self.control)
        def on_response(tsp_name: str, status: int) -> None:
            self.metrics.tsp_response(tsp_name, status)
            if self.on_progress is not None and 200 <= status < 300:
                self.on_progress(fleet_id)  # a whole page landed (the hook runs after the body is read)

        connector = open_connector(tsp, fleet_id, ep.api_url, BearerAuth(creds), ep.rate_per_s,
                                   on_response=on_response, limits=self.limits, stop=opts.stop)
        closing.callback(connector.http.close)
        now_ms = self.clock.now_ms()
        pings = pull_fleet(connector, self.store, self.manifest, fleet_id, start_ms, now_ms, opts)
        return pings, pings.events

    def _month_pulled(self, fleet_id: str, month: str) -> FeatureReport:
        """A month's raw data is complete: compute its features now, through the same planner.

        Only this fleet-month's windows run; the pass after the pull finds them current and runs
        nothing again. A failure here is the feature pass's to retry, never the pull's to stop on.
        """
        if self.on_landed is not None:
            self.on_landed(fleet_id)  # every slice of the month is committed: the pull really moves
        self.computing.add(fleet_id)  # the stuck-work watch counts this as the pull being alive
        try:
            report = self.features(where=lambda t: t.fleet_id == fleet_id and t.month == month)
            log.info("fleet %s %s pulled: %d feature windows, %d failed", fleet_id, month, len(report.results),
                     len(report.failed))
            return report
        except Exception:  # noqa: BLE001 - the pull goes on; the daemon's feature pass plans these again
            log.exception("fleet %s %s: features after the month was pulled failed", fleet_id, month)
            return FeatureReport(())
        finally:
            self.computing.discard(fleet_id)
            if self.on_progress is not None:
                self.on_progress(fleet_id)

    def readiness(self, fleet_id: str) -> Readiness:
        """How close a fleet is to a preliminary quote (ingest.readiness); KeyError for an unknown fleet."""
        if self.manifest.fleet(names.fleet_id(fleet_id)) is None:
            raise KeyError(fleet_id)  # before planning: an unknown fleet answers at once
        return readiness(self.manifest, self.flows, plan(self.manifest, self.flows), fleet_id, self.clock.now_ms(),
                         self.settings.readiness_months, self.live.get(fleet_id))

    def check_readiness(self, fleet_id: str) -> list[int]:
        """Fire `fleet.ready_for_quote` for each threshold newly reached, once ever; returns those fired."""
        r = self.readiness(fleet_id)
        fired = []
        for t in r.thresholds:
            if not t.reached or t.fired_at is not None or t.first_month is None or t.last_month is None:
                continue
            # Recorded before it is sent: a crash in between loses one alert rather than sending it twice.
            # Mirrored to the store too: a manifest rebuilt from it never sends this alert again.
            if not self.control.record_readiness(fleet_id, t.months, t.first_month, t.last_month, False):
                continue
            alert = Alert("fleet.ready_for_quote",
                          f"fleet {fleet_id} is ready for a quote: features for the latest {t.months} complete "
                          f"months ({t.first_month} to {t.last_month})",
                          {"fleet_id": fleet_id, "months": t.months, "span": [t.first_month, t.last_month]})
            if self.webhook.send(alert):
                self.control.readiness_delivered(fleet_id, t.months)
            fired.append(t.months)
        return fired

    def features(self, where: Callable[[WindowTask], bool] | None = None,
                 skip_fleets: frozenset[str] = frozenset()) -> FeatureReport:
        """A feature pass: the windows `where` keeps, of every fleet but `skip_fleets` (being pulled)."""
        if not self.flows:
            return FeatureReport(())  # nothing to plan: not even the clock is asked
        t0 = time.monotonic()
        report = run_features(self.manifest, self.flows, self.store.url, self.settings.s3_options(),
                              self.settings.work_dir / "cache", self.clock.now_ms(), self.settings.flow_workers,
                              where=where, skip_fleets=skip_fleets, executor=self.settings.executor,
                              ray_address=self.settings.ray_address)
        self.metrics.seconds.labels("features").observe(time.monotonic() - t0)
        if any((r.error or "").startswith(DiskFull.__name__) for r in report.failed):
            err = DiskFull("FLEETLAKE_DATA_DIR", "work/cache", free_bytes(self.settings.work_dir))
            self.disk_trouble = DiskTrouble(err, datetime.now(timezone.utc))
        elif report.results and not report.failed:
            self.disk_trouble = None
        for r in report.results:
            self.metrics.windows.labels(r.task.flow, r.status).inc()
        for fleet_id in sorted({r.task.fleet_id for r in report.results}):
            self.check_readiness(fleet_id)  # a threshold is reached only by windows that just ran
        return report

    # ------------------------------------------------------------------ reporting
    # Reads go through `manifest.reading()`: a connection of their own, so the API answers while
    # pull workers hold the writer's lock for a commit.
    def fleets(self) -> list[FleetView]:
        with self.manifest.reading() as m:
            return [FleetView.of(f, self.stuck.get(f.fleet_id)) for f in m.fleets()]

    def fleet(self, fleet_id: str) -> FleetView:
        """One fleet, or KeyError."""
        with self.manifest.reading() as m:
            return self._fleet(m, fleet_id)

    def _fleet(self, m: Manifest, fleet_id: str) -> FleetView:
        fleet = m.fleet(names.fleet_id(fleet_id))
        if fleet is None:
            raise KeyError(fleet_id)
        return FleetView.of(fleet, self.stuck.get(fleet.fleet_id))

    def status(self, fleet_id: str) -> FleetGrid:
        """One fleet's grid: per month, raw rows per dataset and the state of each active flow version.

        Plans this fleet only, on a read view: it neither waits for the writer nor scales with the book.
        """
        with self.manifest.reading() as m:
            fleet = self._fleet(m, fleet_id)
            raw: dict[str, dict[str, int]] = {}
            for p in m.raw_partitions(fleet_id):
                raw.setdefault(p.month, {})[p.dataset] = p.rows
            failed = {r.window for r in m.latest_runs(fleet_id) if r.status is RunStatus.FAILED}
            pending = {(t.flow, t.version, t.month) for t in plan(m, self.flows, fleet_id, check=False)}
        months = {}
        for month, datasets in raw.items():
            states = {}
            for f in self.flows:
                window = (f.name, f.version, month)
                states[f"{f.name}@{f.version}"] = (WindowState.DONE if window not in pending else
                                                   WindowState.FAILED if window in failed else WindowState.PENDING)
            months[month] = MonthRow(datasets, states)
        return FleetGrid(fleet, dict(sorted(months.items())))

    def features_of(self, fleet_id: str, month: str | None = None) -> FleetFeatures:
        """The fleet roll-up row of each active flow's newest succeeded run (per month)."""
        if month is not None:
            names.month(month)
        with self.manifest.reading() as m:
            self._fleet(m, fleet_id)
            runs = m.latest_runs(fleet_id, succeeded_only=True)
        active = {(f.name, f.version) for f in self.flows}
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for run in runs:
            if (run.flow, run.version) not in active or (month and run.month != month):
                continue
            paths = local_files(self.store, list(run.outputs), self.settings.work_dir / "cache")
            rows = [r for p in paths for r in pq.read_table(p).to_pylist() if r.get("vehicle_id") is None]
            out.setdefault(run.month, {})[f"{run.flow}@{run.version}"] = [_plain(r) for r in rows]
        return FleetFeatures(fleet_id, dict(sorted(out.items())))


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}

"""What the CLI can ask of fleetlake, answered by the local app or by a running daemon's API.

The daemon holds the manifest while it runs (one writer), so a command then asks its JSON API
instead; without a daemon, the command opens the manifest itself. Either way the CLI sees one
small interface and the same typed values (`ingest.reads.views`), so each command is written once.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

import httpx

from common.errors import ConfigError, FleetlakeError, ManifestLocked, UnknownFleet
from common.states import PullResult, WorkKind, WorkOutcome
from ingest.fleets.offboarding import OffboardOutcome, offboard
from ingest.pull.backfill import PullProgress
from ingest.pull.pulls import PullOutcome
from ingest.reads.readiness import Readiness
from ingest.reads.views import FleetFeatures, FleetGrid, FleetView
from ingest.runtime.app import App, open_app, open_manifest, with_token_key
from ingest.runtime.pipeline import Pipeline, Runner, feature_report, pull_outcomes
from ingest.runtime.workqueue import Work
from ingest.surfaces.api import UNKNOWN_FLEET
from ingest.surfaces.progress import ProgressBar
from ingest.wiring.settings import Settings


@dataclass(frozen=True)
class WorkDone:
    """What a backfill or refresh request did (local) or started (daemon), as lines to print."""
    lines: tuple[str, ...]
    ok: bool = True
    failures: tuple[str, ...] = field(default=())


class Control(Protocol):
    def fleets(self) -> list[FleetView]: ...
    def status(self, fleet_id: str) -> FleetGrid: ...  # UnknownFleet (a KeyError) for an unknown fleet
    def features(self, fleet_id: str, month: str | None) -> FleetFeatures: ...  # KeyError likewise
    def readiness(self, fleet_id: str) -> Readiness: ...  # KeyError likewise
    def quote(self, fleet_id: str) -> dict[str, Any] | None: ...  # the quote's JSON, None before the first
    def consent_url(self, tsp: str, fleet_id: str, relink: bool = False) -> str: ...
    def complete_consent(self, tsp: str, code: str, state: str) -> str: ...
    def pull(self, kind: WorkKind, fleet_id: str | None) -> WorkDone: ...
    def offboard(self, fleet_id: str, operator: str) -> OffboardOutcome: ...  # UnknownFleet (a KeyError) for an unknown fleet


class LocalControl:
    """The app on this process's own manifest: work runs here and now, through the same pipeline
    as in the daemon (`Runner`), with a progress bar on a terminal."""

    def __init__(self, app: App) -> None:
        self.app = app

    def fleets(self) -> list[FleetView]:
        return self.app.reads.fleets()

    def status(self, fleet_id: str) -> FleetGrid:
        return self.app.reads.status(fleet_id)

    def features(self, fleet_id: str, month: str | None) -> FleetFeatures:
        return self.app.reads.features(fleet_id, month)

    def readiness(self, fleet_id: str) -> Readiness:
        return self.app.reads.readiness(fleet_id)

    def quote(self, fleet_id: str) -> dict[str, Any] | None:
        q = self.app.reads.quote(fleet_id)
        return q.to_json() if q is not None else None

    def consent_url(self, tsp: str, fleet_id: str, relink: bool = False) -> str:
        return self.app.onboarding.consent_url(tsp, fleet_id, relink)

    def complete_consent(self, tsp: str, code: str, state: str) -> str:
        return self.app.onboarding.complete_consent(tsp, code, state)

    def offboard(self, fleet_id: str, operator: str) -> OffboardOutcome:
        return offboard(self.app, fleet_id, operator)

    def pull(self, kind: WorkKind, fleet_id: str | None) -> WorkDone:
        if fleet_id is not None:
            self.app.reads.fleet(fleet_id)  # UnknownFleet before any work starts
        bars: dict[str, ProgressBar] = {}

        def progress(work: Work, p: PullProgress) -> None:
            bars.setdefault(p.fleet_id, ProgressBar(f"pull {p.fleet_id}"))(p)

        pipeline = Pipeline(self.app, on_progress=progress)
        submit = (lambda: pipeline.backfill(fleet_id)) if kind is WorkKind.BACKFILL and fleet_id else \
            (lambda: pipeline.refresh(fleet_id))
        done = Runner(pipeline).run_until_idle(submit)
        lines, failures = [], []
        for o in pull_outcomes(done):
            lines.append(_pull_line(o))
            if o.result is not PullResult.ACTIVE:
                failures.append(o.fleet_id)
        errors = [f"{w.key}: {r}" for w, r in done if r.outcome is WorkOutcome.ERROR]
        report = feature_report(done)
        lines.append(f"features: {len(report.results)} windows, {len(report.failed)} failed")
        lines += [f"  {r.fleet_id} {r.flow}@{r.version} {r.month}: {r.error}" for r in report.failed]
        lines += errors
        return WorkDone(tuple(lines), not failures and not report.failed and not errors, tuple(failures))


def _pull_line(o: PullOutcome) -> str:
    if o.pings is None:
        return f"{o.fleet_id}: {o.result.value}: {o.error}"
    months = o.pings.months_changed
    span = ", ".join(months) if len(months) <= 3 else f"{months[0]}..{months[-1]} ({len(months)})"
    return (f"{o.fleet_id}: {o.result.value}: {o.pings.slices_pulled} slices, {o.pings.rows_accepted:,} pings, "
            f"{o.events.rows_accepted if o.events else 0} events, months committed: {span}")


class DaemonClient:
    """The running daemon's JSON API, for commands run while it holds the manifest."""

    def __init__(self, settings: Settings) -> None:
        if settings.api_token is None:
            raise ConfigError("FLEETLAKE_API_TOKEN", "the daemon holds the manifest; set the API token to ask it")
        host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
        self.http = httpx.Client(base_url=f"http://{host}:{settings.http_port}", timeout=60,
                                 headers={"Authorization": f"Bearer {settings.api_token.get_secret_value()}"})

    def close(self) -> None:
        self.http.close()

    def offboard(self, fleet_id: str, operator: str) -> OffboardOutcome:
        return OffboardOutcome.from_json(self._call("DELETE", f"/fleets/{fleet_id}", operator=operator))

    def _call(self, method: str, path: str, **params: str | None) -> Any:
        try:
            r = self.http.request(method, path, params={k: v for k, v in params.items() if v is not None})
        except httpx.HTTPError as e:
            raise FleetlakeError(f"the manifest is held by a daemon, but its API does not answer: "
                                 f"{type(e).__name__}") from None
        if r.status_code == 404 and _code(r) == UNKNOWN_FLEET:
            raise UnknownFleet(path.split("/")[2] if path.startswith("/fleets/") else path)
        if r.status_code >= 400:
            try:
                message = str(r.json().get("error", ""))[:300]
            except ValueError:
                message = r.text[:300]
            raise FleetlakeError(f"daemon answered {r.status_code}: {message}")
        return r.json()

    def fleets(self) -> list[FleetView]:
        return [FleetView.from_json(d) for d in self._call("GET", "/fleets")]

    def status(self, fleet_id: str) -> FleetGrid:
        return FleetGrid.from_json(self._call("GET", f"/fleets/{fleet_id}/status"))

    def features(self, fleet_id: str, month: str | None) -> FleetFeatures:
        return FleetFeatures.from_json(self._call("GET", f"/fleets/{fleet_id}/features", month=month))

    def readiness(self, fleet_id: str) -> Readiness:
        return Readiness.from_json(self._call("GET", f"/fleets/{fleet_id}/readiness"))

    def quote(self, fleet_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._call("GET", f"/fleets/{fleet_id}/quote"))
        except FleetlakeError as e:
            if "no quote yet" in str(e):
                return None
            raise

    def consent_url(self, tsp: str, fleet_id: str, relink: bool = False) -> str:
        return str(self._call("POST", f"/connect/{tsp}", fleet_id=fleet_id,
                              relink="true" if relink else None)["consent_url"])

    def complete_consent(self, tsp: str, code: str, state: str) -> str:
        raise FleetlakeError("a daemon is running: open the consent URL and let the TSP redirect to its callback")

    def pull(self, kind: WorkKind, fleet_id: str | None) -> WorkDone:
        if fleet_id:
            path = f"/fleets/{fleet_id}/{kind.value}"
        else:
            path = "/refresh"
        answer = self._call("POST", path)
        queued = "queued" if answer.get("queued") else "already queued"
        return WorkDone((f"{kind.value} {fleet_id or 'every fleet'}: {queued} on the daemon "
                         f"(`fleetlake status` shows its progress)",))


@contextmanager
def open_control(settings: Settings, needs_key: bool = False) -> Iterator[Control]:
    """The local service, or the daemon's API when a daemon holds the manifest.

    `needs_key`: the command handles TSP tokens, so it gets the local key when none is configured.
    """
    try:
        manifest = open_manifest(settings)
    except ManifestLocked:
        client = DaemonClient(settings)
        try:
            yield client
        finally:
            client.close()
        return
    with manifest, open_app(with_token_key(settings) if needs_key else settings, manifest=manifest) as app:
        yield LocalControl(app)


def _code(r: httpx.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None

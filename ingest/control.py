"""What the CLI can ask of fleetlake, answered by the local service or by a running daemon's API.

The daemon holds the manifest while it runs (one writer), so a command then asks its JSON API
instead; without a daemon, the command opens the manifest itself. Either way the CLI sees one
small interface and the same typed values (`ingest.views`), so each command is written once.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

import httpx

from common.errors import ConfigError, FleetlakeError, ManifestLocked
from common.states import PullResult, WorkKind
from ingest.features import FeatureReport
from ingest.offboarding import OffboardOutcome, offboard
from ingest.progress import ProgressBar
from ingest.readiness import Readiness
from ingest.service import PullOutcome, Service
from ingest.settings import Settings
from ingest.views import FleetFeatures, FleetGrid, FleetView
from ingest.wiring import open_manifest, open_service, with_token_key


@dataclass(frozen=True)
class WorkDone:
    """What a backfill or refresh request did (local) or started (daemon), as lines to print."""
    lines: tuple[str, ...]
    ok: bool = True
    failures: tuple[str, ...] = field(default=())


class Control(Protocol):
    def fleets(self) -> list[FleetView]: ...
    def status(self, fleet_id: str) -> FleetGrid: ...  # KeyError for an unknown fleet
    def features(self, fleet_id: str, month: str | None) -> FleetFeatures: ...  # KeyError likewise
    def readiness(self, fleet_id: str) -> Readiness: ...  # KeyError likewise
    def consent_url(self, tsp: str, fleet_id: str, relink: bool = False) -> str: ...
    def complete_consent(self, tsp: str, code: str, state: str) -> str: ...
    def pull(self, kind: WorkKind, fleet_id: str | None) -> WorkDone: ...
    def offboard(self, fleet_id: str, operator: str) -> OffboardOutcome: ...  # KeyError for an unknown fleet


class LocalControl:
    """The service on this process's own manifest: work runs here and now, with a progress bar."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def fleets(self) -> list[FleetView]:
        return self.service.fleets()

    def status(self, fleet_id: str) -> FleetGrid:
        return self.service.status(fleet_id)

    def features(self, fleet_id: str, month: str | None) -> FleetFeatures:
        return self.service.features_of(fleet_id, month)

    def readiness(self, fleet_id: str) -> Readiness:
        return self.service.readiness(fleet_id)

    def consent_url(self, tsp: str, fleet_id: str, relink: bool = False) -> str:
        return self.service.consent_url(tsp, fleet_id, relink)

    def complete_consent(self, tsp: str, code: str, state: str) -> str:
        return self.service.complete_consent(tsp, code, state)

    def offboard(self, fleet_id: str, operator: str) -> OffboardOutcome:
        return offboard(self.service, fleet_id, operator)

    def pull(self, kind: WorkKind, fleet_id: str | None) -> WorkDone:
        targets = [fleet_id] if fleet_id else [f.fleet_id for f in self.service.fleets() if f.status.pullable]
        lines, failures, outcomes = [], [], []
        for fid in targets:
            o = self.service.pull(fid, progress=ProgressBar(f"pull {fid}"))
            outcomes.append(o)
            lines.append(_pull_line(o))
            if o.result is not PullResult.ACTIVE:
                failures.append(fid)
        during = [r for o in outcomes for r in o.features.results]  # computed as each month completed
        report = FeatureReport((*during, *self.service.features().results))
        lines.append(f"features: {len(report.results)} windows, {len(report.failed)} failed")
        lines += [f"  {r.task.fleet_id} {r.task.flow}@{r.task.version} {r.task.month}: {r.error}"
                  for r in report.failed]
        return WorkDone(tuple(lines), not failures and not report.failed, tuple(failures))


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
        if r.status_code == 404 and "unknown fleet" in r.text:
            raise KeyError(path)
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

    def consent_url(self, tsp: str, fleet_id: str, relink: bool = False) -> str:
        return str(self._call("POST", f"/connect/{tsp}", fleet_id=fleet_id,
                              relink="true" if relink else None)["consent_url"])

    def complete_consent(self, tsp: str, code: str, state: str) -> str:
        raise FleetlakeError("a daemon is running: open the consent URL and let the TSP redirect to its callback")

    def pull(self, kind: WorkKind, fleet_id: str | None) -> WorkDone:
        if fleet_id:
            path = f"/fleets/{fleet_id}/{'backfill' if kind is WorkKind.PULL else 'refresh'}"
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
    with manifest, open_service(with_token_key(settings) if needs_key else settings, manifest=manifest) as service:
        yield LocalControl(service)

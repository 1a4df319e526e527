"""The console's book of fleets: what the manifest's book queries answer (landings, and the ready
months of every fleet at once), with each fleet's expected months (history start to now) and, for
failed work, when the daemon tries it again. Nothing here opens Parquet or plans a fleet: a page
over 1,000 fleets costs two set-based queries, whatever the lake holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from common.states import WorkKind
from ingest.reads.readiness import BookReadiness
from ingest.reads.views import BookLine
from ingest.runtime.backoff import RetryAt, RetrySchedule
from ingest.runtime.workqueue import Work


@dataclass(frozen=True)
class FleetRow:
    """One fleet as the fleets page lists it. `status` stays a string: the page shows any state the
    manifest holds (a newer daemon may know states this console does not)."""
    fleet_id: str
    tsp: str
    status: str
    error: str | None
    months: int             # months of pings landed
    months_expected: int    # history start to the current month, both included
    pings: int
    events: int
    last_landed: datetime | None
    updated_at: datetime | None
    readiness: BookReadiness
    pull_retry: RetryAt | None = None      # a failed pull: when the daemon pulls it again
    features_retry: RetryAt | None = None  # failed windows: when the daemon runs them again

    @property
    def progress(self) -> float:
        """Share of the history's months landed (a backfill's progress)."""
        return min(1.0, self.months / self.months_expected) if self.months_expected else 0.0


def _months_between(start: datetime | None, now: datetime) -> int:
    if start is None:
        return 0
    return max(0, (now.year - start.year) * 12 + now.month - start.month + 1)


def fleet_book(lines: list[BookLine], now: datetime, retries: RetrySchedule | None = None) -> list[FleetRow]:
    """Every fleet with its landed months against those expected by now, its readiness, and its retries
    (`retries`: the daemon's backoff, read-only; None where no daemon runs the work)."""
    def retry(kind: WorkKind, fleet_id: str) -> RetryAt | None:
        return retries.next_retry(Work(kind, fleet_id).key) if retries is not None else None

    return [FleetRow(f.fleet_id, f.tsp, f.status, f.error, f.months, _months_between(f.history_start, now), f.pings,
                     f.events, f.last_landed, f.updated_at, line.readiness,
                     retry(WorkKind.BACKFILL, f.fleet_id), retry(WorkKind.FEATURES, f.fleet_id))
            for line in lines for f in (line.landing,)]

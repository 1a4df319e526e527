"""The console's reads of the manifest: the whole book of fleets in one set-based query, and the
extras of one fleet's grid (windows recomputed, recent runs). Nothing here opens Parquet: a page
over 1,000 fleets must cost one query, whatever the lake holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from partitions.manifest import Manifest

_BOOK_SQL = """
WITH raw AS (
    SELECT fleet_id,
           count(*) FILTER (WHERE dataset = 'pings') AS months,
           coalesce(sum(rows) FILTER (WHERE dataset = 'pings'), 0) AS pings,
           coalesce(sum(rows) FILTER (WHERE dataset = 'events'), 0) AS events,
           max(committed_at) AS last_landed
    FROM raw_partitions GROUP BY fleet_id
)
SELECT f.fleet_id, f.tsp, f.status, f.error, f.history_start, f.updated_at,
       coalesce(r.months, 0), coalesce(r.pings, 0), coalesce(r.events, 0), r.last_landed
FROM fleets f LEFT JOIN raw r USING (fleet_id)
ORDER BY f.fleet_id
"""


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

    @property
    def progress(self) -> float:
        """Share of the history's months landed (a backfill's progress)."""
        return min(1.0, self.months / self.months_expected) if self.months_expected else 0.0


def _utc(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


def _months_between(start: datetime | None, now: datetime) -> int:
    if start is None:
        return 0
    return max(0, (now.year - start.year) * 12 + now.month - start.month + 1)


def fleet_book(manifest: Manifest, now: datetime) -> list[FleetRow]:
    """Every fleet with its landed months, pings, events and last landing: one query."""
    return [FleetRow(r[0], r[1], str(r[2]), r[3], int(r[6]), _months_between(_utc(r[4]), now), int(r[7]), int(r[8]),
                     _utc(r[9]), _utc(r[5]))
            for r in manifest.select(_BOOK_SQL)]


@dataclass(frozen=True)
class RunLine:
    """A feature run of the fleet, for the work log."""
    flow: str
    version: int
    month: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


def recomputed_windows(manifest: Manifest, fleet_id: str) -> set[tuple[str, int, str]]:
    """(flow, version, month) windows that succeeded on more than one set of inputs: late or new data
    changed the month after it was first computed."""
    rows = manifest.select("""
        SELECT flow, version, month FROM flow_runs WHERE fleet_id = ? AND status = 'succeeded'
        GROUP BY flow, version, month HAVING count(DISTINCT input_fp) > 1""", [fleet_id])
    return {(r[0], int(r[1]), r[2]) for r in rows}


def recent_runs(manifest: Manifest, fleet_id: str, limit: int = 30) -> list[RunLine]:
    rows = manifest.select("""
        SELECT flow, version, month, status, started_at, finished_at, error FROM flow_runs
        WHERE fleet_id = ? ORDER BY started_at DESC, run_id DESC LIMIT ?""", [fleet_id, limit])
    return [RunLine(r[0], int(r[1]), r[2], str(r[3]), _utc(r[4]), _utc(r[5]), r[6]) for r in rows]

"""The console's book of fleets: what the manifest's one book query answers, with each fleet's
expected months (history start to now). Nothing here opens Parquet: a page over 1,000 fleets
must cost one query, whatever the lake holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from partitions.manifest import FleetLanding


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


def _months_between(start: datetime | None, now: datetime) -> int:
    if start is None:
        return 0
    return max(0, (now.year - start.year) * 12 + now.month - start.month + 1)


def fleet_book(landings: list[FleetLanding], now: datetime) -> list[FleetRow]:
    """Every fleet with its landed months against those expected by now."""
    return [FleetRow(f.fleet_id, f.tsp, f.status, f.error, f.months, _months_between(f.history_start, now), f.pings,
                     f.events, f.last_landed, f.updated_at) for f in landings]

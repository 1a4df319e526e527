"""What a pull pulls, as data: per TSP, the streams of a fleet, each a dataset from one endpoint.

A stream is pulled in slices on a fixed grid (per vehicle, or fleet-wide for sparse data), and
checkpointed by slice under its `name`, so the names are part of every manifest and must not
change. Adding a dataset to the backfill and the refresh is one entry per TSP here (the
connector method it names, the dataset its rows land in), not a new loop in the pull:

- `endpoint`: the connector method, called as (vehicle id, start, end) for `vehicle` slicing and
  (start, end) for `fleet` slicing; it returns candidate rows of `dataset`.
- `slice_ms`: the grid; None takes the connector's own (its API's efficient span).
- `lookback_ms`: a slice ending less than this before now is pulled again next time (late data).
- `fetch`: the connector method (same arguments) that fetches a slice's pages without reading
  them (connectors.pages.Fetched): how a slice still in the lookback is pulled, so a refresh
  whose pages hold the records it committed last time reads nothing again (ingest/pull/lookback.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DAY_MS = 86_400_000
DEFAULT_LOOKBACK_MS = 3 * DAY_MS
EVENT_SLICE_MS = 28 * DAY_MS  # fleet-wide slices: events are few


@dataclass(frozen=True)
class Stream:
    kind: str                           # short name in checkpoint names: gps, events, ...
    dataset: str                        # the raw dataset its rows land in (partitions.schema)
    endpoint: str                       # the connector method that pulls one slice
    slicing: Literal["vehicle", "fleet"]
    slice_ms: int | None = None         # None: the connector's slice_ms
    lookback_ms: int = DEFAULT_LOOKBACK_MS
    with_events: bool = False           # pulled only when the pull asks for the fleet's events too
    fetch: str = ""                     # the connector method fetching a slice's pages unread ("": none)

    def grid_ms(self, connector_slice_ms: int) -> int:
        return self.slice_ms or connector_slice_ms

    def name(self, tsp: str, connector_slice_ms: int) -> str:
        """The checkpoint stream name: `<tsp>/<kind>/<grid ms>` (what the manifest already holds)."""
        return f"{tsp}/{self.kind}/{self.grid_ms(connector_slice_ms)}"


GPS = Stream("gps", "pings", "gps_slice", "vehicle", fetch="gps_fetch")
EVENTS = Stream("events", "events", "events_slice", "fleet", EVENT_SLICE_MS, with_events=True, fetch="events_fetch")

# Drivers' hours of service: a month is one task, pulled whole (ingest/pull/hos_datasets.py) and
# checkpointed by month (`HosPull.stream`), not on a grid, so it is in no TSP's row below; the pull
# runs it in a lane beside the month's slices, on the same workers.
HOS = Stream("hos", "hos", "hos_month", "fleet")

# Both TSPs serve the same two streams today; a TSP's row differs once its endpoints do.
STREAMS: dict[str, tuple[Stream, ...]] = {
    "samsara": (GPS, EVENTS),
    "motive": (GPS, EVENTS),
}


def streams_of(tsp: str, with_events: bool) -> tuple[Stream, ...]:
    return tuple(s for s in STREAMS.get(tsp, (GPS, EVENTS)) if with_events or not s.with_events)

"""Drivers and hours of service in a fleet's pull: the drivers snapshot, and per month the
driver-vehicle assignments, HOS duty-status logs and HOS violations.

The backfill (ingest/pull/backfill.py) pulls each month's HOS data, in its order (newest complete
month first), as one task beside the month's slices (`spool_month`, run by a pull worker like a
slice: streams.HOS) before it commits the month, so a month counts as pulled only with its HOS
data; the drivers snapshot is pulled once per pull, in the daemon. `HosPull.pull_month` is the
same month into a writer in one process. Why a month is pulled whole:

- the drivers are a snapshot, not a history: one per fleet (layout.SNAPSHOT_DATASETS), filed under
  the month it was taken in and replaced whole by each pull's;
- drivers edit their logs afterwards and a TSP recomputes violations from the edited logs, so a
  month's HOS can change for days after it ends; a whole month re-pulled replaces the committed
  one (partitions.writer.REPLACED) and an edited or withdrawn record does not linger;
- a month is checkpointed (stream `<tsp>/hos/month`, one key per month) only once it ended more
  than FLEETLAKE_HOS_LOOKBACK_DAYS before now. A refresh therefore pulls again every month that
  still can change, and a resumed backfill re-pulls nothing it completed;
- records crossing a month's end are cut there (connectors.hos.clip): each month's partition alone
  says who was logged in and in which status during it, so a late edit changes only its month.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from common.months import month_bounds_ms
from connectors.hos import clip, inside
from partitions.manifest import Manifest
from partitions.schema import DRIVER_CANDIDATE_SCHEMA
from partitions.writer import MonthWriter, Spooled, spool_batch

DAY_MS = 86_400_000
DEFAULT_HOS_LOOKBACK_DAYS = 14
DATASETS = ("assignments", "hos_logs", "hos_violations")


@dataclass(frozen=True)
class HosPull:
    lookback_ms: int = DEFAULT_HOS_LOOKBACK_DAYS * DAY_MS

    @staticmethod
    def stream(connector: Any) -> str:
        return f"{connector.tsp}/hos/month"

    def pending(self, connector: Any, manifest: Manifest, fleet_id: str, months: list[str]) -> set[str]:
        """The months whose HOS data is still to pull (not checkpointed)."""
        done = manifest.completed_slices(fleet_id, self.stream(connector))
        return {m for m in months if m not in done}

    def pull_drivers(self, connector: Any, writer: MonthWriter) -> int:
        """The fleet's drivers as of now, only their ids and names (docs/storage.md): the commit
        replaces the fleet's drivers snapshot whole."""
        drivers = connector.drivers()
        tsp = connector.source
        table = pa.table({"fleet_id": [writer.fleet_id] * len(drivers), "driver_id": [d.driver_id for d in drivers],
                          "name": [d.name for d in drivers], "source": [tsp] * len(drivers)},
                         schema=DRIVER_CANDIDATE_SCHEMA)
        writer.add_drivers(table)
        return table.num_rows

    def pull_month(self, connector: Any, writer: MonthWriter, month: str, now_ms: int) -> int:
        """Every HOS record of `month` (up to now) into the writer, cut to the month; rows seen."""
        spooled, rows = spool_month(connector, writer.fleet_id, month, now_ms, writer.spool_dir,
                                    f"hos-{uuid.uuid4().hex}")
        land_month(writer, month, spooled)
        return rows

    def checkpoint(self, connector: Any, manifest: Manifest, fleet_id: str, month: str, rows: int,
                   now_ms: int) -> bool:
        """Record the month as pulled for good once it can no longer change; whether it was."""
        if month_bounds_ms(month)[1] > now_ms - self.lookback_ms:
            return False
        manifest.complete_slice(fleet_id, self.stream(connector), month, "hos", rows)
        return True


def month_tables(connector: Any, month: str, now_ms: int) -> dict[str, pa.Table]:
    """Every HOS record of `month` up to now, cut to the month, by dataset; none before the month began."""
    lo, hi = month_bounds_ms(month)
    end = min(hi, now_ms)
    if end <= lo:
        return {}
    hos = connector.hos
    out = {}
    for dataset in DATASETS:
        table = getattr(hos, dataset)(lo, end)
        # A record of another month goes; one with an implausible time stays, to be quarantined.
        out[dataset] = clip(table, lo, hi, now_ms) if dataset != "hos_violations" else inside(table, "ts", lo, hi,
                                                                                                now_ms)
    return out


def spool_month(connector: Any, fleet_id: str, month: str, now_ms: int, spool_dir: Path | None,
                name: str) -> tuple[Spooled, int]:
    """`month_tables` validated and spooled, as a pull worker does it (ingest.pull.slices); rows seen.

    The daemon then declares the month's datasets replaced (`replace_month`) and adopts the spool:
    what `HosPull.pull_month` does in one process, with the fetch and the decode out of the
    daemon's (docs/scale.md: the HOS pull was a fifth of its Python CPU).
    """
    tables = month_tables(connector, month, now_ms)
    spooled = Spooled.join(spool_batch(fleet_id, dataset, table, now_ms, spool_dir, f"{name}-{dataset}")
                           for dataset, table in tables.items())
    return spooled, sum(t.num_rows for t in tables.values())


def land_month(writer: MonthWriter, month: str, spooled: Spooled) -> None:
    """A month's `spool_month` into the writer: each dataset it pulled (whole, only now that it
    was) replaces the committed month at the commit, also with nothing when the TSP has nothing
    left of it."""
    for dataset in spooled.accepted_hos:  # every dataset spooled, with 0 rows too (spool_split)
        writer.replace_month(dataset, month)
    writer.adopt(spooled)

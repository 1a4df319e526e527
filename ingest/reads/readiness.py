"""How close a fleet is to a preliminary quote: months with features, the span, the rate and an ETA.

An underwriter can quote once the newest complete months have features; the backfill pulls them
first (ingest.pull.backfill). `readiness` answers from the manifest alone (plus the live progress
of a pull running in this process, when there is one), so the API and the CLI report the same:

- a month is *ready* when it is complete (UTC month ended), its raw data is all pulled, and every
  active flow version has a current succeeded run for it (the planner has nothing for it). A
  complete, pulled month without any raw data has nothing to compute and counts as ready;
- the *span* is the run of ready months back from the newest complete month: a quote reads
  the latest N months, so a ready month behind a gap does not extend it;
- a *threshold* N (settings.readiness_months) is reached when the span holds N months; it fires
  the webhook event `fleet.ready_for_quote` once, recorded in the manifest before it is sent, so a
  restart never sends it again (at most once: a lost delivery is logged and counted, not repeated);
- the rate is pings landed per minute: the live pull's, or else the fleet's checkpoints over the
  last hour; the ETA extrapolates the pings still to pull (months to pull x mean pings of a
  pulled month) at that rate. A figure that cannot be measured yet is null with the reason.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from common.months import month_bounds_ms, month_of_ms, months_between
from common.states import FleetStatus, RunStatus
from ingest.engine.planner import WindowTask
from ingest.flows.base import Flow
from ingest.pull.backfill import PullProgress
from partitions.manifest import FleetLanding, ManifestReader

RATE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Threshold:
    months: int
    reached: bool
    first_month: str | None = None
    last_month: str | None = None
    fired_at: datetime | None = None
    delivered: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"months": self.months, "reached": self.reached,
                "span": [self.first_month, self.last_month] if self.first_month else None,
                "fired_at": self.fired_at.isoformat() if self.fired_at else None, "delivered": self.delivered}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Threshold:
        span = d.get("span") or [None, None]
        return cls(int(d["months"]), bool(d["reached"]), span[0], span[1],
                   datetime.fromisoformat(d["fired_at"]) if d.get("fired_at") else None, d.get("delivered"))


@dataclass(frozen=True)
class Readiness:
    fleet_id: str
    status: str
    months_total: int                    # every month of the history, the open one included
    months_ready: tuple[str, ...]        # complete, pulled, features current
    span: tuple[str, str] | None         # (oldest, newest) of the ready run back from the newest complete month
    months_to_pull: tuple[str, ...]
    pings: int                           # landed in the lake
    pings_per_min: float | None
    eta_s: float | None                  # to the full history
    thresholds: tuple[Threshold, ...]
    pulling: str | None = None           # the month a pull in this process is on
    notes: dict[str, str] = field(default_factory=dict)  # why a figure is null

    def to_json(self) -> dict[str, Any]:
        return {"fleet_id": self.fleet_id, "status": self.status, "months_total": self.months_total,
                "months_done": len(self.months_ready), "months_ready": list(self.months_ready),
                "span": list(self.span) if self.span else None, "months_to_pull": list(self.months_to_pull),
                "pings": self.pings, "pings_per_min": self.pings_per_min, "eta_s": self.eta_s,
                "thresholds": [t.to_json() for t in self.thresholds], "pulling": self.pulling,
                "notes": dict(self.notes)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Readiness:
        return cls(d["fleet_id"], d["status"], int(d["months_total"]), tuple(d["months_ready"]),
                   (d["span"][0], d["span"][1]) if d.get("span") else None, tuple(d["months_to_pull"]),
                   int(d["pings"]), d.get("pings_per_min"), d.get("eta_s"),
                   tuple(Threshold.from_json(t) for t in d.get("thresholds", [])), d.get("pulling"),
                   dict(d.get("notes", {})))


def complete_months(history_start: datetime | None, now_ms: int) -> list[str]:
    """The fleet's history months that have ended by `now_ms`, oldest first (none without a history start)."""
    if history_start is None:
        return []
    return [m for m in months_between(int(history_start.timestamp() * 1000), now_ms) if month_bounds_ms(m)[1] <= now_ms]


def quote_span(complete: list[str], ready: Collection[str]) -> list[str]:
    """The ready months back from the newest complete month, newest first, up to the first gap: a
    quote reads the latest N months, so a ready month behind a gap does not count."""
    span: list[str] = []
    for m in reversed(complete):
        if m not in ready:
            break
        span.append(m)
    return span


@dataclass(frozen=True)
class BookReadiness:
    """One fleet's readiness as the book lists it, from the book's ready months (one query for every
    fleet, `ManifestReader.ready_months`) rather than a plan of each fleet: the same months
    `readiness` counts ready, without the rate, the ETA or the webhook's record."""
    months_complete: int            # history months that have ended
    months_ready: int               # of those: pulled, with every active flow's features current
    span: int                       # ready months back from the newest complete month
    ready_for: int | None           # the largest threshold N the span reaches (a quote on the latest N)
    next_threshold: int | None      # the smallest threshold it does not reach yet
    waiting_on: str | None          # the newest complete month when it is not ready (what holds the span)


def book_readiness(landings: list[FleetLanding], ready: dict[str, tuple[str, ...]], now_ms: int,
                   thresholds: list[int]) -> dict[str, BookReadiness]:
    """Each fleet's readiness from the book's ready months (`ready`: fleet -> its ready months)."""
    starts = [f.history_start for f in landings if f.history_start is not None]
    # Every complete month since the oldest history start, once: a fleet's are a tail of it.
    months = complete_months(min(starts), now_ms) if starts else []
    levels = sorted(set(thresholds))
    out = {}
    for f in landings:
        first = month_of_ms(int(f.history_start.timestamp() * 1000)) if f.history_start is not None else None
        complete = months[bisect_left(months, first):] if first is not None else []
        mine = ready.get(f.fleet_id, ())
        span = len(quote_span(complete, frozenset(mine)))
        reached = [n for n in levels if span >= n]
        missing = [n for n in levels if span < n]
        out[f.fleet_id] = BookReadiness(len(complete), len(set(mine).intersection(complete)), span,
                                        reached[-1] if reached else None, missing[0] if missing else None,
                                        complete[-1] if complete and complete[-1] not in mine else None)
    return out


def readiness(manifest: ManifestReader, flows: list[Flow], pending: list[WindowTask], fleet_id: str, now_ms: int,
              thresholds: list[int], live: PullProgress | None = None) -> Readiness:
    """`pending`: the planner's windows (all fleets); `live`: this fleet's pull running here, if any."""
    fleet = manifest.fleet(fleet_id)
    if fleet is None:
        raise KeyError(fleet_id)
    start_ms = int((fleet.history_start or datetime.fromtimestamp(now_ms / 1000, timezone.utc)).timestamp() * 1000)
    months = months_between(start_ms, now_ms)
    complete = [m for m in months if month_bounds_ms(m)[1] <= now_ms]
    pulled = manifest.pulled_months(fleet_id)
    raw_rows: dict[str, int] = {}
    for p in manifest.raw_partitions(fleet_id, "pings"):
        raw_rows[p.month] = p.rows
    active = {(f.name, f.version) for f in flows}
    current: dict[str, set[tuple[str, int]]] = {}
    for r in manifest.latest_runs(fleet_id, succeeded_only=True):
        if r.status is RunStatus.SUCCEEDED:
            current.setdefault(r.month, set()).add((r.flow, r.version))
    waiting = {t.month for t in pending if t.fleet_id == fleet_id}
    ready = [m for m in complete if m in pulled and m not in waiting
             and (m not in raw_rows or active <= current.get(m, set()))]
    span_months = quote_span(complete, ready)
    backfilling = fleet.status in (FleetStatus.CONSENTED, FleetStatus.BACKFILLING)
    to_pull = [m for m in complete if m not in pulled] + [m for m in months if m not in complete and backfilling]
    notes: dict[str, str] = {}

    rate: float | None = None
    if live is not None and live.pings_per_min is not None:
        rate = live.pings_per_min
    else:
        measured = manifest.checkpoint_rate(fleet_id, datetime.now(timezone.utc) - RATE_WINDOW)
        if measured is not None:
            rate = measured[0] * 60 / measured[1]
        else:
            notes["pings_per_min"] = "no pull landed pings in the last hour"

    eta: float | None
    if not to_pull:
        eta = 0.0
    elif live is not None and live.eta_s is not None:
        eta = live.eta_s
    elif rate and [m for m in pulled if m in raw_rows]:
        per_month = sum(raw_rows[m] for m in pulled if m in raw_rows) / len([m for m in pulled if m in raw_rows])
        eta = len(to_pull) * per_month / (rate / 60)
    else:
        eta = None
        notes["eta_s"] = ("no rate measured yet" if not rate else "no complete month pulled yet to size the rest")

    fired = manifest.readiness_fired(fleet_id)
    out = []
    for n in sorted(set(thresholds)):
        if n in fired:
            first, last, at, delivered = fired[n]
            out.append(Threshold(n, True, first, last, at, delivered))
        elif len(span_months) >= n:
            out.append(Threshold(n, True, span_months[n - 1], span_months[0]))
        else:
            out.append(Threshold(n, False))
    span = (span_months[-1], span_months[0]) if span_months else None
    return Readiness(fleet_id, fleet.status.value, len(months), tuple(sorted(ready)), span, tuple(to_pull),
                     sum(raw_rows.values()), rate, eta, tuple(out), live.month if live else None, notes)

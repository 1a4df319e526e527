"""Hostile HOS records (quirk `hostile_hos`): some records of the drivers' routes spoiled, one way each.

About one record in seven (one in two of the few violations). A real TSP sends such records rarely, but a client must survive them: a time that is a number or
before 2000 or centuries ahead, a status nobody documents, a label that is a number or a megabyte,
a reference without its id, an id of 200,000 characters, a duration that is text, a vehicle that
is a string. Each spoils its record only (the page stays valid JSON of the documented envelope),
so the test can demand that the record is quarantined or its field nulled, with a reason, and that
the rest of the fleet's pull lands (tests/test_hos_hostile.py).

Which record and how are a pure function of (seed, route, the record's JSON): replayable, and the
same record is spoiled the same way in every window that returns it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

HUGE = 200_000


@dataclass(frozen=True)
class Fields:
    """Where a route's record keeps what can be spoiled (None: it has no such field)."""
    start: str
    label: str
    driver: str | None  # the reference to the driver ({"id": ...}) on the record itself
    vehicle: str | None
    number: str | None = None  # a numeric field (Samsara's durationMs)
    end: str | None = None  # an end time that only gives a duration (Motive's violations)
    share: int = 7  # one record in `share` spoiled, about (a route with few records spoils more of them)


SPOILS = ("time_type", "time_past", "time_future", "unknown_label", "label_type", "huge_label", "missing_id",
          "huge_id", "bad_number", "vehicle_type")


def spoil(records: list[dict[str, Any]], seed: int, route: str, f: Fields) -> list[dict[str, Any]]:
    """The records, about one in `f.share` spoiled (copies: the originals are the sandbox's own)."""
    return [_spoil(r, kind, f) if (kind := _pick(seed, route, r, f.share)) else r for r in records]


def _pick(seed: int, route: str, record: dict[str, Any], share: int) -> str | None:
    h = int.from_bytes(hashlib.blake2b(f"{seed}|{route}|{json.dumps(record, sort_keys=True)}".encode(),
                                       digest_size=8).digest(), "little")
    return SPOILS[(h // share) % len(SPOILS)] if h % share == 0 else None


def _spoil(record: dict[str, Any], kind: str, f: Fields) -> dict[str, Any]:
    r = dict(record)
    if kind == "time_type":
        r[f.start] = 1_700_000_000
    elif kind == "time_past":
        r[f.start] = "1999-06-01T00:00:00Z"
    elif kind == "time_future":
        r[f.start] = "2999-01-01T00:00:00Z"
    elif kind == "unknown_label":
        r[f.label] = "napping"
    elif kind == "label_type":
        r[f.label] = 42
    elif kind == "huge_label" or (kind in ("missing_id", "huge_id") and f.driver is None):
        r[f.label] = "x" * HUGE
    elif kind == "missing_id" and f.driver is not None:
        r[f.driver] = {k: v for k, v in (r.get(f.driver) or {}).items() if k != "id"}
    elif kind == "huge_id" and f.driver is not None:
        r[f.driver] = {**(r.get(f.driver) or {}), "id": "9" * HUGE}
    elif kind == "bad_number" and f.number is not None:
        r[f.number] = "long"
    elif kind == "bad_number" and f.end is not None:
        r[f.end] = 12
    elif f.vehicle is not None:  # vehicle_type, or a bad number where the record has none
        r[f.vehicle] = "truck 7"
    else:
        r[f.label] = 42
    return r

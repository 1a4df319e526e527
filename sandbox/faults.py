"""Faults the fake TSP servers inject on demand.

Every decision is a pure function of (fault seed, what was asked, how many times it was asked),
never of request order, so a failing test replays exactly even with concurrent clients.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class FaultPlan:
    seed: int = 0
    # Transport and server trouble, as a probability per request attempt.
    error_5xx: float = 0.0
    error_5xx_text: float = 0.5  # share of 5xx answered as text/plain instead of JSON
    storm_429: float = 0.0  # probability that a request lands in a 429 storm
    slow: float = 0.0
    slow_seconds: float = 0.5
    drop_mid_body: float = 0.0
    # A response that never ends: headers, then a byte of JSON whitespace a second (so no read
    # timeout fires) for as long as this stays on; switched off, the body follows. A hung TSP.
    hang: float = 0.0
    # Data trouble.
    duplicate_across_pages: float = 0.0  # probability a page repeats the tail of the previous one
    out_of_order: float = 0.0  # probability a page's points come shuffled
    malformed: float = 0.0  # probability per page that junk records are added to it
    numbers_as_strings: float = 0.0  # probability per record that numbers are sent as strings
    late_days: float = 0.0  # share of vehicle-days whose driving pings arrive 1-4 days late

    def with_(self, **changes: Any) -> FaultPlan:
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        out: dict[str, Any] = {}
        for k, v in data.items():
            if k == "seed":
                out[k] = int(v)
                continue
            x = float(v)
            if k != "slow_seconds" and not 0.0 <= x <= 1.0:
                raise ValueError(f"fault setting {k} must be a probability in [0, 1]")
            if k == "slow_seconds" and not 0.0 <= x <= 30.0:
                raise ValueError("fault setting slow_seconds must be within [0, 30]")
            out[k] = x
        return cls(**out)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def chance(seed: int, *key: object) -> float:
    """A uniform number in [0, 1) determined by the seed and the key."""
    h = hashlib.blake2b(repr((seed, key)).encode(), digest_size=8).digest()
    return struct.unpack("<Q", h)[0] / 2**64

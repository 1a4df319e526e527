"""How a record of the drivers' routes takes the fleet's quirks (sandbox/quirks.py).

The GPS routes render their points as pre-built JSON; the drivers' routes serve few records, built
as dicts, and `as_sent` dresses each one as the fleet's quirks say (times are rendered before, by
`render_times`; pages are cut by sandbox/paging.py):

- `absent_optional`: about that share of the records (drawn from seed, route and the record's
  key) leave out the fields the vendor marks optional and fleetlake does not keep (a log's remark,
  co-drivers and recorded location; a driver's licence, phone, username, ...). Fields that carry
  what fleetlake keeps stay, optional or not: their absence would mean something else (a log
  without `logEndTime` still runs);
- `extra_fields`: fields the client does not model, added;
- `ints_for_floats`: every whole float of the record sent as a JSON integer (the value is exact).

It runs after any hostile spoiling (sandbox/hostile_hos.py), which picks its records from their
plain JSON: the same records are spoiled with the quirks on as without.
"""

from __future__ import annotations

from typing import Any

from sandbox.faults import chance
from sandbox.quirks import Quirks


def as_sent(record: dict[str, Any], quirks: Quirks, route: str, key: object, optional: tuple[str, ...] = (),
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record as the fleet's TSP sends it (a copy when a quirk changes it)."""
    out = record
    if optional and quirks.absent_optional and \
            chance(quirks.seed, "absent_optional", route, key) < quirks.absent_optional:
        out = {k: v for k, v in out.items() if k not in optional}
    if extra and quirks.extra_fields:
        out = {**out, **extra}
    return ints_for_floats(out) if quirks.ints_for_floats else out


def ints_for_floats(value: Any) -> Any:
    """`value` with every whole float (in dicts and lists, at any depth) as an int."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {k: ints_for_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ints_for_floats(v) for v in value]
    return value

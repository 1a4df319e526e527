"""Typed records -> candidate columns -> validation: odd values parsed, nulled or quarantined, never lost."""

from __future__ import annotations

import msgspec
import pyarrow as pa

from connectors.normalize import candidate_table
from partitions.schema import split_valid


class Rec(msgspec.Struct):
    time: str | None
    lat: float | str | None
    lon: float | str | None
    speed: float | str | None


def test_odd_values_are_parsed_nulled_or_quarantined_with_evidence() -> None:
    recs = [Rec("2025-03-01T00:00:00.000Z", 41.5, -90.0, 10.0),
            Rec("2025-03-01T00:00:05.000Z", "41.6", "-90.1", "12.5"),     # numbers as strings: fine
            Rec("2025-03-01T00:00:10.000Z", 41.7, -90.2, "fast"),         # garbage speed: that field is null
            Rec("2025-03-01T00:00:15.000Z", None, -90.2, 1.0),            # missing latitude
            Rec("2025-03-01T00:00:20.000Z", "NaN", -90.2, 1.0),           # NaN as a string
            Rec("not a time", 41.7, -90.2, 1.0),                          # unparseable time
            Rec("2025-03-01T00:00:30+02:00", 41.8, -90.3, 2.0)]           # an offset other than Z
    t = candidate_table("f", "samsara", pa.array(["v"] * len(recs)), recs,
                        [r.time for r in recs], [r.lat for r in recs], [r.lon for r in recs],
                        [r.speed for r in recs], [None] * len(recs), None, speed_scale=1.0)
    assert t.num_rows == len(recs)
    split = split_valid(t, now_ms=1_900_000_000_000)
    assert split.valid["lat"].to_pylist() == [41.5, 41.6, 41.7, 41.8]
    assert split.valid["speed_mph"].to_pylist() == [10.0, 12.5, None, 2.0]
    assert split.nulled == {"unparseable optional value": 1}
    assert split.valid["ts"].cast("int64").to_pylist()[3] == 1_740_787_230_000 - 2 * 3600 * 1000
    reasons = dict(zip(split.quarantine["reason"].to_pylist(), split.quarantine["raw"].to_pylist()))
    assert set(reasons) == {"missing coordinates", "NaN coordinates", "missing or unparseable timestamp"}
    assert '"not a time"' in reasons["missing or unparseable timestamp"]  # the evidence is kept
    assert split.valid.num_rows + split.quarantine.num_rows == len(recs)

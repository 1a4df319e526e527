"""The messiest signals the sandbox makes, as one FleetSpec (bench/accuracy.py and tests/test_signals_*).

On top of the receiver model (docs/sandbox.md, "Signal realism"): roads that bend, Doppler
outliers, ECU odometers with all their behaviours and a quarter of the devices without one,
a quarter without heading, events at three times the default rate, and either a time-based
cadence or event-based logging ("event").
"""

from __future__ import annotations

from datetime import datetime, timezone

from sandbox.simulator import FleetSpec

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def messy_spec(case: str, vehicles: int, seed: int, fleet_id: str = "f", start: datetime = START) -> FleetSpec:
    """`case` is a driving interval in seconds ("1", "5", "30", "60") or "event"."""
    event = case == "event"
    return FleetSpec(fleet_id, seed, vehicles, start, ping_interval_s=1 if event else int(case),
                     logging_mode="event" if event else "time", event_rate=3.0, no_heading_share=0.25,
                     road_curvature_deg=20.0, odometer_realism=True, no_odometer_share=0.25, speed_spike_rate=0.002)

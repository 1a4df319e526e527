"""Detectors and estimators on one vehicle's signals (issue 26; rules in docs/features.md).

Pure, vectorised functions of one vehicle-month's pings (`series.VehicleSeries`), written so
that they hold at every sampling rate a fleet reports at (1 s to 60 s, or event-based):

- `sampling`: the vehicle's own sampling interval, and the gap between pings that still
  counts as "no ping lost" (a multiple of it);
- `speed`: a speed estimate that checks the device's Doppler speed against its position change,
  and the device's own noise;
- `harsh`: harsh braking and acceleration, or null with a reason where the sampling cannot
  support the rule;
- `distance`: miles from the odometer where it can be trusted, GPS path length otherwise, and
  state miles apportioned along the path;
- `episodes`: speeding episodes whose gap rule scales with the sampling interval.

Nothing here reads a table of more than one vehicle or knows which TSP a ping came from.
"""

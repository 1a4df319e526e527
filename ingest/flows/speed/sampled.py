"""speed v4's rules: v3's, with speeding episodes robust to the sampling rate (ingest/signals/episodes.py).

An episode's pings may be 2.5 of the vehicle's driving intervals apart (at least 60 s), and a
dip is bridged across 2.5 intervals (at least 10 s): at 60 s one lost ping no longer splits an
episode in two. Episode speeds are the fused estimate, so a single Doppler outlier on a sparse
track is not a minute of speeding. Time at speed, the mean, p95 and max are v3's.
"""

from __future__ import annotations

import dataclasses

from ingest.flows.base import FlowInput
from ingest.flows.signals import fused_of, series_of
from ingest.flows.speed.rules import Part
from ingest.flows.speed.rules import part as part_v3
from ingest.signals.episodes import speeding


def part(inp: FlowInput, ctx: object) -> Part:
    return dataclasses.replace(part_v3(inp, ctx), episode_s=speeding(series_of(inp), fused_of(inp)).seconds)

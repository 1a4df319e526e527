"""Deterministic fleet simulator and faithful fake Samsara and Motive HTTP APIs.

The sandbox is fleetlake's embedded default: the demo, every integration test and every
benchmark run against it, and its ground truth is what the features are checked against.
"""

from __future__ import annotations

from sandbox.clock import SandboxClock
from sandbox.faults import FaultPlan
from sandbox.simulator import FleetSimulator, FleetSpec, PingColumns

__all__ = ["FaultPlan", "FleetSimulator", "FleetSpec", "PingColumns", "SandboxClock"]

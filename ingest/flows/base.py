"""The flow contract (DESIGN.md, "Feature flows"; docs/flows.md teaches it).

A flow is a package (`ingest/flows/<name>/`, or any installed package registered in the entry
point group `fleetlake.flows`) whose `__init__.py` declares `VERSIONS`: one `Flow` per version.
A version is an output contract: its name, number, inputs, output schema and window. Its rules
(`Walk`) live in modules of the package; a change to them that keeps the contract reruns through
the code fingerprint (`ingest.engine.fingerprint`), without a new version.

Inputs are raw datasets ("pings", "events") or other flows' outputs ("distance@2"); a flow on
flows gets the committed outputs of its window's months whole (they are small) and no pings.
One engine runs every flow: the walk (ingest/flows/walk.py), vehicle by vehicle over a window's
pings, then the fleet roll-up.

This module is reached by every flow: keep it to the contract.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa

from common import names

WINDOWS = ("month", "week", "quote", "book")  # see ingest/engine/windows.py


@dataclass(frozen=True)
class FlowInput:
    fleet_id: str
    month: str  # the window's key: YYYY-MM for a month, YYYY-Www for a week, q<N>:YYYY-MM for a quote window
    tables: dict[str, pa.Table]  # input name -> the committed rows of the window
    complete: bool  # False for a window that is still open
    # Groundwork (the loaded track, pair distances, time zones) computed once per (fleet, month)
    # and shared by every flow of the month's task: see track.track_of. Flows only add to it.
    shared: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Walk:
    """How a flow runs (ingest/flows/walk.py runs it).

    `context(inp)` runs once per window before the walk, on the window's non-ping inputs
    (inp.tables without "pings": safety events, other flows' outputs, all small); its result is
    handed to every call. `vehicle` gets a FlowInput holding one vehicle's rows of every input and
    returns (its rows as dicts, its part); `fleet` returns the roll-up rows (dicts) from every part
    in vehicle order. A flow without pings has no vehicles: its rows come from `fleet` alone.
    """

    vehicle: Callable[[FlowInput, Any], tuple[list[dict[str, Any]], Any]]
    fleet: Callable[[FlowInput, Any, list[Any]], list[dict[str, Any]]]
    context: Callable[[FlowInput], Any] = field(default=None)  # type: ignore[assignment]  # None: no context


def _no_vehicles(inp: FlowInput, ctx: Any) -> tuple[list[dict[str, Any]], Any]:
    return [], None


def table_walk(rows: Callable[[FlowInput], list[dict[str, Any]]]) -> Walk:
    """A walk for a flow on flows: `rows(inp)` from the window's input tables, held whole."""
    return Walk(_no_vehicles, lambda inp, _ctx, _parts: rows(inp))


@dataclass(frozen=True)
class Flow:
    name: str
    version: int
    inputs: tuple[str, ...]  # raw datasets, or other flows' outputs as "<flow>@<version>"
    schema: pa.Schema
    walk: Walk = field(compare=False)
    columns: tuple[str, ...] = ()  # ping columns the flow reads (all when empty): less to decode and hold
    window: str = "month"  # one of WINDOWS
    module: str = ""  # the module whose code (and all it reaches) is fingerprinted: the declaring one when empty

    def __post_init__(self) -> None:
        names.flow_name(self.name)
        if not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"flow {self.name}: version must be a positive integer")
        if self.window not in WINDOWS:
            raise ValueError(f"flow {self.name}: window must be one of {', '.join(WINDOWS)}")
        if not isinstance(self.walk, Walk):
            raise ValueError(f"flow {self.name}: walk must be a Walk (ingest.flows.base)")
        for d in self.inputs:
            name, sep, version = d.partition("@")
            if sep:
                names.flow_name(name)
                if not version.isdigit():
                    raise ValueError(f"flow {self.name}: input {d!r} must look like <flow>@<version>")
            else:
                names.dataset(d)
        if not self.module:  # the module that declares the version (a flow package's __init__)
            object.__setattr__(self, "module", sys._getframe(2).f_globals.get("__name__", ""))

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def raw_inputs(self) -> tuple[str, ...]:
        return tuple(d for d in self.inputs if "@" not in d)

    @property
    def upstream(self) -> tuple[str, ...]:
        """The flows (as "<flow>@<version>") whose outputs this one reads."""
        return tuple(d for d in self.inputs if "@" in d)

    @property
    def schema_fingerprint(self) -> str:
        return hashlib.blake2b(str(self.schema).encode(), digest_size=12).hexdigest()

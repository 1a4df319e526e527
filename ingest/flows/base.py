"""The flow contract (DESIGN.md, "Feature flows").

A flow is a module in `ingest/flows/` that defines `FLOW = Flow(...)`: a name, an integer
version, the raw datasets it reads, its output schema, and a pure function from one
(fleet, month) of committed inputs to one feature table.

Its code fingerprint (`ingest.engine.fingerprint`) covers the normalised code of every project module
the flow reaches, so changing what a helper the flow calls does reruns the flow's windows, while
editing unrelated code, comments or layout does not. This module is reached by every flow: keep
it to the contract.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa

from common import names


@dataclass(frozen=True)
class FlowInput:
    fleet_id: str
    month: str  # YYYY-MM, UTC
    tables: dict[str, pa.Table]  # raw dataset name -> the committed rows of that month
    complete: bool  # False for the month that is still open
    # Groundwork (the loaded track, pair distances, time zones) computed once per (fleet, month)
    # and shared by every flow of the month's task: see track.track_of. Flows only add to it.
    shared: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Walk:
    """How a flow runs vehicle by vehicle (ingest/flows/walk.py runs it).

    `context(inp)` runs once per fleet-month before the walk, on the month's non-ping inputs
    (inp.tables without "pings", e.g. safety events, which are small); its result is handed to
    every call. `vehicle` gets a FlowInput holding one vehicle's rows of every input and returns
    (its rows as dicts, its part); `fleet` returns the roll-up rows (dicts) from every part in
    vehicle order.
    """

    vehicle: Callable[[FlowInput, Any], tuple[list[dict[str, Any]], Any]]
    fleet: Callable[[FlowInput, Any, list[Any]], list[dict[str, Any]]]
    context: Callable[[FlowInput], Any] = field(default=None)  # type: ignore[assignment]  # None: no context


@dataclass(frozen=True)
class Flow:
    name: str
    version: int
    inputs: tuple[str, ...]
    schema: pa.Schema
    compute: Callable[[FlowInput], pa.Table] = field(compare=False)
    module: str = ""  # set from compute.__module__ when empty
    columns: tuple[str, ...] = ()  # input columns the flow reads (all when empty): less to decode and hold
    # Set when the flow runs vehicle by vehicle (ingest/flows/walk.py): the month task then holds
    # one vehicle-month at a time; `compute` stays the same function over a month held whole.
    walk: Walk | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        names.flow_name(self.name)
        if not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"flow {self.name}: version must be a positive integer")
        for d in self.inputs:
            names.dataset(d)
        if not self.module:
            object.__setattr__(self, "module", self.compute.__module__)

    @property
    def schema_fingerprint(self) -> str:
        return hashlib.blake2b(str(self.schema).encode(), digest_size=12).hexdigest()

"""The flows' graph: a flow on flows reads the outputs of the flows it names in its inputs.

`ordered` puts every flow after the flows it reads (a topological order, stable: among flows
that do not depend on each other, the active list's order) and refuses, in one line, a cycle
(naming it) or an input that is not an active flow.
"""

from __future__ import annotations

from ingest.flows.base import Flow


class FlowGraphError(ValueError):
    """The active flows cannot be ordered: a cycle, or an input that is not active."""


def ordered(flows: list[Flow]) -> list[Flow]:
    by_key = {f.key: f for f in flows}
    for f in flows:
        for u in f.upstream:
            if u not in by_key:
                raise FlowGraphError(f"flow {f.key} reads {u}, which is not active: list it in the flows file too")
    done: list[Flow] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: placed

    def visit(f: Flow, path: list[str]) -> None:
        state[f.key] = 1
        for u in f.upstream:
            if state.get(u) == 1:
                cycle = [*path[path.index(u):], u]
                raise FlowGraphError(f"flows form a cycle: {' -> '.join(cycle)}")
            if u not in state:
                visit(by_key[u], [*path, u])
        state[f.key] = 2
        done.append(f)

    for f in flows:
        if f.key not in state:
            visit(f, [f.key])
    return done


def dependants(flows: list[Flow], key: str) -> set[str]:
    """Every flow that reads `key`'s output, directly or through others."""
    out: set[str] = set()
    todo = [key]
    while todo:
        k = todo.pop()
        for f in flows:
            if k in f.upstream and f.key not in out:
                out.add(f.key)
                todo.append(f.key)
    return out

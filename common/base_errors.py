"""The root of fleetlake's error tree, and the one error the feature flows can raise (InvalidName).

The whole tree is drawn in `common.errors`, which re-exports these two. They live apart because
the flows reach them (a flow validates its names through `common.names`), and a flow's code
fingerprint covers every project module it reaches: kept here, they change only when they do,
and a new error anywhere else in the tree never reruns a feature window.
"""

from __future__ import annotations


class FleetlakeError(Exception):
    """Base of every error fleetlake raises on purpose."""


class InvalidName(FleetlakeError, ValueError):
    pass

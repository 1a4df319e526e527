"""fleetlake's exceptions, in one tree. Catch the narrowest one that lets you act.

    FleetlakeError
    ├── ConfigError            a setting is missing or wrong (names the setting)
    ├── InvalidName            a fleet id, dataset or month that must not become a key or path
    ├── StoreError             storage failed: the object store (unreachable, denied, corrupt object)
    │   │                      or a local disk fleetlake writes to
    │   ├── ObjectNotFound     a key that should exist does not
    │   └── DiskFull           a local disk is full (ENOSPC): names the directory by its kind and
    │                          setting, never by its path, and the bytes left
    ├── ManifestError          the DuckDB manifest cannot be used
    │   ├── ManifestLocked     another process holds it (names the holder)
    │   ├── ManifestDamaged    the file is truncated or corrupt: rebuild it from the store
    │   ├── ManifestMissing    the file is gone but the store holds a lake: rebuild it, never start empty
    │   └── SchemaVersionError the file was written by a newer fleetlake
    ├── CommitConflict         a window changed under a writer; nothing was committed
    ├── FlowError              a feature flow is misdefined (e.g. schema changed, version not bumped)
    ├── UnknownTsp             a TSP fleetlake does not speak, or one not configured here
    ├── UnknownFleet           no fleet of that id (also a KeyError, as lookups raise)
    └── TspError               a call to a telematics provider failed (names TSP and endpoint)
        ├── TspUnavailable     429s, 5xx or transport errors outlasted the retry policy
        ├── TspRequestError    a 4xx that retrying cannot fix: our request is wrong
        ├── MalformedResponse  a response that is not the documented shape
        ├── PaginationLoop     the API handed back a cursor it had already given, or more pages
        │                      than the slice can hold
        ├── ResponseTooLarge   a body beyond the byte cap once decompressed (a gzip bomb, a huge page)
        ├── DeadlineExceeded   one request outlasted its wall-clock deadline (a trickling server)
        └── AuthError          credentials were refused
            ├── ConsentRevoked the fleet withdrew consent (or its grant is gone): reconnect it
            └── ConsentRefused a consent fleetlake will not complete: its state was used already,
                               or the fleet is connected and no re-link was asked for

PullInterrupted (not a FleetlakeError) is how a pull leaves between pages when asked to stop.

Messages never contain tokens, secrets or response bodies: they name what failed and where.
"""

from __future__ import annotations

# The root and the one error the flows reach live in common.base_errors (their code fingerprint
# covers it: a new error in this tree must not rerun a feature window); they belong to this tree.
from common.base_errors import FleetlakeError, InvalidName

__all__ = ["FleetlakeError", "InvalidName"]  # and every class below


class ConfigError(FleetlakeError):
    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"setting {setting}: {problem}")
        self.setting = setting


class StoreError(FleetlakeError):
    pass


class ObjectNotFound(StoreError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "object not found"


class DiskFull(StoreError):
    """ENOSPC while fleetlake wrote locally. A StoreError, so that whoever already survives a failed
    write (the control mirror, a pull that marks its fleet failed) survives this one too."""

    def __init__(self, setting: str, where: str, free_bytes: int | None) -> None:
        free = f"{free_bytes:,} bytes free" if free_bytes is not None else "free space unknown"
        super().__init__(f"local disk full under {setting} ({where}): {free}")
        self.setting = setting  # e.g. FLEETLAKE_DATA_DIR: what an operator changes or cleans
        self.where = where  # e.g. "work/spool": which of fleetlake's directories, never a path
        self.free_bytes = free_bytes


class ManifestError(FleetlakeError):
    pass


class ManifestLocked(ManifestError):
    pass


class ManifestDamaged(ManifestError):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # short and path-free, for /readyz


class ManifestMissing(ManifestError):
    pass


class SchemaVersionError(ManifestError):
    pass


class CommitConflict(FleetlakeError):
    pass


class FlowError(FleetlakeError):
    pass


class UnknownTsp(FleetlakeError):
    pass


class UnknownFleet(FleetlakeError, KeyError):
    def __init__(self, fleet_id: str) -> None:
        super().__init__(f"unknown fleet {fleet_id[:80]}")
        self.fleet_id = fleet_id

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class TspError(FleetlakeError):
    def __init__(self, tsp: str, message: str) -> None:
        super().__init__(f"{tsp}: {message}")
        self.tsp = tsp


class TspUnavailable(TspError):
    pass


class TspRequestError(TspError):
    def __init__(self, tsp: str, message: str, status: int) -> None:
        super().__init__(tsp, message)
        self.status = status


class MalformedResponse(TspError):
    pass


class PaginationLoop(TspError):
    pass


class ResponseTooLarge(TspError):
    pass


class DeadlineExceeded(TspError):
    pass


class PullInterrupted(Exception):
    """The stop flag was seen between two requests: the pull ends and commits what it has."""


class AuthError(TspError):
    pass


class ConsentRevoked(AuthError):
    pass


class ConsentRefused(AuthError):
    pass

"""The states and names fleetlake's records carry, one enum each; no state is parsed from a string.

They are `StrEnum`s so they store in the manifest and travel in JSON as their plain values
("active", "succeeded", ...), and compare equal to those values where old records are read.
"""

from __future__ import annotations

from enum import StrEnum


class FleetStatus(StrEnum):
    """Where a fleet stands with fleetlake."""
    CONSENTED = "consented"      # the fleet granted consent; its backfill has not started
    BACKFILLING = "backfilling"  # pulling its history (an interrupted backfill resumes from checkpoints)
    ACTIVE = "active"            # history landed; refreshed monthly
    REFRESHING = "refreshing"    # an active fleet's refresh is under way; one cut short (a kill, a
                                 # stop) is resumed when the daemon starts, not at the next cron
    FAILED = "failed"            # its last pull failed; retried with backoff
    REVOKED = "revoked"          # consent withdrawn or the grant is gone: needs a new consent

    @property
    def pullable(self) -> bool:
        return self is not FleetStatus.REVOKED


class RunStatus(StrEnum):
    """One attempt at a feature window."""
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WindowState(StrEnum):
    """A feature window (flow version x fleet x month) as the status grid shows it."""
    DONE = "done"        # a succeeded run matches its current inputs and code
    PENDING = "pending"  # inputs or code changed since, or never run
    FAILED = "failed"    # the newest run failed; planned again with backoff


class CommitStatus(StrEnum):
    """What a commit of one raw partition did."""
    COMMITTED = "committed"  # a new version of the month is live
    UNCHANGED = "unchanged"  # the merged content equals the committed one: nothing written


class Tsp(StrEnum):
    """The telematics providers fleetlake speaks to (their connectors: connectors/providers.py)."""
    SAMSARA = "samsara"
    MOTIVE = "motive"


class PullResult(StrEnum):
    """How one fleet's pull ended."""
    ACTIVE = "active"    # everything up to now is landed
    STOPPED = "stopped"  # asked to stop; what was fetched in full is committed, checkpoints resume the rest
    FAILED = "failed"    # the TSP or the store failed; committed slices stay
    REVOKED = "revoked"  # the fleet's consent is gone


class WorkKind(StrEnum):
    """What the daemon's work queue runs."""
    BACKFILL = "backfill"  # pull one fleet's history (every slice not yet complete)
    REFRESH = "refresh"    # pull what is new for one fleet, or fan out to every fleet
    FEATURES = "features"  # run the pending feature windows of one fleet-month (or of one fleet, or every fleet)

    @property
    def pulls(self) -> bool:
        return self is not WorkKind.FEATURES


class Lane(StrEnum):
    """Where work waits for a worker (ingest/runtime/workqueue.py)."""
    REFRESH = "refresh"    # live fleets catching up: small, kept a worker of their own
    BACKFILL = "backfill"  # histories: may take hours
    FEATURES = "features"  # feature work items, on their own worker


class WorkOutcome(StrEnum):
    """How a work item ended."""
    OK = "ok"
    FAILED = "failed"    # something it ran failed and was recorded (a fleet, a feature window)
    ERROR = "error"      # the work item itself raised: a bug or an outage, logged with its traceback
    STOPPED = "stopped"  # the daemon is shutting down
    SKIPPED = "skipped"  # not started: the daemon was already shutting down

    @property
    def counts_as_failure(self) -> bool:
        return self in (WorkOutcome.FAILED, WorkOutcome.ERROR)

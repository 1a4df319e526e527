"""Rebuild the manifest's raw partitions and feature runs from the store's Delta logs alone.

A container that lost its disk runs `fleetlake manifest rebuild` and then recomputes nothing
that was already done: for each window, the newest Delta commit that replaced it carries our
record of it (files, rows, fingerprint, seq; or the feature run), exactly as the manifest had it,
and the table's snapshot confirms those files are the live ones.

What the log does not hold: fleets, encrypted credentials, pull checkpoints and failed runs
(the old `_commits/` markers did not hold them either). Those are control records, not table data
(partitions.control_records); `rebuild_manifest` restores all three.

`lake_contents` says whether a store holds anything a manifest would know of: a missing manifest
over such a store is lost state to rebuild, not a new install to start empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.errors import StoreError
from partitions import layout
from partitions.control_records import ControlReport, restore_control
from partitions.delta import RUN_KEY, WINDOW_KEY, lake_for
from partitions.keyring import Keyring, keyring_path
from partitions.manifest import FlowRun, Manifest, RawPartition, manifest_damage, replace_manifest
from partitions.migrate import migrate_markers
from partitions.store import ObjectStore


@dataclass(frozen=True)
class RebuildReport:
    windows: int
    markers_read: int  # window commits read from the Delta logs (named for the CLI's JSON, kept stable)
    problems: tuple[str, ...]


def rebuild_raw(store: ObjectStore, manifest: Manifest) -> RebuildReport:
    # A store still in the marker format is converted first (a no-op once converted).
    problems: list[str] = list(migrate_markers(store).problems)
    lake = lake_for(store)
    partitions: list[RawPartition] = []
    commits = 0
    for table in lake.tables():
        kind, dataset, _ = layout.parse_table(table)
        if kind != "raw":
            continue
        newest, n = lake.window_commits(table, WINDOW_KEY)
        commits += n
        live = lake.live_files(table)
        for window, commit in sorted(newest.items()):
            where = f"{table} fleet={window[0]} month={window[1]} (version {commit.version})"
            try:
                part = RawPartition.from_json(commit.metadata)
            except (ValueError, KeyError, TypeError) as e:
                problems.append(f"{where}: unreadable window record ({type(e).__name__})")
                continue
            problem = _check(store, table, window, part.files, live)
            if part.dataset != dataset:
                problem = "window record names another dataset"
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            partitions.append(part)
        for window in sorted(set(live) - set(newest)):
            problems.append(f"{table} fleet={window[0]} month={window[1]}: live files without a fleetlake commit")
    manifest.restore_raw(partitions)
    return RebuildReport(len(partitions), commits, tuple(problems))


def rebuild_runs(store: ObjectStore, manifest: Manifest) -> RebuildReport:
    """The feature run that produced each live feature window, from the feature tables' logs.

    With them the planner knows which windows are done, so a rebuilt manifest recomputes nothing.
    """
    lake = lake_for(store)
    runs: list[FlowRun] = []
    problems: list[str] = []
    commits = 0
    for table in lake.tables():
        if layout.parse_table(table)[0] != "features":
            continue
        newest, n = lake.window_commits(table, RUN_KEY)
        commits += n
        live = lake.live_files(table)
        for window, commit in sorted(newest.items()):
            where = f"{table} fleet={window[0]} month={window[1]} (version {commit.version})"
            try:
                run = FlowRun.from_commit_record(dict(commit.metadata))
            except (KeyError, ValueError, TypeError):
                problems.append(f"{where}: run record misses fields")
                continue
            problem = _check(store, table, window, run.outputs, live)
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            runs.append(run)
    added = manifest.restore_runs(runs)
    return RebuildReport(added, commits, tuple(problems))


def _check(store: ObjectStore, table: str, window: tuple[str, str], files: tuple[str, ...],
           live: dict[tuple[str, str], list]) -> str | None:
    """Why a window record cannot be restored, or None when its files are the live, present ones."""
    if sorted(files) != sorted(f.key for f in live.get(window, [])):
        return "its files are not the snapshot's live files"
    try:
        missing = [f for f in files if not store.exists(f)]
    except StoreError as e:
        return f"cannot check its files: {e}"
    if missing:
        return f"data files missing: {', '.join(missing)}"
    return None


@dataclass(frozen=True)
class ManifestRebuild:
    raw: RebuildReport
    runs: RebuildReport
    control: ControlReport
    damage: str | None  # why the file it replaced could not be used (None: healthy or missing)
    aside: Path | None  # where the replaced file was kept

    @property
    def problems(self) -> tuple[str, ...]:
        return (*self.raw.problems, *self.runs.problems, *self.control.problems)


def rebuild_manifest(store: ObjectStore, path: Path) -> ManifestRebuild:
    """The manifest at `path` rebuilt from the store: data and feature runs from the Delta logs,
    fleets, credentials, consents, checkpoints and off-boardings from the control records.

    A healthy file is filled in place (restores are idempotent). A damaged or missing one is built
    as a new file and swapped in atomically (`replace_manifest`): a rebuild that fails half-way
    leaves no half-filled manifest where the next start would take it for the whole one.
    """
    # The data keys go beside the real manifest path, also when the rebuild fills a new file first.
    keyring = Keyring(keyring_path(path), None)

    def fill(manifest: Manifest) -> tuple[RebuildReport, RebuildReport, ControlReport]:
        return (rebuild_raw(store, manifest), rebuild_runs(store, manifest),
                restore_control(store, manifest, keyring))

    damage = manifest_damage(path)
    aside = None
    if damage is None and path.exists():
        with Manifest(path) as manifest:
            raw, runs, control = fill(manifest)
    else:
        (raw, runs, control), aside = replace_manifest(path, fill)
    return ManifestRebuild(raw, runs, control, damage, aside)


def lake_contents(store: ObjectStore) -> str | None:
    """What the store holds that a manifest would know of, in a few words; None for an empty store.

    Cheap on any store: the fleet records (one small object per fleet), the first log entry of
    each raw table, and the legacy commit markers.
    """
    held = []
    fleets = len(store.list(f"{layout.CONTROL}/fleets/"))
    if fleets:
        held.append(f"{fleets} fleet record{'s' if fleets != 1 else ''} in {layout.CONTROL}/fleets/")
    tables = [t for t in (layout.raw_table(d) for d in layout.RAW_DATASETS)
              if store.exists(layout.delta_log(t) + layout.FIRST_LOG_ENTRY)]
    if tables:
        held.append(f"the Delta table{'s' if len(tables) != 1 else ''} {', '.join(tables)}")
    if not held and store.list(f"{layout.COMMITS}/"):
        held.append(f"commit markers in {layout.COMMITS}/")
    return " and ".join(held) or None

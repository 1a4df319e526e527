"""`fleetlake demo` as a user runs it (small and quick: 2 vehicles, 2 months, 60 s pings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ingest.flows.registry import active_flows
from partitions import Manifest


def run_demo(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest.surfaces.cli", "demo", "--vehicles", "2", "--history-months", "2",
                           "--ping-interval", "60", *extra], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=os.environ)


def test_demo_backfills_then_refreshes_one_new_month_per_fleet(tmp_path: Path) -> None:
    r = run_demo(tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    # Piped, the backfill is never silent: a line as each month of each fleet lands.
    backfill_lines = lines[:[i for i, ln in enumerate(lines) if "sandbox clock moved" in ln][0]]
    pulling = [ln for ln in backfill_lines if ln.strip().startswith("pulling   acme-freight")]
    assert [ln.split("] ")[1][:3] for ln in pulling] == ["0/3", "1/3", "2/3"] and "\r" not in r.stdout, r.stdout
    refresh = [ln for ln in lines if ln.strip().startswith("refresh")]
    assert len(refresh) == 2 and all("months committed:  2" in ln for ln in refresh), r.stdout
    features = [ln for ln in lines if ln.strip().startswith("features") and "windows" in ln]
    backfill_f, refresh_f = features[:2], features[2:]
    active = [f for f in active_flows() if f.window == "month"]  # the quote and the book have a line of their own
    n = len(active)
    assert all(f"{3 * n} windows: {n} flows x 3 months (new: " in ln for ln in backfill_f), r.stdout
    # The refresh: one new month per fleet and flow, plus the month that was open, recomputed.
    assert len(refresh_f) == 2 and all(f"{2 * n} windows: {n} flows x 2 months (new: " in ln and "recomputed (new data): "
                                       in ln for ln in refresh_f), r.stdout
    with Manifest(tmp_path / "fleetlake-data" / "manifest.duckdb") as m:
        assert {f.status for f in m.fleets()} == {"active"}
        assert {p.fleet_id for p in m.raw_partitions()} == {"acme-freight", "bluebird-logistics"}
        runs = [r for r in m.runs() if r.status == "succeeded"]
        newest = max(r.month for r in runs)
        month_flows = {fl.name for fl in active}
        assert sorted((r.fleet_id, r.flow, r.version) for r in runs if r.month == newest and r.flow in month_flows) == sorted(
            (f, fl.name, fl.version) for f in ("acme-freight", "bluebird-logistics") for fl in active)
    again = run_demo(tmp_path)
    assert again.returncode == 0 and "0 windows" in again.stdout  # nothing recomputed: the manifest remembers
    # Before its own month forward, the second run finds nothing to recompute, however many
    # wall-clock minutes passed: it resumes at the sandbox clock the first run ended on (a clock
    # that ran backwards would find the open months' HOS shorter and recompute drivers@1).
    first_features = [ln for ln in again.stdout.splitlines() if ln.strip().startswith("features") and "windows" in ln][:2]
    assert all(" 0 windows" in ln for ln in first_features), again.stdout

    def clock(out: str) -> str:
        return next(ln for ln in out.splitlines() if "sandbox clock moved" in ln).split(", to ")[1][:7]

    y, m = map(int, clock(r.stdout).split("-"))
    assert clock(again.stdout) == f"{y + m // 12}-{m % 12 + 1:02d}", again.stdout


def test_a_revoked_fleet_is_marked_and_the_other_continues(tmp_path: Path) -> None:
    r = run_demo(tmp_path, "--revoke", "acme-freight")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "acme-freight         revoked" in r.stdout and "bluebird-logistics" in r.stdout
    with Manifest(tmp_path / "fleetlake-data" / "manifest.duckdb") as m:
        assert m.fleet("acme-freight").status == "revoked" and "consent" in m.fleet("acme-freight").error
        assert m.fleet("bluebird-logistics").status == "active"
        assert m.raw_partitions("bluebird-logistics") and not m.raw_partitions("acme-freight")

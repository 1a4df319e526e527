"""Hostile HOS records cost themselves only: over real HTTP, a fleet whose TSP spoils about one
record in seven of its drivers' routes (sandbox/hostile_hos.py: times that are numbers, before 2000
or centuries ahead, unknown statuses, labels that are numbers or megabytes, references without an
id, ids of 200,000 characters, durations that are text, vehicles that are strings) is pulled to the
end: each spoiled record is quarantined with a reason and bounded evidence, or lands with the
spoiled field nulled (counted by reason), and every other record lands as the same pull of the
unspoiled TSP lands it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from cryptography.fernet import Fernet

from connectors.oauth import Vault
from ingest.pull.backfill import PullOptions, PullReport, pull_fleet
from ingest.pull.hos_datasets import HosPull
from partitions import Manifest, read_month
from partitions.schema import DATASET_SCHEMAS, DUTY_STATUSES, MAX_EVIDENCE_CHARS, MAX_ID_CHARS, VIOLATION_KINDS
from partitions.store import LocalStore
from sandbox.quirks import Quirks
from sandbox.server import SandboxServer
from sandbox.world import default_config
from tests.conftest import NOW
from tests.support import loopback
from tests.test_pull_sandbox import connect

HOS = ("assignments", "hos_logs", "hos_violations")
# A record's identity, less what a spoiled label changes (its status or type becomes `other`).
KEY = {"assignments": ("vehicle_id", "driver_id", "start_ts"), "hos_logs": ("driver_id", "start_ts"),
       "hos_violations": ("driver_id", "ts")}


def pull(server: SandboxServer, tsp: str, fleet: str, where: Path) -> tuple[PullReport, dict[str, pa.Table]]:
    with Manifest(where / "m.duckdb") as manifest:
        store = LocalStore(where / "lake")
        connector = connect(server, tsp, fleet, manifest, Vault(Fernet.generate_key().decode()))
        now = server.world.clock.now_ms()
        start = server.world.crew(fleet).sim.spec.history_start_s * 1000
        report = pull_fleet(connector, store, manifest, fleet, start, now, PullOptions(hos=HosPull()))
        got = {d: pa.concat_tables([DATASET_SCHEMAS[d].empty_table(), *(
            read_month(store, manifest, fleet, p.month, where / "c", d) for p in manifest.raw_partitions(fleet, d))])
            for d in (*HOS, "quarantine")}
        months = {p.month for p in manifest.raw_partitions(fleet, "pings")}
        assert months and {p.month for p in manifest.raw_partitions(fleet, "assignments")} <= months
    return report, got


def keys(t: pa.Table, dataset: str) -> set[tuple]:
    cols = [pc.cast(t[c], pa.string()).to_pylist() for c in KEY[dataset]]
    return set(zip(*cols))


@pytest.mark.parametrize("tsp,fleet", [("samsara", "acme-freight"), ("motive", "bluebird-logistics")])
def test_hostile_hos_records_are_quarantined_or_nulled_and_the_pull_lands_the_rest(tmp_path: Path, tsp: str,
                                                                                    fleet: str) -> None:
    cfg = default_config(seed=11, vehicles=4, ping_interval_s=60, history_months=1, now=NOW)
    with SandboxServer(replace(cfg, samsara_rate_per_s=1000.0, motive_rate_per_s=1000.0)) as server:
        plain_report, plain = pull(server, tsp, fleet, tmp_path / "plain")
        assert loopback.post(f"{server.base_url}/_sandbox/quirks/{fleet}",
                          json=Quirks(seed=3, hostile_hos=True).as_dict()).status_code == 200
        report, got = pull(server, tsp, fleet, tmp_path / "hostile")

    assert report.rows_accepted == plain_report.rows_accepted > 0, "the pings landed as without the spoiled records"
    assert report.slices_pulled == report.slices_planned and not report.stopped
    q = got["quarantine"]
    reasons = pc.cast(q["reason"], pa.string()).to_pylist()
    hos_reasons = {r for r in reasons if r.split(":")[0] in ("assignments", "hos logs", "hos violations")}
    # Every spoiling that cannot land is quarantined under its reason, in each dataset that has the field.
    want = {"missing or unparseable start time", "start time out of range", "missing driver id",
            "driver id too long"}
    by_dataset = {d: {r.split(": ", 1)[1] for r in hos_reasons if r.startswith(d.replace("_", " ") + ":")}
                  for d in HOS}
    assert want <= by_dataset["assignments"], by_dataset
    # A month of four trucks has few violations: some of them are spoiled, not each way.
    assert by_dataset["hos_violations"] & {"missing or unparseable timestamp", "timestamp out of range",
                                           "missing driver id", "driver id too long"}, by_dataset
    assert {"missing or unparseable start time", "start time out of range"} <= by_dataset["hos_logs"], by_dataset
    evidence = pc.cast(q["raw"], pa.string()).to_pylist()
    assert all(e and len(e) <= MAX_EVIDENCE_CHARS for e, r in zip(evidence, reasons) if r in hos_reasons)
    # Spoiled optional fields cost the field only, counted by reason.
    nulled = report.nulled
    assert nulled.get("label not text", 0) > 0 and nulled.get("label too long", 0) > 0, nulled
    assert nulled.get("duration out of range", 0) > 0, nulled

    for dataset in HOS:
        mine, theirs = got[dataset], plain[dataset]
        assert mine.num_rows > 0
        assert all(len(d) <= MAX_ID_CHARS for d in pc.cast(mine["driver_id"], pa.string()).to_pylist())
        lost = keys(theirs, dataset) - keys(mine, dataset)
        quarantined = sum(r.startswith(dataset.replace("_", " ") + ":") for r in reasons)
        # What did not land is what was quarantined (a record cut at a month's end is two rows there).
        assert 0 < len(lost) <= 2 * quarantined, (dataset, len(lost), quarantined)
    assert set(pc.cast(got["hos_logs"]["status"], pa.string()).to_pylist()) <= set(DUTY_STATUSES)
    assert "other" in pc.cast(got["hos_logs"]["status"], pa.string()).to_pylist(), "unknown statuses land as other"
    assert set(pc.cast(got["hos_violations"]["kind"], pa.string()).to_pylist()) <= set(VIOLATION_KINDS)

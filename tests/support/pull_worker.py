"""A pull process for the SIGKILL test: python -m tests.support.pull_worker CONFIG_JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from connectors.http import RetryPolicy
from connectors.oauth import BearerAuth, FleetCredentials, OAuthClient, Vault
from connectors.providers import oauth_provider, open_connector
from ingest.pull.backfill import PullOptions, pull_fleet
from partitions import Manifest
from partitions.store import LocalStore


def main(cfg: dict) -> int:
    with Manifest(Path(cfg["manifest"])) as manifest:
        client = OAuthClient(oauth_provider(cfg["tsp"], cfg["base_url"], cfg["client_id"], cfg["client_secret"],
                                            cfg["redirect"]))
        creds = FleetCredentials(cfg["fleet"], client, Vault(cfg["key"]), manifest)
        connector = open_connector(cfg["tsp"], cfg["fleet"], cfg["base_url"], BearerAuth(creds), 500.0,
                                   policy=RetryPolicy(base_delay_s=0.01, max_delay_s=0.2, max_retry_after_s=1.0))
        print("started", flush=True)
        report = pull_fleet(connector, LocalStore(Path(cfg["store"])), manifest, cfg["fleet"], cfg["start"],
                            cfg["now"], PullOptions(work_dir=Path(cfg["work"]), commit_every=3, workers=2,
                                                      on_month=lambda m: print("month", m, flush=True)))
    print(json.dumps({"planned": report.slices_planned, "pulled": report.slices_pulled}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))

"""The `fleetlake` command."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone


def _utc(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _sandbox_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    p.add_argument("--vehicles", type=int, default=4, help="vehicles per sandbox fleet (default 4)")
    p.add_argument("--ping-interval", type=int, default=30, help="seconds between pings while driving (default 30)")
    p.add_argument("--history-months", type=int, default=24, help="months of history before now (default 24)")
    p.add_argument("--now", type=_utc, default=None, help="freeze the sandbox clock at this UTC time")
    p.add_argument("--samsara-rate", type=float, default=50.0, help="Samsara requests/s per token (default 50)")
    p.add_argument("--motive-rate", type=float, default=20.0, help="Motive requests/s per token (default 20)")


def _config(args: argparse.Namespace):
    from dataclasses import replace

    from connectors.sandbox.world import default_config

    base = default_config(seed=args.seed, vehicles=args.vehicles, ping_interval_s=args.ping_interval,
                          history_months=args.history_months, now=args.now)
    return replace(base, samsara_rate_per_s=args.samsara_rate, motive_rate_per_s=args.motive_rate)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from connectors.sandbox.server import SandboxServer

    server = SandboxServer(_config(args), host=args.host, port=args.port)
    server.serve_until_signalled(lambda s: print(json.dumps(s.describe()), flush=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ingest.demo import run_demo

    return run_demo(_config(args))


def cmd_manifest_rebuild(args: argparse.Namespace) -> int:
    from ingest.settings import load_settings
    from partitions import Manifest, open_store, rebuild_raw, rebuild_runs

    settings = load_settings()
    store = open_store(settings.resolved_store_url, settings.s3_options())
    with Manifest(settings.resolved_manifest_path) as manifest:
        raw = rebuild_raw(store, manifest)
        runs = rebuild_runs(store, manifest)
    print(json.dumps({"windows": raw.windows, "markers_read": raw.markers_read, "feature_runs": runs.windows,
                      "feature_markers_read": runs.markers_read, "problems": [*raw.problems, *runs.problems]}))
    return 1 if raw.problems or runs.problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetlake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sandbox", help="serve the fake Samsara and Motive APIs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    _sandbox_args(p)
    p.set_defaults(func=cmd_sandbox)
    p = sub.add_parser("demo", help="run the main job on embedded defaults (sandbox TSPs, local store)")
    _sandbox_args(p)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("manifest", help="manifest maintenance")
    msub = p.add_subparsers(dest="manifest_command", required=True)
    p = msub.add_parser("rebuild", help="rebuild the manifest's partitions from the store's commit markers")
    p.set_defaults(func=cmd_manifest_rebuild)
    return parser


def main(argv: list[str] | None = None) -> int:
    from common.errors import FleetlakeError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FleetlakeError as e:
        print(f"fleetlake: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

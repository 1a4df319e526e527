"""`fleetlake sandbox` and `fleetlake demo`: the sandbox's commands, plugged into the CLI.

The core CLI finds them through the `fleetlake.commands` entry point group, so it never
imports the sandbox: an installation without this package simply has no such commands.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the simulator loads when a sandbox command runs, not with every `fleetlake` command
    from sandbox.world import SandboxConfig


def _utc(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    p.add_argument("--vehicles", type=int, default=4, help="vehicles per sandbox fleet (default 4)")
    p.add_argument("--ping-interval", type=int, default=30, help="seconds between pings while driving (default 30)")
    p.add_argument("--history-months", type=int, default=24, help="months of history before now (default 24)")
    p.add_argument("--now", type=_utc, default=None, help="freeze the sandbox clock at this UTC time")
    p.add_argument("--samsara-rate", type=float, default=50.0, help="Samsara requests/s per token (default 50)")
    p.add_argument("--motive-rate", type=float, default=20.0, help="Motive requests/s per token (default 20)")


def _config(args: argparse.Namespace) -> SandboxConfig:
    from sandbox.world import default_config

    base = default_config(seed=args.seed, vehicles=args.vehicles, ping_interval_s=args.ping_interval,
                          history_months=args.history_months, now=args.now)
    return replace(base, samsara_rate_per_s=args.samsara_rate, motive_rate_per_s=args.motive_rate)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from sandbox.server import SandboxServer  # uvicorn and the simulator: not for `fleetlake --help`

    server = SandboxServer(_config(args), host=args.host, port=args.port)
    server.serve_until_signalled(lambda s: print(json.dumps(s.describe()), flush=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from sandbox.demo import run_demo  # the whole core: not for `fleetlake --help`

    return run_demo(_config(args), args.history_months, revoke=tuple(args.revoke))


def register(sub: argparse._SubParsersAction) -> None:  # argparse's type for add_subparsers()
    p = sub.add_parser("sandbox", help="serve the fake Samsara and Motive APIs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    _world_args(p)
    p.set_defaults(func=cmd_sandbox)
    p = sub.add_parser("demo", help="run the main job on embedded defaults (sandbox TSPs, local store)")
    _world_args(p)
    p.add_argument("--revoke", action="append", default=[], metavar="FLEET",
                   help="withdraw this sandbox fleet's consent before the first pull (shows fleet isolation)")
    p.set_defaults(func=cmd_demo)

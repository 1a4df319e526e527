"""The `fleetlake` command."""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import entry_points


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


# ---------------------------------------------------------------------- the daemon and its work
class DaemonClient:
    """The running daemon's JSON API, for commands run while it holds the manifest."""

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        import httpx

        from common.errors import ConfigError

        if settings.api_token is None:
            raise ConfigError("FLEETLAKE_API_TOKEN", "the daemon holds the manifest; set the API token to ask it")
        host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
        self.http = httpx.Client(base_url=f"http://{host}:{settings.http_port}", timeout=60,
                                 headers={"Authorization": f"Bearer {settings.api_token.get_secret_value()}"})

    def call(self, method: str, path: str, **params: str) -> object:
        import httpx

        from common.errors import FleetlakeError

        try:
            r = self.http.request(method, path, params={k: v for k, v in params.items() if v is not None})
        except httpx.HTTPError as e:
            raise FleetlakeError(f"the manifest is held by a daemon, but its API does not answer: {e}") from None
        if r.status_code >= 400:
            raise FleetlakeError(f"daemon answered {r.status_code}: {r.json().get('error', r.text)[:300]}")
        return r.json()


def _with_token_key(settings):  # type: ignore[no-untyped-def]
    """Settings with FLEETLAKE_TOKEN_KEY, or else the key kept in the data dir (made on first use)."""
    if settings.token_key is not None:
        return settings
    from pydantic import SecretStr

    from ingest.keys import local_token_key

    return settings.model_copy(update={"token_key": SecretStr(local_token_key(settings.data_dir))})


def _with_service(settings, fn, needs_key: bool = False):  # type: ignore[no-untyped-def]
    """fn(service) with a Service on the manifest, or fn(DaemonClient) when a daemon holds the manifest.

    `needs_key`: the command handles TSP tokens, so it gets the local key when none is configured.
    """
    from common.errors import ManifestLocked
    from ingest.flows.registry import active_flows
    from ingest.service import Service
    from ingest.tsps import endpoints
    from partitions import Manifest, open_store

    try:
        manifest = Manifest(settings.resolved_manifest_path)
    except ManifestLocked:
        return fn(DaemonClient(settings))
    if needs_key:
        settings = _with_token_key(settings)
    with manifest:
        store = open_store(settings.resolved_store_url, settings.s3_options())
        return fn(Service(settings, manifest, store, endpoints(settings), active_flows(settings.flows_file)))


def cmd_run(args: argparse.Namespace) -> int:
    from ingest import logs
    from ingest.daemon import Daemon, serve
    from ingest.flows.registry import active_flows
    from ingest.service import Service
    from ingest.settings import load_settings
    from ingest.tsps import endpoints
    from partitions import Manifest, open_store

    settings = load_settings()
    logs.configure(settings.log_format)
    settings = _with_token_key(settings)
    flows = active_flows(settings.flows_file)
    with Manifest(settings.resolved_manifest_path) as manifest:
        store = open_store(settings.resolved_store_url, settings.s3_options())
        service = Service(settings, manifest, store, endpoints(settings), flows)
        return serve(Daemon(service))


def cmd_keygen(args: argparse.Namespace) -> int:
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    from ingest.settings import load_settings

    settings = load_settings()

    def go(svc):  # type: ignore[no-untyped-def]
        if isinstance(svc, DaemonClient):
            if args.code:
                raise SystemExit("fleetlake: a daemon is running: open the consent URL and let the TSP redirect "
                                 "to its callback")
            print(svc.call("POST", f"/connect/{args.tsp}", fleet_id=args.fleet)["consent_url"])  # type: ignore[index]
            return 0
        if args.code:
            fid = svc.complete_consent(args.tsp, args.code, args.state or "")
            print(f"fleet {fid} connected through {args.tsp}; run `fleetlake backfill {fid}` or start the daemon")
        else:
            print(svc.consent_url(args.tsp, args.fleet))
        return 0

    return _with_service(settings, go, needs_key=True)


def _print_pull(o) -> None:  # type: ignore[no-untyped-def]
    if o.pings is None:
        print(f"{o.fleet_id}: {o.status}: {o.error}")
        return
    months = o.pings.months_changed
    print(f"{o.fleet_id}: {o.status}: {o.pings.windows_pulled} windows, {o.pings.rows_accepted:,} pings, "
          f"{o.events.rows_accepted if o.events else 0} events, months committed: "
          f"{', '.join(months) if len(months) <= 3 else f'{months[0]}..{months[-1]} ({len(months)})'}")


def _pull_cmd(args: argparse.Namespace, kind: str) -> int:
    from ingest.settings import load_settings

    settings = load_settings()
    fleet = getattr(args, "fleet", None)

    def go(svc):  # type: ignore[no-untyped-def]
        if isinstance(svc, DaemonClient):
            path = f"/fleets/{fleet}/{'backfill' if kind == 'pull' else 'refresh'}" if fleet else "/refresh"
            print(json.dumps(svc.call("POST", path)))
            return 0
        targets = [fleet] if fleet else [f["fleet_id"] for f in svc.fleets() if f["status"] != "revoked"]
        failed = 0
        from ingest.progress import ProgressBar

        for fid in targets:
            o = svc.pull(fid, progress=ProgressBar(f"pull {fid}"))
            _print_pull(o)
            failed += o.status not in ("active",)
        report = svc.features()
        print(f"features: {len(report.results)} windows, {len(report.failed)} failed")
        for r in report.failed:
            print(f"  {r.task.fleet_id} {r.task.flow}@{r.task.version} {r.task.month}: {r.error}")
        return 1 if failed or report.failed else 0

    return _with_service(settings, go, needs_key=True)


def cmd_backfill(args: argparse.Namespace) -> int:
    return _pull_cmd(args, "pull")


def cmd_refresh(args: argparse.Namespace) -> int:
    return _pull_cmd(args, "refresh")


_MARK = {"done": "#", "pending": ".", "failed": "!"}


def cmd_status(args: argparse.Namespace) -> int:
    from ingest.settings import load_settings

    def go(svc):  # type: ignore[no-untyped-def]
        if isinstance(svc, DaemonClient):
            fleets = svc.call("GET", "/fleets")
            grids = [svc.call("GET", f"/fleets/{f['fleet_id']}/status") for f in fleets]  # type: ignore[union-attr]
        else:
            grids = [svc.status(f["fleet_id"]) for f in svc.fleets()]
        if args.fleet:
            grids = [g for g in grids if g["fleet_id"] == args.fleet]
        if args.json:
            print(json.dumps(grids, indent=2))
            return 0
        if not grids:
            print("no fleets yet: `fleetlake connect <tsp> --fleet <id>` starts a consent")
        for g in grids:
            print(f"{g['fleet_id']} ({g['tsp']}): {g['status']}" + (f" - {g['error']}" if g.get("error") else ""))
            flows = sorted({k for m in g["months"].values() for k in m["features"]})
            if not g["months"]:
                continue
            print(f"  {'month':7s} {'pings':>10s} {'events':>7s}  " + " ".join(f.split('@')[0][:4] for f in flows))
            for month, row in g["months"].items():
                marks = " ".join(f"{_MARK[row['features'].get(f, 'pending')]:>4s}" for f in flows)
                print(f"  {month:7s} {row['raw'].get('pings', 0):>10,} {row['raw'].get('events', 0):>7,}  {marks}")
            print("  # computed  . pending  ! failed (retried with backoff)")
        return 0

    return _with_service(load_settings(), go)


def cmd_features(args: argparse.Namespace) -> int:
    from ingest.settings import load_settings

    def go(svc):  # type: ignore[no-untyped-def]
        if isinstance(svc, DaemonClient):
            out = svc.call("GET", f"/fleets/{args.fleet}/features", month=args.month)
        else:
            try:
                out = svc.features_of(args.fleet, args.month)
            except KeyError:
                raise SystemExit(f"fleetlake: unknown fleet {args.fleet}") from None
        if args.json:
            print(json.dumps(out, indent=2, default=str))
            return 0
        for month, flows in out["months"].items():  # type: ignore[index]
            print(f"{args.fleet} {month}")
            for flow, rows in flows.items():
                for r in rows:
                    vals = {k: v for k, v in r.items() if k not in ("fleet_id", "month", "vehicle_id")}
                    print(f"  {flow:15s} " + ", ".join(f"{k}={_fmt(v)}" for k, v in vals.items()))
        return 0

    return _with_service(load_settings(), go)


def _fmt(v: object) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetlake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for plugin in entry_points(group="fleetlake.commands"):
        plugin.load()(sub)  # e.g. the sandbox's `sandbox` and `demo` commands
    from ingest import lake_cli  # `sql`, `gc`, `migrate`
    lake_cli.register(sub)
    p = sub.add_parser("run", help="the daemon: scheduler, HTTP API and OAuth callback, until SIGTERM")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("keygen", help="print a new FLEETLAKE_TOKEN_KEY")
    p.set_defaults(func=cmd_keygen)
    p = sub.add_parser("connect", help="print a consent URL for a new fleet; --code/--state complete it")
    p.add_argument("tsp", choices=["samsara", "motive"])
    p.add_argument("--fleet", required=True, help="the fleet id to register the consenting customer under")
    p.add_argument("--code", help="the code from the TSP's redirect (write --code=VALUE: codes may start with '-')")
    p.add_argument("--state", help="the state from the TSP's redirect (--state=VALUE)")
    p.set_defaults(func=cmd_connect)
    p = sub.add_parser("backfill", help="pull a fleet's history (every window not yet complete), then features")
    p.add_argument("fleet")
    p.set_defaults(func=cmd_backfill)
    p = sub.add_parser("refresh", help="pull what is new for every fleet (or one), then features")
    p.add_argument("--fleet")
    p.set_defaults(func=cmd_refresh)
    p = sub.add_parser("status", help="fleet x month grid of raw data and feature windows")
    p.add_argument("--fleet")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("features", help="a fleet's roll-up features per month")
    p.add_argument("fleet")
    p.add_argument("--month")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_features)
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
    except BrokenPipeError:
        # The reader went away (`fleetlake status | head`): not an error; silence the final flush.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `fleetlake` command (its description for users is DESCRIPTION below).

Every command is written once, over `ingest.surfaces.control.Control`: the local app when no daemon
runs, the daemon's API when one holds the manifest. Commands that live outside the core (the
sandbox's `sandbox` and `demo`) are found through the `fleetlake.commands` entry point group.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import AbstractContextManager
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from common.errors import FleetlakeError
from common.states import Tsp, WindowState, WorkKind
from ingest.surfaces import lake_cli
from ingest.wiring import logs
from ingest.wiring.settings import Settings, load_settings

# Each command imports what it runs, when it runs: `fleetlake sql` or `--help` must not pay for
# the daemon, the connectors and the feature engine (start-up in a fraction of a second).
if TYPE_CHECKING:
    from ingest.reads.readiness import Readiness
    from ingest.surfaces.control import Control


DESCRIPTION = """\
fleetlake pulls trucking fleets' telematics (Samsara, Motive) into month-partitioned Delta
tables and keeps their risk features current: each month it pulls only what is new and
recomputes only what changed.

First steps: `fleetlake demo` runs the whole job on a built-in sandbox; `fleetlake run` starts
the daemon; `fleetlake status` shows every fleet. Settings are FLEETLAKE_* environment variables
(README.md lists them). With a daemon running, these commands ask it (set FLEETLAKE_API_TOKEN)."""


def open_control(settings: Settings, needs_key: bool = False) -> AbstractContextManager[Control]:
    """The local app, or the running daemon's API (ingest.surfaces.control), loaded when a command asks."""
    from ingest.surfaces.control import open_control as opened

    return opened(settings, needs_key)


def _settings() -> Settings:
    """A command's settings, with its logging configured (and deprecated setting names logged)."""
    return logs.for_command(load_settings())


def cmd_manifest_rebuild(args: argparse.Namespace) -> int:
    settings = _settings()
    from ingest.runtime.app import private_data_dir
    from partitions.rebuild import rebuild_manifest
    from partitions.store import open_store

    private_data_dir(settings)
    store = open_store(settings.resolved_store_url, settings.s3_options())
    path = settings.resolved_manifest_path
    # A damaged file is never written into: the rebuild goes to a new file swapped in atomically.
    r = rebuild_manifest(store, path)
    if r.damage is not None:
        print(f"fleetlake: manifest {path} was damaged ({r.damage}): rebuilt it into a new file", file=sys.stderr)
    raw, runs, control = r.raw, r.runs, r.control
    print(json.dumps({"windows": raw.windows, "markers_read": raw.markers_read, "feature_runs": runs.windows,
                      "feature_markers_read": runs.markers_read, "problems": list(r.problems),
                      **({"control": {"fleets": control.fleets, "credentials": control.credentials,
                                      "consents": control.consents}} if control.fleets or control.consents else {}),
                      **({"checkpoints": control.checkpoints} if control.checkpoints else {}),
                      **({"data_keys": control.keys} if control.keys else {}),
                      **({"pulled_months": control.pulled_months} if control.pulled_months else {}),
                      **({"readiness_fired": control.readiness} if control.readiness else {}),
                      **({"offboardings": control.offboardings} if control.offboardings else {}),
                      **({"damaged_file_kept_as": str(r.aside)} if r.aside else {})}))
    return 1 if r.problems else 0


# ---------------------------------------------------------------------- the daemon and its work
def cmd_run(args: argparse.Namespace) -> int:
    from ingest.runtime.app import open_app, with_token_key
    from ingest.runtime.daemon import Daemon
    from ingest.surfaces import preflight
    from ingest.surfaces.serve import serve

    settings = load_settings()
    preflight.check(settings)  # before the manifest is opened or a thread started
    settings = logs.for_command(settings, logging.INFO)

    with open_app(with_token_key(settings)) as app:
        return serve(Daemon(app))


def cmd_keygen(args: argparse.Namespace) -> int:
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    with open_control(_settings(), needs_key=True) as ctl:
        if args.code:
            fid = ctl.complete_consent(args.tsp, args.code, args.state or "")
            print(f"fleet {fid} connected through {args.tsp}; run `fleetlake backfill {fid}` or start the daemon")
        else:
            print(ctl.consent_url(args.tsp, args.fleet, relink=args.relink))
    return 0


def _pull(kind: WorkKind, fleet: str | None) -> int:
    with open_control(_settings(), needs_key=True) as ctl:
        done = ctl.pull(kind, fleet)
    for line in done.lines:
        print(line)
    return 0 if done.ok else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    return _pull(WorkKind.BACKFILL, args.fleet)


def cmd_refresh(args: argparse.Namespace) -> int:
    return _pull(WorkKind.REFRESH, args.fleet)


def cmd_offboard(args: argparse.Namespace) -> int:
    if not args.yes:
        print(f"fleetlake: off-boarding revokes {args.fleet}'s TSP grant, destroys its credentials and deletes "
              "every object and record of it (only an audit record stays); run again with --yes", file=sys.stderr)
        return 2
    import getpass

    operator = args.by or getpass.getuser()
    with open_control(_settings(), needs_key=True) as ctl:
        try:
            outcome = ctl.offboard(args.fleet, operator)
        except KeyError:
            print(f"fleetlake: unknown fleet {args.fleet}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2))
    else:
        print("\n".join(outcome.lines()))
    return 0


_MARK = {WindowState.DONE: "#", WindowState.PENDING: ".", WindowState.FAILED: "!"}


def cmd_status(args: argparse.Namespace) -> int:
    with open_control(_settings()) as ctl:
        if args.fleet:  # an unknown fleet is an error (UnknownFleet), not an empty list
            grids = [ctl.status(args.fleet)]
            ready = ctl.readiness(args.fleet)
            quote = ctl.quote(args.fleet)
        else:
            grids, ready, quote = [ctl.status(f.fleet_id) for f in ctl.fleets()], None, None
    if args.json:
        out = [g.to_json() | ({"readiness": ready.to_json()} if ready else {}) | ({"quote": quote} if quote else {})
               for g in grids]
        print(json.dumps(out, indent=2))
        return 0
    if not grids:
        print("no fleets yet: `fleetlake connect <tsp> --fleet <id>` starts a consent")
    for g in grids:
        f = g.fleet
        print(f"{f.fleet_id} ({f.tsp}): {f.status.value}" + (f" - {f.error}" if f.error else "")
              + (f" - STUCK: {f.stuck}" if f.stuck else ""))
        if not g.months:
            continue
        flows = sorted({k for m in g.months.values() for k in m.features})
        print(f"  {'month':7s} {'pings':>10s} {'events':>7s}  " + " ".join(fl.split('@')[0][:4] for fl in flows))
        for month, row in g.months.items():
            marks = " ".join(f"{_MARK[row.features.get(fl, WindowState.PENDING)]:>4s}" for fl in flows)
            print(f"  {month:7s} {row.raw.get('pings', 0):>10,} {row.raw.get('events', 0):>7,}  {marks}")
        print("  # computed  . pending  ! failed (retried with backoff)")
    if ready is not None:
        _print_readiness(ready)
    if args.fleet:
        _print_quote(quote)
    return 0


def _print_quote(q: dict[str, Any] | None) -> None:
    """The quote figures, one line each: value, months covered, percentile in the book, or why not."""
    if q is None:
        print("  quote: none yet (computed once the quote window's months have features)")
        return
    done = "" if q["complete_window"] else " (incomplete window)"
    print(f"  quote {q['window']}: {q['first_month']}..{q['last_month']}{done}")
    for f in q["figures"]:
        v = f["value"]
        shown = f"{v:,.3g}" if isinstance(v, float) and abs(v) < 10 else f"{v:,.0f}" if isinstance(v, float) \
            else str(v) if v is not None else f"- ({f['reason']})"
        rank = f", percentile {f['percentile']:.0f}" if f["percentile"] is not None else ""
        print(f"    {f['label']:18s} {shown} {f['unit']}  [{f['months']}/{q['window_months']} months{rank}]")
    if q["state_shares"]:
        print("    states             " + ", ".join(f"{s['state']} {s['share']:.0%}" for s in q["state_shares"][:5]))


def _print_readiness(r: Readiness) -> None:
    from ingest.surfaces.progress import duration

    span = f"{r.span[0]}..{r.span[1]}" if r.span else "none yet"
    rate = f"{r.pings_per_min:,.0f} pings/min" if r.pings_per_min is not None else \
        f"rate unknown ({r.notes.get('pings_per_min', '')})"
    eta = duration(r.eta_s) if r.eta_s is not None else f"unknown ({r.notes.get('eta_s', '')})"
    print(f"  readiness: {len(r.months_ready)}/{r.months_total} months with features, latest span {span}")
    print(f"  to pull: {len(r.months_to_pull)} months" + (f" ({r.months_to_pull[0]}..{r.months_to_pull[-1]})"
                                                          if r.months_to_pull else "") +
          (f", pulling {r.pulling}" if r.pulling else ""))
    print(f"  {r.pings:,} pings landed, {rate}, full history ETA {eta}")
    for t in r.thresholds:
        state = (f"reached {t.first_month}..{t.last_month}" + (f", alerted {t.fired_at:%Y-%m-%d %H:%M}Z"
                                                               if t.fired_at else "")) if t.reached else "not yet"
        print(f"  latest {t.months} months: {state}")


def cmd_features(args: argparse.Namespace) -> int:
    with open_control(_settings()) as ctl:
        out = ctl.features(args.fleet, args.month)  # UnknownFleet: one line, exit 2
    if args.json:
        print(json.dumps(out.to_json(), indent=2, default=str))
        return 0 if out.months or not args.month else 1
    if not out.months:
        if args.month:
            with open_control(_settings()) as ctl:
                months = sorted(ctl.features(args.fleet, None).months)
            have = f"{months[0]}..{months[-1]}" if months else "none yet"
            print(f"fleetlake: {args.fleet} has no features for {args.month} (months with features: {have})",
                  file=sys.stderr)
            return 1
        print(f"{args.fleet}: no features yet (`fleetlake status --fleet {args.fleet}` shows where its pull stands)")
        return 0
    for month, flows in out.months.items():
        print(f"{args.fleet} {month}")
        for flow, rows in flows.items():
            for r in rows:
                vals = {k: v for k, v in r.items() if k not in ("fleet_id", "month", "vehicle_id")}
                print(f"  {flow:15s} " + ", ".join(f"{k}={fmt(v)}" for k, v in vals.items()))
    return 0


def fmt(v: object) -> str:
    """A value as a person reads it: 2,391 miles, 23.9 mph, 0.123 shares; null stays null."""
    if v is None:
        return "null"
    if isinstance(v, bool) or not isinstance(v, float):
        return str(v)
    if v != v:  # NaN
        return "NaN"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a == 0:
        return "0"
    return f"{v:.3g}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetlake", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for plugin in entry_points(group="fleetlake.commands"):
        try:
            register = plugin.load()  # e.g. the sandbox's `sandbox` and `demo` commands
        except ImportError:
            continue  # declared but not shipped (the container image leaves the sandbox out)
        register(sub)
    lake_cli.register(sub)  # `sql`, `gc`, `migrate`
    p = sub.add_parser("run", help="the daemon: pulls, feature runs, the monthly refresh, the HTTP API, the console "
                                   "and the OAuth callback, until SIGTERM",
                       description="Start the daemon. It checks its settings, token key and port first and "
                                   "refuses to start on a problem, naming the setting.")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("keygen", help="print a new FLEETLAKE_TOKEN_KEY (a Fernet key; keep it in a secret store)")
    p.set_defaults(func=cmd_keygen)
    p = sub.add_parser("connect", help="print a consent URL for a new fleet; --code/--state complete it")
    p.add_argument("tsp", choices=[t.value for t in Tsp], help="the fleet's telematics provider")
    p.add_argument("--fleet", required=True, help="the fleet id to register the consenting customer under")
    p.add_argument("--code", help="the code from the TSP's redirect (write --code=VALUE: codes may start with '-')")
    p.add_argument("--state", help="the state from the TSP's redirect (--state=VALUE)")
    p.add_argument("--relink", action="store_true",
                   help="replace the tokens of a fleet already connected (otherwise its consent is refused)")
    p.set_defaults(func=cmd_connect)
    p = sub.add_parser("backfill", help="pull a fleet's history (every month not yet landed), then its features")
    p.add_argument("fleet", help="the fleet id")
    p.set_defaults(func=cmd_backfill)
    p = sub.add_parser("refresh", help="pull what is new for every fleet (or one), then features")
    p.add_argument("--fleet", help="only this fleet (default: every fleet)")
    p.set_defaults(func=cmd_refresh)
    p = sub.add_parser("offboard", help="revoke a fleet's TSP grant, destroy its credentials (its data key) and "
                                        "delete every object and record of it; an audit record stays")
    p.add_argument("fleet", help="the fleet id")
    p.add_argument("--by", help="the operator's name for the audit record (default: the login name)")
    p.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    p.add_argument("--json", action="store_true", help="print the off-boarding record as JSON")
    p.set_defaults(func=cmd_offboard)
    p = sub.add_parser("status", help="fleet x month grid of raw data and feature windows")
    p.add_argument("--fleet", help="one fleet, with how close it is to a quote (default: every fleet)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("features", help="a fleet's roll-up features per month")
    p.add_argument("fleet", help="the fleet id")
    p.add_argument("--month", help="one month, YYYY-MM (default: every month with features)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_features)
    p = sub.add_parser("manifest", help="manifest maintenance")
    msub = p.add_subparsers(dest="manifest_command", required=True)
    p = msub.add_parser("rebuild", help="rebuild the manifest from the store (a damaged file is replaced by a new "
                                        "one and kept aside)")
    p.set_defaults(func=cmd_manifest_rebuild)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; every error is one line on stderr naming what is wrong, never a traceback
    (FLEETLAKE_DEBUG=1 shows the traceback of an unexpected one)."""
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
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - a user sees one line; the traceback is for FLEETLAKE_DEBUG
        if os.environ.get("FLEETLAKE_DEBUG"):
            raise
        print(f"fleetlake: unexpected {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''} "
              "(a fleetlake bug or a local fault; FLEETLAKE_DEBUG=1 shows where)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

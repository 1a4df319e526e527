"""`fleetlake run`: the daemon and its HTTP server in this (main) thread until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
import time

import uvicorn

from common.errors import ConfigError
from ingest.runtime.daemon import Daemon
from ingest.surfaces.api import create_app

log = logging.getLogger("fleetlake.daemon")


def serve(daemon: Daemon) -> int:
    """Run the daemon and its HTTP server in this (main) thread until SIGTERM or SIGINT."""
    s = daemon.settings
    app = create_app(daemon.app, daemon.pipeline, daemon.problems, daemon.backoffs)
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 (or from
    # $FORWARDED_ALLOW_IPS); which peers are believed is FLEETLAKE_TRUSTED_PROXIES (ingest.wiring.proxies).
    server = uvicorn.Server(uvicorn.Config(app, host=s.http_host, port=s.http_port, proxy_headers=False,
                                           log_level="warning", access_log=False, lifespan="off"))
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    http = threading.Thread(target=server.run, name="fleetlake-http", daemon=True)
    http.start()
    while not server.started:  # the port was free a moment ago (preflight); a race can still take it
        if not http.is_alive():
            raise ConfigError("FLEETLAKE_HTTP_PORT", f"the HTTP server did not start on {s.http_host}:{s.http_port} "
                                                     "(the port was taken meanwhile?); nothing was started")
        time.sleep(0.02)
    daemon.start()
    log.info("fleetlake running: http://%s:%s, refresh cron %r (UTC)", s.http_host, s.http_port, s.refresh_cron)
    stopping.wait()
    clean = daemon.shutdown()
    server.should_exit = True
    http.join(10)
    log.info("fleetlake stopped%s", "" if clean else " (in-flight work did not finish in the grace period)")
    return 0 if clean else 1

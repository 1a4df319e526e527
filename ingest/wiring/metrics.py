"""The daemon's Prometheus metrics, on a registry of its own (served at /metrics).

`tsp_response` is handed to each connector as its response hook.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pings = Counter("fleetlake_pings_ingested", "Pings committed, per fleet", ["fleet"], registry=r)
        self.windows = Counter("fleetlake_feature_windows", "Feature windows run, per flow and outcome",
                               ["flow", "status"], registry=r)
        self.tsp_requests = Counter("fleetlake_tsp_requests", "TSP API responses, per TSP and status (0: no answer)",
                                    ["tsp", "status"], registry=r)
        self.tsp_throttled = Counter("fleetlake_tsp_throttled", "TSP 429 answers, per TSP", ["tsp"], registry=r)
        self.work = Counter("fleetlake_work", "Work items finished, per kind and outcome", ["kind", "status"],
                            registry=r)
        self.job_errors = Counter("fleetlake_job_errors", "Scheduler job failures, per job", ["job"], registry=r)
        self.seconds = Histogram("fleetlake_run_seconds", "Duration of work items, per kind", ["kind"], registry=r,
                                 buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600))
        self.api_requests = Counter("fleetlake_api_requests", "JSON API requests, per route and status",
                                    ["route", "status"], registry=r)
        self.stuck = Gauge("fleetlake_work_stuck", "Members (fleets, the feature pass) of an open stuck incident: "
                           "no progress, far longer than their history, or a TSP that hangs or keeps failing, "
                           "per incident group (pull:<tsp>, features)", ["group"], registry=r)
        self.console_logins = Counter("fleetlake_console_logins", "Console login attempts, per outcome (ok, "
                                      "failed, throttled: all logins closed, locked: the address is locked)",
                                      ["outcome"], registry=r)
        for outcome in ("ok", "failed", "throttled", "locked"):
            self.console_logins.labels(outcome)  # exposed at 0 before the first attempt
        self.alerts = Counter("fleetlake_alerts", "Alerts sent to the webhook, per event and outcome",
                              ["event", "delivered"], registry=r)

    def tsp_response(self, tsp: str, status: int) -> None:
        self.tsp_requests.labels(tsp, str(status)).inc()
        if status == 429:
            self.tsp_throttled.labels(tsp).inc()

    def alert_result(self, event: str, delivered: bool) -> None:
        self.alerts.labels(event, "yes" if delivered else "no").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

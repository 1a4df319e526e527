"""Alerts to an operator's webhook: Slack-compatible JSON to any HTTP endpoint.

Delivery rules, shared by every kind of alert (stuck work, a fleet ready for a quote):

- One POST per event, body ``{"text": ..., "event": ..., **fields}``: Slack and Mattermost read
  `text`, anything else can key on `event`.
- Bounded retries on connection errors and 5xx/429 (three attempts, a few seconds in all); a 4xx
  other than 429 is the receiver refusing the payload, so it is not retried.
- Delivery never raises into the caller: an alert that cannot be delivered is logged (without the
  URL, which for Slack is itself a secret) and counted, and the work that raised it goes on.
- `IncidentBook` turns a stream of "what is wrong now" observations into one alert when an
  incident opens and one recovery when it clears, per group key (e.g. a TSP): a TSP down for
  hours across hundreds of fleets is one alert, not hundreds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import httpx
from pydantic import SecretStr
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from connectors.http import tls_context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    event: str  # e.g. "work.stuck", "work.recovered", "fleet.ready_for_quote"
    text: str  # one human line, what Slack shows
    fields: Mapping[str, object] = field(default_factory=dict)

    def payload(self) -> dict[str, object]:
        return {"text": self.text, "event": self.event, **self.fields}


class _Retriable(Exception):
    """A delivery attempt worth repeating (the receiver was unreachable or overloaded)."""


class Webhook:
    """Posts alerts to one URL; `url=None` makes every send a logged no-op (alerts are optional)."""

    def __init__(self, url: SecretStr | str | None, *, timeout_s: float = 5.0, attempts: int = 3,
                 on_result: Callable[[str, bool], None] | None = None) -> None:
        raw = url.get_secret_value() if isinstance(url, SecretStr) else url
        self._url = raw or None
        self._timeout = timeout_s
        self._attempts = attempts
        self._on_result = on_result
        self._lock = threading.Lock()  # one delivery at a time keeps alerts in the order they were raised

    @property
    def enabled(self) -> bool:
        return self._url is not None

    def send(self, alert: Alert) -> bool:
        """Deliver `alert`; True when the receiver answered 2xx. Never raises."""
        if self._url is None:
            log.info("alert (no webhook configured): %s", alert.text)
            return False
        ok = False
        with self._lock:
            try:
                self._post(alert)
                ok = True
            except Exception as exc:  # noqa: BLE001 - an alert must never take down the work that raised it
                log.warning("alert %s not delivered: %s", alert.event, _describe(exc))
        if self._on_result is not None:
            self._on_result(alert.event, ok)
        return ok

    def _post(self, alert: Alert) -> None:
        url = self._url
        assert url is not None

        @retry(retry=retry_if_exception(lambda e: isinstance(e, (_Retriable, httpx.TransportError))),
               stop=stop_after_attempt(self._attempts), wait=wait_exponential(multiplier=0.5, max=4),
               reraise=True)
        def attempt() -> None:
            with httpx.Client(timeout=self._timeout, follow_redirects=False, verify=tls_context()) as client:
                r = client.post(url, json=alert.payload())
            if r.status_code == 429 or r.status_code >= 500:
                raise _Retriable(f"receiver answered {r.status_code}")
            if r.status_code >= 300:
                raise RuntimeError(f"receiver refused the alert: HTTP {r.status_code}")

        attempt()


def _describe(exc: BaseException) -> str:
    # httpx messages can carry the URL; the class name and status are enough to act on.
    if isinstance(exc, httpx.TransportError):
        return f"{type(exc).__name__} (receiver unreachable)"
    return str(exc) if isinstance(exc, (_Retriable, RuntimeError)) else type(exc).__name__


@dataclass(frozen=True)
class Incident:
    """What is wrong in one group now: the group key and the members affected (fleet ids, work keys)."""

    group: str
    members: frozenset[str]
    detail: str = ""  # one line on what is wrong (e.g. the first member's reason), for the opening alert


class IncidentBook:
    """Open/clear bookkeeping so each incident alerts once and recovers once.

    `observe` is called with everything wrong right now (e.g. every stuck pull, grouped by TSP).
    A group that appears opens an incident (one alert); members joining or leaving an open
    incident say nothing more; a group that disappears closes it (one recovery message).
    """

    def __init__(self, webhook: Webhook, *, event: str, describe: Callable[[Incident], str],
                 recovered: Callable[[Incident], str]) -> None:
        self._webhook = webhook
        self._event = event
        self._describe = describe
        self._recovered = recovered
        self._open: dict[str, Incident] = {}
        self._lock = threading.Lock()

    @property
    def open_groups(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._open)

    def observe(self, now_wrong: Iterable[Incident]) -> list[Alert]:
        """Update from the current observation; return (and send) the alerts it raised."""
        current = {i.group: i for i in now_wrong if i.members}
        alerts: list[Alert] = []
        with self._lock:
            for group, inc in sorted(current.items()):
                if group not in self._open:
                    self._open[group] = inc
                    alerts.append(Alert(self._event, self._describe(inc),
                                        {"group": group, "members": sorted(inc.members), "state": "open"}))
                else:  # remember everyone who was affected, for the recovery message
                    was = self._open[group]
                    self._open[group] = Incident(group, was.members | inc.members, was.detail)
            for group in sorted(set(self._open) - set(current)):
                inc = self._open.pop(group)
                alerts.append(Alert(self._event.rsplit(".", 1)[0] + ".recovered", self._recovered(inc),
                                    {"group": group, "members": sorted(inc.members), "state": "recovered"}))
        for a in alerts:
            self._webhook.send(a)
        return alerts

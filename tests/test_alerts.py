"""Webhook delivery rules, against a local receiver over real HTTP."""

from __future__ import annotations

import logging

import pytest

from ingest.runtime.alerts import Alert, Incident, IncidentBook, Webhook
from tests.support.webhook import webhook_receiver


def _book(hook: Webhook) -> IncidentBook:
    return IncidentBook(hook, event="work.stuck",
                        describe=lambda i: f"{len(i.members)} pulls stuck on {i.group}",
                        recovered=lambda i: f"{i.group} recovered")


def test_an_alert_is_slack_compatible_json() -> None:
    with webhook_receiver() as rec:
        assert Webhook(rec.url).send(Alert("fleet.ready_for_quote", "fleet f1 ready", {"fleet": "f1"}))
        assert rec.events() == [{"text": "fleet f1 ready", "event": "fleet.ready_for_quote", "fleet": "f1"}]


def test_a_transient_receiver_failure_is_retried_and_delivered_once() -> None:
    with webhook_receiver() as rec:
        rec.fail_next = 2
        assert Webhook(rec.url, attempts=3).send(Alert("e.x", "hello"))
        assert len(rec.events()) == 1


def test_an_unreachable_receiver_never_raises_and_never_logs_the_url(caplog: pytest.LogCaptureFixture) -> None:
    results: list[tuple[str, bool]] = []
    url = "http://127.0.0.1:9/services/T000/B000/secret-part"
    hook = Webhook(url, attempts=2, timeout_s=0.5, on_result=lambda e, ok: results.append((e, ok)))
    with caplog.at_level(logging.WARNING):
        assert hook.send(Alert("e.x", "hello")) is False
    assert results == [("e.x", False)]
    assert "secret-part" not in caplog.text and "not delivered" in caplog.text


def test_an_incident_alerts_once_while_it_lasts_and_recovers_once() -> None:
    with webhook_receiver() as rec:
        book = _book(Webhook(rec.url))
        book.observe([Incident("samsara", frozenset({"f1"}))])
        # The outage spreads to many fleets and lasts many observations: still one alert.
        for n in range(2, 50):
            book.observe([Incident("samsara", frozenset(f"f{i}" for i in range(1, n)))])
        book.observe([])
        book.observe([])
        assert [b["event"] for b in rec.events()] == ["work.stuck", "work.recovered"]
        assert rec.events()[1]["members"] == sorted(f"f{i}" for i in range(1, 49))


def test_groups_open_and_recover_independently() -> None:
    with webhook_receiver() as rec:
        book = _book(Webhook(rec.url))
        book.observe([Incident("samsara", frozenset({"a"})), Incident("motive", frozenset({"b"}))])
        book.observe([Incident("motive", frozenset({"b"}))])
        assert [(b["event"], b["group"]) for b in rec.events()] == [
            ("work.stuck", "motive"), ("work.stuck", "samsara"), ("work.recovered", "samsara")]
        assert book.open_groups == {"motive"}

"""Response classification and the retry policy, one response case at a time (respx)."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest
import respx

from common.errors import TspRequestError, TspUnavailable
from connectors.http import RetryPolicy, TspHttp, classify, retry_after_seconds
from connectors.throttle import Throttle

BASE = "https://api.tsp.test"
FAST = RetryPolicy(max_attempts=4, max_total_s=10, base_delay_s=0.001, max_delay_s=0.01, max_retry_after_s=0.2)


@pytest.mark.parametrize("value, expected", [("0.25", 0.25), ("3", 3.0), ("-1", None), ("soon", None),
                                             ("", None), (None, None), ("1e9", 120.0)])
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, max_s=120.0) == expected


def test_retry_after_http_date() -> None:
    now = time.time()
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds(header, max_s=120.0, now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds(email.utils.formatdate(now - 30, usegmt=True), 120.0, now=now) == 0.0


@pytest.mark.parametrize("status, kind", [(200, "ok"), (204, "ok"), (429, "retry"), (500, "retry"), (503, "retry"),
                                          (401, "auth"), (403, "auth"), (400, "client_error"), (404, "client_error")])
def test_classify(status: int, kind: str) -> None:
    assert classify(httpx.Response(status)) == kind


@respx.mock
def test_429_with_fractional_retry_after_then_success() -> None:
    route = respx.get(f"{BASE}/x").mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "0.05"}, json={"message": "slow down"}),
        httpx.Response(200, json={"ok": True})])
    throttle = Throttle(100)
    http = TspHttp("samsara", BASE, None, throttle=throttle, policy=FAST)
    t0 = time.monotonic()
    assert http.get("/x").json() == {"ok": True}
    assert time.monotonic() - t0 >= 0.05 and route.call_count == 2
    assert http.throttled == 1 and throttle.rate < throttle.target  # slowed down after the 429


@respx.mock
def test_429_without_retry_after_backs_off_and_succeeds() -> None:
    respx.get(f"{BASE}/x").mock(side_effect=[httpx.Response(429), httpx.Response(429), httpx.Response(200, json=[])])
    assert TspHttp("motive", BASE, None, policy=FAST).get("/x").json() == []


@respx.mock
def test_5xx_with_text_body_is_retried() -> None:
    respx.get(f"{BASE}/x").mock(side_effect=[
        httpx.Response(502, text="upstream connect error", headers={"content-type": "text/plain"}),
        httpx.Response(200, json={"a": 1})])
    assert TspHttp("samsara", BASE, None, policy=FAST).get("/x").json() == {"a": 1}


@respx.mock
def test_transport_errors_are_retried() -> None:
    respx.get(f"{BASE}/x").mock(side_effect=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
                                             httpx.RemoteProtocolError("cut"), httpx.Response(200, json={})])
    assert TspHttp("samsara", BASE, None, policy=FAST).get("/x").json() == {}


@respx.mock
def test_a_400_is_not_retried_and_says_why_without_the_query_secrets() -> None:
    route = respx.get(f"{BASE}/x").mock(return_value=httpx.Response(400, json={"message": "limit must be <= 512"}))
    with pytest.raises(TspRequestError, match="limit must be <= 512") as info:
        TspHttp("samsara", BASE, None, policy=FAST).get("/x", params={"api_key": "sekrit-value-1", "limit": 9})
    assert route.call_count == 1 and info.value.status == 400
    assert "sekrit-value-1" not in str(info.value)


@respx.mock
def test_retries_are_bounded() -> None:
    route = respx.get(f"{BASE}/x").mock(return_value=httpx.Response(503, json={"message": "down"}))
    with pytest.raises(TspUnavailable, match="gave up after 4 attempts: HTTP 503"):
        TspHttp("samsara", BASE, None, policy=FAST).get("/x")
    assert route.call_count == 4


def test_throttle_paces_requests_under_the_limit() -> None:
    t = Throttle(50, target_fraction=0.9)
    t0 = time.monotonic()
    for _ in range(10):
        t.acquire()
    # 10 requests at 45/s take at least 9 intervals: the pacing never bursts past the limit.
    assert time.monotonic() - t0 >= 9 / 45 * 0.95

"""Pagination edge cases of the pullers, one response at a time (respx)."""

from __future__ import annotations

import httpx
import pytest
import respx

from common.errors import MalformedResponse, PaginationLoop
from connectors.http import RetryPolicy, TspHttp
from connectors.motive import MotiveConnector
from connectors.samsara import SamsaraConnector

BASE = "https://api.samsara.test"
FAST = RetryPolicy(max_attempts=2, base_delay_s=0.001, max_delay_s=0.01)


def page(points: list[dict], cursor: str = "", more: bool = False) -> httpx.Response:
    data = [{"id": "v1", "gps": points}] if points else []
    return httpx.Response(200, json={"data": data, "pagination": {"endCursor": cursor, "hasNextPage": more}})


def pt(second: int) -> dict:
    return {"time": f"2025-03-01T00:00:{second:02d}.000Z", "latitude": 40.0, "longitude": -90.0,
            "speedMilesPerHour": 10.0}


def samsara() -> SamsaraConnector:
    return SamsaraConnector(TspHttp("samsara", BASE, None, policy=FAST), "fleet-a")


@respx.mock
def test_empty_pages_that_say_there_is_more_are_followed() -> None:
    respx.get(f"{BASE}/fleet/vehicles/stats/history").mock(side_effect=[
        page([], "c1", True), page([], "c2", True), page([pt(1), pt(2)], "", False)])
    t = samsara().gps_slice("v1", 0, 10**13)
    assert t.num_rows == 2


@respx.mock
def test_a_repeated_cursor_raises_instead_of_looping() -> None:
    route = respx.get(f"{BASE}/fleet/vehicles/stats/history").mock(side_effect=[
        page([pt(1)], "c1", True), page([pt(2)], "c2", True), page([pt(3)], "c1", True)] + [page([pt(4)])] * 5)
    with pytest.raises(PaginationLoop, match="repeated a pagination cursor"):
        samsara().gps_slice("v1", 0, 10**13)
    assert route.call_count == 3


@respx.mock
def test_the_cursor_is_sent_back_verbatim() -> None:
    route = respx.get(f"{BASE}/fleet/vehicles/stats/history").mock(side_effect=[
        page([pt(1)], "Yz+/=", True), page([pt(2)])])
    samsara().gps_slice("v1", 0, 10**13)
    assert route.calls[1].request.url.params["after"] == "Yz+/="


@respx.mock
def test_a_page_of_the_wrong_shape_is_a_clear_error() -> None:
    respx.get(f"{BASE}/fleet/vehicles/stats/history").mock(return_value=httpx.Response(200, json={"items": []}))
    with pytest.raises(MalformedResponse, match="GPS history"):
        samsara().gps_slice("v1", 0, 10**13)


@respx.mock
def test_motive_vehicle_pages_stop_at_the_total() -> None:
    def vehicles(n: int, page_no: int, total: int) -> httpx.Response:
        items = [{"vehicle": {"id": page_no * 100 + i, "number": f"T{i}"}} for i in range(n)]
        return httpx.Response(200, json={"vehicles": items, "pagination": {"per_page": 100, "page_no": page_no,
                                                                           "total": total}})

    route = respx.get("https://api.motive.test/v1/vehicles").mock(side_effect=[vehicles(100, 1, 130),
                                                                               vehicles(30, 2, 130)])
    got = MotiveConnector(TspHttp("motive", "https://api.motive.test", None, policy=FAST), "f").vehicles()
    assert len(got) == 130 and route.call_count == 2

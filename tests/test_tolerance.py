"""Single responses (respx) that each cost at most a field or a record, never a page or a fleet.

A poisoned record, a 360.0 heading, a null speed, a number sent as a string; Motive history with
and without `pagination`; the odometer matched by time; labels outside the official set.
"""

from __future__ import annotations

import httpx
import pyarrow as pa
import pytest
import respx

from common.errors import MalformedResponse, PaginationLoop
from connectors.http import RetryPolicy, TspHttp
from connectors.motive import MotiveConnector
from connectors.samsara import ODOMETER_TOLERANCE_MS, SamsaraConnector
from partitions.schema import split_valid

SAMSARA = "https://api.samsara.test"
MOTIVE = "https://api.motive.test"
FAST = RetryPolicy(max_attempts=2, base_delay_s=0.001, max_delay_s=0.01)
NOW = 1_900_000_000_000
T0 = 1_740_787_200_000  # 2025-03-01T00:00:00Z


def samsara() -> SamsaraConnector:
    return SamsaraConnector(TspHttp("samsara", SAMSARA, None, policy=FAST), "fleet-a")


def motive() -> MotiveConnector:
    return MotiveConnector(TspHttp("motive", MOTIVE, None, policy=FAST), "fleet-b")


def gps(second: int, **over: object) -> dict:
    return {"time": f"2025-03-01T00:00:{second:02d}.000Z", "latitude": 40.0 + second / 1000, "longitude": -90.0,
            "headingDegrees": 90.0, "speedMilesPerHour": 30.0, **over}


def stats_page(points: list, **vehicle: object) -> httpx.Response:
    return httpx.Response(200, json={"data": [{"id": "v1", "gps": points, **vehicle}],
                                     "pagination": {"endCursor": "", "hasNextPage": False}})


def loc(i: int, **over: object) -> dict:
    return {"vehicle_location": {"id": i, "located_at": f"2025-03-01T00:{i // 60:02d}:{i % 60:02d}Z",
                                 "lat": 40.0 + i / 1000, "lon": -90.0, "bearing": 90.0, "speed": 50.0,
                                 "odometer": 1000.0 + i, **over}}


def land(table: pa.Table):  # type: ignore[no-untyped-def]
    return split_valid(table, NOW)


@respx.mock
def test_a_poisoned_record_costs_that_record_and_the_rest_of_the_page_lands() -> None:
    respx.get(f"{SAMSARA}/fleet/vehicles/stats/history").mock(return_value=stats_page(
        [gps(1), gps(2, latitude=True), gps(3), None, gps(4, headingDegrees=[1, 2])]))
    c = samsara()
    split = land(c.gps_slice("v1", 0, 10**13))
    assert c.salvaged_pages == 1
    assert split.valid.num_rows == 3  # 1, 3 and 4 (4 loses only its heading)
    assert split.valid["heading_deg"].to_pylist() == [90.0, 90.0, None]
    assert split.nulled == {"unparseable optional value": 1}
    q = split.quarantine
    assert q.num_rows == 2 and '"latitude":true' in q["raw"][0].as_py() and q["raw"][1].as_py() == "null"
    assert all(r for r in q["reason"].to_pylist())


@respx.mock
def test_a_poisoned_page_in_the_lookback_lands_as_it_does_outside_it() -> None:
    """A lookback slice is fetched unread (connectors.pages) and read later: a page whose records
    fail their typed decode takes the same record-by-record path there, with the same rows and
    quarantine; a page with no data list is the same MalformedResponse."""
    respx.get(f"{SAMSARA}/fleet/vehicles/stats/history").mock(return_value=stats_page(
        [gps(1), gps(2, latitude=True), gps(3), None, gps(4, headingDegrees=[1, 2])]))
    plain, fetched = land(samsara().gps_slice("v1", 0, 10**13)), samsara().gps_fetch("v1", 0, 10**13)
    assert len(fetched.digests()) == 1
    late = land(fetched.read())
    assert late.valid.num_rows == 3 and late.valid.equals(plain.valid)
    assert late.quarantine.equals(plain.quarantine) and late.nulled == plain.nulled
    respx.get(f"{SAMSARA}/fleet/vehicles/stats/history").mock(return_value=httpx.Response(
        200, json={"pagination": {"endCursor": "", "hasNextPage": False}}))
    for pull in (lambda c: c.gps_slice("v1", 0, 10**13), lambda c: c.gps_fetch("v1", 0, 10**13).read()):
        with pytest.raises(MalformedResponse, match="no data list"):
            pull(samsara())


@respx.mock
def test_a_poisoned_motive_record_costs_that_record() -> None:
    respx.get(f"{MOTIVE}/v3/vehicle_locations/7").mock(return_value=httpx.Response(200, json={
        "vehicle_locations": [loc(1), loc(2, lat=True), loc(3), "junk", {"no_wrapper": 1}]}))
    c = motive()
    split = land(c.gps_slice("7", T0, T0 + 86_400_000))
    assert c.salvaged_pages == 1
    assert split.valid.num_rows == 2 and split.quarantine.num_rows == 3


@respx.mock
def test_a_page_that_is_not_json_or_has_no_records_is_still_a_clear_error() -> None:
    respx.get(f"{SAMSARA}/fleet/vehicles/stats/history").mock(side_effect=[
        httpx.Response(200, content=b"<html>oops</html>"), httpx.Response(200, json={"data": "nope"})])
    with pytest.raises(MalformedResponse, match="not JSON"):
        samsara().gps_slice("v1", 0, 10**13)
    with pytest.raises(MalformedResponse, match="no data list"):
        samsara().gps_slice("v1", 0, 10**13)


@respx.mock
def test_a_360_heading_a_null_speed_and_a_string_number_cost_at_most_their_field() -> None:
    respx.get(f"{SAMSARA}/fleet/vehicles/stats/history").mock(return_value=stats_page([
        gps(1, headingDegrees=360.0), gps(2, speedMilesPerHour=None), gps(3, latitude="40.003", speedMilesPerHour="31"),
        gps(4, headingDegrees=-90), gps(5, headingDegrees=725.0, speedMilesPerHour=900.0)]))
    split = land(samsara().gps_slice("v1", 0, 10**13))
    assert split.quarantine.num_rows == 0 and split.valid.num_rows == 5
    assert split.valid["heading_deg"].to_pylist() == [0.0, 90.0, 90.0, 270.0, None]
    assert split.valid["speed_mph"].to_pylist() == [30.0, None, 31.0, 30.0, None]
    assert split.valid["lat"].to_pylist()[2] == 40.003
    assert split.nulled == {"heading out of range": 1, "speed out of range": 1}


@respx.mock
def test_motive_history_follows_pages_until_the_total() -> None:
    def page(no: int, per: int, total: int) -> httpx.Response:
        items = [loc(i) for i in range((no - 1) * per, min(no * per, total))]
        return httpx.Response(200, json={"vehicle_locations": items,
                                         "pagination": {"per_page": per, "page_no": no, "total": total}})

    route = respx.get(f"{MOTIVE}/v3/vehicle_locations/7").mock(side_effect=[page(1, 100, 250), page(2, 100, 250),
                                                                           page(3, 100, 250)])
    t = motive().gps_slice("7", T0, T0 + 86_400_000)
    assert t.num_rows == 250 and route.call_count == 3
    assert [c.request.url.params["page_no"] for c in route.calls] == ["1", "2", "3"]
    assert all(c.request.url.params["per_page"] == "100" for c in route.calls)


@respx.mock
def test_motive_history_follows_a_server_that_clamps_per_page() -> None:
    def page(no: int) -> httpx.Response:
        items = [loc(i) for i in range((no - 1) * 25, min(no * 25, 60))]
        return httpx.Response(200, json={"vehicle_locations": items,
                                         "pagination": {"per_page": 25, "page_no": no, "total": 60}})

    route = respx.get(f"{MOTIVE}/v3/vehicle_locations/7").mock(side_effect=[page(1), page(2), page(3)])
    assert motive().gps_slice("7", T0, T0 + 86_400_000).num_rows == 60 and route.call_count == 3


@respx.mock
def test_motive_history_without_pagination_is_one_complete_page() -> None:
    route = respx.get(f"{MOTIVE}/v3/vehicle_locations/7").mock(return_value=httpx.Response(200, json={
        "vehicle_locations": [loc(i) for i in range(300)]}))
    assert motive().gps_slice("7", T0, T0 + 86_400_000).num_rows == 300 and route.call_count == 1


@respx.mock
def test_motive_history_stops_at_an_empty_page_and_refuses_a_repeated_page() -> None:
    def page(no: int, n: int, answered: int | None = None) -> httpx.Response:
        return httpx.Response(200, json={"vehicle_locations": [loc(i) for i in range(n)], "pagination": {
            "per_page": 100, "page_no": answered or no, "total": 10_000}})

    route = respx.get(f"{MOTIVE}/v3/vehicle_locations/7").mock(side_effect=[page(1, 100), page(2, 0)])
    motive().gps_slice("7", T0, T0 + 86_400_000)
    assert route.call_count == 2
    respx.get(f"{MOTIVE}/v3/vehicle_locations/8").mock(side_effect=[page(1, 100), page(2, 100, answered=1)])
    with pytest.raises(PaginationLoop, match="answered page 1"):
        motive().gps_slice("8", T0, T0 + 86_400_000)


@respx.mock
def test_the_odometer_series_is_matched_by_nearest_time_within_the_tolerance() -> None:
    assert 2_300 + ODOMETER_TOLERANCE_MS < 59_000
    series = [{"time": "2025-03-01T00:00:01.400Z", "value": 1609344},      # 0.4 s after point 1
              {"time": "2025-02-28T18:00:02.300-06:00", "value": 3218688}]  # point 2, +0.3 s, at an offset
    respx.get(f"{SAMSARA}/fleet/vehicles/stats/history").mock(return_value=stats_page(
        [gps(1), gps(2), gps(59), gps(5, decorations={"gpsOdometerMeters": {"value": 8046720}})],
        gpsOdometerMeters=series))
    odo = samsara().gps_slice("v1", 0, 10**13)["odometer_mi"].to_pylist()
    assert odo[2] is None  # the point at :59: the nearest reading is beyond the tolerance
    assert [round(x) for x in (odo[0], odo[1], odo[3])] == [1000, 2000, 5000]  # 5: its own decoration


@respx.mock
def test_samsara_vehicles_without_points_or_gps_key_cost_nothing() -> None:
    respx.get(f"{SAMSARA}/fleet/vehicles/stats/history").mock(return_value=httpx.Response(200, json={
        "data": [{"id": "v1", "gps": []}, {"id": "v1", "gpsOdometerMeters": []}, {"id": "v1", "gps": [gps(1)]}],
        "pagination": {"endCursor": "", "hasNextPage": False}}))
    assert samsara().gps_slice("v1", 0, 10**13).num_rows == 1


@respx.mock
def test_official_labels_map_and_unknown_ones_are_kept_as_other_and_counted() -> None:
    def ev(i: int, label: str) -> dict:
        return {"id": f"e{i}", "time": "2025-03-01T00:00:00Z", "vehicle": {"id": "v1"},
                "location": {"latitude": 40.0, "longitude": -90.0}, "behaviorLabels": [{"label": label}]}

    respx.get(f"{SAMSARA}/fleet/safety-events").mock(return_value=httpx.Response(200, json={
        "data": [ev(1, "braking"), ev(2, "Acceleration"), ev(3, "harshTurn"), ev(4, "rollingStop"), ev(5, "mystery")],
        "pagination": {"endCursor": "", "hasNextPage": False}}))
    c = samsara()
    t = c.events_slice(T0, T0 + 86_400_000)
    assert t["kind"].to_pylist() == ["harsh_brake", "harsh_accel", "harsh_turn", "other", "other"]
    assert t["tsp_kind"].to_pylist()[3:] == ["rollingStop", "mystery"]
    assert c.unknown_labels == {"rollingStop": 1, "mystery": 1}

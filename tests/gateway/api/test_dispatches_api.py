"""The station inbox and acknowledgement: scope, order, paging, state guards."""

from __future__ import annotations

import json

import pytest

from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Dispatch
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, token_of

WF = "530627-WF"


@pytest.fixture
def settings(settings):  # type: ignore[override]
    # Each report its own case here: these tests are about the inbox, not linking.
    return settings.with_(case_window_s=0)


@pytest.fixture
def officer(county):
    return auth(token_of(county, "officer 乌峰派出所"))


def file(client, county, n: int, township: int = 0, category: str = "CHILD") -> list[str]:
    headers = auth(token_of(county, "reporter 张秀英"))
    codes = []
    for i in range(n):
        resp = client.post("/api/v1/reports", headers=headers, json={
            "client_id": f"inbox-{township}-{i:04d}-{category}", "category": category,
            "grid_code": cell_code(township, i % 4, 0)})
        assert resp.status_code == 201, resp.json
        codes.append(resp.json["code"])
    run_jobs()
    return codes


def inbox(client, headers, station=WF, **params):
    return client.get(f"/api/v1/stations/{station}/dispatches", headers=headers,
                      query_string=params)


def test_inbox_lists_the_stations_dispatches_newest_first(client, county, officer):
    codes = file(client, county, 3)
    file(client, county, 2, township=1)  # another station's
    resp = inbox(client, officer)
    assert resp.status_code == 200
    assert [d["report_code"] for d in resp.json] == codes[::-1]
    assert {d["station_code"] for d in resp.json} == {WF}
    assert "reporter" not in json.dumps(resp.json)


def test_inbox_is_paginated(client, county, officer):
    file(client, county, 5)
    resp = inbox(client, officer, page=2, page_size=2)
    assert resp.status_code == 200
    assert len(resp.json) == 2
    pagination = json.loads(resp.headers["X-Pagination"])
    assert pagination["total"] == 5
    assert pagination["page"] == 2


def test_acknowledge_then_filter_by_status(client, county, officer):
    file(client, county, 2)
    first = inbox(client, officer).json[0]
    resp = client.post(f"/api/v1/dispatches/{first['id']}/acknowledge", headers=officer)
    assert resp.status_code == 200
    assert resp.json["status"] == "acknowledged"
    assert resp.json["acknowledged_at"]
    report = Report.objects(code=first["report_code"]).first()
    assert report.status == "acknowledged"
    acked = inbox(client, officer, status="acknowledged").json
    assert [d["id"] for d in acked] == [first["id"]]
    assert len(inbox(client, officer, status="delivered").json) == 1


def test_acknowledging_twice_is_409_with_the_current_state(client, county, officer):
    file(client, county, 1)
    dispatch_id = inbox(client, officer).json[0]["id"]
    assert client.post(f"/api/v1/dispatches/{dispatch_id}/acknowledge",
                       headers=officer).status_code == 200
    again = client.post(f"/api/v1/dispatches/{dispatch_id}/acknowledge", headers=officer)
    assert again.status_code == 409
    assert again.json["errors"]["current_status"] == "acknowledged"


def test_another_stations_officer_cannot_read_or_acknowledge(client, county, officer):
    file(client, county, 1)
    dispatch_id = inbox(client, officer).json[0]["id"]
    other = auth(token_of(county, "officer 南台派出所"))
    assert inbox(client, other).status_code == 403
    resp = client.post(f"/api/v1/dispatches/{dispatch_id}/acknowledge", headers=other)
    assert resp.status_code == 403
    assert Dispatch.objects(id=dispatch_id).first().status == "delivered"


def test_supervisor_reads_any_inbox_of_the_county(client, county):
    file(client, county, 1, township=2)
    supervisor = auth(token_of(county, "supervisor"))
    resp = inbox(client, supervisor, station="530627-PJ")
    assert resp.status_code == 200
    assert len(resp.json) == 1


def test_reporter_cannot_read_an_inbox(client, county):
    assert inbox(client, auth(token_of(county, "reporter 张秀英"))).status_code == 403


@pytest.mark.parametrize("dispatch_id", ["nonsense", "0123456789abcdef01234567"])
def test_unknown_dispatch_is_404(client, county, officer, dispatch_id):
    resp = client.post(f"/api/v1/dispatches/{dispatch_id}/acknowledge", headers=officer)
    assert resp.status_code == 404


def test_unknown_station_is_404_and_bad_status_422(client, county, officer):
    assert inbox(client, officer, station="NOPE").status_code == 404
    assert inbox(client, officer, status="lost").status_code == 422

"""The issuing officer's map of an alert, and the app's list of alerts for a cell."""

from __future__ import annotations

import pytest

from gateway.alerts.fanout import open_ring
from gateway.sample import cell_code
from tests.gateway.alerts.test_fanout import issue
from tests.gateway.api.test_reports_api import run_jobs
from tests.gateway.intake.test_inbound_sms import SECRET, mo
from tests.helpers import auth, token_of, with_sms

# The cells within 1 km of the middle of cell (0, 0, 0) (see test_fanout.py's NEAR).
FIRST_RING = {cell_code(0, 0, g) for g in range(4)} | {cell_code(0, 1, 0), cell_code(0, 1, 2)}


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, SECRET, kannel_password="pw", sms_rate_per_s=10_000)


def test_coverage_shows_cells_reached_and_swept_with_counts(client, county):
    code = issue(client, county)
    run_jobs()
    mo(client, f"OK{code}", sender="+8613800001001", ucs2=False)  # 张秀英, cell (0, 0, 0)
    run_jobs()
    supervisor = auth(token_of(county, "supervisor"))
    resp = client.get(f"/api/v1/alerts/{code}/coverage", headers=supervisor)
    assert resp.status_code == 200, resp.json
    doc = resp.json
    assert doc["type"] == "FeatureCollection"
    states = {f["properties"]["code"]: f["properties"]["state"] for f in doc["features"]}
    assert set(states) == FIRST_RING
    assert {c for c, s in states.items() if s == "swept"} == {cell_code(0, 0, 0)}
    assert doc["properties"] | {"alert": None} == {
        "alert": None, "status": "active", "reached": 6, "swept": 1, "not_swept": 5,
        "texted": 2, "rings_sent": 1}
    texted = {f["properties"]["code"]: f["properties"]["texted"] for f in doc["features"]}
    assert texted[cell_code(0, 0, 0)] == 1
    assert doc["features"][0]["geometry"]["type"] == "Polygon"
    open_ring(code, 1)
    wider = client.get(f"/api/v1/alerts/{code}/coverage", headers=supervisor).json
    assert wider["properties"]["reached"] == 48  # the whole sample county is within 10 km


def test_a_station_officer_sees_no_coverage(client, county):
    code = issue(client, county)
    resp = client.get(f"/api/v1/alerts/{code}/coverage",
                      headers=auth(token_of(county, "officer 乌峰派出所")))
    assert resp.status_code == 403


def test_the_app_lists_open_alerts_that_reached_the_reporters_cell(client, county):
    near = auth(token_of(county, "reporter 张秀英"))  # cell (0, 0, 0)
    far = auth(token_of(county, "reporter 李国强"))  # 泼机, 4 km east
    assert client.get("/api/v1/alerts/active", headers=near).json == []
    code = issue(client, county)
    run_jobs()
    listed = client.get("/api/v1/alerts/active", headers=near)
    assert listed.status_code == 200
    assert [a["code"] for a in listed.json] == [code]
    assert listed.json[0]["summary"] == "男孩约5岁，红上衣"
    assert "photo_url" not in listed.json[0]
    assert client.get("/api/v1/alerts/active", headers=far).json == []
    open_ring(code, 1)
    assert [a["code"] for a in client.get("/api/v1/alerts/active", headers=far).json] == [code]
    client.post(f"/api/v1/alerts/{code}/cancel", headers=auth(token_of(county, "supervisor")),
                json={"reason": "误报"})
    assert client.get("/api/v1/alerts/active", headers=near).json == []

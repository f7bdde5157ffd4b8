"""Issuing, reading, updating and ending alerts over the API: who may, what is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.alerts.records import Alert
from gateway.privacy.audit import AuditEntry
from gateway.sample import COUNTY_DESK, cell_code
from tests.helpers import auth, token_of

BEIJING = dt.timezone(dt.timedelta(hours=8))


def seen(minutes_ago: float = 20) -> str:
    return (dt.datetime.now(BEIJING) - dt.timedelta(minutes=minutes_ago)).isoformat()


def body(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "child": {"sex": "male", "age_years": 5, "clothing": "红上衣"},
        "seen_at": seen(), "grid_code": cell_code(0, 0, 0), "place": "城关车站"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def supervisor(county):
    return auth(token_of(county, "supervisor"))


@pytest.fixture
def desk(county):
    return auth(token_of(county, f"officer {COUNTY_DESK[1]}"))


def issue(client, headers, **changes):
    return client.post("/api/v1/alerts", headers=headers, json=body(**changes))


def test_a_supervisor_issues_an_alert_with_the_default_rings(client, supervisor):
    resp = issue(client, supervisor)
    assert resp.status_code == 201, resp.json
    alert = resp.json
    assert len(alert["code"]) == 6
    assert alert["code"].isdigit()
    assert alert["status"] == "active"
    assert alert["summary"] == "男孩约5岁，红上衣"
    assert alert["station_code"] == COUNTY_DESK[0]
    assert alert["county_code"] == "530627"
    assert alert["cell_code"] == cell_code(0, 0, 0)
    assert [(r["radius_km"], r["after_min"]) for r in alert["rings"]] == [
        (1, 0), (10, 30), (100, 60)]
    assert [r["sent_at"] for r in alert["rings"]] == [None, None, None]
    entry = AuditEntry.objects(subject=f"alert:{alert['code']}").get()
    assert entry.action == "alert.issue"
    assert entry.actor.startswith("supervisor:")
    got = client.get(f"/api/v1/alerts/{alert['code']}", headers=supervisor)
    assert got.status_code == 200
    assert got.json["code"] == alert["code"]


def test_a_county_desk_officer_issues_with_own_rings_and_a_gps_point(client, desk):
    resp = issue(client, desk, grid_code=None, place=None,
                 location={"lat": 27.44, "lon": 104.87, "datum": "GCJ-02"},
                 rings=[{"radius_km": 2, "after_min": 0}, {"radius_km": 500, "after_min": 90}])
    assert resp.status_code == 201, resp.json
    assert resp.json["last_seen"]["method"] == "gps"
    assert [(r["radius_km"], r["after_min"]) for r in resp.json["rings"]] == [(2, 0), (500, 90)]


def test_a_station_officer_may_not_issue(client, county):
    resp = issue(client, auth(token_of(county, "officer 乌峰派出所")))
    assert resp.status_code == 403
    assert "county desk" in resp.json["message"]
    assert Alert.objects.count() == 0


@pytest.mark.parametrize(("changes", "field", "says"), [
    ({"grid_code": None, "place": None}, "location", "say where the child was last seen"),
    ({"seen_at": seen(-60)}, "seen_at", "in the future"),
    ({"seen_at": seen(7 * 24 * 60)}, "seen_at", "more than 72 hours ago"),
    ({"rings": [{"radius_km": 0, "after_min": 0}]}, "rings", "more than 0 km"),
    ({"rings": [{"radius_km": 5000, "after_min": 0}]}, "rings", "at most 500 km"),
    ({"grid_code": "530627999999999"}, "grid_code", "no grid cell"),
    ({"child": {"sex": "male", "age_years": 5, "clothing": "红" * 60}}, "child",
     "too long for one SMS"),
])
def test_bad_alerts_are_refused_with_a_reason(client, supervisor, changes, field, says):
    resp = issue(client, supervisor, **changes)
    assert resp.status_code == 422, resp.json
    assert says in resp.json["message"]
    assert field in resp.json["errors"]["json"]
    assert Alert.objects.count() == 0


def test_a_long_description_says_how_much_to_shorten(client, supervisor):
    clothing = "粉色羽绒服蓝色牛仔裤白色运动鞋戴红色毛线帽背黄色书包"
    resp = issue(client, supervisor, child={"sex": "female", "age_years": 7, "clothing": clothing})
    assert resp.status_code == 422
    message = resp.json["message"]
    assert "characters too long" in message
    assert "shorten the clothing or the place" in message


def test_a_seen_at_without_offset_is_refused(client, supervisor):
    resp = issue(client, supervisor, seen_at="2026-01-01T10:00:00")
    assert resp.status_code == 422
    assert "seen_at" in resp.json["errors"]["json"]


def test_update_found_and_the_end_is_final(client, supervisor, desk):
    code = issue(client, supervisor).json["code"]
    resp = client.post(f"/api/v1/alerts/{code}/update", headers=desk,
                       json={"text": "改穿蓝色外套"})
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "updated"
    assert resp.json["update_text"] == "改穿蓝色外套"
    resp = client.post(f"/api/v1/alerts/{code}/found", headers=supervisor)
    assert resp.status_code == 200
    assert resp.json["status"] == "found"
    assert resp.json["ended_at"] is not None
    again = client.post(f"/api/v1/alerts/{code}/cancel", headers=supervisor,
                        json={"reason": "误报"})
    assert again.status_code == 409
    assert "has ended (found)" in again.json["message"]
    assert [e.action for e in AuditEntry.objects(subject=f"alert:{code}").order_by("seq")] == [
        "alert.issue", "alert.update", "alert.found"]
    assert [e.action for e in Alert.objects.get(code=code).events] == ["issue", "update", "found"]


def test_cancel_needs_a_reason_and_ends_the_alert(client, supervisor):
    code = issue(client, supervisor).json["code"]
    blank = client.post(f"/api/v1/alerts/{code}/cancel", headers=supervisor, json={"reason": " "})
    assert blank.status_code == 422
    resp = client.post(f"/api/v1/alerts/{code}/cancel", headers=supervisor,
                       json={"reason": "家长已联系上孩子"})
    assert resp.status_code == 200
    assert resp.json["status"] == "cancelled"


def test_an_update_too_long_for_one_sms_says_by_how_much(client, supervisor):
    code = issue(client, supervisor).json["code"]
    resp = client.post(f"/api/v1/alerts/{code}/update", headers=supervisor,
                       json={"text": "蓝" * 80})
    assert resp.status_code == 422
    assert "characters too long for one SMS" in resp.json["message"]
    assert Alert.objects.get(code=code).status == "active"


def test_an_unknown_alert_is_404(client, supervisor):
    assert client.get("/api/v1/alerts/999999", headers=supervisor).status_code == 404
    resp = client.post("/api/v1/alerts/999999/found", headers=supervisor)
    assert resp.status_code == 404
    assert "no alert 999999" in resp.json["message"]

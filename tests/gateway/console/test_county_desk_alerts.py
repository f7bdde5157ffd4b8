"""The county desk (刑侦值班) issues and ends missing-child alerts in the console as it may
through the API (issuing.issuer): its own alert page; other officers are refused."""

from __future__ import annotations

import pytest

from gateway.alerts.records import Alert
from gateway.records.people import Officer
from gateway.sample import COUNTY_DESK, cell_code
from tests.gateway.console.conftest import SUPERVISOR, WF_OFFICER, enrol, form_of

DESK_OFFICER = "+8613800003098"  # 刑侦大队值班民警
ISSUE = "/console/county/alerts"


@pytest.fixture
def desk(log_in):
    resp = log_in(DESK_OFFICER, enrol(DESK_OFFICER).now())
    assert resp.status_code == 303, resp.text
    return resp


def test_a_county_desk_officer_issues_and_ends_alerts_on_the_alert_page(client, county, desk):
    inbox = client.get("/console/inbox").text
    assert 'href="/console/alerts"' in inbox  # in the menu
    page = client.get("/console/alerts")
    assert page.status_code == 200
    assert "县局寻人协查" in page.text
    bad = client.post(ISSUE, data={**form_of(page.text, ISSUE), "sex": "male",
                                   "age_years": "40", "grid_code": cell_code(0, 0, 0)})
    assert bad.status_code == 422
    assert "age_years" in bad.text
    assert Alert.objects.count() == 0

    form = form_of(client.get("/console/alerts").text, ISSUE)
    ok = client.post(ISSUE, data={**form, "sex": "female", "age_years": "6",
                                  "grid_code": cell_code(1, 0, 0), "place": "城关车站"})
    assert ok.status_code == 303, ok.text
    alert = Alert.objects.get()
    assert ok.headers["Location"] == f"/console/alerts?done=issued#alert-{alert.code}"
    desk_officer = Officer.by_phone(DESK_OFFICER).first()
    assert (alert.station_code, alert.issued_by) == (COUNTY_DESK[0],
                                                     f"officer:{desk_officer.id}")
    page = client.get("/console/alerts").text
    assert f'id="alert-{alert.code}"' in page
    cover = client.get(f"/console/alerts/{alert.code}/coverage")
    assert cover.status_code == 200
    assert cover.json["properties"]["alert"] == alert.code
    cells = [f for f in client.get("/console/map/data").json["features"]
             if f["properties"]["kind"] == "cell"]
    assert len(cells) == 48  # the desk's map is the county

    cancel_url = f"{ISSUE}/{alert.code}/cancel"
    blank = client.post(cancel_url, data={**form_of(page, cancel_url), "reason": " "})
    assert blank.status_code == 422
    assert "县局寻人协查" in blank.text
    assert Alert.objects.get().status == "active"
    done = client.post(cancel_url, data={**form_of(client.get("/console/alerts").text,
                                                   cancel_url), "reason": "家长已联系上孩子"})
    assert done.status_code == 303
    assert done.headers["Location"] == "/console/alerts?done=cancelled"
    assert Alert.objects.get().status == "cancelled"
    assert client.get("/console/county").status_code == 403  # the rest stays the supervisor's


def test_a_county_desk_officer_ends_an_alert_as_found(client, county, desk):
    form = form_of(client.get("/console/alerts").text, ISSUE)
    assert client.post(ISSUE, data={**form, "sex": "male", "age_years": "4",
                                    "grid_code": cell_code(2, 0, 0)}).status_code == 303
    alert = Alert.objects.get()
    found_url = f"{ISSUE}/{alert.code}/found"
    found = form_of(client.get("/console/alerts").text, found_url)
    resp = client.post(found_url, data=found)
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/console/alerts?done=found"
    assert Alert.objects.get().status == "found"
    assert client.post(found_url, data=found).status_code == 409  # the same form again


def test_a_station_officer_may_not_reach_or_post_to_the_alert_page(client, county, log_in):
    assert log_in(WF_OFFICER, enrol(WF_OFFICER).now()).status_code == 303
    inbox = client.get("/console/inbox").text
    assert 'href="/console/alerts"' not in inbox
    page = client.get("/console/alerts")
    assert page.status_code == 403
    assert "只有督导员和县局刑侦值班民警" in page.text
    csrf = form_of(inbox, "/console/logout")["csrf"]
    post = client.post(ISSUE, data={"csrf": csrf, "once": "wf-issue-0001", "sex": "male",
                                    "age_years": "4", "grid_code": cell_code(0, 0, 0)})
    assert post.status_code == 403
    assert "只有督导员和县局刑侦值班民警" in post.text
    assert Alert.objects.count() == 0
    assert client.post(f"{ISSUE}/123456/found", data={
        "csrf": csrf, "once": "wf-found-0001"}).status_code == 403
    assert client.get("/console/alerts/123456/coverage").status_code == 403


def test_the_supervisor_keeps_the_alerts_on_the_county_page(client, county, log_in):
    assert log_in(SUPERVISOR).status_code == 303
    resp = client.get("/console/alerts")
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/console/county#alerts-h"
    page = client.get("/console/county").text
    form = form_of(page, ISSUE)
    ok = client.post(ISSUE, data={**form, "sex": "female", "age_years": "6",
                                  "grid_code": cell_code(0, 0, 0)})
    assert ok.status_code == 303
    assert ok.headers["Location"].startswith("/console/county?done=issued#alert-")

"""Sealed reporter identity: officers see role and kind; breaking the glass is audited."""

from __future__ import annotations

import json

import pytest

from gateway.privacy import audit
from gateway.sample import cell_code
from grid.documents import Dispatch, GridCell
from sms.records import OutboundMessage
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, cell_centre, texts_to, token_of, with_sms


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms)


@pytest.fixture
def dispatch_id(client, county):
    client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 王丽")), json={
        "client_id": "sealed-0001", "category": "WOMAN", "grid_code": cell_code(0, 1, 1),
        "details": "学生家长说邻居买了个越南媳妇"})
    run_jobs()
    return str(Dispatch.objects(station_code="530627-WF").first().id)


def test_officer_reads_the_details_but_not_who_reported(client, county, dispatch_id):
    officer = auth(token_of(county, "officer 乌峰派出所"))
    resp = client.get(f"/api/v1/dispatches/{dispatch_id}/reports", headers=officer)
    assert resp.status_code == 200
    [report] = resp.json
    assert report["details"] == "学生家长说邻居买了个越南媳妇"
    assert (report["reporter_role"], report["reporter_organisation_kind"]) == ("teacher", "学校")
    body = json.dumps(resp.json, ensure_ascii=False)
    assert "王丽" not in body
    assert "13800001003" not in body
    assert audit.AuditEntry.objects(action="dispatch.read_reports").count() == 1


def test_breaking_the_glass_needs_a_reason_is_audited_and_tells_the_supervisor(
        client, county, dispatch_id):
    officer = auth(token_of(county, "officer 乌峰派出所"))
    url = f"/api/v1/dispatches/{dispatch_id}/unseal"
    assert client.post(url, headers=officer, json={}).status_code == 422
    assert client.post(url, headers=officer, json={"reason": "short"}).status_code == 422
    assert audit.AuditEntry.objects(action="report.unseal").count() == 0

    resp = client.post(url, headers=officer, json={"reason": "需要向举报人核实具体门牌号"})
    assert resp.status_code == 200
    [who] = resp.json
    assert (who["name"], who["phone"], who["role"]) == ("王丽", "+8613800001003", "teacher")
    [entry] = audit.AuditEntry.objects(action="report.unseal")
    assert entry.details["reason"] == "需要向举报人核实具体门牌号"
    assert entry.actor.startswith("officer:")
    [notice] = texts_to("+8613800003099", purpose="unseal_notice")
    assert OutboundMessage.objects(purpose="unseal_notice").count() == 1
    assert "王丽" not in notice
    assert audit.verify().ok


def test_another_station_cannot_read_or_unseal(client, county, dispatch_id):
    other = auth(token_of(county, "officer 南台派出所"))
    assert client.get(f"/api/v1/dispatches/{dispatch_id}/reports",
                      headers=other).status_code == 403
    assert client.post(f"/api/v1/dispatches/{dispatch_id}/unseal", headers=other,
                       json={"reason": "想看看到底是谁举报的我们"}).status_code == 403
    reporter = auth(token_of(county, "reporter 王丽"))
    assert client.post(f"/api/v1/dispatches/{dispatch_id}/unseal", headers=reporter,
                       json={"reason": "想看看到底是谁举报的我们"}).status_code == 403
    assert audit.AuditEntry.objects(action="report.unseal").count() == 0


def test_too_many_unseals_are_refused_audited_and_reported(client, county, dispatch_id, app):
    app.config["SAFEGRID"] = app.config["SAFEGRID"].with_(rate_limit_unseal="2/day")
    officer = auth(token_of(county, "officer 乌峰派出所"))
    url = f"/api/v1/dispatches/{dispatch_id}/unseal"
    why = {"reason": "需要向举报人核实具体门牌号"}
    assert [client.post(url, headers=officer, json=why).status_code for _ in range(2)] == [200,
                                                                                         200]
    refused = client.post(url, headers=officer, json=why)
    assert refused.status_code == 429
    assert "supervisor" in refused.json["message"]
    assert "Retry-After" in refused.headers
    assert client.post(url, headers=officer, json=why).status_code == 429
    assert audit.AuditEntry.objects(action="report.unseal").count() == 2  # nothing more shown
    assert audit.AuditEntry.objects(action="report.unseal_refused").count() == 2
    [alert] = texts_to("+8613800003099", purpose="unseal_volume")  # one a day, not one a try
    assert alert.startswith("【异常破封】乌峰派出所值班民警")
    # Counted per person: a fresh login does not reset it, and others are not held back.
    login = client.post("/api/v1/auth/login",
                        json={"phone": "+8613800003001", "password": county.password})
    assert client.post(url, headers=auth(login.json["access_token"]), json=why).status_code == 429
    supervisor = auth(token_of(county, "supervisor"))
    assert client.post(url, headers=supervisor, json=why).status_code == 200


def test_officers_see_where_a_report_is_and_how_sure_supervisors_see_the_cell(client, county):
    cell = GridCell.objects(code=cell_code(0, 1, 1)).first()
    lat, lon = cell_centre(cell.ring)
    other = cell_code(0, 1, 2)  # the reporter typed another cell: the GPS wins, flagged
    client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 王丽")), json={
        "client_id": "located-0001", "category": "WOMAN", "details": "邻居家来了陌生女子",
        "grid_code": other, "location": {"lat": lat, "lon": lon, "datum": "wgs84"}})
    run_jobs()
    dispatch_id = str(Dispatch.objects(station_code="530627-WF").first().id)
    officer = auth(token_of(county, "officer 乌峰派出所"))
    [seen] = client.get(f"/api/v1/dispatches/{dispatch_id}/reports", headers=officer).json
    assert seen["cell_code"] == cell.code
    assert seen["placed_by"] == "gps"
    where = seen["location"]
    assert (where["lat"], where["lon"]) == pytest.approx((lat, lon))
    assert (where["datum"], where["method"], where["grid_code"]) == ("wgs84", "gps", other)
    assert where["precision_m"] > 0
    assert "gps_grid_code_disagree" in seen["flags"]
    supervisor = auth(token_of(county, "supervisor"))
    [summary] = client.get(f"/api/v1/dispatches/{dispatch_id}/reports", headers=supervisor).json
    assert (summary["location"]["lat"], summary["location"]["lon"]) == (None, None)
    assert summary["location"]["precision_m"] == where["precision_m"]
    assert summary["cell_code"] == cell.code


def test_a_station_only_offered_the_clue_cannot_unseal_until_it_accepts(client, county,
                                                                         dispatch_id):
    holder = auth(token_of(county, "officer 乌峰派出所"))
    offered = auth(token_of(county, "officer 南台派出所"))
    url = f"/api/v1/dispatches/{dispatch_id}/unseal"
    body = {"reason": "需要向举报人核实具体门牌号"}
    assert client.post(f"/api/v1/dispatches/{dispatch_id}/transfer", headers=holder,
                       json={"to_station": "530627-NT", "reason": "地址在南台"}).status_code == 200
    refused = client.post(url, headers=offered, json=body)
    assert refused.status_code == 403
    assert "accept the transfer" in refused.json["message"]
    assert audit.AuditEntry.objects(action="report.unseal").count() == 0
    assert client.get(f"/api/v1/dispatches/{dispatch_id}", headers=offered).status_code == 200
    assert client.post(f"/api/v1/dispatches/{dispatch_id}/accept-transfer",
                       headers=offered).status_code == 200
    assert client.post(url, headers=offered, json=body).status_code == 200
    assert client.post(url, headers=holder, json=body).status_code == 403  # not theirs now

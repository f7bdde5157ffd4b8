"""Unlinking: an officer takes a report that is another incident out of a clue."""

from __future__ import annotations

import pytest

from gateway.delivery import queues
from gateway.delivery.escalation import escalation_job_id
from gateway.privacy.audit import AuditEntry
from gateway.records.reports import Report
from gateway.runtime import escalation
from gateway.sample import cell_code
from grid.documents import Case, Dispatch
from tests.gateway.api.test_reports_api import run_jobs
from tests.gateway.delivery.test_cases import LINK_KEY, codes_of
from tests.helpers import auth, token_of, with_sms

GRID = cell_code(0, 0, 0)


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, link_key=LINK_KEY, case_window_s=3600)


@pytest.fixture
def clue(client, county):
    """One clue at 乌峰 of two reports by two reporters: (dispatch, first code, second code)."""
    codes = []
    for n, (who, category) in enumerate((("reporter 张秀英", "WOMAN"),
                                         ("reporter 李国强", "LABOUR"))):
        resp = client.post("/api/v1/reports", headers=auth(token_of(county, who)), json={
            "client_id": f"unlink-{n:04d}", "category": category, "grid_code": GRID})
        assert resp.status_code == 201, resp.json
        codes.append(resp.json["code"])
        run_jobs()
    [dispatch] = Dispatch.objects(station_code="530627-WF")
    assert codes_of(dispatch) == codes
    return dispatch, codes[0], codes[1]


@pytest.fixture
def officer(county):
    return auth(token_of(county, "officer 乌峰派出所"))


def unlink(client, headers, dispatch_id, body):
    return client.post(f"/api/v1/dispatches/{dispatch_id}/unlink", headers=headers, json=body)


def test_an_unlinked_report_becomes_its_own_clue_under_its_running_sla(client, clue, officer):
    dispatch, a, b = clue
    report = Report.objects(code=b).first()
    resp = unlink(client, officer, dispatch.id, {"report": b, "reason": "另一户人家，另一件事"})
    assert resp.status_code == 200, resp.json
    assert resp.json["dispatch"]["id"] == str(dispatch.id)
    assert resp.json["dispatch"]["report_count"] == 1
    assert codes_of(dispatch) == [a]
    new = Dispatch.objects(id=resp.json["new_dispatch"]["id"]).first()
    assert (new.station_code, new.status, new.report_code) == ("530627-WF", "delivered", b)
    assert codes_of(new) == [b]
    # The clock runs from when the report was first routed, not from the unlinking.
    assert new.ack_deadline == escalation().deadline(report.priority, report.routed_at)
    scheduled = queues.queue(queues.CRITICAL).scheduled_job_registry.get_job_ids()
    assert escalation_job_id(str(new.id), 0) in scheduled
    # Its own case now, and the old case counts one report fewer.
    moved = Report.objects(code=b).first()
    assert moved.case_id == new.case_id != dispatch.case_id
    assert Case.objects(id=dispatch.case_id).first().report_count == 1
    assert Case.objects(id=new.case_id).first().report_count == 1
    # Recorded on both dispatches and in the audit log; the reason only as a digest there.
    old_entry = Dispatch.objects(id=dispatch.id).first().history[-1]
    assert (old_entry["action"], old_entry["report_code"]) == ("unlink", b)
    assert new.history[-1]["action"] == "unlinked_from"
    assert new.history[-1]["from_dispatch"] == str(dispatch.id)
    [entry] = AuditEntry.objects(action="dispatch.unlink")
    assert entry.subject == f"dispatch:{dispatch.id}"
    assert entry.details["to_dispatch"] == str(new.id)
    assert "另一户人家" not in str(entry.details)
    # The station reads why on the new clue.
    shown = client.get(f"/api/v1/dispatches/{new.id}", headers=officer).json
    assert shown["notes"][0]["text"] == "另一户人家，另一件事"


def test_closing_the_old_clue_no_longer_closes_the_unlinked_report(client, clue, officer):
    dispatch, a, b = clue
    assert unlink(client, officer, dispatch.id, {"report": b, "reason": "不是同一件事"}
                  ).status_code == 200
    assert client.post(f"/api/v1/dispatches/{dispatch.id}/acknowledge",
                       headers=officer).status_code == 200
    assert client.post(f"/api/v1/dispatches/{dispatch.id}/close", headers=officer,
                       json={"outcome": "rescued"}).status_code == 200
    assert Report.objects(code=a).first().status == "closed"
    assert Report.objects(code=b).first().status == "routed"
    assert Dispatch.objects(report_id=Report.objects(code=b).first().id).first().status == (
        "delivered")


def test_unlinking_the_report_a_clue_is_known_by(client, clue, officer):
    dispatch, a, b = clue
    resp = unlink(client, officer, dispatch.id, {"report": a.lower(), "reason": "不是同一件事"})
    assert resp.status_code == 200, resp.json
    assert resp.json["dispatch"]["report_code"] == b  # the clue goes by its next report
    assert resp.json["new_dispatch"]["report_code"] == a
    assert codes_of(Dispatch.objects(id=dispatch.id).first()) == [b]


def test_a_child_clue_leaves_the_county_desks_copy_too(client, county, officer):
    codes = []
    for n, who in enumerate(("reporter 张秀英", "reporter 李国强")):
        resp = client.post("/api/v1/reports", headers=auth(token_of(county, who)), json={
            "client_id": f"unlink-child-{n}", "category": "CHILD", "grid_code": GRID})
        codes.append(resp.json["code"])
    run_jobs()
    [station] = Dispatch.objects(station_code="530627-WF")
    [desk] = Dispatch.objects(station_code="530627-XJ")
    assert unlink(client, officer, station.id, {"report": codes[1], "reason": "两件事"}
                  ).status_code == 200
    assert codes_of(station) == codes_of(desk) == codes[:1]
    report = Report.objects(code=codes[1]).first()
    own = {d.station_code: d for d in Dispatch.objects(report_id=report.id)}
    assert set(own) == {"530627-WF", "530627-XJ"}
    assert {d.case_id for d in own.values()} == {report.case_id}
    assert sorted(report.dispatch_ids) == sorted(d.id for d in own.values())


def test_what_cannot_be_unlinked_is_409(client, clue, officer, county):
    dispatch, a, b = clue
    resp = client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 李国强")),
                       json={"client_id": "unlink-far-1", "category": "OTHER",
                             "grid_code": cell_code(0, 3, 3)})
    elsewhere = resp.json["code"]
    run_jobs()
    body = {"reason": "不是同一件事"}
    refused = unlink(client, officer, dispatch.id, {**body, "report": elsewhere})
    assert (refused.status_code, refused.json["errors"]["code"]) == (409, "not_in_clue")
    refused = unlink(client, officer, dispatch.id, {**body, "report": "ZZZZZZZ"})
    assert (refused.status_code, refused.json["errors"]["code"]) == (409, "not_in_clue")
    assert unlink(client, officer, dispatch.id, {**body, "report": b}).status_code == 200
    refused = unlink(client, officer, dispatch.id, {**body, "report": a})
    assert (refused.status_code, refused.json["errors"]["code"]) == (409, "only_report")
    Dispatch.objects(id=dispatch.id).update_one(set__status="closed")
    refused = unlink(client, officer, dispatch.id, {**body, "report": a})
    assert refused.status_code == 409
    assert refused.json["errors"] == {"code": "not_allowed", "current_status": "closed"}
    assert AuditEntry.objects(action="dispatch.unlink").count() == 1


def test_who_may_unlink(client, clue, officer, county):
    dispatch, _, b = clue
    body = {"report": b, "reason": "不是同一件事"}
    other = auth(token_of(county, "officer 南台派出所"))
    assert unlink(client, other, dispatch.id, body).status_code == 403
    assert unlink(client, officer, "0" * 24, body).status_code == 404
    # A station only offered the clue may not act on it until it accepts.
    assert client.post(f"/api/v1/dispatches/{dispatch.id}/transfer", headers=officer,
                       json={"to_station": "530627-NT", "reason": "地址在南台"}).status_code == 200
    refused = unlink(client, other, dispatch.id, body)
    assert refused.status_code == 403
    assert "accept the transfer" in refused.json["message"]
    supervisor = auth(token_of(county, "supervisor"))
    assert unlink(client, supervisor, dispatch.id, body).status_code == 200


@pytest.mark.parametrize("body", [
    {"report": "R7K3Q9M"},
    {"report": "R7K3Q9M", "reason": "   "},
    {"reason": "不是同一件事"},
    {"report": "", "reason": "不是同一件事"},
    {"report": "R7K3Q9M", "reason": "x", "extra": 1},
    {"report": 7, "reason": "不是同一件事"},
])
def test_a_bad_body_is_422(client, clue, officer, body):
    dispatch, _, _ = clue
    resp = unlink(client, officer, dispatch.id, body)
    assert resp.status_code == 422, resp.json
    assert "errors" in resp.json

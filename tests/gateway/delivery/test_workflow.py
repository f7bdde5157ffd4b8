"""Working a clue through the API: transfer, notes, closure, races, escalation, the safety net."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from gateway import telemetry
from gateway.delivery import escalation
from gateway.delivery.routing import sweep
from gateway.extensions import redis_store
from gateway.privacy import audit
from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Dispatch, utcnow
from sms.records import OutboundMessage
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, texts_to, token_of, with_sms

WF, NT, PJ = "530627-WF", "530627-NT", "530627-PJ"


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms)


@pytest.fixture
def officers(county):
    return {code: auth(token_of(county, f"officer {name}")) for code, name in
            ((WF, "乌峰派出所"), (NT, "南台派出所"), (PJ, "泼机派出所"))}


@pytest.fixture
def dispatch_id(client, county):
    """A WOMAN report in a 乌峰 cell: one dispatch, to 乌峰派出所 only."""
    resp = client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 张秀英")),
                       json={"client_id": "workflow-0001", "category": "WOMAN",
                             "grid_code": cell_code(0, 1, 2)})
    assert resp.status_code == 201
    run_jobs()
    [dispatch] = Dispatch.objects(report_code=resp.json["code"])
    return str(dispatch.id)


def act(client, headers, dispatch_id, action, **body):
    return client.post(f"/api/v1/dispatches/{dispatch_id}/{action}", headers=headers,
                       json=body if body else None)


def test_transfer_accepted_then_worked_and_closed(client, officers, dispatch_id):
    resp = act(client, officers[WF], dispatch_id, "transfer", to_station=NT,
               reason="地址在南台辖区")
    assert resp.status_code == 200, resp.json
    assert (resp.json["status"], resp.json["transfer_to"]) == ("transfer_requested", NT)
    offered = client.get(f"/api/v1/stations/{NT}/transfers", headers=officers[NT]).json
    assert [d["id"] for d in offered] == [dispatch_id]

    resp = act(client, officers[NT], dispatch_id, "accept-transfer")
    assert resp.status_code == 200, resp.json
    assert (resp.json["station_code"], resp.json["status"]) == (NT, "delivered")
    assert resp.json["transferred_from"] == WF
    assert client.get(f"/api/v1/dispatches/{dispatch_id}", headers=officers[WF]).status_code == 403

    assert act(client, officers[NT], dispatch_id, "acknowledge").status_code == 200
    assert act(client, officers[NT], dispatch_id, "notes", text="已走访，女子称被限制外出"
               ).status_code == 200
    resp = act(client, officers[NT], dispatch_id, "close", outcome="rescued")
    assert resp.status_code == 200, resp.json
    assert (resp.json["status"], resp.json["outcome"]) == ("closed", "rescued")
    assert resp.json["notes"][0]["text"] == "已走访，女子称被限制外出"
    assert Report.objects(code=resp.json["report_code"]).first().status == "closed"

    history = [h["action"] for h in Dispatch.objects(id=dispatch_id).first().history]
    assert history == ["create", "deliver", "request_transfer", "accept_transfer", "deliver",
                       "acknowledge", "note", "close"]
    result = audit.verify()
    assert result.ok, result.summary()
    assert result.last_seq >= 7


def test_rejected_transfer_returns_with_the_reason(client, officers, dispatch_id):
    act(client, officers[WF], dispatch_id, "acknowledge")
    act(client, officers[WF], dispatch_id, "transfer", to_station=PJ, reason="不在本辖区")
    resp = act(client, officers[PJ], dispatch_id, "reject-transfer", reason="也不在泼机辖区")
    assert resp.status_code == 200, resp.json
    assert (resp.json["status"], resp.json["station_code"]) == ("acknowledged", WF)
    assert resp.json["transfer_rejection_reason"] == "也不在泼机辖区"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"to_station": WF, "reason": "x"}, 422, "same_station"),
        ({"to_station": "NOPE", "reason": "x"}, 422, "unknown_station"),
    ],
)
def test_bad_transfers_are_refused(client, officers, dispatch_id, body, status, code):
    resp = act(client, officers[WF], dispatch_id, "transfer", **body)
    assert resp.status_code == status
    assert resp.json["errors"]["code"] == code
    assert Dispatch.objects(id=dispatch_id).first().status == "delivered"


def test_transfer_without_a_reason_is_422(client, officers, dispatch_id):
    resp = act(client, officers[WF], dispatch_id, "transfer", to_station=NT)
    assert resp.status_code == 422
    assert "reason" in resp.json["errors"]["json"]


def test_only_the_target_station_answers_a_transfer(client, officers, dispatch_id):
    act(client, officers[WF], dispatch_id, "transfer", to_station=NT, reason="x")
    assert act(client, officers[WF], dispatch_id, "accept-transfer").status_code == 403
    assert act(client, officers[PJ], dispatch_id, "accept-transfer").status_code == 403


def test_close_needs_an_acknowledged_clue_and_an_outcome(client, officers, dispatch_id):
    resp = act(client, officers[WF], dispatch_id, "close", outcome="rescued")
    assert resp.status_code == 409
    assert resp.json["errors"]["current_status"] == "delivered"
    act(client, officers[WF], dispatch_id, "acknowledge")
    assert act(client, officers[WF], dispatch_id, "close").status_code == 422
    assert act(client, officers[WF], dispatch_id, "close", outcome="lost").status_code == 422
    resp = act(client, officers[WF], dispatch_id, "close", outcome="false_report")
    assert resp.status_code == 422
    assert resp.json["errors"]["code"] == "reason_required"
    assert act(client, officers[WF], dispatch_id, "close", outcome="false_report",
               reason="经核实为家庭纠纷").status_code == 200
    assert act(client, officers[WF], dispatch_id, "notes", text="x").status_code == 409


def test_two_officers_acknowledging_at_once_one_wins(app, officers, dispatch_id):
    results: list[int] = []
    barrier = threading.Barrier(4)

    def ack() -> None:
        client = app.test_client()
        barrier.wait()
        results.append(act(client, officers[WF], dispatch_id, "acknowledge").status_code)

    threads = [threading.Thread(target=ack) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409, 409, 409]
    history = Dispatch.objects(id=dispatch_id).first().history
    assert [h["action"] for h in history].count("acknowledge") == 1


def overdue_now(dispatch_id: str) -> None:
    past = utcnow() - dt.timedelta(minutes=7)
    Dispatch.objects(id=dispatch_id).update_one(set__ack_deadline=past, set__next_check_at=past)


def next_step_due_now(dispatch_id: str) -> None:
    """The next escalation step is due, the deadline untouched."""
    Dispatch.objects(id=dispatch_id).update_one(
        set__next_check_at=utcnow() - dt.timedelta(seconds=1))


def sms_to(phone: str) -> list[str]:
    return texts_to(phone, purpose="escalation")


def test_escalation_climbs_the_chain_and_repeats_until_acknowledged(client, officers,
                                                                    dispatch_id):
    overdue_now(dispatch_id)
    roles = []
    for level in range(6):
        roles.append(escalation.escalate(dispatch_id, level))
        assert escalation.escalate(dispatch_id, level) == "stale"  # a duplicate run does nothing
        assert escalation.escalate(dispatch_id, level + 1) == "not_due"  # next step not yet due
        overdue_now(dispatch_id)
    assert roles == ["station_duty_officer", "station_chief", "county_duty_desk",
                     "county_supervisor", "county_supervisor", "county_supervisor"]
    assert len(sms_to("+8613800002001")) == 1  # 乌峰 duty phone
    assert len(sms_to("+8613800002101")) == 1  # 乌峰 chief
    assert len(sms_to("+8613800002099")) == 1  # county desk
    assert len(sms_to("+8613800003099")) == 3  # the supervisor, again and again
    assert sms_to("+8613800002001")[0].startswith("【督办1】")
    # Counted for /metrics once per step taken, never for a stale or early run.
    steps = {labels["level"]: value for name, labels, value
             in telemetry.read_counters(redis_store.conn) if name == "escalations"}
    assert steps == {str(level): 1 for level in range(1, 7)}

    act(client, officers[WF], dispatch_id, "acknowledge")
    assert escalation.escalate(dispatch_id, 6) == "not_due"
    assert Dispatch.objects(id=dispatch_id).first().escalation_level == 6


def test_acknowledged_in_time_never_escalates(client, officers, dispatch_id):
    act(client, officers[WF], dispatch_id, "acknowledge")
    overdue_now(dispatch_id)
    assert escalation.escalate(dispatch_id, 0) == "not_due"
    assert not OutboundMessage.objects(purpose="escalation")


def test_sweeper_delivers_what_a_crash_left_new_and_escalates_what_is_unwatched(
        client, officers, dispatch_id):
    old = utcnow() - dt.timedelta(minutes=10)
    Dispatch.objects(id=dispatch_id).update_one(set__status="new", set__created_at=old,
                                                set__ack_deadline=old, set__next_check_at=old)
    sweep()
    run_jobs()
    doc = Dispatch.objects(id=dispatch_id).first()
    assert doc.status == "delivered"
    assert doc.escalation_level == 1
    assert sms_to("+8613800002001")


def test_supervisor_sees_what_is_overdue_in_the_county(client, county, officers, dispatch_id):
    supervisor = auth(token_of(county, "supervisor"))
    assert client.get("/api/v1/counties/530627/overdue", headers=supervisor).json == []
    overdue_now(dispatch_id)
    got = client.get("/api/v1/counties/530627/overdue", headers=supervisor).json
    assert [d["id"] for d in got] == [dispatch_id]
    assert client.get("/api/v1/counties/110105/overdue", headers=supervisor).status_code == 403
    assert client.get("/api/v1/counties/530627/overdue", headers=officers[WF]).status_code == 403
    overdue = client.get(f"/api/v1/stations/{WF}/dispatches", headers=officers[WF],
                         query_string={"overdue": "true"}).json
    assert [d["id"] for d in overdue] == [dispatch_id]


def test_no_transfer_ping_pong_takes_a_clue_off_the_overdue_list(client, county, officers,
                                                                 dispatch_id):
    """Request → reject, ten times, on an overdue clue: still overdue, still climbing."""
    overdue_now(dispatch_id)
    deadline = Dispatch.objects(id=dispatch_id).first().ack_deadline
    roles = []
    for round_ in range(10):
        resp = act(client, officers[WF], dispatch_id, "transfer", to_station=NT,
                   reason=f"第{round_ + 1}次：地址可能在南台")
        assert resp.status_code == 200, resp.json
        assert resp.json["escalation_level"] == len(roles)
        assert resp.json["transfer_answer_by"] is not None  # the neighbour's own window
        level = Dispatch.objects(id=dispatch_id).first().escalation_level
        roles.append(escalation.escalate(dispatch_id, level))  # escalates while pending
        resp = act(client, officers[NT], dispatch_id, "reject-transfer", reason="不是我所辖区")
        assert resp.status_code == 200, resp.json
        doc = Dispatch.objects(id=dispatch_id).first()
        assert doc.ack_deadline == deadline  # the clue's deadline never moved
        assert doc.escalation_level == round_ + 1
        assert doc.transfer_answer_by is None
        next_step_due_now(dispatch_id)
    assert roles == ["station_duty_officer", "station_chief", "county_duty_desk",
                     *["county_supervisor"] * 7]
    # Escalation texts the owning station's chain, not the neighbour asked to take it.
    assert len(sms_to("+8613800002001")) == 1  # 乌峰 duty phone
    assert not sms_to("+8613800002002")  # 南台 duty phone: no escalation notices
    supervisor = auth(token_of(county, "supervisor"))
    overdue_list = client.get("/api/v1/counties/530627/overdue", headers=supervisor).json
    assert dispatch_id in [d["id"] for d in overdue_list]
    inbox = client.get(f"/api/v1/stations/{WF}/dispatches?overdue=true",
                       headers=officers[WF]).json
    assert dispatch_id in [d["id"] for d in inbox]
    history = [h["action"] for h in Dispatch.objects(id=dispatch_id).first().history]
    assert history.count("request_transfer") == history.count("reject_transfer") == 10
    assert history.count("escalate") == 10


def test_accepting_a_transfer_gives_a_fresh_deadline_and_keeps_the_level(client, officers,
                                                                         dispatch_id):
    overdue_now(dispatch_id)
    for level in range(3):  # up to the county desk
        escalation.escalate(dispatch_id, level)
        overdue_now(dispatch_id)
    act(client, officers[WF], dispatch_id, "transfer", to_station=NT, reason="地址在南台辖区")
    resp = act(client, officers[NT], dispatch_id, "accept-transfer")
    assert resp.status_code == 200, resp.json
    doc = Dispatch.objects(id=dispatch_id).first()
    assert doc.ack_deadline > utcnow()  # NT's own SLA
    assert doc.escalation_level == 3
    overdue_now(dispatch_id)
    # NT lets it run over too: the chain goes on above the station, not from the bottom.
    assert escalation.escalate(dispatch_id, 3) == "county_supervisor"


def test_an_acknowledged_clue_offered_to_a_neighbour_does_not_escalate(client, officers,
                                                                       dispatch_id):
    act(client, officers[WF], dispatch_id, "acknowledge")
    act(client, officers[WF], dispatch_id, "transfer", to_station=NT, reason="地址在南台辖区")
    overdue_now(dispatch_id)
    assert escalation.escalate(dispatch_id, 0) == "not_due"

"""Unfounded reports are anonymised after the retention period, unless on legal hold."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.custody import retention
from gateway.privacy import audit
from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Dispatch
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, token_of


def file_and_close(client, county, n: int, outcome: str, days_ago: int) -> str:
    resp = client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 张秀英")),
                       json={"client_id": f"ret-{n:06d}", "category": "OTHER",
                             "details": f"张三家来了陌生人 {n}", "grid_code": cell_code(0, n, 0),
                             "location": {"lat": 27.43, "lon": 104.85}})
    run_jobs()
    closed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days_ago)
    Dispatch.objects(report_code=resp.json["code"]).update(
        set__status="closed", set__outcome=outcome, set__closed_at=closed)
    return resp.json["code"]


def test_old_unfounded_reports_are_anonymised_and_the_rest_kept(client, county):
    old_false = file_and_close(client, county, 0, "false_report", 400)
    recent_false = file_and_close(client, county, 1, "false_report", 10)
    old_rescued = file_and_close(client, county, 2, "rescued", 400)
    held = file_and_close(client, county, 3, "confirmed_no_crime", 400)
    Report.objects(code=held).update_one(set__legal_hold=True)
    cell = Report.objects(code=old_false).first().cell_code

    assert retention.run(365) == (1, 1)
    gone = Report.objects(code=old_false).first()
    assert gone.details == retention.REMOVED
    assert gone.reporter_id == retention.ANONYMOUS
    assert gone.location.lat is None
    assert (gone.category, gone.cell_code) == ("OTHER", cell)  # statistics stay
    for kept in (recent_false, old_rescued, held):
        assert "张三" in Report.objects(code=kept).first().details
    assert retention.run(365) == (0, 1)  # idempotent
    assert audit.AuditEntry.objects(action="report.anonymise").count() == 1


def test_anonymising_also_removes_officers_text_and_forgets_a_public_number(client, county):
    from gateway.delivery.workflow import apply
    from gateway.privacy.crypto import unseal
    from gateway.records.people import Reporter
    from gateway.records.reports import DISPATCH_TEXT_CONTEXT

    code = file_and_close(client, county, 0, "false_report", 400)
    kept = file_and_close(client, county, 1, "rescued", 400)
    for each in (code, kept):
        dispatch = Dispatch.objects(report_code=each).first()
        Dispatch.objects(id=dispatch.id).update_one(set__status="acknowledged")
        apply(str(dispatch.id), "note", actor="officer:x", actor_station=dispatch.station_code,
              reason="李四说孩子是他外甥")
    Dispatch.objects(report_code__in=[code, kept]).update(set__status="closed")
    tipster = Reporter(phone="+8613912345678", name="公众", role="public").save()
    Report.objects(code=code).update_one(set__reporter_id=tipster.id)

    assert retention.run(365) == (1, 0)
    raw = Dispatch._get_collection().find_one({"report_code": code})
    assert unseal(raw["notes"][0]["text"], context=DISPATCH_TEXT_CONTEXT) == retention.REMOVED
    shown = Dispatch._get_collection().find_one({"report_code": kept})["notes"][0]["text"]
    assert unseal(shown, context=DISPATCH_TEXT_CONTEXT) == "李四说孩子是他外甥"
    assert Reporter.objects(id=tipster.id).count() == 0  # the number is forgotten
    assert Reporter.by_phone("+8613800001001").count() == 1  # registered people stay


def test_a_run_that_died_half_way_is_finished_by_the_next(client, county, monkeypatch):
    code = file_and_close(client, county, 0, "false_report", 400)

    def dies(report_id):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(retention, "_remove_dispatch_text", dies)
    with pytest.raises(RuntimeError, match="worker killed"):
        retention.run(365)
    assert "anonymised" not in Report.objects(code=code).first().flags
    monkeypatch.undo()
    assert retention.run(365) == (1, 0)
    assert "anonymised" in Report.objects(code=code).first().flags
    assert audit.AuditEntry.objects(action="report.anonymise").count() == 1


def test_a_report_linked_into_an_unfounded_clue_is_anonymised_too(client, county):
    codes = []
    for n, who in enumerate(("reporter 张秀英", "reporter 李国强")):
        resp = client.post("/api/v1/reports", headers=auth(token_of(county, who)), json={
            "client_id": f"ret-linked-{n}", "category": "WOMAN", "grid_code": cell_code(0, 0, 0),
            "details": f"张三家来了陌生人 {n}"})
        codes.append(resp.json["code"])
    run_jobs()
    [dispatch] = Dispatch.objects(station_code="530627-WF")
    assert dispatch.report_count == 2  # one clue: the second report joined the first's
    closed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=400)
    Dispatch.objects(id=dispatch.id).update(set__status="closed", set__outcome="false_report",
                                            set__closed_at=closed)
    assert retention.run(365) == (2, 0)
    assert {Report.objects(code=c).first().details for c in codes} == {retention.REMOVED}


def test_an_anonymised_report_leaves_its_reporters_tally_as_a_recount_would(client, county):
    from gateway.insight.tallies import recount
    from gateway.records.people import Reporter
    from gateway.records.tallies import REPORTER, Tally, month_and_day
    from grid.figures import Period

    gone = file_and_close(client, county, 0, "false_report", 400)
    file_and_close(client, county, 1, "rescued", 400)
    her = Reporter.by_phone("+8613800001001").first().id
    created = Report.objects(code=gone).first().created_at
    month, day = month_and_day(created)

    def reporters() -> dict[object, int]:
        return {doc.reporter_id: doc.days.get(str(day), 0)
                for doc in Tally.objects(kind=REPORTER, month=month)}

    assert reporters()[her] == 2
    assert retention.run(365) == (1, 0)
    counted = reporters()
    assert counted[her] == 1  # her tally no longer says she filed the anonymised one
    assert counted[retention.ANONYMOUS] == 1
    assert retention.run(365) == (0, 0)
    assert reporters() == counted  # once
    local = (created + dt.timedelta(hours=8)).date()
    recount(Period(local, local + dt.timedelta(days=1)))
    assert {k: v for k, v in reporters().items() if v} == counted  # what a recount gives

"""Linked reports: one case per incident (docs/linking.md), one dispatch per station,
every report visible on it."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from gateway.delivery import queues
from gateway.delivery.cases import dispatch_reports
from gateway.delivery.escalation import escalation_job_id
from gateway.delivery.routing import route
from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Case, Dispatch, GridCell, utcnow
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, texts_to, token_of, with_sms

LINK_KEY = "8f" * 16


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, link_key=LINK_KEY, case_window_s=3600)


@pytest.fixture
def file(client, county):
    counter = iter(range(1000))

    def file(category: str, grid: str, details: str = "", who: str = "reporter 张秀英",
             at: tuple[float, float] | None = None) -> str:
        body: dict[str, object] = {"client_id": f"case-{next(counter):05d}",
                                   "category": category, "grid_code": grid, "details": details}
        if at is not None:
            body["location"] = {"lat": at[0], "lon": at[1]}
        resp = client.post("/api/v1/reports", headers=auth(token_of(county, who)), json=body)
        assert resp.status_code == 201, resp.json
        return resp.json["code"]

    return file


def station_dispatches(station: str) -> list[Dispatch]:
    return list(Dispatch.objects(station_code=station))


def codes_of(dispatch: Dispatch) -> list[str]:
    """The reports a dispatch holds, oldest first."""
    return [r.code for r in dispatch_reports(dispatch.id)]


def point_in(grid: str, east_m: float = 0.0, north_m: float = 0.0) -> tuple[float, float]:
    """A GPS point `east_m`/`north_m` metres from the middle of a sample cell."""
    ring = GridCell.objects(code=grid).first().ring
    lon = sum(p[0] for p in ring[:4]) / 4
    lat = sum(p[1] for p in ring[:4]) / 4
    return (lat + north_m / 111_195.0,
            lon + east_m / (111_195.0 * math.cos(math.radians(lat))))


def test_same_category_in_the_same_cell_is_one_case(file, county):
    a = file("WOMAN", cell_code(0, 0, 0), "外地媳妇被锁在家里")
    b = file("WOMAN", cell_code(0, 0, 0), "邻居家新来的媳妇哭喊", who="reporter 李国强")
    run_jobs()
    [dispatch] = station_dispatches("530627-WF")
    assert codes_of(dispatch) == [a, b]
    assert dispatch.report_count == 2
    [case] = Case.objects
    assert case.report_count == 2
    assert {r.case_id for r in Report.objects} == {dispatch.case_id} == {case.id}


def test_without_a_point_neighbouring_cells_are_separate_cases(file, county):
    # A grid code says no more than "somewhere in this 0.5 x 1 km cell".
    file("WOMAN", cell_code(0, 0, 0))
    file("WOMAN", cell_code(0, 0, 1), who="reporter 李国强")
    assert cell_code(0, 0, 1) in GridCell.objects(code=cell_code(0, 0, 0)).first().neighbours
    run_jobs()
    assert Case.objects.count() == 2


def test_two_gps_reports_across_a_cell_border_are_one_case(file, county):
    # The border between grids 0 and 1 runs 250 m east of grid 0's middle.
    a = file("CHILD", cell_code(0, 0, 0), "陌生人带着哭闹的小孩",
             at=point_in(cell_code(0, 0, 0), east_m=200))
    b = file("ORIGIN", cell_code(0, 0, 1), "面包车里有个不像他家的孩子", who="reporter 李国强",
             at=point_in(cell_code(0, 0, 0), east_m=320))
    run_jobs()
    assert {r.cell_code for r in Report.objects} == {cell_code(0, 0, 0), cell_code(0, 0, 1)}
    assert Case.objects.count() == 1
    [dispatch] = station_dispatches("530627-WF")
    assert codes_of(dispatch) == [a, b]


@pytest.mark.parametrize("apart_m", [500, 700, 900])
def test_unrelated_incidents_half_a_kilometre_apart_are_separate_cases(file, county, apart_m):
    # Issue 17: same category, neighbouring cells, GPS fixes 0.5-0.9 km apart.
    # Grid 2 is north of grid 0, whose middle is 500 m from their border.
    file("WOMAN", cell_code(0, 0, 0), at=point_in(cell_code(0, 0, 0), north_m=-100))
    file("WOMAN", cell_code(0, 0, 2), who="reporter 李国强",
         at=point_in(cell_code(0, 0, 0), north_m=-100 + apart_m))
    run_jobs()
    assert Case.objects.count() == 2
    assert len(station_dispatches("530627-WF")) == 2


def test_the_same_reporter_under_another_category_is_another_incident(file, county):
    here = cell_code(0, 0, 0)
    child = file("CHILD", here, at=point_in(here))
    # Two witnesses may file one incident under two categories of a group ...
    witness = file("ORIGIN", here, who="reporter 李国强", at=point_in(here, east_m=20))
    # ... but the first reporter filing again under another category tells of another.
    again = file("ORIGIN", here, at=point_in(here, east_m=20))
    run_jobs()
    case_of = {r.code: r.case_id for r in Report.objects}
    assert case_of[witness] == case_of[child]
    assert case_of[again] != case_of[child]


def test_different_category_group_or_far_away_cells_are_separate_cases(file, county):
    file("WOMAN", cell_code(0, 0, 0))
    file("CHILD", cell_code(0, 0, 0), who="reporter 李国强")  # another group
    file("WOMAN", cell_code(0, 3, 3), who="reporter 李国强")  # same station, cells not touching
    run_jobs()
    assert len(station_dispatches("530627-WF")) == 3
    assert Case.objects.count() == 3


def test_same_phone_number_links_across_categories_and_stations(file, county):
    a = file("WOMAN", cell_code(0, 0, 0), "买媳妇的中间人电话138 0013 8000")
    b = file("LABOUR", cell_code(2, 3, 3), "工头联系方式 +86-138-0013-8000，逼孩子乞讨")
    run_jobs()
    [case] = Case.objects
    assert case.report_count == 2
    assert all(len(k) == 64 for k in case.keys)  # keyed hashes only
    assert "13800138000" not in str(case.to_mongo())
    # Each station works the case once; the second station's dispatch carries its report.
    assert codes_of(station_dispatches("530627-WF")[0]) == [a]
    assert codes_of(station_dispatches("530627-PJ")[0]) == [b]


def test_outside_the_window_a_new_case_opens(file, county):
    file("WOMAN", cell_code(0, 0, 0))
    run_jobs()
    Case.objects.update(set__first_at=dt.datetime(2020, 1, 1),
                        set__last_at=dt.datetime(2020, 1, 1))
    file("WOMAN", cell_code(0, 0, 0), who="reporter 李国强")
    run_jobs()
    assert Case.objects.count() == 2
    assert len(station_dispatches("530627-WF")) == 2


def test_a_closed_dispatch_is_not_reopened_by_a_linked_report(client, file, county):
    file("WOMAN", cell_code(0, 0, 0))
    run_jobs()
    [first] = station_dispatches("530627-WF")
    Dispatch.objects(id=first.id).update_one(set__status="closed")
    file("WOMAN", cell_code(0, 0, 0), who="reporter 李国强")
    run_jobs()
    assert sorted(d.status for d in station_dispatches("530627-WF")) == ["closed", "delivered"]


def test_routing_a_linked_report_twice_adds_it_once(file, county):
    file("WOMAN", cell_code(0, 0, 0))
    b = file("WOMAN", cell_code(0, 0, 0), who="reporter 李国强")
    run_jobs()
    report = Report.objects(code=b).first()
    Report.objects(id=report.id).update_one(set__status="received")  # as if it died before
    route(str(report.id))
    [dispatch] = station_dispatches("530627-WF")
    assert codes_of(dispatch).count(b) == 1
    assert dispatch.report_count == 2
    assert Case.objects.first().report_count == 2
    assert Report.objects(code=b).first().dispatch_ids == [dispatch.id]


WF_DUTY = "+8613800002001"
DESK_DUTY = "+8613800002099"


def test_a_report_joining_an_open_clue_tells_the_station(client, file, county):
    a = file("WOMAN", cell_code(0, 0, 0), "外地媳妇被锁在家里")
    run_jobs()
    [first] = station_dispatches("530627-WF")
    other = file("LABOUR", cell_code(0, 3, 3))  # a later, unrelated clue at the same station
    run_jobs()
    b = file("WOMAN", cell_code(0, 0, 0), "邻居家新来的媳妇哭喊", who="reporter 李国强")
    run_jobs()
    route(str(Report.objects(code=b).first().id))  # a second run tells nobody twice
    dispatch = Dispatch.objects(id=first.id).first()
    assert codes_of(dispatch) == [a, b]
    assert dispatch.updated_at > first.created_at
    notices = texts_to(WF_DUTY, purpose="linked_notice")
    assert len(notices) == 1
    assert a in notices[0]
    assert b in notices[0]
    officer = auth(token_of(county, "officer 乌峰派出所"))
    inbox = client.get("/api/v1/stations/530627-WF/dispatches", headers=officer).json
    assert [d["report_code"] for d in inbox][:2] == [a, other]  # the joined clue rose to the top
    assert dispatch.priority == "urgent"  # a report of the same priority raises nothing


def test_a_flood_of_reports_joining_one_clue_texts_its_station_once_a_window(
        file, county, settings):
    a = file("WOMAN", cell_code(0, 0, 0), "外地媳妇被锁在家里")
    run_jobs()
    [clue] = station_dispatches("530627-WF")
    joined = [file("WOMAN", cell_code(0, 0, 0), f"邻居{n}也听到哭喊", who="reporter 李国强")
              for n in range(4)]
    run_jobs()
    assert Dispatch.objects(id=clue.id).first().report_count == 5  # every one in the clue
    [notice] = texts_to(WF_DUTY, purpose="linked_notice")  # the first joining one texted
    assert a in notice
    assert joined[0] in notice
    # The window passes: the next joining report texts again.
    Dispatch.objects(id=clue.id).update_one(
        set__witness_notice_at=utcnow() - dt.timedelta(seconds=settings.witness_notice_every_s))
    later = file("WOMAN", cell_code(0, 0, 0), "又有人听到", who="reporter 李国强")
    run_jobs()
    notices = texts_to(WF_DUTY, purpose="linked_notice")
    assert len(notices) == 2
    assert later in notices[1]


def test_a_critical_report_joining_raises_the_clue_and_its_deadline(file, county):
    file("WOMAN", cell_code(0, 0, 0), "买媳妇的中间人电话138 0013 8000")
    run_jobs()
    [dispatch] = station_dispatches("530627-WF")
    assert dispatch.priority == "urgent"
    file("WOMAN", cell_code(0, 0, 0), "中间人138 0013 8000又来了", who="reporter 李国强")
    run_jobs()
    assert len(texts_to(WF_DUTY, purpose="linked_notice")) == 1  # its window runs now
    file("CHILD", cell_code(0, 0, 0), "同一个中间人138 0013 8000在打听小孩")
    run_jobs()
    raised = Dispatch.objects(id=dispatch.id).first()
    assert raised.priority == "critical"
    assert raised.ack_deadline < dispatch.ack_deadline  # the critical SLA, from now
    assert raised.ack_deadline <= utcnow() + dt.timedelta(minutes=5)
    assert "raise_priority" in [h["action"] for h in raised.history]
    # Raising the clue texts at once, window or not.
    assert "已升为紧急" in texts_to(WF_DUTY, purpose="linked_notice")[1]


def test_closing_a_case_closes_its_reports_and_the_county_desks_copy(client, file, county):
    a = file("CHILD", cell_code(0, 0, 0), "陌生人带着哭闹的小孩")
    b = file("ORIGIN", cell_code(0, 0, 0), "有人抱着小孩上了面包车", who="reporter 李国强")
    run_jobs()
    [station] = station_dispatches("530627-WF")
    [desk] = station_dispatches("530627-XJ")
    assert codes_of(station) == codes_of(desk) == [a, b]
    officer = auth(token_of(county, "officer 乌峰派出所"))
    assert client.post(f"/api/v1/dispatches/{station.id}/acknowledge",
                       headers=officer).status_code == 200
    resp = client.post(f"/api/v1/dispatches/{station.id}/close", headers=officer,
                       json={"outcome": "rescued"})
    assert resp.status_code == 200, resp.json
    assert {(r.code, r.status, r.outcome) for r in Report.objects} == {
        (a, "closed", "rescued"), (b, "closed", "rescued")}
    copy = Dispatch.objects(id=desk.id).first()
    assert (copy.status, copy.outcome, copy.duplicate_of) == ("closed", "duplicate",
                                                               str(station.id))
    assert copy.history[-1]["action"] == "close_duplicate"
    scheduled = queues.queue(queues.CRITICAL).scheduled_job_registry.get_job_ids()
    assert escalation_job_id(str(desk.id), 0) not in scheduled
    assert escalation_job_id(str(station.id), 0) not in scheduled
    assert Case.objects(id=station.case_id).first().open is False
    # The next report of the same matter opens a new case instead of joining a closed one.
    file("CHILD", cell_code(0, 0, 0), "又看见那个面包车", who="reporter 李国强")
    run_jobs()
    assert Case.objects.count() == 2


def test_a_joining_report_brings_its_new_numbers_to_the_case(file, county):
    file("WOMAN", cell_code(0, 0, 0), "中间人电话138 0013 8000")
    # Joins by the number, and names a plate the case did not know yet.
    file("LABOUR", cell_code(2, 3, 3), "工头138 0013 8000，开云C12345的车", who="reporter 李国强")
    # A third report naming only the plate finds the case by it.
    c = file("OTHER", cell_code(1, 3, 3), "又看见云C12345", who="reporter 李国强")
    run_jobs()
    [case] = Case.objects
    assert len(case.keys) == 2
    assert case.report_count == 3
    assert Report.objects(code=c).first().case_id == case.id


def test_reopening_is_explicit_audited_and_works_the_reports_again(client, file, county):
    from gateway.privacy.audit import AuditEntry

    a = file("CHILD", cell_code(0, 0, 0), "陌生人带着哭闹的小孩")
    b = file("ORIGIN", cell_code(0, 0, 0), "有人抱着小孩上了面包车", who="reporter 李国强")
    run_jobs()
    [station] = station_dispatches("530627-WF")
    [desk] = station_dispatches("530627-XJ")
    officer = auth(token_of(county, "officer 乌峰派出所"))
    url = f"/api/v1/dispatches/{station.id}"
    assert client.post(f"{url}/reopen", headers=officer,
                       json={"reason": "家属提供新线索"}).status_code == 409  # not closed
    client.post(f"{url}/acknowledge", headers=officer)
    client.post(f"{url}/close", headers=officer, json={"outcome": "rescued"})
    # A reason is required; another station cannot; the desk's copy reopens with its clue.
    assert client.post(f"{url}/reopen", headers=officer, json={}).status_code == 422
    other = auth(token_of(county, "officer 南台派出所"))
    assert client.post(f"{url}/reopen", headers=other,
                       json={"reason": "家属提供新线索"}).status_code == 403
    desk_officer = auth(token_of(county, "officer 镇雄县公安局刑侦大队值班室"))
    resp = client.post(f"/api/v1/dispatches/{desk.id}/reopen", headers=desk_officer,
                       json={"reason": "家属提供新线索"})
    assert resp.status_code == 409
    assert str(station.id) in resp.json["message"]

    resp = client.post(f"{url}/reopen", headers=officer, json={"reason": "家属提供新线索"})
    assert resp.status_code == 200, resp.json
    assert (resp.json["status"], resp.json["outcome"]) == ("acknowledged", None)
    reopened = Dispatch.objects(id=station.id).first()
    assert reopened.history[-1]["action"] == "reopen"
    assert "家属" not in str(reopened.history[-1])
    assert "家属" not in (reopened.reopen_reason or "")
    assert {(r.code, r.status, r.outcome) for r in Report.objects} == {
        (a, "acknowledged", None), (b, "acknowledged", None)}
    assert Case.objects(id=station.case_id).first().open is True
    assert Dispatch.objects(id=desk.id).first().status == "closed"  # the copy stays closed
    [entry] = AuditEntry.objects(action="dispatch.reopen")
    assert entry.subject == f"dispatch:{station.id}"
    assert "reason_sha256" in entry.details
    # Worked again, it closes again like any acknowledged clue.
    assert client.post(f"{url}/close", headers=officer,
                       json={"outcome": "arrested"}).status_code == 200
    assert {r.outcome for r in Report.objects} == {"arrested"}

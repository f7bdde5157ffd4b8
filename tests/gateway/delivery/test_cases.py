"""Linked reports: one case, one dispatch per station, every report visible on it."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.delivery.routing import route
from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Case, Dispatch, GridCell
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, token_of

LINK_KEY = "8f" * 16


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(link_key=LINK_KEY, case_window_s=3600)


@pytest.fixture
def file(client, county):
    counter = iter(range(1000))

    def file(category: str, grid: str, details: str = "", who: str = "reporter 张秀英") -> str:
        resp = client.post("/api/v1/reports", headers=auth(token_of(county, who)), json={
            "client_id": f"case-{next(counter):05d}", "category": category,
            "grid_code": grid, "details": details})
        assert resp.status_code == 201, resp.json
        return resp.json["code"]

    return file


def station_dispatches(station: str) -> list[Dispatch]:
    return list(Dispatch.objects(station_code=station))


def test_same_category_in_the_same_or_a_neighbouring_cell_is_one_case(file, county):
    a = file("WOMAN", cell_code(0, 0, 0), "外地媳妇被锁在家里")
    b = file("WOMAN", cell_code(0, 0, 1), "邻居家新来的媳妇哭喊")  # next cell east
    assert cell_code(0, 0, 1) in GridCell.objects(code=cell_code(0, 0, 0)).first().neighbours
    run_jobs()
    [dispatch] = station_dispatches("530627-WF")
    assert dispatch.report_codes == [a, b]
    assert Case.objects.count() == 1
    assert {r.case_id for r in Report.objects} == {dispatch.case_id}


def test_different_category_or_far_away_cells_are_separate_cases(file, county):
    file("WOMAN", cell_code(0, 0, 0))
    file("LABOUR", cell_code(0, 0, 0))  # another category
    file("WOMAN", cell_code(0, 3, 3))  # same station, cells not touching
    run_jobs()
    assert len(station_dispatches("530627-WF")) == 3
    assert Case.objects.count() == 3


def test_same_phone_number_links_across_categories_and_stations(file, county):
    a = file("WOMAN", cell_code(0, 0, 0), "买媳妇的中间人电话138 0013 8000")
    b = file("LABOUR", cell_code(2, 3, 3), "工头联系方式 +86-138-0013-8000，逼孩子乞讨")
    run_jobs()
    [case] = Case.objects
    assert len(case.report_ids) == 2
    assert all(len(k) == 64 for k in case.keys)  # keyed hashes only
    assert "13800138000" not in str(case.to_mongo())
    # Each station works the case once; the second station's dispatch carries its report.
    assert station_dispatches("530627-WF")[0].report_codes == [a]
    assert station_dispatches("530627-PJ")[0].report_codes == [b]


def test_outside_the_window_a_new_case_opens(file, county):
    file("WOMAN", cell_code(0, 0, 0))
    run_jobs()
    Case.objects.update(set__last_at=dt.datetime(2020, 1, 1))
    file("WOMAN", cell_code(0, 0, 0))
    run_jobs()
    assert Case.objects.count() == 2
    assert len(station_dispatches("530627-WF")) == 2


def test_a_closed_dispatch_is_not_reopened_by_a_linked_report(client, file, county):
    file("WOMAN", cell_code(0, 0, 0))
    run_jobs()
    [first] = station_dispatches("530627-WF")
    Dispatch.objects(id=first.id).update_one(set__status="closed")
    file("WOMAN", cell_code(0, 0, 0))
    run_jobs()
    assert sorted(d.status for d in station_dispatches("530627-WF")) == ["closed", "delivered"]


def test_routing_a_linked_report_twice_adds_it_once(file, county):
    file("WOMAN", cell_code(0, 0, 0))
    b = file("WOMAN", cell_code(0, 0, 0))
    run_jobs()
    report = Report.objects(code=b).first()
    route(str(report.id))
    [dispatch] = station_dispatches("530627-WF")
    assert dispatch.report_codes.count(b) == 1
    assert len(Case.objects.first().report_ids) == 2

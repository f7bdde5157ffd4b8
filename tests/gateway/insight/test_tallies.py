"""The report tallies: kept by the route job, once per report, in one round trip; the same
as a recount from the reports."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from pymongo import monitoring

from gateway.delivery.routing import route
from gateway.insight.tallies import recount
from gateway.records import tallies
from gateway.records.reports import Report
from gateway.records.tallies import Tally
from gateway.sample import cell_code
from grid.figures import Period
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, token_of


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(case_window_s=0)


def file_reports(client, county, n, prefix="tally"):
    reporter = auth(token_of(county, "reporter 张秀英"))
    for i in range(n):
        resp = client.post("/api/v1/reports", headers=reporter, json={
            "client_id": f"{prefix}-{i:04d}", "category": ("CHILD", "WOMAN", "OTHER")[i % 3],
            "grid_code": cell_code(i % 2, 0, i % 3)})
        assert resp.status_code == 201


def tally_docs():
    return sorted((d for d in Tally._get_collection().find()), key=lambda d: d["_id"])


def this_year():
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()
    return Period(today - dt.timedelta(days=40), today + dt.timedelta(days=1))


def test_the_route_job_counts_each_report_once(client, county):
    file_reports(client, county, 12)
    run_jobs()
    routed = list(Report.objects(routed_at__ne=None))
    assert len(routed) == 12
    kept = tally_docs()
    places = Counter()
    for doc in kept:
        if doc["kind"] == "place":
            for per_category in doc["days"].values():
                for category, n in per_category.items():
                    places[(doc["cell"], category)] += n
    assert places == Counter((r.cell_code, r.category) for r in routed)
    people = sum(n for d in kept if d["kind"] == "reporter" for n in d["days"].values())
    assert people == 12
    # Every job may run twice: the second run counts nothing.
    for report in routed:
        route(str(report.id))
    assert tally_docs() == kept
    # And a recount from the reports gives the same documents.
    assert recount(this_year()) == 12
    assert tally_docs() == kept


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []
        self.on = True  # pymongo keeps a registered listener for the whole session

    def started(self, event):
        if self.on:
            self.names.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_counting_costs_one_round_trip_per_report(client, county, monkeypatch):
    file_reports(client, county, 3, prefix="trips")
    listener = Commands()
    monitoring.register(listener)  # applies to clients made from now: make one
    from mongoengine.connection import disconnect_all

    from gateway import startup

    disconnect_all()
    startup.configure(client.application.config["SAFEGRID"])
    warm, first, second = (str(r.id) for r in Report.objects.order_by("created_at"))
    route(warm)  # a new connection creates mongoengine's indexes on first use
    listener.names.clear()
    route(first)
    with_count = list(listener.names)
    monkeypatch.setattr(tallies, "count_reports", lambda *a, **k: None)
    listener.names.clear()
    route(second)
    without = list(listener.names)
    listener.on = False
    assert len(with_count) == len(without) + 1
    assert Counter(with_count) - Counter(without) == Counter({"update": 1})


def test_figures_follow_routing_without_a_recount(client, county):
    file_reports(client, county, 7, prefix="live")
    run_jobs()
    resp = client.get("/api/v1/insight/counts", headers=auth(token_of(county, "supervisor")),
                      query_string={"by": "county", "every": "month"})
    totals = [r["reports"] for r in resp.json["rows"] if r["category"] is None]
    assert totals == [5]  # 7 reports: "5 to 9"


def station_sums(station):
    sums = Counter()
    for doc in Tally._get_collection().find({"kind": "station", "station": station}):
        for counts in doc["days"].values():
            sums.update(counts)
    return sums


def test_clues_acknowledgements_and_escalations_are_counted_once(client, county):
    from gateway.delivery.escalation import escalate
    from grid.documents import Dispatch

    file_reports(client, county, 6, prefix="steps")
    run_jobs()
    wf = list(Dispatch.objects(station_code="530627-WF").order_by("created_at"))
    officer = auth(token_of(county, "officer 乌峰派出所"))
    for dispatch in wf[:2]:
        assert client.post(f"/api/v1/dispatches/{dispatch.id}/acknowledge",
                           headers=officer).status_code == 200
        # A second acknowledgement is refused, and counts nothing.
        assert client.post(f"/api/v1/dispatches/{dispatch.id}/acknowledge",
                           headers=officer).status_code == 409
    late = wf[2]
    Dispatch.objects(id=late.id).update_one(
        set__ack_deadline=dt.datetime(2020, 1, 1), set__next_check_at=None)
    escalate(str(late.id), 0)
    escalate(str(late.id), 0)  # a duplicate run: stale
    sums = station_sums("530627-WF")
    assert sums["clues"] == len(wf)
    assert sums["ack"] == 2
    assert sum(n for k, n in sums.items() if k.startswith("b")) == 2
    assert sums["within"] == 2
    assert sums["esc"] == 1
    live = {d["_id"]: d for d in Tally._get_collection().find({"kind": "station"})}
    recount(this_year())
    assert {d["_id"]: d for d in Tally._get_collection().find({"kind": "station"})} == live

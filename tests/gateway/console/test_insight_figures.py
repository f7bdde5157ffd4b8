"""The insight figures on the supervisor's page: the insight room's own figures, checked
here against counts worked out in the test from the raw documents, and never an exact
small count (1–4 reports show as "<5")."""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest

from gateway.records.people import Reporter
from gateway.records.reports import Report
from gateway.records.units import Unit
from gateway.sample import COUNTY, cell_code
from grid.documents import GridCell
from grid.figures import ACK_BINS
from tests.gateway.console.conftest import SUPERVISOR, WF_OFFICER, enrol, form_of
from tests.gateway.insight.seeding import (
    BEIJING,
    dispatch,
    insert_dispatches,
    insert_reports,
    report,
    shown,
)

WF = "530627-WF"
UTC8 = dt.timedelta(hours=8)


def utc(day: dt.date) -> dt.datetime:
    """The naive UTC instant at which a Beijing date begins."""
    return dt.datetime.combine(day, dt.time()) - UTC8


def months() -> tuple[dt.date, dt.date, dt.date]:
    """Last month's first day, this month's, next month's (Beijing)."""
    this = dt.datetime.now(BEIJING).date().replace(day=1)
    previous = (this - dt.timedelta(days=1)).replace(day=1)
    following = (this + dt.timedelta(days=32)).replace(day=1)
    return previous, this, following


def row_of(html: str, table: str, attr: str, key: str) -> dict[str, str]:
    """The cells of the row `key` of table `table`: class → the text inside."""
    start = html.index(f'id="{table}"')
    body = html[start:html.index("</table>", start)]
    found = re.search(rf'<tr {attr}="{re.escape(key)}">(.*?)</tr>', body, re.S)
    assert found, f"no row {key} in {table}"
    return {m.group(1): m.group(2).strip() for m in
            re.finditer(r'<td class="([a-z0-9-]+)"[^>]*>(.*?)</td>', found.group(1), re.S)}


def published(n: int) -> str:
    """How the page writes a published count (Jinja escapes the '<')."""
    return str(shown(n)).replace("<", "&lt;")


@pytest.fixture
def supervisor(client, county, log_in):
    assert log_in(SUPERVISOR).status_code == 303


def test_this_month_against_last_as_the_insight_room_publishes_them(client, supervisor):
    previous, this, following = months()
    teacher = Reporter.by_phone("+8613800001001").first()
    # This month: 12 child reports in one cell, 3 woman reports in another; last month:
    # 7 child reports and one labour report. Another county's station: never counted.
    docs = [report(cell_code(0, 0, 0), "CHILD", utc(this) + dt.timedelta(minutes=i),
                   reporter_id=teacher.id) for i in range(12)]
    docs += [report(cell_code(0, 1, 0), "WOMAN", utc(this) + dt.timedelta(hours=1, minutes=i))
             for i in range(3)]
    docs += [report(cell_code(0, 0, 0), "CHILD", utc(previous) + dt.timedelta(days=2, hours=i))
             for i in range(7)]
    docs += [report(cell_code(0, 2, 0), "LABOUR", utc(previous) + dt.timedelta(days=3))]
    docs += [{**report(None, "CHILD", utc(this) + dt.timedelta(hours=2)),
              "station_code": "530628-X"}]
    insert_reports(docs)

    page = client.get("/console/county")
    assert page.status_code == 200
    html = page.text
    stations = ["530627-WF", "530627-NT", "530627-PJ", "530627-XJ"]

    def exact(start: dt.date, end: dt.date, category: str | None) -> int:
        query = {"created_at__gte": utc(start), "created_at__lt": utc(end),
                 "station_code__in": stations}
        if category:
            query["category"] = category
        return Report.objects(**query).count()

    for category in (None, "CHILD", "WOMAN", "LABOUR"):
        row = row_of(html, "insight-months", "data-category", category or "ALL")
        assert row["this"] == published(exact(this, following, category)), category
        assert row["previous"] == published(exact(previous, this, category)), category
    assert exact(this, following, "WOMAN") == 3
    assert row_of(html, "insight-months", "data-category", "WOMAN")["this"] == "&lt;5"
    assert row_of(html, "insight-months", "data-category", "CHILD")["this"] == "10"
    assert row_of(html, "insight-months", "data-category", "ALL")["previous"] == "5"
    assert "本月与上月线索数" in html
    switched = client.post("/console/language", data={
        "csrf": form_of(html, "/console/logout")["csrf"], "language": "en",
        "next": "/console/county"})
    assert switched.status_code == 303
    english = client.get("/console/county").text
    assert "Reports this month and last" in english
    assert row_of(english, "insight-months", "data-category", "WOMAN")["this"] == "&lt;5"


def test_station_response_times_and_the_duty_match_the_documents(client, supervisor):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    first = now - dt.timedelta(days=2)
    acked = [dispatch(WF, first + dt.timedelta(hours=i), ack_after_s=60 * (i + 1) + 7 * i,
                      sla_s=600) for i in range(10)]
    waiting = [dispatch(WF, first + dt.timedelta(hours=11 + i), sla_s=600) for i in range(2)]
    insert_dispatches(acked + waiting)
    teacher = Reporter.by_phone("+8613800001003").first()
    insert_reports([report(cell_code(0, 1, 2), "CHILD", now - dt.timedelta(days=1),
                           reporter_id=teacher.id)])

    html = client.get("/console/county").text
    row = row_of(html, "insight-response", "data-station", WF)
    mine = acked + waiting
    times = [(d["acknowledged_at"] - d["created_at"]).total_seconds() for d in acked]
    within = sum(1 for d in acked if d["acknowledged_at"] <= d["ack_deadline"])
    assert row["clues"] == published(len(mine))
    assert row["acknowledged"] == published(len(times))
    seconds = dict(re.findall(r'class="(p50|p90)" data-seconds="(\d*)"',
                              html[html.index(f'data-station="{WF}"'):]))
    # Percentiles are kept as acknowledgement-time bins (docs/insight.md): the page shows
    # the upper bound of the bin the nearest-rank percentile falls in.
    assert int(seconds["p50"]) == binned(nearest_rank(times, 50))
    assert int(seconds["p90"]) == binned(nearest_rank(times, 90))
    # In time: a share of the acknowledged clues (the waiting ones count as overdue now).
    share = int(within * 100 / len(times) / 10 + 0.5) * 10
    assert row["in-time"] == f"{share}%"
    assert row["overdue-now"] == "&lt;5"  # two overdue now: never shown exactly

    # The duty: units silent for 90 days, and the share of units reporting by township.
    units = list(Unit.objects(county_code=COUNTY, active__ne=False))
    since = now - dt.timedelta(days=90)
    filed = {r.unit for r in Reporter.objects(unit__in=[u.code for u in units])
             if Report.objects(reporter_id=r.id, created_at__gte=since).count()}
    assert filed == {"530627-U03"}
    silent = len(units) - len(filed)
    assert f"{len(units)}个强制报告单位中，{silent}个" in html
    township = GridCell.objects(code=Unit.objects(code="530627-U03").first().cell_code).first(
        ).township_code
    in_township = [u for u in units if GridCell.objects(code=u.cell_code).first().township_code
                   == township]
    reported = row_of(html, "insight-townships", "data-township", township)
    assert reported["units"] == str(len(in_township))
    assert reported["reported"] == "1"
    assert reported["share"] == f"{int(100 / len(in_township) + 0.5)}%"
    assert 'data-unit="530627-U03"' not in html  # it reported
    assert 'data-unit="530627-U01"' in html


def test_only_the_supervisor_sees_the_figures(client, county, log_in):
    assert log_in(WF_OFFICER, enrol(WF_OFFICER).now()).status_code == 303
    page = client.get("/console/county")
    assert page.status_code == 403
    assert 'id="insight"' not in page.text


def nearest_rank(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * q / 100)) - 1]


def binned(seconds: float) -> int:
    return next(bound for bound in ACK_BINS if seconds <= bound)


def test_the_supervisor_downloads_the_figures_as_the_insight_api_publishes_them(
        client, county, supervisor):
    import io

    import openpyxl

    from tests.helpers import auth, token_of

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    insert_reports([report(cell_code(0, 0, 0), "CHILD", now - dt.timedelta(days=2, minutes=i))
                    for i in range(7)]
                   + [report(cell_code(1, 0, 0), "WOMAN", now - dt.timedelta(days=3))])
    page = client.get("/console/county").text
    assert 'href="/console/county/figures.xlsx"' in page
    assert 'href="/console/county/figures.csv"' in page
    assert 'href="/console/county/summary"' in page

    api = auth(token_of(county, "supervisor"))
    mine = client.get("/console/county/figures.csv")
    assert mine.status_code == 200
    assert mine.mimetype == "text/csv"
    assert "attachment" in mine.headers["Content-Disposition"]
    # The same bytes as the API's export of the same county and period.
    assert mine.data == client.get("/api/v1/insight/export?format=csv", headers=api).data

    book = client.get("/console/county/figures.xlsx")
    assert book.status_code == 200
    sheets = openpyxl.load_workbook(io.BytesIO(book.data)).sheetnames
    api_book = client.get("/api/v1/insight/export?format=xlsx", headers=api).data
    assert sheets == openpyxl.load_workbook(io.BytesIO(api_book)).sheetnames

    printable = client.get("/console/county/summary?month=" + now.strftime("%Y-%m"))
    assert printable.status_code == 200
    assert printable.mimetype == "text/html"
    policy = printable.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy  # the summary's own: no script at all
    assert "script-src" not in policy
    assert printable.data == client.get(
        f"/api/v1/insight/summary?month={now:%Y-%m}", headers=api).data

    assert client.get("/console/county/summary?month=2026-13").status_code == 422
    assert client.get("/console/county/figures.pdf").status_code == 404


def test_a_station_officer_downloads_no_figures(client, county, log_in):
    assert log_in(WF_OFFICER, enrol(WF_OFFICER).now()).status_code == 303
    for path in ("/console/county/figures.csv", "/console/county/figures.xlsx",
                 "/console/county/summary"):
        assert client.get(path).status_code == 403

"""Trends, the CSV and XLSX export and the printable monthly summary, checked against
counts the test works out from the raw reports, and by rendering them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from html.parser import HTMLParser

import openpyxl
import pytest

from gateway.records.units import Unit
from gateway.sample import COUNTY, cell_code
from tests.gateway.insight.seeding import insert_reports, report, shown, township_of
from tests.helpers import auth, token_of

MARCH = dt.datetime(2026, 3, 1) - dt.timedelta(hours=8)
FEB = dt.datetime(2026, 2, 1) - dt.timedelta(hours=8)


@pytest.fixture
def supervisor(county):
    return auth(token_of(county, "supervisor"))


@pytest.fixture
def seeded(county):
    cells = [cell_code(t, v, 0) for t in range(3) for v in range(2)]
    docs = []
    for i, cell in enumerate(cells):
        docs += [report(cell, "CHILD", MARCH + dt.timedelta(hours=5 * k)) for k in range(3 + 4 * i)]
        docs += [report(cell, "CHILD", FEB + dt.timedelta(hours=7 * k)) for k in range(12 - i)]
    insert_reports(docs)
    return docs


def change10(now, then):
    if now < 10 or then < 10:
        return None
    return int((now - then) * 100 / then / 10 + 0.5 + 1000) * 10 - 10000  # half up


def test_trends_against_the_previous_period(client, supervisor, seeded):
    resp = client.get("/api/v1/insight/trends", headers=supervisor, query_string={
        "start": "2026-03-01", "end": "2026-03-29", "by": "township"})
    assert resp.status_code == 200, resp.json
    assert resp.json["previous_start"] == "2026-02-01"
    start, end = MARCH, MARCH + dt.timedelta(days=28)
    now = Counter(township_of(d["cell_code"]) for d in seeded if start <= d["created_at"] < end)
    then = Counter(township_of(d["cell_code"]) for d in seeded
                   if start - dt.timedelta(days=28) <= d["created_at"] < start)
    rows = {r["area"]: r for r in resp.json["rows"] if r["category"] is None}
    assert set(rows) == set(now) | set(then)
    for township, row in rows.items():
        assert row["reports"] in (shown(now[township]), "withheld")
        assert row["previous"] in (shown(then[township]), "withheld")
        assert row["change_pct"] == change10(now[township], then[township]), township
    assert any(r["change_pct"] is not None for r in rows.values())


def test_trends_in_the_csv(client, supervisor, seeded):
    resp = client.get("/api/v1/insight/export", headers=supervisor, query_string={
        "start": "2026-03-01", "end": "2026-03-29", "format": "csv",
        "table": "trends_by_township"})
    rows = list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    api = client.get("/api/v1/insight/trends", headers=supervisor, query_string={
        "start": "2026-03-01", "end": "2026-03-29"}).json["rows"]
    assert [(r["area"], r["reports"], r["change_pct"]) for r in rows] == [
        (r["area"], str(r["reports"]), "" if r["change_pct"] is None else str(r["change_pct"]))
        for r in api]


def test_csv_export_matches_the_figures(client, supervisor, seeded):
    query = {"start": "2026-03-01", "end": "2026-04-01", "format": "csv",
             "table": "counts_by_cell"}
    resp = client.get("/api/v1/insight/export", headers=supervisor, query_string=query)
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    text = resp.get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = Counter(d["cell_code"] for d in seeded if d["created_at"] >= MARCH)
    got = {r["area"]: r["reports"] for r in rows if r["category"] == "CHILD"}
    assert got == {cell: str(shown(n)) for cell, n in expected.items()}


def test_xlsx_export_has_every_table_and_escapes_formulas(client, supervisor, seeded):
    # A unit named like a formula must reach the workbook as text, not as a formula.
    Unit.objects(code="530627-U01").update_one(set__name="=HYPERLINK(\"http://x\",\"y\")")
    resp = client.get("/api/v1/insight/export", headers=supervisor, query_string={
        "start": "2026-03-01", "end": "2026-04-01"})
    assert resp.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(resp.get_data()))
    assert {"counts_by_township", "counts_by_cell", "hotspots", "trends_by_township",
            "response_times",
            "duty_units", "silent_units", "duty_by_type", "duty_by_township",
            "duty_by_role"} <= set(book.sheetnames)
    names = [row[1] for row in book["duty_units"].iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"http://x\",\"y\")" in names
    assert not any(str(n).startswith("=") for n in names)
    hot = {row[0]: row[2] for row in book["hotspots"].iter_rows(min_row=2, values_only=True)}
    expected = Counter(d["cell_code"] for d in seeded if d["created_at"] >= MARCH)
    for cell, n in expected.items():
        assert str(hot[cell]) in (str(shown(n)), "withheld")


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.text: list[str] = []
        self.fills: list[str] = []
        self.titles: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        if tag == "polygon":
            self.fills.append(dict(attrs)["fill"])
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_title:
            self.titles.append(data)


def test_the_monthly_summary_renders_map_charts_and_tables(client, supervisor, seeded):
    resp = client.get("/api/v1/insight/summary", headers=supervisor,
                      query_string={"month": "2026-03"})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "text/html"
    assert "script-src" not in resp.headers["Content-Security-Policy"]
    html = resp.get_data(as_text=True)
    page = Page()
    page.feed(html)
    assert page.tags["script"] == 0
    assert page.tags["svg"] >= 3  # the map and two charts
    assert page.tags["polygon"] == 48  # every cell of the county
    text = " ".join(page.text)
    assert COUNTY in text
    assert "2026-03" in text
    # Each cell's tooltip says its published figure; cells are shaded by it.
    expected = Counter(d["cell_code"] for d in seeded if d["created_at"] >= MARCH)
    for cell, n in expected.items():
        tip = next(t for t in page.titles if cell in t)
        assert tip.endswith(str(shown(n))) or tip.endswith("withheld"), tip
    assert len(set(page.fills)) >= 3
    # The month's total against February's, published.
    march, feb = sum(expected.values()), sum(1 for d in seeded if d["created_at"] < MARCH)
    assert re.search(rf"all categories\s*{shown(march)}\s*{shown(feb)}", text)
    # No exact small count anywhere: every number next to "CHILD" in the chart is banded.
    assert "&lt;5" in html or "<5" in text


def test_summary_input(client, county, supervisor):
    assert client.get("/api/v1/insight/summary", headers=supervisor,
                      query_string={"month": "2026-13"}).status_code == 422
    assert client.get("/api/v1/insight/summary", headers=supervisor,
                      query_string={"county": "110101"}).status_code == 403
    from gateway.access.tokens import issue_token
    operator = auth(issue_token("admin", label="operator"))
    assert client.get("/api/v1/insight/summary", headers=operator).status_code == 422
    assert client.get("/api/v1/insight/summary", headers=operator,
                      query_string={"county": COUNTY}).status_code == 200


def test_export_input(client, supervisor):
    for query in ({"format": "pdf"}, {"table": "everything"}, {"every": "year"},
                  {"start": "2016-01-01", "end": "2026-01-01"}):
        resp = client.get("/api/v1/insight/export", headers=supervisor, query_string=query)
        assert resp.status_code == 422, query

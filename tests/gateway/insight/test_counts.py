"""Counts and the hotspot map against counts worked out in the test from the raw reports;
suppression that no subtraction undoes; clear 4xx for bad input."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import h3
import pytest

from gateway.access.tokens import issue_token
from gateway.sample import COUNTY, cell_code
from grid.documents import GridCell
from tests.gateway.insight.seeding import (
    insert_reports,
    local_bucket,
    random_reports,
    report,
    shown,
    township_of,
)
from tests.helpers import auth, cell_centre, token_of

START = dt.datetime(2026, 1, 1) - dt.timedelta(hours=8)  # 1 January, Beijing midnight
PERIOD = {"start": "2026-01-01", "end": "2026-04-01"}


@pytest.fixture
def supervisor(county):
    return auth(token_of(county, "supervisor"))


@pytest.fixture
def seeded(county):
    docs = random_reports(15, 700, START - dt.timedelta(days=10), 110)
    # Reports of another county (its cells unknown here) must never be counted.
    docs += [report(None, "CHILD", START + dt.timedelta(days=3), station_code="530628-X")]
    insert_reports(docs)
    return [d for d in docs if d["station_code"] != "530628-X"]


def in_period(docs, start=START, days=90):
    return [d for d in docs if start <= d["created_at"] < start + dt.timedelta(days=days)]


def area_of(doc, by):
    return {"cell": doc["cell_code"], "township": township_of(doc["cell_code"]),
            "county": COUNTY}[by]


@pytest.mark.parametrize("by", ["cell", "township", "county"])
@pytest.mark.parametrize("every", ["week", "month"])
def test_counts_match_the_raw_reports(client, supervisor, seeded, by, every):
    docs = in_period(seeded)
    by_category = Counter((area_of(d, by), d["category"], local_bucket(d["created_at"], every))
                          for d in docs)
    totals = Counter((area_of(d, by), local_bucket(d["created_at"], every)) for d in docs)
    resp = client.get("/api/v1/insight/counts", headers=supervisor,
                      query_string={**PERIOD, "by": by, "every": every})
    assert resp.status_code == 200, resp.json
    got = {(r["area"], r["category"], dt.date.fromisoformat(r["period_start"])): r["reports"]
           for r in resp.json["rows"]}
    expected_keys = set(by_category) | {(a, None, b) for a, b in totals}
    assert set(got) == expected_keys
    withheld = 0
    for (area, category, bucket), figure in got.items():
        n = by_category[(area, category, bucket)] if category else totals[(area, bucket)]
        if by == "cell" and category:
            assert figure == shown(n), (area, category, bucket)  # nothing below a cell
        else:
            assert figure in (shown(n), "withheld"), (area, category, bucket, n)
            withheld += figure == "withheld"
    assert withheld <= len(got) // 4  # complementary suppression is the exception
    assert all(r["county"] == COUNTY for r in resp.json["rows"])


def test_one_category(client, supervisor, seeded):
    docs = [d for d in in_period(seeded) if d["category"] == "CHILD"]
    expected = Counter((township_of(d["cell_code"]), local_bucket(d["created_at"], "month"))
                       for d in docs)
    resp = client.get("/api/v1/insight/counts", headers=supervisor, query_string={
        **PERIOD, "by": "township", "every": "month", "category": "CHILD"})
    got = {(r["area"], dt.date.fromisoformat(r["period_start"])): r["reports"]
           for r in resp.json["rows"]}
    assert {r["category"] for r in resp.json["rows"]} == {"CHILD"}
    assert set(got) == set(expected)
    assert all(got[k] in (shown(n), "withheld") for k, n in expected.items())


def test_weeks_and_months_are_beijing_time(client, supervisor, county):
    # 23:30 UTC on Sunday 1 February is 07:30 on Monday 2 February in Beijing: a new week;
    # 16:30 UTC on 31 January is already 1 February there: a new month.
    cell = cell_code(0, 0, 0)
    insert_reports([report(cell, "OTHER", dt.datetime(2026, 2, 1, 23, 30)) for _ in range(5)]
                   + [report(cell, "OTHER", dt.datetime(2026, 1, 31, 16, 30))
                      for _ in range(6)])
    weeks = client.get("/api/v1/insight/counts", headers=supervisor, query_string={
        "start": "2026-01-26", "end": "2026-02-09", "every": "week", "category": "OTHER"})
    assert {(r["period_start"], r["reports"]) for r in weeks.json["rows"]} == {
        ("2026-01-26", 5), ("2026-02-02", 5)}
    months = client.get("/api/v1/insight/counts", headers=supervisor, query_string={
        "start": "2026-01-01", "end": "2026-03-01", "every": "month", "category": "OTHER"})
    assert {(r["period_start"], r["reports"]) for r in months.json["rows"]} == {
        ("2026-02-01", 10)}


def test_the_period_is_beijing_dates_end_exclusive(client, supervisor, county):
    cell = cell_code(0, 0, 0)
    inside = [dt.datetime(2026, 2, 28, 16, 0), dt.datetime(2026, 3, 31, 15, 59)]
    outside = [dt.datetime(2026, 2, 28, 15, 59), dt.datetime(2026, 3, 31, 16, 0)]
    insert_reports([report(cell, "OTHER", at) for at in inside * 3 + outside * 5])
    resp = client.get("/api/v1/insight/counts", headers=supervisor, query_string={
        "start": "2026-03-01", "end": "2026-04-01", "category": "OTHER"})
    assert [r["reports"] for r in resp.json["rows"]] == [6 - 6 % 5]


def test_hotspots_match_the_raw_reports(client, supervisor, seeded):
    docs = in_period(seeded)
    per_cell = Counter(d["cell_code"] for d in docs)
    resp = client.get("/api/v1/insight/hotspots", headers=supervisor, query_string=PERIOD)
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert body["type"] == "FeatureCollection"
    features = {f["properties"]["cell"]: f for f in body["features"]}
    assert set(features) == {c.code for c in GridCell.objects(county_code=COUNTY)}
    for code, feature in features.items():
        assert feature["properties"]["reports"] in (shown(per_cell[code]), "withheld"), code
        assert feature["geometry"]["type"] == "Polygon"
    assert body["properties"]["unplaced_reports"] in (shown(per_cell[None]), "withheld")
    assert sum(f["properties"]["reports"] == "<5" for f in features.values()) >= 1


def test_hotspots_as_h3_hexagons(client, supervisor, seeded):
    docs = in_period(seeded)
    per_cell = Counter(d["cell_code"] for d in docs)
    hexagon_of = {}
    for cell in GridCell.objects(county_code=COUNTY):
        lat, lon = cell_centre(cell.ring)
        hexagon_of[cell.code] = h3.latlng_to_cell(lat, lon, 8)
    per_hexagon = Counter()
    for code, hexagon in hexagon_of.items():
        per_hexagon[hexagon] += per_cell[code]
    resp = client.get("/api/v1/insight/hotspots", headers=supervisor,
                      query_string={**PERIOD, "h3_resolution": 8})
    assert resp.status_code == 200, resp.json
    got = {f["properties"]["h3"]: f["properties"]["reports"] for f in resp.json["features"]}
    assert set(got) == set(per_hexagon)
    for hexagon, n in per_hexagon.items():
        assert got[hexagon] in (shown(n), "withheld")


def feasible(part, total, others):
    """What a part can be given a published total and the other published parts, by brute
    force over every combination the published figures allow (written out in the test)."""
    def values(figure):
        if figure == "<5":
            return range(1, 5)
        if figure == "withheld":
            return range(0, 200)
        return range(figure, figure + 5) if figure else range(0, 1)
    sums = {0}
    for other in others:
        sums = {s + v for s in sums for v in values(other)}
    return {v for v in values(part) if any(s + v in values(total) for s in sums)}


def test_a_small_cell_cannot_be_recovered_by_subtraction(client, supervisor, county):
    # Township 乌峰: one cell with 5 reports and four cells with one each. Its exact total,
    # 9, banded (5 = "5 to 9") with the cells' "5" and four "<5" would leave each small cell
    # exactly 1: the township's figure must not allow that. Another township has 3 + 7 + 12.
    wf = [cell_code(0, 0, g) for g in range(4)] + [cell_code(0, 1, 0)]
    nt = [cell_code(1, 0, g) for g in range(3)]
    at = START + dt.timedelta(days=2)
    docs = [report(c, "WOMAN", at) for c, n in zip(wf, (5, 1, 1, 1, 1), strict=True)
            for _ in range(n)]
    docs += [report(c, "WOMAN", at) for c, n in zip(nt, (3, 7, 12), strict=True)
             for _ in range(n)]
    insert_reports(docs)
    query = {"start": "2026-01-01", "end": "2026-02-01", "every": "month"}
    for category in ("WOMAN", None):
        extra = {"category": category} if category else {}
        cells = client.get("/api/v1/insight/counts", headers=supervisor,
                           query_string={**query, **extra, "by": "cell"}).json["rows"]
        townships = client.get("/api/v1/insight/counts", headers=supervisor,
                               query_string={**query, **extra, "by": "township"}).json["rows"]
        cell_figure = {r["area"]: r["reports"] for r in cells if r["category"] == category}
        township_figure = {r["area"]: r["reports"] for r in townships
                           if r["category"] == category}
        for members in (wf, nt):
            total = township_figure[township_of(members[0])]
            for cell in members:
                if cell_figure[cell] != "<5":
                    continue
                others = [cell_figure[c] for c in members if c != cell]
                assert len(feasible(cell_figure[cell], total, others)) > 1, (cell, total, others)
        county_figure = client.get("/api/v1/insight/counts", headers=supervisor, query_string={
            **query, **extra, "by": "county"}).json["rows"][0]["reports"]
        for cell, figure in cell_figure.items():
            if figure == "<5":
                others = [f for c, f in cell_figure.items() if c != cell]
                assert len(feasible(figure, county_figure, others)) > 1
    # No figure anywhere says 1 or 3, the exact small counts.
    for by in ("cell", "township", "county"):
        rows = client.get("/api/v1/insight/counts", headers=supervisor,
                          query_string={**query, "by": by}).json["rows"]
        assert not {r["reports"] for r in rows} & {1, 2, 3, 4}
    assert township_figure[township_of(wf[0])] == "withheld"  # 9 would have pinned them


def test_admin_of_the_county_and_operators(client, county, seeded):
    admin = auth(token_of(county, "admin"))
    operator = auth(issue_token("admin", label="platform operator"))
    mine = client.get("/api/v1/insight/counts", headers=admin,
                      query_string={**PERIOD, "by": "county"})
    assert mine.status_code == 200
    everyone = client.get("/api/v1/insight/counts", headers=operator,
                          query_string={**PERIOD, "by": "county"})
    assert everyone.status_code == 200
    assert everyone.json["county"] is None
    # The other county's report is in the nationwide figure only, as unplaced (no county).
    assert {r["county"] for r in everyone.json["rows"]} == {COUNTY, None}
    assert {r["county"] for r in mine.json["rows"]} == {COUNTY}
    one = client.get("/api/v1/insight/counts", headers=operator,
                     query_string={**PERIOD, "by": "county", "county": COUNTY})
    assert one.json["rows"] == mine.json["rows"]


@pytest.mark.parametrize(("query", "status"), [
    ({"start": "2016-01-01", "end": "2026-01-01"}, 422),  # ten years
    ({"start": "2026-01-01", "end": "2026-01-01"}, 422),  # zero days
    ({"start": "2026-02-01", "end": "2026-01-01"}, 422),  # backwards
    ({"end": "0001-01-01"}, 422),  # the default start would fall before the calendar's first day
    ({"county": "530628"}, 403),  # not the supervisor's county
    ({"county": "5306"}, 422),
    ({"category": "KIDNAP"}, 422),  # no such category
    ({"by": "village"}, 422),
    ({"every": "day"}, 422),
])
def test_bad_input_is_a_clear_4xx(client, supervisor, query, status):
    resp = client.get("/api/v1/insight/counts", headers=supervisor, query_string=query)
    assert resp.status_code == status, resp.json
    assert resp.json["code"] == status
    assert resp.json.get("errors") or resp.json["message"]


@pytest.mark.parametrize("resolution", [-1, 16, "x"])
def test_h3_resolution_out_of_range(client, supervisor, resolution):
    resp = client.get("/api/v1/insight/hotspots", headers=supervisor,
                      query_string={"h3_resolution": resolution})
    assert resp.status_code == 422
    assert "h3_resolution" in resp.json["errors"]["query"]


def test_an_unknown_county_for_an_operator(client, county):
    operator = auth(issue_token("admin", label="platform operator"))
    resp = client.get("/api/v1/insight/counts", headers=operator, query_string={
        "county": "999999"})
    assert resp.status_code == 404


def test_officers_and_reporters_get_no_figures(client, county):
    for who in ("officer 乌峰派出所", "reporter 张秀英"):
        resp = client.get("/api/v1/insight/counts", headers=auth(token_of(county, who)))
        assert resp.status_code == 403

"""Station response times against figures worked out in the test from the raw dispatches,
and through the real route and acknowledge path."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from gateway.sample import COUNTY_DESK, cell_code
from grid.documents import Dispatch
from tests.gateway.api.test_reports_api import run_jobs
from tests.gateway.insight.seeding import dispatch, insert_dispatches, shown
from tests.helpers import auth, token_of

WF, NT, PJ = "530627-WF", "530627-NT", "530627-PJ"
START = dt.datetime(2026, 1, 1) - dt.timedelta(hours=8)


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(case_window_s=0)  # each routed report its own clue


BINS = (30, 60, 120, 180, 240, 300, 450, 600, 900, 1200, 1500, 1800, 2700, 3600, 5400,
        7200, 10800, 14400, 21600, 43200, 86400, 172800, 604800)


def binned_percentile(times, q):
    """Nearest rank, then the upper bound of the bin it falls in (written out again)."""
    value = sorted(times)[max(1, math.ceil(len(times) * q / 100)) - 1]
    return next((b for b in BINS if value <= b), BINS[-1] + 1)


def share10(part, whole):
    return None if whole < 10 else int(part * 100 / whole / 10 + 0.5) * 10  # half up


def test_response_times_match_the_raw_dispatches(client, county):
    rnd = random.Random(7)  # noqa: S311 (test data, not secrets)
    docs = []
    for station, n in ((WF, 40), (NT, 12), (PJ, 3)):
        for i in range(n):
            created = START + dt.timedelta(days=rnd.randrange(28), seconds=rnd.randrange(86400))
            acked = rnd.random() < 0.8
            docs.append(dispatch(
                station, created, ack_after_s=rnd.uniform(10, 4000) if acked else None,
                escalation_level=rnd.choice((0, 0, 0, 1, 2)),
                transferred_from=NT if station == WF and i % 9 == 0 else None))
    # One long overdue now, from before the period; a duplicate copy never acknowledged.
    # (Overdue now is read live; the rest from the tallies, recounted from these.)
    docs.append(dispatch(PJ, START - dt.timedelta(days=40)))
    docs.append(dispatch(COUNTY_DESK[0], START + dt.timedelta(days=1), status="closed",
                         duplicate_of="x"))
    # Another county's station: never in this county's figures.
    docs.append(dispatch("530628-X", START + dt.timedelta(days=1), ack_after_s=5))
    insert_dispatches(docs)
    resp = client.get("/api/v1/insight/response-times",
                      headers=auth(token_of(county, "supervisor")),
                      query_string={"start": "2026-01-01", "end": "2026-02-01"})
    assert resp.status_code == 200, resp.json
    rows = {r["station"]: r for r in resp.json["stations"]}
    assert set(rows) == {WF, NT, PJ, COUNTY_DESK[0]}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for station in (WF, NT, PJ):
        mine = [d for d in docs if d["station_code"] == station
                and START <= d["created_at"] < START + dt.timedelta(days=31)]
        times = [(d["acknowledged_at"] - d["created_at"]).total_seconds()
                 for d in mine if "acknowledged_at" in d]
        within = sum(1 for d in mine if "acknowledged_at" in d
                     and d["acknowledged_at"] <= d["ack_deadline"])
        row = rows[station]
        assert row["clues"] == shown(len(mine))
        assert row["acknowledged"] == shown(len(times))
        if len(times) >= 5:
            assert row["ack_p50_s"] == binned_percentile(times, 50)
            assert row["ack_p90_s"] == binned_percentile(times, 90)
        else:
            assert row["ack_p50_s"] is None
        assert row["within_sla_pct"] == share10(within, len(times))
        assert row["escalated"] == shown(sum(1 for d in mine if d["escalation_level"] > 0))
        assert row["transferred_in"] == shown(sum(1 for d in mine if d.get("transferred_from")))
        overdue = sum(1 for d in docs if d["station_code"] == station
                      and d["status"] in ("new", "delivered", "transfer_requested")
                      and d["ack_deadline"] < now)
        assert row["overdue_now"] == shown(overdue)
    assert rows[WF]["ack_p50_s"] is not None
    assert rows[COUNTY_DESK[0]]["acknowledged"] == 0
    assert rows[COUNTY_DESK[0]]["within_sla_pct"] is None


def test_through_the_route_job_and_the_inbox(client, county):
    """Five clues routed for real and acknowledged by 乌峰's officer: five acknowledged."""
    reporter = auth(token_of(county, "reporter 张秀英"))
    for i in range(6):
        resp = client.post("/api/v1/reports", headers=reporter, json={
            "client_id": f"insight-{i:04d}", "category": "LABOUR",
            "grid_code": cell_code(0, i % 4, 0)})
        assert resp.status_code == 201
    run_jobs()
    officer = auth(token_of(county, "officer 乌峰派出所"))
    ids = [str(d.id) for d in Dispatch.objects(station_code=WF)]
    assert len(ids) >= 5
    for dispatch_id in ids[:5]:
        assert client.post(f"/api/v1/dispatches/{dispatch_id}/acknowledge",
                           headers=officer).status_code == 200
    today = dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)
    resp = client.get("/api/v1/insight/response-times",
                      headers=auth(token_of(county, "supervisor")),
                      query_string={"end": (today.date() + dt.timedelta(days=1)).isoformat()})
    row = next(r for r in resp.json["stations"] if r["station"] == WF)
    assert row["acknowledged"] == 5
    assert row["ack_p50_s"] is not None
    assert row["ack_p50_s"] >= 0

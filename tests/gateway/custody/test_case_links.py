"""An older database, whose cases listed their reports, is moved onto reports naming them."""

from __future__ import annotations

import datetime as dt

from bson import ObjectId

from gateway.custody import case_links
from gateway.delivery.routing import route
from gateway.records.people import Reporter
from gateway.records.reports import Report
from gateway.sample import cell_code
from gateway.startup import ensure_indexes
from grid.documents import Case, Dispatch, GridCell, utcnow
from tests.helpers import auth, token_of

GRID = cell_code(0, 0, 0)


def old_report(reporter: ObjectId, n: int, at: dt.datetime) -> dict:
    doc = {"code": f"OLD{n:04d}", "reporter_id": reporter, "client_id": f"old-{n:06d}",
           "category": "WOMAN", "location": {"method": "grid_code", "grid_code": GRID},
           "cell_code": GRID, "station_code": "530627-WF", "status": "routed",
           "priority": "urgent", "source": "app", "trust": "mandated", "flags": [],
           "created_at": at, "routed_at": at}
    Report._get_collection().insert_one(doc)
    return doc


def test_an_old_databases_cases_and_dispatches_move_onto_their_reports(client, county):
    now = utcnow()
    reporter = Reporter.objects.first().id
    a, b = old_report(reporter, 1, now - dt.timedelta(minutes=5)), old_report(reporter, 2, now)
    cases = Case._get_collection()
    # As the previous release wrote them: arrays of the clue's reports, and their index.
    cases.insert_one({"_id": ObjectId(), "category": "WOMAN", "cells": [GRID], "keys": [],
                      "report_ids": [a["_id"], b["_id"]], "first_at": a["created_at"],
                      "last_at": b["created_at"], "open": True})
    cases.create_index("report_ids")
    case_id = cases.find_one()["_id"]
    Report._get_collection().update_many({}, {"$set": {"case_id": case_id}})
    Report._get_collection().update_one({"_id": b["_id"]}, {"$unset": {"case_id": ""}})
    Dispatch._get_collection().insert_one({
        "report_id": a["_id"], "report_code": a["code"], "case_id": case_id,
        "report_codes": [a["code"], b["code"]], "station_code": "530627-WF",
        "priority": "urgent", "status": "delivered", "category": "WOMAN", "cell_code": GRID,
        "flags": [], "reported_at": a["created_at"], "created_at": now, "history": []})
    assert case_links.pending()

    ensure_indexes()  # what every process does at start

    assert not case_links.pending()
    [dispatch] = Dispatch.objects
    assert dispatch.report_count == 2
    assert "report_codes" not in Dispatch._get_collection().find_one()
    assert {r.code: (r.case_id, r.dispatch_ids) for r in Report.objects} == {
        a["code"]: (case_id, [dispatch.id]), b["code"]: (case_id, [dispatch.id])}
    case = cases.find_one()
    assert "report_ids" not in case
    assert "cells" not in case
    assert (case["report_count"], case["anchor_report_id"], case["cell_code"]) == (
        2, a["_id"], GRID)
    assert set(case["near_cells"]) == {GRID, *GridCell.objects(code=GRID).first().neighbours}
    officer = auth(token_of(county, "officer 乌峰派出所"))
    listed = client.get(f"/api/v1/dispatches/{dispatch.id}/reports", headers=officer)
    assert [r["code"] for r in listed.json] == [a["code"], b["code"]]
    assert case_links.upgrade() == 0  # done: the next start has nothing to do

    # The moved case links the next report of the same incident, as a new one would.
    c = old_report(reporter, 3, utcnow())
    Report._get_collection().update_one({"_id": c["_id"]}, {"$set": {"status": "received"},
                                                            "$unset": {"routed_at": ""}})
    route(str(c["_id"]))
    assert Report.objects(id=c["_id"]).first().case_id == case_id
    assert Dispatch.objects.first().report_count == 3

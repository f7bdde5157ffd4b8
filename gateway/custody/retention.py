"""Data lifecycle: reports closed as unfounded are anonymised after the retention period.

A report closed `false_report` or `confirmed_no_crime` (every dispatch of it
closed that way) keeps its category, cell and times for the statistics, but
loses its details, its exact point, its link to the reporter, its SMS text,
who its receipts went to and its officers' notes and reasons once
`retention_days` have passed since closing — unless a supervisor put it under
legal hold; an unregistered number left with no report is deleted. The report
is flagged `anonymised` only when all of that is done, so a run that dies
half-way is redone by the next; each anonymisation is audited once.
"""

from __future__ import annotations

import datetime as dt

from bson import ObjectId

from gateway.delivery.workflow import SEALED_TEXT_FIELDS
from gateway.privacy import audit
from gateway.privacy.crypto import keyring
from gateway.records import tallies
from gateway.records.people import Reporter
from gateway.records.reports import DETAILS_CONTEXT, DISPATCH_TEXT_CONTEXT, Report
from gateway.runtime import settings
from grid.documents import Dispatch, utcnow
from sms.records import InboundMessage, OutboundMessage

UNFOUNDED = ("false_report", "confirmed_no_crime")
# Reports no longer point at a person; this id stands for "nobody".
ANONYMOUS = ObjectId("000000000000000000000000")
REMOVED = "[已匿名化]"


def due(retention_days: int, now: dt.datetime | None = None) -> list[ObjectId]:
    """Reports whose every dispatch closed as unfounded before the retention period: a
    clue's first report and the reports linked to it alike (they name their dispatches)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=retention_days)
    closed = [d["_id"] for d in Dispatch._get_collection().find(
        {"status": "closed", "outcome": {"$in": list(UNFOUNDED)}, "closed_at": {"$lte": cutoff}},
        {"_id": 1})]
    ready = []
    for report in Report._get_collection().find(
            {"dispatch_ids": {"$in": closed}, "flags": {"$ne": "anonymised"}},
            {"dispatch_ids": 1}):
        open_or_founded = Dispatch._get_collection().count_documents({
            "_id": {"$in": report["dispatch_ids"]},
            # A copy closed as duplicate_of another dispatch follows that one's outcome.
            "$or": [{"status": {"$ne": "closed"}},
                    {"outcome": {"$nin": list(UNFOUNDED)}, "duplicate_of": None},
                    {"closed_at": {"$gt": cutoff}}]}, limit=1)
        if not open_or_founded:
            ready.append(report["_id"])
    return ready


def anonymise(report_id: ObjectId) -> bool:
    """Strip a report of everything personal, unless it is on legal hold. Idempotent."""
    reports = Report._get_collection()
    # Read, then a guarded update by `_id` (SecantusDB scans a whole collection for a
    # findAndModify: gateway/records/updates.py); only anonymising changes these fields.
    before = reports.find_one({"_id": report_id},
                              {"reporter_id": 1, "dispatch_ids": 1, "created_at": 1})
    if before is None or not reports.update_one(
            {"_id": report_id, "legal_hold": {"$ne": True}, "flags": {"$ne": "anonymised"},
             "reporter_id": before["reporter_id"]},
            {"$set": {"details": keyring().encrypt(REMOVED, context=DETAILS_CONTEXT),
                      "reporter_id": ANONYMOUS, "location.lat": None, "location.lon": None,
                      "location.label": None, "client_id": f"anonymised-{report_id}"},
             "$unset": {"open311.contact": ""}}).modified_count:  # Open311 contact fields
        return False
    if before["reporter_id"] != ANONYMOUS:
        # The reporter's monthly tally no longer says they filed it (the figures of the
        # reporting duty count it under nobody, as a recount of the reports would). Once:
        # the update above changed the reporter only in this run; a run dying right here
        # leaves it counted as theirs until a recount (gateway/insight/tallies.py).
        tallies.move_report(before["created_at"], before["reporter_id"], ANONYMOUS)
    InboundMessage._get_collection().update_many(
        {"report_id": report_id},
        {"$set": {"text": None, "raw": {}, "sender": None, "sender_index": None}})
    # Receipts and closing notices: who they went to is who reported.
    OutboundMessage._get_collection().update_many(
        {"report_id": report_id}, {"$set": {"to": REMOVED, "to_index": None}})
    _remove_dispatch_text(list(before.get("dispatch_ids") or ()))
    _forget_public_reporter(before["reporter_id"])
    # Flagged last: a run that dies before this point is redone whole by the next one.
    Report._get_collection().update_one({"_id": report_id},
                                        {"$addToSet": {"flags": "anonymised"}})
    audit.append("system:retention", "report.anonymise", f"report:{report_id}", {})
    return True


def _remove_dispatch_text(dispatch_ids: list[ObjectId]) -> None:
    """Officers' notes and reasons may name the people in it: the text goes, the record stays."""
    removed = keyring().encrypt(REMOVED, context=DISPATCH_TEXT_CONTEXT)
    dispatches = Dispatch._get_collection()
    for doc in dispatches.find({"_id": {"$in": dispatch_ids}},
                               {"notes": 1, **dict.fromkeys(SEALED_TEXT_FIELDS, 1)}):
        dispatches.update_one({"_id": doc["_id"]}, {"$set": {
            "notes": [{**note, "text": removed} for note in doc.get("notes") or []],
            **{name: removed for name in SEALED_TEXT_FIELDS if doc.get(name)}}})


def _forget_public_reporter(reporter_id: ObjectId) -> None:
    """An unregistered number that has no report left is deleted (registered people stay)."""
    if not Report._get_collection().count_documents({"reporter_id": reporter_id}, limit=1):
        Reporter._get_collection().delete_one({"_id": reporter_id, "role": "public"})


def run(retention_days: int) -> tuple[int, int]:
    """Anonymise everything due; returns (anonymised, held back by legal hold)."""
    anonymised = held = 0
    for report_id in due(retention_days):
        if anonymise(report_id):
            anonymised += 1
        elif Report.objects(id=report_id, legal_hold=True).count():
            held += 1
    return anonymised, held



def run_retention() -> tuple[int, int]:
    """The periodic job (`safegrid cron`): anonymise what is due under the configured period."""
    return run(settings().retention_days)

"""Inbound SMS: store the raw message first, then a job reads it and acts.

`receive` runs inside the webhook and only stores and queues, so Kannel gets
its answer in milliseconds. `handle_inbound` runs on the `inbound` queue; it is
idempotent: the report's client id is the gateway's message id, the reply's
ref is the inbound id, and a message already handled is left alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from gateway import gridcache, telemetry
from gateway.access import sms_pin
from gateway.delivery import queues
from gateway.delivery.outbound_sms import queue_sms
from gateway.delivery.routing import route
from gateway.extensions import redis_store
from gateway.intake import alert_answers
from gateway.intake.reports import NewReport, file_report
from gateway.privacy import crypto, phonebook
from gateway.privacy.crypto import keyring
from gateway.privacy.genetic import redact
from gateway.records.people import Reporter
from gateway.records.reports import Report
from gateway.runtime import settings
from sms import replies
from sms.grammar import UNCLASSIFIED, ParsedMessage, parse
from sms.phones import InvalidPhone, mask, normalise
from sms.pin import split_pin
from sms.providers import InboundSms
from sms.records import InboundMessage, OptOut, utcnow

log = logging.getLogger(__name__)

PUBLIC_REPORTER_TRIES = 3

TIPS_KEY = "safegrid:sms:tips:{phone_tag}:{hour}"
# Free words after a help keyword this long are treated as a report: a clue
# is never lost because it began with 帮助 ("help").
HELP_AS_REPORT_MIN_CHARS = 4


def receive(provider: str, sms: InboundSms) -> tuple[str, bool]:
    """Store an inbound SMS (once per gateway message id) and queue its handling.

    Returns the stored id and whether it is new; a gateway retry returns the
    first id and queues nothing.
    """
    sender, valid, problem = sms.sender, False, None
    try:
        sender, valid = normalise(sms.sender), True
    except InvalidPhone as exc:
        problem = exc.reason
    doc = {
        "provider": provider, "message_id": sms.message_id,
        "sender": phonebook.seal(sender), "sender_valid": valid,
        "receiver": sms.receiver, "text": seal(sms.text), "raw": _sealed_raw(sms.raw),
        "received_at": utcnow(), "state": "stored", "errors": [],
    }
    if valid:
        doc["sender_index"] = phonebook.phone_index(sender)
    if problem:
        doc["sender_problem"] = problem
    try:
        InboundMessage._get_collection().insert_one(doc)
    except DuplicateKeyError:
        existing = InboundMessage._get_collection().find_one(
            {"provider": provider, "message_id": sms.message_id}, {"_id": 1})
        return str(existing["_id"]), False
    enqueue_handle(str(doc["_id"]))
    return str(doc["_id"]), True


# The message text is a report's details: encrypted at rest like them. The raw
# parameters that carry it (as text or as the bytes in hex), or the sender's
# number, are sealed too.
TEXT_CONTEXT = "sms.text"
TEXT_PARAMS = ("text", "hex", "text_hex")
PHONE_PARAMS = ("from", "x-kannel-from")


def seal(text: str) -> str:
    """Encrypt an inbound message's text (or a raw parameter carrying it)."""
    return keyring().encrypt(text, context=TEXT_CONTEXT)


def unseal(value: str | None) -> str:
    """The clear text of a sealed value (legacy clear values pass through)."""
    return crypto.unseal(value, context=TEXT_CONTEXT)


def _sealed_raw(raw: Mapping[str, str]) -> dict[str, str]:
    def sealed(name: str, value: str) -> str:
        if name in TEXT_PARAMS:
            return seal(value)
        return phonebook.seal(value) if name in PHONE_PARAMS else value

    # Lower-case names, so `safegrid reencrypt` finds every sealed one (sealed_data.py).
    lowered = ((k.lower(), v) for k, v in raw.items())
    return {_field_name(name): sealed(name, v) for name, v in lowered}


_PLAIN_NAME = re.compile(r"[a-z0-9_-]{1,64}")


def _field_name(param: str) -> str:
    """A parameter's name as a stored field name: as is when plain, else `x-` and its hex.

    Anything may arrive as a parameter name (a NUL byte, a dot, a leading `$`),
    and some of that cannot be a field name; hex keeps it, reversibly.
    """
    if _PLAIN_NAME.fullmatch(param):
        return param
    return "x-" + param.encode("utf-8", "surrogatepass").hex()[:256]


def store_unreadable(provider: str, params: Mapping[str, str], reason: str) -> str:
    """Keep a request we could not read as an SMS, for a person to look at."""
    clear = {k: v for k, v in params.items() if k.lower() != "secret"}
    raw = _sealed_raw(clear)
    digest = hashlib.sha256(json.dumps(clear, sort_keys=True).encode()).hexdigest()[:32]
    doc = InboundMessage._get_collection().find_one_and_update(
        {"provider": provider, "message_id": f"unreadable-{digest}"},
        {"$setOnInsert": {"raw": raw, "state": "rejected", "errors": [reason],
                          "received_at": utcnow(), "sender_valid": False}},
        upsert=True, return_document=ReturnDocument.AFTER,
    )
    return str(doc["_id"])


def sweep_inbound(grace_s: int | None = None) -> int:
    """Re-queue every stored message not handled within `grace_s` (default: the sweeper's).

    A job that died (a worker killed, Redis restarted, an error) leaves the message
    `stored`; handling is idempotent, so queueing it again is safe. The cron runs this
    with the report sweeper.
    """
    age = settings().sweep_after_s if grace_s is None else grace_s
    cutoff = utcnow() - dt.timedelta(seconds=age)
    count = 0
    waiting = queues.pending_job_ids((queues.INBOUND,))
    for doc in InboundMessage._get_collection().find(
            {"state": "stored", "received_at": {"$lte": cutoff}}, {"_id": 1}):
        if handle_job_id(str(doc["_id"])) not in waiting:
            enqueue_handle(str(doc["_id"]))
            count += 1
    if count:
        log.warning("sweep: re-queued %d unhandled inbound SMS", count)
        telemetry.count("sweeper_found", count, kind="inbound_sms")
    return count


def handle_job_id(inbound_id: str) -> str:
    return f"sms-in-{inbound_id}"


def enqueue_handle(inbound_id: str) -> None:
    # Its own queue, first in the fast lane: a texted report never waits behind routing.
    queues.queue(queues.INBOUND).enqueue(handle_inbound, inbound_id,
                                         job_id=handle_job_id(inbound_id),
                                         result_ttl=600, failure_ttl=7 * 24 * 3600)


@dataclass(frozen=True)
class Incoming:
    """A stored message being handled: its record, the clear sender and text, who sent it."""

    msg: InboundMessage
    sender: str  # E.164
    text: str  # without the PIN, if it began with one
    reporter: Reporter | None
    pin_problem: str | None = None  # when PINs are required and this one fails

    @property
    def registered(self) -> bool:
        """From an active registered reporter's phone (not a public number)."""
        return (self.reporter is not None and self.reporter.role != "public"
                and self.reporter.active is not False)

    @property
    def lang(self) -> str | None:
        """The language this sender is answered in (a reporter's own; else Chinese)."""
        return self.reporter.language if self.reporter is not None else None

    @property
    def deactivated(self) -> bool:
        """From a deactivated reporter's phone: filed as a public tip, and told why."""
        return (self.reporter is not None and self.reporter.role != "public"
                and self.reporter.active is False)

    @property
    def trusted(self) -> bool:
        """From a registered reporter, with the PIN when the deployment requires one."""
        return self.registered and self.pin_problem is None


def handle_inbound(inbound_id: str) -> str:
    """Read a stored SMS and act on it: file a report, record a sighting, answer."""
    msg = InboundMessage.objects(id=ObjectId(inbound_id)).first()
    if msg is None or msg.state != "stored":
        return msg.state if msg is not None else "missing"
    if not msg.sender_valid:
        # No reply can reach an invalid or spoofed-looking number; a person reads it.
        _finish(msg, "rejected", None, [f"sender_{msg.sender_problem or 'invalid'}"])
        return "rejected"
    sender = phonebook.unseal(msg.sender)
    pin, text = split_pin(unseal(msg.text))  # never part of a report's details
    came = Incoming(msg, sender, text, Reporter.by_phone(sender).first())
    if came.registered and came.reporter and settings().sms_pin_required:
        came = replace(came, pin_problem=sms_pin.problem(came.reporter, sender, pin))
    parsed = parse(came.text)
    handler = _HANDLERS.get(parsed.kind, _report)
    return handler(came, parsed)


def _finish(msg: InboundMessage, state: str, parsed: ParsedMessage | None,
            errors: list[str] | tuple[str, ...] = (), **fields: object) -> None:
    InboundMessage.objects(id=msg.id, state="stored").update_one(
        set__state=state, set__kind=parsed.kind if parsed else None,
        set__errors=list(errors) + (list(parsed.errors) if parsed else []),
        set__handled_at=utcnow(), **{f"set__{k}": v for k, v in fields.items()},
    )


def _reply(came: Incoming, text: str, purpose: str, ref: str | None = None,
           **links: object) -> None:
    queue_sms(came.sender, text, purpose, ref=ref or f"reply-{came.msg.id}",
              inbound_id=came.msg.id, **links)


def _over_tip_limit(phone: str) -> bool:
    hour = int(utcnow().timestamp() // 3600)
    key = TIPS_KEY.format(phone_tag=phonebook.phone_tag(phone), hour=hour)
    with redis_store.conn.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, 7200)
        count = int(pipe.execute()[0])
    return count > settings().public_tips_per_hour


def _first_count(msg: InboundMessage) -> bool:
    """True the first time this message is counted against its number's tips: a handler
    killed after filing its report (or whose wait for the routing failed) is run again,
    and must not find its own message over the limit and refuse what it filed."""
    return bool(InboundMessage.objects(id=msg.id, tip_counted__ne=True)
                .update_one(set__tip_counted=True))


def _public_reporter(phone: str) -> str:
    """The id of the public (unregistered) reporter record for `phone`, made on first tip."""
    index = phonebook.phone_index(phone)
    collection = Reporter._get_collection()
    # A number seen before: an indexed read. (SecantusDB answers a findAndModify that
    # finds a document by scanning the whole collection, every reporter of the county.)
    known = collection.find_one({"phone_index": index}, {"_id": 1})
    if known is not None:
        return str(known["_id"])
    for _ in range(PUBLIC_REPORTER_TRIES):
        # Two first messages from a new number race here: the unique index on
        # phone_index lets one insert win; the other gets a duplicate key (or, on
        # some servers, no document) and then finds the winner's.
        try:
            doc = collection.find_one_and_update(
                {"phone_index": index},
                {"$setOnInsert": {"phone": phonebook.seal(phone, phonebook.REPORTER_PHONE),
                                  "phone_index": index, "role": "public",
                                  "created_at": utcnow(),
                                  "name": keyring().encrypt("公众", context="reporter.name")}},
                upsert=True, return_document=ReturnDocument.AFTER, projection={"_id": 1},
            )
        except DuplicateKeyError:
            doc = None
        if doc is None:
            doc = collection.find_one({"phone_index": index}, {"_id": 1})
        if doc is not None:
            return str(doc["_id"])
    raise RuntimeError(f"no reporter record for {mask(phone)} after {PUBLIC_REPORTER_TRIES} "
                       "tries")  # RQ retries the job; the sweeper re-queues the message


def _report(came: Incoming, parsed: ParsedMessage) -> str:
    """A report or free text: file it, route it now, and text back the receipt."""
    msg = came.msg
    if not came.trusted and _first_count(msg) and _over_tip_limit(came.sender):
        _finish(msg, "rate_limited", parsed)
        hour = int(utcnow().timestamp() // 3600)
        _reply(came, replies.rate_limited(lang=came.lang), "rate_limited",
               ref=f"ratelimit-{phonebook.phone_tag(came.sender)}-{hour}")
        log.warning("public tips over the limit from %s", mask(came.sender))
        return "rate_limited"
    triage = parsed.kind != "report" or parsed.category in (None, UNCLASSIFIED)
    category = UNCLASSIFIED if triage else str(parsed.category)
    details = parsed.details if parsed.kind != "free_text" else came.text.strip()
    reporter_id = (str(came.reporter.id) if came.registered and came.reporter
                   else _public_reporter(came.sender))
    known_grid = parsed.grid_code in gridcache.current().cells
    where = () if parsed.grid_code is None or known_grid else ("grid_code_unknown",)
    doc, _ = file_report(NewReport(
        reporter_id=reporter_id,
        client_id=f"sms-{msg.provider}-{msg.message_id}"[:64],
        category=category,
        details=redact(details)[:4000],  # no DNA data is stored, even when texted
        source="sms",
        grid_code=parsed.grid_code if known_grid else None,
        trust="mandated" if came.trusted else "public",
        flags=(*(("triage",) if triage else ()), *filter(None, [came.pin_problem]), *where,
               *(("reporter_deactivated",) if came.deactivated else ())),
    ))
    # Route now, in this job, so the receipt can name the station; the queued
    # route job finds the work done (route is idempotent).
    station_code = route(str(doc["_id"]), wait=True)
    station = gridcache.current().stations.get(station_code)
    station_name = station.name if station else None
    receipt = (replies.triage_receipt if triage else replies.receipt)(
        doc["code"], station_name, lang=came.lang)
    # Placed other than the sender said (an unknown grid code, only the county desk): the
    # receipt says so, in the same SMS when it fits.
    placed = Report.objects(id=doc["_id"]).only("flags").first()
    receipt, note = replies.with_note(
        receipt, replies.location_note(placed.flags if placed else list(where), lang=came.lang))
    _reply(came, receipt, "receipt", report_id=doc["_id"])
    if note is not None:
        _reply(came, note, "location_note", ref=f"where-{msg.id}", report_id=doc["_id"])
    fixes = [e for e in parsed.errors if e in replies.FIXES]
    if fixes:
        # The receipt proves the duty to report was met; what to fix goes in a second SMS.
        _reply(came, replies.fix(fixes[0], lang=came.lang), "fix", ref=f"fix-{msg.id}")
    if came.pin_problem:
        _reply(came, replies.pin_problem(came.pin_problem, lang=came.lang), "pin",
               ref=f"pin-{msg.id}")
    if came.deactivated:
        _reply(came, replies.reporter_deactivated(lang=came.lang), "deactivated",
               ref=f"inactive-{msg.id}")
    _finish(msg, "handled", parsed, report_id=doc["_id"])
    return "report"


def _sighting(came: Incoming, parsed: ParsedMessage) -> str:
    """An answer to a missing-child alert: stored against its alert code."""
    msg = came.msg
    if parsed.alert_code is None:
        _reply(came, replies.fix("missing_code", lang=came.lang), "fix")
        _finish(msg, "handled", parsed)
        return "fix"
    outcome, text, links = alert_answers.answer(came, parsed, seal(parsed.details),
                                                _public_reporter)
    ref = links.pop("ref", None)
    _reply(came, text, parsed.kind if outcome in ("sighting", "swept") else outcome, ref=ref,
           **links)
    _finish(msg, "rate_limited" if outcome == "rate_limited" else "handled", parsed,
            alert_code=parsed.alert_code)
    return outcome if outcome in ("rate_limited", "not_open") else parsed.kind


def _status(came: Incoming, parsed: ParsedMessage) -> str:
    """A report's state, told only to the phone that filed it."""
    if parsed.report_code is None:
        _reply(came, replies.fix("missing_code", lang=came.lang), "fix")
    elif came.registered and came.pin_problem:  # a spoofed number learns nothing
        _reply(came, replies.pin_problem(came.pin_problem, lang=came.lang), "pin")
    else:
        report = Report.objects(code=parsed.report_code).only(
            "reporter_id", "status", "station_code").first()
        if (report is not None and came.reporter is not None
                and report.reporter_id == came.reporter.id):
            station = gridcache.current().stations.get(report.station_code or "")
            _reply(came, replies.status(parsed.report_code, report.status,
                                        station.name if station else None, lang=came.lang),
                   "status")
        else:
            _reply(came, replies.not_found(parsed.report_code, lang=came.lang), "status")
    _finish(came.msg, "handled", parsed)
    return "status"


def _help(came: Incoming, parsed: ParsedMessage) -> str:
    if len(parsed.details) >= HELP_AS_REPORT_MIN_CHARS:
        return _report(replace(came, text=parsed.details),
                       ParsedMessage(kind="free_text", details=parsed.details))
    _reply(came, replies.help_text(lang=came.lang), "help")
    _finish(came.msg, "handled", parsed)
    return "help"


def _unsubscribe(came: Incoming, parsed: ParsedMessage) -> str:
    """Public numbers may opt out; registered duty phones are told why they cannot."""
    if came.registered:
        _reply(came, replies.cannot_unsubscribe(lang=came.lang), "unsubscribe")
    else:
        index = phonebook.phone_index(came.sender)
        OptOut._get_collection().update_one(
            {"phone_index": index},
            {"$setOnInsert": {"phone_index": index, "created_at": utcnow()}}, upsert=True)
        _reply(came, replies.unsubscribed(lang=came.lang), "unsubscribe")
    _finish(came.msg, "handled", parsed)
    return "unsubscribe"


_HANDLERS = {
    "report": _report,
    "free_text": _report,
    "sighting": _sighting,
    "swept": _sighting,
    "status": _status,
    "help": _help,
    "unsubscribe": _unsubscribe,
}

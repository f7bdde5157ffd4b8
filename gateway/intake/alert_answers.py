"""Answers to a missing-child alert by SMS: `S<code> …` (a sighting), `OK<code>` (swept).

A sighting of an open alert is filed as a CHILD report (critical; the routing rule sends
it to the station of the place and to the county desk, which issued the alert), flagged
`alert:<code>`, and `alert_public` when the number was never sent the alert (a public
tip all the same). `OK<code>` marks the sender's cell swept for the alert. Every answer
is stored as a `Sighting` first, whatever happens next; an unknown or ended code gets a
short reply; more than ANSWERS_PER_HOUR answers to one alert from one number in an hour
are stored, not acted on, and answered once.
"""

from __future__ import annotations

from typing import Any

from gateway import gridcache
from gateway.alerts.fanout import ALERT_MESSAGE, AlertSend
from gateway.alerts.records import OPEN_STATUSES, Alert
from gateway.delivery.routing import route
from gateway.extensions import redis_store
from gateway.intake.reports import NewReport, file_report
from gateway.privacy import phonebook
from gateway.privacy.genetic import redact
from grid.documents import utcnow
from sms import replies
from sms.grammar import ParsedMessage
from sms.records import Sighting

ANSWERS_PER_HOUR = 5
ANSWERS_KEY = "safegrid:alerts:answers:{alert}:{phone_tag}:{hour}"


def _flooding(code: str, phone: str) -> tuple[bool, int]:
    hour = int(utcnow().timestamp() // 3600)
    key = ANSWERS_KEY.format(alert=code, phone_tag=phonebook.phone_tag(phone), hour=hour)
    with redis_store.conn.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, 7200)
        count = int(pipe.execute()[0])
    return count > ANSWERS_PER_HOUR, hour


def _store(came: Any, parsed: ParsedMessage, **fields: object) -> None:
    """The answer as received: one upsert keyed on the inbound message (a rerun adds none)."""
    Sighting._get_collection().update_one(
        {"inbound_id": came.msg.id},
        {"$setOnInsert": {"alert_code": parsed.alert_code, "kind": parsed.kind,
                          "phone": phonebook.seal(came.sender),
                          "phone_index": phonebook.phone_index(came.sender),
                          "grid_code": parsed.grid_code, "details": fields.pop("sealed"),
                          "inbound_id": came.msg.id, "created_at": utcnow()},
         "$set": fields},
        upsert=True)


def answer(came: Any, parsed: ParsedMessage, sealed_details: str,
           public_reporter: Any) -> tuple[str, str, dict[str, Any]]:
    """Act on an answer with an alert code: (outcome, reply text, links for the reply).

    `came` is inbound_sms.Incoming; `public_reporter(phone)` gives an unregistered
    sender's reporter id. Idempotent: the Sighting is keyed on the inbound message and the
    report on the message's provider id.
    """
    code = str(parsed.alert_code)
    lang = came.lang
    alert = Alert.objects(code=code).only("status", "code").first()
    index = phonebook.phone_index(came.sender)
    reached = AlertSend.objects(alert_code=code, message=ALERT_MESSAGE,
                                phone_index=index).only("id").first() is not None
    flood, hour = _flooding(code, came.sender)
    if flood:
        _store(came, parsed, sealed=sealed_details, state="rate_limited", public=not reached)
        return "rate_limited", replies.rate_limited(lang=lang), {
            "ref": f"alert-flood-{code}-{phonebook.phone_tag(came.sender)}-{hour}"}
    if alert is None or alert.status not in OPEN_STATUSES:
        _store(came, parsed, sealed=sealed_details, state="not_open", public=not reached)
        return "not_open", replies.alert_not_open(code, lang=lang), {}
    if parsed.kind == "swept":
        cells = gridcache.current().cells
        home = came.reporter.home_cell if came.registered and came.reporter else None
        cell = parsed.grid_code if parsed.grid_code in cells else home
        _store(came, parsed, sealed=sealed_details, state="linked", public=not reached,
               cell_code=cell)
        return "swept", replies.swept_ack(code, lang=lang), {}
    reporter_id = (str(came.reporter.id) if came.registered and came.reporter
                   else public_reporter(came.sender))
    known_grid = parsed.grid_code in gridcache.current().cells
    doc, _ = file_report(NewReport(
        reporter_id=reporter_id,
        client_id=f"sms-{came.msg.provider}-{came.msg.message_id}"[:64],
        category="CHILD",
        details=redact(f"【寻人{code}】{parsed.details}")[:4000],
        source="sms",
        grid_code=parsed.grid_code if known_grid else None,
        trust="mandated" if came.trusted and reached else "public",
        flags=(f"alert:{code}", *(() if reached else ("alert_public",))),
    ))
    _store(came, parsed, sealed=sealed_details, state="linked", public=not reached,
           report_id=doc["_id"])
    route(str(doc["_id"]), wait=True)  # at once: the queued route job finds it done
    return "sighting", replies.sighting_receipt(code, lang=lang), {"report_id": doc["_id"]}

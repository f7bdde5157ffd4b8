"""Alert fan-out: each ring's new recipients, one send record each, texted in batches.

Only ids cross the queue: `open_ring(code, ring)` and `send_batch(batch_id)`.

- `open_ring` finds the cells the ring adds (grid/alerts.py, in memory), the active
  reporters whose home cell is one of them (grid workers first among them), and writes
  one `AlertSend` each with `insert_many(ordered=False)`, a batch at a time, queueing
  each batch's job as soon as it is written. The send record's unique key
  (alert, message, phone index) is the idempotency key: someone an earlier ring, or an
  earlier run of this ring, already reached is refused by the index and not texted
  again. It then queues one `send_batch` job per batch of `BATCH_SIZE` records and marks
  the ring sent. Run twice, it adds nothing and re-queues only batches not waiting.
- `send_batch` claims its batch (a lease on one `AlertBatch` document, not on each
  record), texts each queued record in the recipient's language through Kannel and marks
  them sent in one update. A worker killed mid-batch leaves the lease to expire; the
  sweeper re-queues the batch and only records still `queued` are sent: at least once for
  the ones in flight, never twice for the rest.
- An update, found or cancel (`followup`) goes to everyone the alert was sent to, in
  the same batches, keyed per message; found also thanks those who answered.
- Later rings are RQ scheduled jobs (`enqueue_at`); `sweep_alerts` queues any ring that
  is due and not sent (Redis restarted, the job lost) and any batch whose job is gone.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from zoneinfo import ZoneInfo

import mongoengine as me
from pymongo.errors import BulkWriteError, DuplicateKeyError

from gateway import gridcache, telemetry
from gateway.alerts.records import OPEN_STATUSES, Alert
from gateway.delivery import queues
from gateway.delivery.outbound_sms import provider, take_slots
from gateway.privacy import audit, phonebook
from gateway.records.people import Reporter
from gateway.runtime import settings
from grid.documents import utcnow
from sms import replies
from sms.providers import SendError
from sms.providers.kannel import PreparedText
from sms.records import Sighting

log = logging.getLogger(__name__)

BATCH_SIZE = 500
CLAIM_S = 120  # a batch of 500 at the carrier's rate; expired, the sweeper sends the rest
ALERT_MESSAGE = "alert"
SEND_STATES = ("queued", "sent", "failed", "withdrawn")
MAX_ATTEMPTS = 5
SEND_THREADS = 8  # sendsms requests in flight per batch job
SLOTS_AT_ONCE = 64  # of the carrier's rate taken at a time by a batch job


class AlertSend(me.Document):
    """One recipient of one message of an alert: the idempotency key of the fan-out."""

    alert_code = me.StringField(required=True)
    message = me.StringField(required=True)  # alert, update-<n>, found, cancel
    phone_index = me.StringField(required=True)  # the reporter's blind index, not the number
    reporter_id = me.ObjectIdField(required=True)
    cell_code = me.StringField()
    ring = me.IntField()
    batch = me.StringField(required=True)
    state = me.StringField(choices=SEND_STATES, default="queued")
    attempts = me.IntField(default=0)
    last_error = me.StringField()
    claim = me.StringField()
    sending_until = me.DateTimeField()
    created_at = me.DateTimeField(default=utcnow)
    sent_at = me.DateTimeField()

    meta = {"collection": "alert_sends",
            # Each index costs every insert and every state change of 10,000s of records:
            # only what a query uses (the map's count by cell rides the unique key's
            # prefix; an older database's (alert_code, cell_code) index may be dropped).
            "indexes": [{"fields": ("alert_code", "message", "phone_index"), "unique": True},
                        ("batch", "state"), ("state", "created_at")]}


class AlertBatch(me.Document):
    """The lease of one batch of send records: whoever holds it texts the batch's queued
    records. One document per batch, so a claim is one write, not one per record."""

    id = me.StringField(primary_key=True)  # the batch name of its AlertSend records
    claim = me.StringField()
    sending_until = me.DateTimeField()

    meta = {"collection": "alert_batches"}


def ring_job_id(code: str, ring: int) -> str:
    return f"alert-{code}-ring-{ring}"


def batch_job_id(batch: str) -> str:
    return f"alert-batch-{batch}"


def schedule_rings(alert: Alert) -> None:
    """Queue the first ring now and schedule the later ones at their due times."""
    q = queues.queue(queues.ALERTS)
    for n, ring in enumerate(alert.rings):
        if ring.delay_s <= 0:
            q.enqueue(open_ring, alert.code, n, job_id=ring_job_id(alert.code, n))
        else:
            q.enqueue_at(ring.due_at.replace(tzinfo=dt.UTC), open_ring, alert.code, n,
                         job_id=ring_job_id(alert.code, n))


def ring_cells(alert: Alert, ring: int) -> set[str]:
    """The cells ring `ring` of the alert adds to the rings before it."""
    loc = alert.last_seen
    radii = [r.radius_m for r in alert.rings[:ring + 1]]
    return gridcache.current().coverage.widening(loc.lat, loc.lon, radii)[ring]


CELLS_PER_QUERY = 25
READ_BATCH = 5000  # documents a reply: a read of a few thousand is one round trip


def _recipients(cells: set[str]) -> list[dict[str, Any]]:
    """Active reporters living in `cells` (not public tipsters): id, blind index, cell;
    ordered by cell, so a batch holds few cells (`send_batch` reads its people by cell)."""
    found: list[dict[str, Any]] = []
    ordered = sorted(cells)
    # A few cells a query: SecantusDB checks every document found against the whole `$in`
    # list, so one query for 400 cells cost 15 times what 16 queries of 25 cost.
    for start in range(0, len(ordered), CELLS_PER_QUERY):
        found.extend(Reporter._get_collection().find(
            {"home_cell": {"$in": ordered[start:start + CELLS_PER_QUERY]},
             "active": {"$ne": False}, "role": {"$ne": "public"}, "erased_at": None},
            {"_id": 1, "phone_index": 1, "home_cell": 1}, batch_size=READ_BATCH))
    found.sort(key=lambda p: (p.get("home_cell") or "", p["_id"]))
    return found


def _write_sends(code: str, message: str, ring: int | None,
                 people: list[dict[str, Any]]) -> int:
    """Insert one queued record per person not yet sent `message`, a batch at a time, and
    queue each batch's job as soon as it is written (sending starts while the rest is
    written). How many records were new. A batch's records are all written by its one
    `insert_many` (its name is new to this call) and never added to later."""
    stem = f"{code}-{message}-{ring if ring is not None else 'x'}-{secrets.token_hex(3)}"
    now = utcnow()
    added = 0
    q = queues.queue(queues.ALERTS)
    for start in range(0, len(people), BATCH_SIZE):
        batch = f"{stem}-{start // BATCH_SIZE}"
        docs = [{"alert_code": code, "message": message, "phone_index": p["phone_index"],
                 "reporter_id": p["_id"], "cell_code": p.get("home_cell"), "ring": ring,
                 "batch": batch, "state": "queued", "attempts": 0, "created_at": now}
                for p in people[start:start + BATCH_SIZE]]
        try:
            new = len(AlertSend._get_collection().insert_many(docs, ordered=False).inserted_ids)
        except BulkWriteError as exc:  # duplicates: reached already (an earlier ring, a retry)
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
            new = int(exc.details.get("nInserted", 0))
        if new:
            q.enqueue(send_batch, batch, job_id=batch_job_id(batch), result_ttl=600,
                      failure_ttl=7 * 24 * 3600)
        added += new
    return added


def _queue_batches(query: dict[str, Any], leased: bool = False) -> int:
    """Queue a `send_batch` job for every batch with records still queued (not waiting);
    `leased`: not those whose lease some run still holds."""
    if leased:
        # A lease on the records themselves (an older version's) is checked here, not in
        # the query: with it, no index covered the filter and SecantusDB read every record.
        now = utcnow()
        batches = sorted({row["batch"] for row in AlertSend._get_collection().find(
            {**query, "state": "queued"}, {"_id": 0, "batch": 1, "sending_until": 1})
            if row.get("sending_until") is None or row["sending_until"] < now})
    else:
        batches = AlertSend._get_collection().distinct("batch", {**query, "state": "queued"})
    if leased and batches:
        held = {b["_id"] for b in AlertBatch._get_collection().find(
            {"_id": {"$in": batches}, "sending_until": {"$gte": utcnow()}}, {"_id": 1})}
        batches = [b for b in batches if b not in held]
    waiting = queues.pending_job_ids((queues.ALERTS,))
    q = queues.queue(queues.ALERTS)
    count = 0
    for batch in sorted(batches):
        if batch_job_id(batch) not in waiting:
            q.enqueue(send_batch, batch, job_id=batch_job_id(batch), result_ttl=600,
                      failure_ttl=7 * 24 * 3600)
            count += 1
    return count


def open_ring(code: str, ring: int) -> int:
    """Send ring `ring` of alert `code` to those it adds. Idempotent; nothing for an ended
    alert (its rings stop widening). Returns how many new recipients it recorded."""
    alert = Alert.objects(code=code).first()
    if alert is None or ring >= len(alert.rings) or alert.status not in OPEN_STATUSES:
        return 0
    added = _write_sends(code, ALERT_MESSAGE, ring, _recipients(ring_cells(alert, ring)))
    _queue_batches({"alert_code": code, "message": ALERT_MESSAGE, "ring": ring})
    opened = Alert.objects(code=code, **{f"rings__{ring}__sent_at": None}).update_one(
        **{f"set__rings__{ring}__sent_at": utcnow()})
    if opened:  # once per ring, however often the job runs
        audit.append("system:alerts", "alert.ring", f"alert:{code}",
                     {"ring": ring, "radius_km": alert.rings[ring].radius_m / 1000,
                      "recipients": added})
    log.info("alert %s ring %d: %d new recipients", code, ring, added)
    return added


def followup_job_id(code: str, message: str) -> str:
    return f"alert-{code}-{message}"


def queue_followup(code: str, message: str) -> None:
    """Queue the fan-out of an update (`update-<n>`), `found` or `cancel` message."""
    queues.queue(queues.ALERTS).enqueue(followup, code, message,
                                        job_id=followup_job_id(code, message))


def expected_followups(alert: Alert) -> list[str]:
    """The follow-up messages the alert's events call for, in order."""
    out, updates = [], 0
    for event in alert.events:
        if event.action == "update":
            updates += 1
            out.append(f"update-{updates}")
        elif event.action in ("found", "cancel"):
            out.append(event.action)
    return out


def followup(code: str, message: str) -> int:
    """Send `message` to everyone the alert reached (and, when found, everyone who answered
    it from a known number), through the same batches. Idempotent: the send record's key
    includes the message. Returns how many new recipients it recorded."""
    sends = AlertSend._get_collection()
    # `state` checked here: the unique key's prefix is the index that covers the query.
    reached = {row["phone_index"]: row for row in sends.find(
        {"alert_code": code, "message": ALERT_MESSAGE},
        {"_id": 0, "phone_index": 1, "reporter_id": 1, "cell_code": 1, "state": 1},
        batch_size=READ_BATCH) if row.get("state") == "sent"}
    if message == "found":
        answered = set(Sighting.objects(alert_code=code, state="linked").distinct("phone_index"))
        for person in Reporter._get_collection().find(
                {"phone_index": {"$in": sorted(answered - reached.keys())}, "erased_at": None},
                {"_id": 1, "phone_index": 1, "home_cell": 1}):
            reached[person["phone_index"]] = {"phone_index": person["phone_index"],
                                              "reporter_id": person["_id"],
                                              "cell_code": person.get("home_cell")}
    people = [{"_id": r["reporter_id"], "phone_index": r["phone_index"],
               "home_cell": r.get("cell_code")} for r in reached.values()]
    added = _write_sends(code, message, None, people)
    _queue_batches({"alert_code": code, "message": message})
    Alert.objects(code=code).update_one(add_to_set__followups_sent=message)
    log.info("alert %s %s: %d recipients", code, message, added)
    return added


def _text(alert: Alert, message: str, lang: str) -> str:
    if message == ALERT_MESSAGE:
        seen = alert.seen_at.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(settings().timezone))
        return replies.alert(alert.code, alert.summary, seen.time(),
                             alert.last_seen_place or "", lang=lang)
    if message.startswith("update-"):
        updates = [e.text for e in alert.events if e.action == "update"]
        n = int(message.removeprefix("update-"))
        text = updates[n - 1] if 0 < n <= len(updates) else alert.update_text
        return replies.alert_update(alert.code, text or "", lang=lang)
    if message == "found":
        return replies.alert_found_thanks(alert.code, lang=lang)
    return replies.alert_cancelled(alert.code, lang=lang)


def _claim(batch: str) -> tuple[str, list[dict[str, Any]]]:
    """Take the batch's lease (one upsert; a lease someone holds refuses it) and read its
    queued records: (claim token, records), no records when the lease is held."""
    now = utcnow()
    token = secrets.token_hex(8)
    try:
        AlertBatch._get_collection().update_one(
            {"_id": batch, "$or": [{"sending_until": None}, {"sending_until": {"$lt": now}}]},
            {"$set": {"claim": token, "sending_until": now + dt.timedelta(seconds=CLAIM_S)}},
            upsert=True)
    except DuplicateKeyError:  # the lease exists and is held: another run sends the batch
        return token, []
    return token, list(AlertSend._get_collection().find(
        {"batch": batch, "state": "queued"},
        {"_id": 1, "alert_code": 1, "message": 1, "reporter_id": 1, "cell_code": 1},
        batch_size=READ_BATCH))


def _release(batch: str, token: str) -> None:
    AlertBatch._get_collection().update_one({"_id": batch, "claim": token},
                                            {"$set": {"sending_until": None}})


def _phones(claimed: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """The claimed records' reporters: id → phone (sealed) and language; erased ones lack a
    phone, and people no longer on file are missing."""
    reporters = Reporter._get_collection()
    wanted = {c["reporter_id"] for c in claimed}
    found: dict[Any, dict[str, Any]] = {}
    cells = sorted({c["cell_code"] for c in claimed if c.get("cell_code")})
    # By home cell first (a batch holds a few cells; SecantusDB reads 500 documents by
    # `_id` ten times slower than by an indexed cell), then by id whoever has moved.
    for start in range(0, len(cells), CELLS_PER_QUERY):
        for p in reporters.find({"home_cell": {"$in": cells[start:start + CELLS_PER_QUERY]}},
                                {"_id": 1, "phone": 1, "language": 1}, batch_size=READ_BATCH):
            if p["_id"] in wanted:
                found[p["_id"]] = p
    rest = sorted(wanted - found.keys())
    if rest:
        found.update((p["_id"], p) for p in reporters.find(
            {"_id": {"$in": rest}}, {"_id": 1, "phone": 1, "language": 1},
            batch_size=READ_BATCH))
    return found


def send_batch(batch: str) -> int:
    """Text the queued records of one batch; idempotent (claimed, only `queued` ones are
    sent). An alert ended before its first message went out is not texted (withdrawn)."""
    if not settings().sms_enabled:
        return 0
    token, claimed = _claim(batch)
    if not claimed:
        return 0
    try:
        return _send_claimed(batch, claimed)
    finally:
        _release(batch, token)


def _send_claimed(batch: str, claimed: list[dict[str, Any]]) -> int:
    sends = AlertSend._get_collection()
    alert = Alert.objects(code=claimed[0]["alert_code"]).first()
    if alert is None or (claimed[0]["message"] == ALERT_MESSAGE
                         and alert.status not in OPEN_STATUSES):
        sends.update_many({"batch": batch, "state": "queued"},
                          {"$set": {"state": "withdrawn", "sending_until": None}})
        return 0
    people = _phones(claimed)
    texts: dict[str, PreparedText] = {}
    sent: list[Any] = []
    outcome: dict[str, list[Any]] = defaultdict(list)
    s = settings()
    kannel = provider()
    work = []
    for record in claimed:
        person = people.get(record["reporter_id"]) or {}
        phone = phonebook.unseal(person.get("phone"), phonebook.REPORTER_PHONE)
        if not phone:
            outcome["erased"].append(record["_id"])
            continue
        lang = person.get("language") or "zh"
        if lang not in texts:  # one text a language, encoded for sendsms once
            texts[lang] = kannel.prepare(_text(alert, record["message"], lang))
        work.append((record["_id"], phone, texts[lang]))

    def send_one(item: tuple[Any, str, PreparedText]) -> tuple[Any, str | None]:
        record_id, phone, text = item
        try:
            text.send(phone)
        except SendError as exc:
            log.warning("alert %s batch %s: %s", alert.code, batch, exc.reason)
            return record_id, "fatal" if exc.fatal else "retry"
        return record_id, None

    # Kannel's sendsms takes one message a request: a few at once keep it busy while each
    # waits for its answer. The carrier's rate is kept across all workers, a slice of the
    # second's budget at a time (one Redis round trip a slice, not one a message).
    with ThreadPoolExecutor(max_workers=SEND_THREADS) as pool:
        done = 0
        while done < len(work):
            granted = take_slots(s.sms_rate_per_s, min(SLOTS_AT_ONCE, len(work) - done))
            for record_id, problem in pool.map(send_one, work[done:done + granted]):
                (outcome[problem] if problem else sent).append(record_id)
            done += granted
    now = utcnow()
    if sent:
        # All sent: every record of the batch still queued is one this run holds and has
        # just sent (a batch is never added to after its insert), found by the (batch,
        # state) index. Otherwise by id: SecantusDB scans the whole collection for a
        # filter no index covers whole, such as one more `_id` `$nin`.
        unsent = any(outcome[reason] for reason in ("erased", "fatal", "retry"))
        sends.update_many({"_id": {"$in": sent}} if unsent else {"batch": batch, "state": "queued"},
                          {"$set": {"state": "sent", "sent_at": now, "sending_until": None},
                           "$inc": {"attempts": 1}})
        telemetry.count("alert_recipients", len(sent))  # the fan-out rate on /metrics
    for reason, state in (("erased", "failed"), ("fatal", "failed")):
        if outcome[reason]:
            sends.update_many({"_id": {"$in": outcome[reason]}},
                              {"$set": {"state": state, "last_error": reason,
                                        "sending_until": None}, "$inc": {"attempts": 1}})
    if outcome["retry"]:
        # Left queued with the lease gone: the sweeper sends them again, a few times.
        sends.update_many({"_id": {"$in": outcome["retry"]}},
                          {"$set": {"sending_until": None, "last_error": "retryable"},
                           "$inc": {"attempts": 1}})
        sends.update_many({"_id": {"$in": outcome["retry"]}, "attempts": {"$gte": MAX_ATTEMPTS}},
                          {"$set": {"state": "failed"}})
    return len(sent)


def sweep_alerts(grace_s: int | None = None) -> int:
    """Queue rings that are due and not sent, and batches with records left queued whose
    job is gone (a worker killed, Redis restarted). Idempotent; how many jobs it queued."""
    now = utcnow()
    count = 0
    waiting = queues.pending_job_ids((queues.ALERTS,))
    q = queues.queue(queues.ALERTS)
    for alert in Alert.objects(status__in=OPEN_STATUSES, rings__sent_at=None).only(
            "code", "rings"):
        for n, ring in enumerate(alert.rings):
            job_id = ring_job_id(alert.code, n)
            if ring.sent_at is None and ring.due_at <= now and job_id not in waiting:
                q.enqueue(open_ring, alert.code, n, job_id=job_id)
                count += 1
    age = settings().sweep_after_s if grace_s is None else grace_s
    cutoff = now - dt.timedelta(seconds=age)
    for alert in Alert.objects(updated_at__gte=now - dt.timedelta(days=1),
                               updated_at__lte=cutoff).only("code", "events", "followups_sent"):
        for message in expected_followups(alert):
            job_id = followup_job_id(alert.code, message)
            if message not in alert.followups_sent and job_id not in waiting:
                q.enqueue(followup, alert.code, message, job_id=job_id)
                count += 1
    if settings().sms_enabled:
        count += _queue_batches({"created_at": {"$lte": cutoff}}, leased=True)
    if count:
        log.warning("sweep: queued %d alert jobs", count)
    return count

"""Alert fan-out: each ring's new recipients, one send record each, texted in batches.

Only ids cross the queue: `open_ring(code, ring)` and `send_batch(batch_id)`.

- `open_ring` finds the cells the ring adds (grid/alerts.py, in memory), the active
  reporters whose home cell is one of them (grid workers first among them), and writes
  one `AlertSend` each with `insert_many(ordered=False)`, a batch at a time, after the
  batch's own `AlertBatch` document; each batch's job is queued as soon as it is
  written. The send record's unique key (alert, message, phone index) is the
  idempotency key: someone an earlier ring, or an earlier run of this ring, already
  reached is refused by the index and not texted again. Run twice, it adds nothing and
  re-queues only open batches not waiting.
- A send record is written once and never changed: what became of it is kept on its
  batch (`AlertBatch.sent`, `.failed`, `.withdrawn`), one write per batch run instead of
  one per recipient (SecantusDB spends ≈ 0.45 ms of CPU on each document it updates).
- `send_batch` claims its batch (a lease on the `AlertBatch`), texts each record not yet
  sent in the recipient's language through Kannel (one sendsms request per text and up
  to `PER_REQUEST` receivers) and records the outcome on the batch in one update. A
  worker killed mid-batch leaves the lease to expire; the sweeper re-queues the batch
  and only records not recorded as sent are sent: at least once for the ones in
  flight, never twice for the rest.
- An update, found or cancel (`followup`) goes to everyone the alert was sent to, in
  the same batches, keyed per message; found also thanks those who answered.
- Later rings are RQ scheduled jobs (`enqueue_at`); `sweep_alerts` queues any ring that
  is due and not sent (Redis restarted, the job lost) and any open batch whose job is
  gone.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections import Counter, defaultdict, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any
from zoneinfo import ZoneInfo

import mongoengine as me
from pymongo.errors import BulkWriteError

from gateway import gridcache, telemetry
from gateway.alerts.records import OPEN_STATUSES, Alert
from gateway.delivery import queues
from gateway.delivery.outbound_sms import provider, take_slots
from gateway.privacy import audit, phonebook
from gateway.records.people import Reporter
from gateway.records.updates import DUPLICATE_KEY
from gateway.runtime import settings
from grid.documents import utcnow
from sms import replies
from sms.providers import SendError
from sms.providers.kannel import PreparedText
from sms.records import Sighting

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# A batch's lease, renewed by each sendsms request it makes: a worker killed mid-batch
# holds it at most this long before the sweeper hands the rest of the batch to another.
CLAIM_S = 30
ALERT_MESSAGE = "alert"
MAX_ATTEMPTS = 5
SEND_THREADS = 4  # sendsms requests in flight per batch job
PER_REQUEST = 100  # receivers of one sendsms request (Kannel's multi-cast)


class AlertSend(me.Document):
    """One recipient of one message of an alert: the idempotency key of the fan-out.
    Written once; whether it was sent is on its batch (`AlertBatch`, `state_of`)."""

    alert_code = me.StringField(required=True)
    message = me.StringField(required=True)  # alert, update-<n>, found, cancel
    phone_index = me.StringField(required=True)  # the reporter's blind index, not the number
    reporter_id = me.ObjectIdField(required=True)
    cell_code = me.StringField()
    ring = me.IntField()
    batch = me.StringField(required=True)
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "alert_sends",
            # Each index costs every insert of 10,000s of records: only what a query uses
            # (the follow-ups and `records_with_state` ride the unique key's prefix; a
            # batch job reads its records by `batch`).
            "indexes": [{"fields": ("alert_code", "message", "phone_index"), "unique": True},
                        "batch"]}


class AlertBatch(me.Document):
    """One batch of send records (written by one `insert_many`, never added to later):
    its lease — whoever holds it texts the batch — and what became of its records."""

    id = me.StringField(primary_key=True)  # the batch name of its AlertSend records
    alert_code = me.StringField(required=True)
    message = me.StringField(required=True)
    ring = me.IntField()
    open = me.BooleanField(default=True)  # records left to send (or being written)
    claim = me.StringField()
    sending_until = me.DateTimeField()
    runs = me.IntField(default=0)  # sending runs finished; MAX_ATTEMPTS, then failed
    sent = me.ListField(me.ObjectIdField())  # records Kannel took
    sent_by_cell = me.DictField()  # cell code → records sent there (the map's counts)
    failed = me.ListField(me.ObjectIdField())  # erased numbers, refused, out of attempts
    withdrawn = me.BooleanField(default=False)  # the alert ended before it went out
    last_error = me.StringField()
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "alert_batches",
            "indexes": [("alert_code", "message"), ("open", "created_at")]}


def state_of(record: dict[str, Any], batch: dict[str, Any] | None) -> str:
    """A send record's state from its batch: sent, failed, withdrawn or queued."""
    if batch is None:
        return "queued"
    if record["_id"] in batch["sent_ids"]:
        return "sent"
    if record["_id"] in batch["failed_ids"]:
        return "failed"
    return "withdrawn" if batch.get("withdrawn") else "queued"


def _batches_of(code: str, message: str | None = None) -> dict[str, dict[str, Any]]:
    """The alert's batches (of one message, or all), with `sent_ids`/`failed_ids` sets."""
    query: dict[str, Any] = {"alert_code": code}
    if message is not None:
        query["message"] = message
    batches = {}
    for b in AlertBatch._get_collection().find(
            query, {"sent": 1, "failed": 1, "withdrawn": 1}):
        b["sent_ids"], b["failed_ids"] = set(b.get("sent", ())), set(b.get("failed", ()))
        batches[b["_id"]] = b
    return batches


def records_with_state(code: str, message: str | None = None,
                       fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The alert's send records (of one message, or all) with their `state`: two reads,
    the records by the unique key's prefix and their batches."""
    batches = _batches_of(code, message)
    query: dict[str, Any] = {"alert_code": code}
    if message is not None:
        query["message"] = message
    out = []
    for row in AlertSend._get_collection().find(
            query, {"_id": 1, "batch": 1, **dict.fromkeys(fields, 1)}, batch_size=READ_BATCH):
        row["state"] = state_of(row, batches.get(row["batch"]))
        out.append(row)
    return out


def texted_by_cell(code: str) -> Counter[str]:
    """How many people the alert itself was texted to, by home cell: read from its
    batches (a few documents), not from its send records (one per person). A record
    two runs both sent (a lost lease) counts twice: it was texted twice."""
    counts: Counter[str] = Counter()
    for b in AlertBatch._get_collection().find(
            {"alert_code": code, "message": ALERT_MESSAGE}, {"sent_by_cell": 1}):
        counts.update({cell: int(n) for cell, n in (b.get("sent_by_cell") or {}).items()})
    return counts


def states(code: str, message: str | None = None) -> Counter[str]:
    """How many of the alert's send records are sent, failed, withdrawn, queued."""
    return Counter(row["state"] for row in records_with_state(code, message))


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
    """Insert one record per person not yet sent `message`, a batch at a time, and queue
    each batch's job as soon as it is written (sending starts while the rest is written).
    How many records were new. A batch's document is written first, so a run killed
    while writing its records leaves an open batch the sweeper sends; its records are all
    written by its one `insert_many` (its name is new to this call), never added to later."""
    stem = f"{code}-{message}-{ring if ring is not None else 'x'}-{secrets.token_hex(3)}"
    now = utcnow()
    added = 0
    q = queues.queue(queues.ALERTS)
    batches = AlertBatch._get_collection()
    for start in range(0, len(people), BATCH_SIZE):
        batch = f"{stem}-{start // BATCH_SIZE}"
        batches.insert_one({"_id": batch, "alert_code": code, "message": message, "ring": ring,
                            "open": True, "runs": 0, "created_at": now})
        docs = [{"alert_code": code, "message": message, "phone_index": p["phone_index"],
                 "reporter_id": p["_id"], "cell_code": p.get("home_cell"), "ring": ring,
                 "batch": batch, "created_at": now}
                for p in people[start:start + BATCH_SIZE]]
        try:
            new = len(AlertSend._get_collection().insert_many(docs, ordered=False).inserted_ids)
        except BulkWriteError as exc:  # duplicates: reached already (an earlier ring, a retry)
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
            new = int(exc.details.get("nInserted", 0))
        if new:
            _queue_send(q, batch)
        else:  # everyone in it was reached already
            batches.update_one({"_id": batch}, {"$set": {"open": False}})
        added += new
    return added


def _queue_send(q: Any, batch: str) -> None:
    q.enqueue(send_batch, batch, job_id=batch_job_id(batch), result_ttl=600,
              failure_ttl=7 * 24 * 3600)


def _queue_batches(batches: list[dict[str, Any]]) -> int:
    """Queue a `send_batch` job for each of these open batches that has none waiting and
    whose lease no run holds."""
    now = utcnow()
    waiting = queues.pending_job_ids((queues.ALERTS,))
    q = queues.queue(queues.ALERTS)
    count = 0
    for b in sorted(batches, key=lambda b: b["_id"]):
        held = b.get("sending_until") is not None and b["sending_until"] >= now
        if not held and batch_job_id(b["_id"]) not in waiting:
            _queue_send(q, b["_id"])
            count += 1
    return count


def _open_batches(code: str, message: str, ring: int | None = None) -> list[dict[str, Any]]:
    # `open` and `ring` checked here: the (alert, message) index covers the query whole
    # (SecantusDB reads every document for a filter no index covers).
    return [b for b in AlertBatch._get_collection().find(
        {"alert_code": code, "message": message},
        {"_id": 1, "open": 1, "ring": 1, "sending_until": 1})
        if b.get("open") and (ring is None or b.get("ring") == ring)]


def open_ring(code: str, ring: int) -> int:
    """Send ring `ring` of alert `code` to those it adds. Idempotent; nothing for an ended
    alert (its rings stop widening). Returns how many new recipients it recorded."""
    alert = Alert.objects(code=code).first()
    if alert is None or ring >= len(alert.rings) or alert.status not in OPEN_STATUSES:
        return 0
    added = _write_sends(code, ALERT_MESSAGE, ring, _recipients(ring_cells(alert, ring)))
    _queue_batches(_open_batches(code, ALERT_MESSAGE, ring))
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
    reached = {row["phone_index"]: row for row in records_with_state(
        code, ALERT_MESSAGE, ("phone_index", "reporter_id", "cell_code"))
        if row["state"] == "sent"}
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
    _queue_batches(_open_batches(code, message))
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


def _claim(batch: str) -> tuple[str, dict[str, Any] | None, list[dict[str, Any]]]:
    """Take the batch's lease (one update by `_id`; an open batch whose lease nobody holds)
    and read it and its records not yet sent or failed: (claim token, batch, records);
    no batch when it is closed or another run holds it."""
    now = utcnow()
    token = secrets.token_hex(8)
    batches = AlertBatch._get_collection()
    taken = batches.update_one(
        {"_id": batch, "open": True,
         "$or": [{"sending_until": None}, {"sending_until": {"$lt": now}}]},
        {"$set": {"claim": token, "sending_until": now + dt.timedelta(seconds=CLAIM_S)}})
    if not taken.modified_count:
        return token, None, []
    doc = batches.find_one({"_id": batch}) or {}
    done = set(doc.get("sent", ())) | set(doc.get("failed", ()))
    return token, doc, [r for r in AlertSend._get_collection().find(
        {"batch": batch},
        {"_id": 1, "alert_code": 1, "message": 1, "reporter_id": 1, "cell_code": 1},
        batch_size=READ_BATCH) if r["_id"] not in done]


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
    """Text the records of one batch not yet sent; idempotent (claimed; what was sent is
    on the batch). An alert ended before its first message went out is not texted
    (withdrawn)."""
    if not settings().sms_enabled:
        return 0
    token, doc, claimed = _claim(batch)
    if doc is None:
        return 0
    outcome: dict[str, list[Any]] = defaultdict(list)
    withdrawn = False
    try:
        withdrawn = _send_claimed(batch, token, claimed, outcome)
    finally:  # what was sent is recorded even when a send raised
        _record(batch, token, doc, claimed, outcome, withdrawn)
    return len(outcome["sent"])


def _record(batch: str, token: str, doc: dict[str, Any], claimed: list[dict[str, Any]],
            outcome: dict[str, list[Any]], withdrawn: bool) -> None:
    """The run's last update of the batch (what was sent is already on it, request by
    request: `_record_sent`): what failed for good, whether any record is left to send
    (retryable ones, or any this run did not get to, until MAX_ATTEMPTS runs), and the
    lease let go — unless another run took it meanwhile (then only the outcome)."""
    failed = outcome["erased"] + outcome["fatal"]
    left = {r["_id"] for r in claimed} - set(outcome["sent"]) - set(failed)
    if left and int(doc.get("runs") or 0) + 1 >= MAX_ATTEMPTS and not withdrawn:
        failed, left = failed + sorted(left), set()
    change: dict[str, Any] = {"$inc": {"runs": 1}}
    if failed:
        change["$push"] = {"failed": {"$each": failed}}
    last_error = ("retryable" if outcome["retry"] else "erased" if outcome["erased"] else
                  "fatal" if outcome["fatal"] else None)
    release = {"open": bool(left) and not withdrawn, "sending_until": None,
               **({"withdrawn": True} if withdrawn else {}),
               **({"last_error": last_error} if last_error else {})}
    _update_batch(batch, token, change, release)


def _update_batch(batch: str, token: str, change: dict[str, Any],
                  lease: dict[str, Any]) -> None:
    """Apply `change` (the outcome) to the batch, with `lease`'s fields set too while this
    run still holds the lease; when another run took it meanwhile, the outcome only."""
    batches = AlertBatch._get_collection()
    if not batches.update_one({"_id": batch, "claim": token},
                              {**change, "$set": lease}).matched_count:
        batches.update_one({"_id": batch}, change)


def _record_sent(batch: str, token: str, sent: list[Any], cells: dict[Any, Any]) -> None:
    """Put on the batch the records one sendsms request got through, and how many in
    each cell (the map's counts), as soon as Kannel answered, and renew the lease: a
    worker killed later in the batch has only the requests in flight sent again, and
    the rest is another worker's within `CLAIM_S`. `$push`, not `$addToSet`:
    SecantusDB checks each added id against the whole list (410 ms for 500 against
    2 ms); a record pushed twice by two runs is read as a set."""
    by_cell = Counter(str(cells.get(record_id) or "-") for record_id in sent)
    _update_batch(batch, token,
                  {"$push": {"sent": {"$each": sent}},
                   "$inc": {f"sent_by_cell.{cell}": n for cell, n in by_cell.items()}},
                  {"sending_until": utcnow() + dt.timedelta(seconds=CLAIM_S)})
    telemetry.count("alert_recipients", len(sent))  # the fan-out rate on /metrics


def _send_claimed(batch: str, token: str, claimed: list[dict[str, Any]],
                  outcome: dict[str, list[Any]]) -> bool:
    """Text the claimed records, filling `outcome` (sent, erased, fatal, retry: record
    ids) as answers come; True when the alert ended before it went out (withdrawn)."""
    if not claimed:
        return False
    alert = Alert.objects(code=claimed[0]["alert_code"]).first()
    if alert is None or (claimed[0]["message"] == ALERT_MESSAGE
                         and alert.status not in OPEN_STATUSES):
        return True
    people = _phones(claimed)
    texts: dict[str, PreparedText] = {}
    by_text: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    s = settings()
    kannel = provider()
    for record in claimed:
        person = people.get(record["reporter_id"]) or {}
        phone = phonebook.unseal(person.get("phone"), phonebook.REPORTER_PHONE)
        if not phone:
            outcome["erased"].append(record["_id"])
            continue
        lang = person.get("language") or "zh"
        if lang not in texts:  # one text a language, encoded for sendsms once
            texts[lang] = kannel.prepare(_text(alert, record["message"], lang))
        by_text[lang].append((record["_id"], phone))

    def send_chunk(lang: str, items: list[tuple[Any, str]]) -> list[tuple[Any, str | None]]:
        """One sendsms request for up to PER_REQUEST receivers of one text."""
        try:
            result = texts[lang].send_many([phone for _, phone in items])
        except SendError as exc:
            log.warning("alert %s batch %s: %s", alert.code, batch, exc.reason)
            problem = "fatal" if exc.fatal else "retry"
            return [(record_id, problem) for record_id, _ in items]
        return [(record_id, "fatal" if phone in result.refused
                 else "retry" if phone in result.failed else None)
                for record_id, phone in items]

    # Kannel takes one text to many receivers in one sendsms request (a multi-cast, one
    # message each): a batch is a few requests, a few in flight at once. The carrier's
    # rate is kept across all workers, a request's worth of the second's budget at a
    # time (one Redis round trip a request, not one a message).
    chunks = deque((lang, items[start:start + PER_REQUEST])
                   for lang, items in by_text.items()
                   for start in range(0, len(items), PER_REQUEST))
    cells = {r["_id"]: r.get("cell_code") for r in claimed}
    running: set[Future[list[tuple[Any, str | None]]]] = set()

    def collect(block: bool) -> None:
        """Record the requests answered so far (all of them when `block`)."""
        nonlocal running
        while running:
            done, running = wait(running, timeout=None if block else 0,
                                 return_when=FIRST_COMPLETED)
            for future in done:
                got_through = []
                for record_id, problem in future.result():
                    if problem:
                        outcome[problem].append(record_id)
                    else:
                        got_through.append(record_id)
                if got_through:
                    _record_sent(batch, token, got_through, cells)
                    outcome["sent"].extend(got_through)
            if not block:
                return

    with ThreadPoolExecutor(max_workers=SEND_THREADS) as pool:
        while chunks:
            lang, items = chunks.popleft()
            granted = take_slots(s.sms_rate_per_s, len(items))
            if granted < len(items):  # the rest when the budget has room again
                chunks.appendleft((lang, items[granted:]))
                items = items[:granted]
            running.add(pool.submit(send_chunk, lang, items))
            collect(block=False)
        collect(block=True)
    return False


def sweep_alerts(grace_s: int | None = None) -> int:
    """Queue rings that are due and not sent, and open batches (records left to send)
    whose job is gone (a worker killed, Redis restarted). Idempotent; how many jobs it queued."""
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
    if settings().sms_enabled:  # open batches, by the (open, created_at) index
        count += _queue_batches(list(AlertBatch._get_collection().find(
            {"open": True, "created_at": {"$lte": cutoff}}, {"_id": 1, "sending_until": 1})))
    if count:
        log.warning("sweep: queued %d alert jobs", count)
    return count

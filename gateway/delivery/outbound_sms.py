"""Outbound SMS: record first, then an `sms` queue job hands it to Kannel.

`queue_sms` is idempotent on `ref` (a reply to an inbound message uses the
inbound id, a duty-phone notice the dispatch id), so a job that runs twice
never texts twice. `send_sms` retries what is worth retrying with backoff,
records permanent failures with their reason, and keeps under the carrier's
messages-per-second limit across all workers (a counter per second in Redis).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from typing import Any

from pymongo.errors import DuplicateKeyError
from rq import Retry, get_current_job

from gateway import telemetry
from gateway.delivery import queues
from gateway.extensions import redis_store
from gateway.privacy import phonebook
from gateway.privacy.crypto import keyring, unseal
from gateway.runtime import settings
from sms.encoding import coding, segments
from sms.phones import mask
from sms.providers import DeliveryReport, OutboundSms, SendError
from sms.providers.kannel import KannelProvider, dlr_url
from sms.records import OutboundMessage, utcnow

log = logging.getLogger(__name__)

SEND_RETRY = Retry(max=5, interval=[5, 15, 60, 300, 900])
RATE_KEY = "safegrid:sms:rate:{second}"
SEND_CLAIM_S = 30  # well over a send (Kannel's timeout is 5 s)
# Outbound texts name report codes and stations: sealed at rest like the numbers.
TEXT_CONTEXT = "sms.outbound"


@functools.cache
def _provider(url: str, username: str, password: str, sender: str) -> KannelProvider:
    return KannelProvider(url, username, password, sender)


def provider() -> KannelProvider:
    """This process's Kannel client, built from the settings."""
    s = settings()
    return _provider(s.kannel_sendsms_url, s.kannel_username, s.kannel_password, s.sms_sender)


def send_job_id(ref: str) -> str:
    return f"sms-{ref}"


def queue_sms(to: str, text: str, purpose: str, ref: str, **links: object) -> bool:
    """Record an outbound SMS under `ref` and queue its sending; False if `ref` existed.

    Does nothing (returns False) when SMS is not enabled in this deployment.
    """
    if not settings().sms_enabled:
        return False
    # An insert refused by the unique `ref` is the message recorded already. (Not an
    # upserting findAndModify: SecantusDB's grows slower with every message stored.)
    try:
        OutboundMessage._get_collection().insert_one({
            "ref": ref, "to": phonebook.seal(to), "to_index": phonebook.phone_index(to),
            "text": keyring().encrypt(text, context=TEXT_CONTEXT),
            "purpose": purpose, "state": "queued",
            "coding": coding(text), "segments": segments(text), "attempts": 0,
            "created_at": utcnow(), **{k: v for k, v in links.items() if v is not None},
        })
    except DuplicateKeyError:
        return False
    enqueue_send(ref)
    return True


def enqueue_send(ref: str) -> None:
    # In a pipeline: one Redis round trip (RQ alone makes two, the queue's registration
    # and the job).
    with redis_store.conn.pipeline() as pipe:
        queues.queue(queues.SMS).enqueue(send_sms, ref, job_id=send_job_id(ref),
                                         retry=SEND_RETRY, result_ttl=600,
                                         failure_ttl=7 * 24 * 3600, pipeline=pipe)
        pipe.execute()


def sweep_outbound(grace_s: int | None = None) -> int:
    """Re-queue recorded SMS still `queued` whose send job is gone (a worker killed, Redis
    restarted): the reply or notice is not lost. Idempotent.

    A send job still waiting or scheduled for a retry is left alone; a copy of one
    that is running finds the message claimed (`_claim`) and stands back.
    """
    s = settings()
    if not s.sms_enabled:
        return 0
    age = s.sweep_after_s if grace_s is None else grace_s
    cutoff = utcnow() - dt.timedelta(seconds=age)
    waiting = queues.pending_job_ids((queues.SMS,))
    count = 0
    for doc in OutboundMessage._get_collection().find(
            {"state": "queued", "created_at": {"$lte": cutoff}}, {"ref": 1}):
        if send_job_id(doc["ref"]) not in waiting:
            enqueue_send(doc["ref"])
            count += 1
    if count:
        log.warning("sweep: re-queued %d unsent SMS", count)
        telemetry.count("sweeper_found", count, kind="outbound_sms")
    return count


def wait_for_a_slot(per_second: float) -> None:
    """Block until this second's sending budget (shared by every worker) has room."""
    take_slots(per_second, 1)


def take_slots(per_second: float, wanted: int) -> int:
    """Block until this second's sending budget (shared by every worker) has room, then
    take up to `wanted` messages of it at once; how many were taken (at least one)."""
    while True:
        second = int(time.time())
        key = RATE_KEY.format(second=second)
        with redis_store.conn.pipeline() as pipe:
            pipe.incrby(key, wanted)
            pipe.expire(key, 5)
            used = int(pipe.execute()[0])
        room = int(per_second) - (used - wanted)
        if room >= wanted:
            return wanted
        if room > 0:  # part of it: give back the rest for the other workers
            redis_store.conn.decrby(key, wanted - room)
            return room
        redis_store.conn.decrby(key, wanted)
        time.sleep(max(0.0, second + 1 - time.time()))


def _claim(message_id: Any) -> bool:
    """Take the message for this run, unless another run holds it (one atomic update).

    Its job can be queued twice (two runs of one route at once, a sweep after Redis
    lost the job) and two workers can pick both copies: without this, both texted.
    A run killed while sending leaves the claim to expire; the sweeper then re-queues
    the message (Kannel may have taken it already: at least once, never lost).
    """
    now = utcnow()
    # By `_id`: SecantusDB scans the whole collection for a filter no index covers whole.
    claimed = OutboundMessage._get_collection().update_one(
        {"_id": message_id, "state": "queued",
         "$or": [{"sending_until": None}, {"sending_until": {"$lt": now}}]},
        {"$set": {"sending_until": now + dt.timedelta(seconds=SEND_CLAIM_S)}})
    return bool(claimed.modified_count)


def send_sms(ref: str) -> str:
    """Hand one recorded SMS to Kannel. Idempotent: only a `queued` message is sent, by one
    run at a time."""
    message = OutboundMessage.objects(ref=ref).first()
    if message is None or message.state != "queued":
        return message.state if message is not None else "missing"
    s = settings()
    wait_for_a_slot(s.sms_rate_per_s)
    if not _claim(message.id):
        return "sending"  # another run of this job is handing it to Kannel right now
    callback = dlr_url(f"{s.public_base_url}/sms/dlr/kannel", ref, secret=s.sms_webhook_secret)
    to, text = recipient(message), message_text(message)
    try:
        result = provider().send(OutboundSms(to=to, text=text, sender=None,
                                             dlr_url=callback, ref=ref))
    except SendError as exc:
        job = get_current_job()
        last_try = exc.fatal or job is None or not job.retries_left
        OutboundMessage.objects(id=message.id, state="queued").update_one(
            inc__attempts=1, set__last_error=exc.reason, set__sending_until=None,
            **({"set__state": "failed", "set__final_at": utcnow()} if last_try else {}),
        )
        log.warning("sms %s to %s: %s%s", ref, mask(to), exc.reason,
                    " (final)" if last_try else " (will retry)")
        if last_try:
            telemetry.count("sms_failed", reason=exc.reason)
            return "failed"
        raise
    if OutboundMessage.objects(id=message.id, state="queued").update_one(
        inc__attempts=1, set__state="sent", set__sent_at=utcnow(),
        set__provider_id=result.provider_id,
    ):
        telemetry.count("sms_sent", purpose=message.purpose)
    return "sent"


def recipient(message: OutboundMessage) -> str:
    """The clear number an outbound message goes to."""
    return phonebook.unseal(message.to)


def message_text(message: OutboundMessage) -> str:
    """The clear text of an outbound message (legacy clear texts pass through)."""
    return unseal(message.text, context=TEXT_CONTEXT)


def record_delivery(report: DeliveryReport) -> bool:
    """Apply a delivery report; only final outcomes change the state, and only once."""
    final = {"delivered": "delivered", "failed": "failed", "rejected": "failed"}.get(report.status)
    if final is None:
        return False
    updated = OutboundMessage.objects(ref=report.ref, state__in=("queued", "sent")).update_one(
        set__state=final, set__final_at=utcnow(),
        **({"set__last_error": f"dlr:{report.status}"} if final == "failed" else {}),
    )
    if updated:  # once per message: only the first final report changes its state
        if final == "delivered":
            telemetry.count("sms_delivered")
        else:
            telemetry.count("sms_failed", reason=f"dlr_{report.status}")
    return bool(updated)

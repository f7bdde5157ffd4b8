"""Every SMS in and out, as stored. The raw inbound message is kept before anything else.

Inbound messages are unique on (provider, message id), so a gateway's retry
never makes a second report. Outbound messages carry their own reference,
which comes back on delivery reports.

Phone numbers and message texts are personal data: the gateway stores them
sealed (AES-GCM, see gateway/privacy/phonebook.py and gateway/intake/inbound_sms.py) and finds
a number by its blind index (`*_index`), never by the clear value. This
package only describes the records, so the fields are plain strings here.
"""

from __future__ import annotations

import datetime as dt

import mongoengine as me

INBOUND_STATES = ("stored", "handled", "rejected", "rate_limited")
OUTBOUND_STATES = ("queued", "sent", "delivered", "failed")


def utcnow() -> dt.datetime:
    """Naive UTC now, as everything is stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class InboundMessage(me.Document):
    """A text message as the gateway handed it over, and what became of it."""

    provider = me.StringField(required=True, max_length=20)
    message_id = me.StringField(required=True, max_length=100)
    sender = me.StringField()  # sealed; E.164 when valid, else as received
    sender_index = me.StringField()  # blind index of the valid E.164 sender
    sender_valid = me.BooleanField(default=False)
    sender_problem = me.StringField()  # sms.phones reason when not valid
    receiver = me.StringField(max_length=40)
    text = me.StringField()  # sealed decoded text (may hold U+FFFD where bytes were bad)
    raw = me.DictField()  # every parameter as received (text and sender sealed)
    received_at = me.DateTimeField(required=True, default=utcnow)
    state = me.StringField(choices=INBOUND_STATES, default="stored")
    kind = me.StringField()  # sms.grammar kind, once parsed
    errors = me.ListField(me.StringField())
    report_id = me.ObjectIdField()
    alert_code = me.StringField()
    handled_at = me.DateTimeField()
    # Counted against its number's public tips this hour (once, however often handled).
    tip_counted = me.BooleanField()

    meta = {
        "collection": "sms_inbound",
        "indexes": [
            {"fields": ["provider", "message_id"], "unique": True},
            ("state", "received_at"),  # the sweeper's query
            ("sender_index", "-received_at"),
        ],
    }


class OutboundMessage(me.Document):
    """A text message we send, with its delivery state."""

    ref = me.StringField(required=True, unique=True, max_length=64)
    to = me.StringField(required=True)  # sealed E.164
    to_index = me.StringField()  # blind index of `to`
    text = me.StringField(required=True)  # sealed
    coding = me.StringField(choices=("gsm7", "ucs2"))
    segments = me.IntField(min_value=1)
    purpose = me.StringField(required=True, max_length=40)  # receipt, help, notice, ...
    state = me.StringField(choices=OUTBOUND_STATES, default="queued")
    attempts = me.IntField(default=0)
    last_error = me.StringField()
    provider_id = me.StringField()
    inbound_id = me.ObjectIdField()
    report_id = me.ObjectIdField()
    created_at = me.DateTimeField(required=True, default=utcnow)
    sent_at = me.DateTimeField()
    final_at = me.DateTimeField()
    sending_until = me.DateTimeField()  # a send job's claim; expires if its worker died

    meta = {
        "collection": "sms_outbound",
        "indexes": [("state", "created_at"), ("to_index", "-created_at")],
    }


class Sighting(me.Document):
    """A grid worker's answer to a missing-child alert: a sighting, or "my grid is swept"."""

    alert_code = me.StringField(required=True, max_length=6)
    kind = me.StringField(required=True, choices=("sighting", "swept"))
    phone = me.StringField(required=True)  # sealed E.164
    phone_index = me.StringField()
    grid_code = me.StringField(max_length=15)
    details = me.StringField()  # sealed, like the message it came in
    inbound_id = me.ObjectIdField(required=True, unique=True)
    created_at = me.DateTimeField(required=True, default=utcnow)
    # How it was taken: `linked` (to an open alert), `not_open` (unknown or ended code),
    # `rate_limited` (stored, not acted on: a flood from one number).
    state = me.StringField(choices=("linked", "not_open", "rate_limited"))
    public = me.BooleanField()  # from a number the alert never reached
    cell_code = me.StringField(max_length=15)  # the cell a swept answer marks
    report_id = me.ObjectIdField()  # the critical report a sighting was filed as

    meta = {"collection": "sightings",
            "indexes": [("alert_code", "-created_at"), ("alert_code", "kind", "cell_code")]}


class OptOut(me.Document):
    """A public number that asked for no more messages (退订): kept only as its blind index."""

    phone_index = me.StringField(required=True, unique=True)
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "sms_opt_outs"}


ALL_DOCUMENTS = (InboundMessage, OutboundMessage, Sighting, OptOut)

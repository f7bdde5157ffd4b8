"""Where personal data is stored sealed, and bringing older databases up to that.

`SEALED` lists every stored value SafeGrid encrypts: what `safegrid
reencrypt` walks when the data keys rotate. A new sealed field must be added
here, or a key rotation would leave it under a retired key.

`upgrade` runs at start-up (`ensure_indexes`): databases written before phone
numbers were sealed get their blind indexes, and lose the unique indexes on the
clear numbers, before the new indexes are built. Sealing the old clear values
themselves is `safegrid reencrypt`'s work.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import mongoengine as me
from mongoengine.connection import DEFAULT_CONNECTION_NAME, get_db
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from gateway.delivery.outbound_sms import TEXT_CONTEXT as OUTBOUND_CONTEXT
from gateway.delivery.workflow import SEALED_TEXT_FIELDS
from gateway.intake.inbound_sms import PHONE_PARAMS, TEXT_CONTEXT, TEXT_PARAMS
from gateway.privacy import phonebook
from gateway.privacy.crypto import SealedPaths, sealed_paths
from gateway.records.open311 import CONTACT_CONTEXT
from gateway.records.people import Officer, Reporter
from gateway.records.reports import DISPATCH_TEXT_CONTEXT, Report
from grid.documents import Dispatch
from sms.records import InboundMessage, OptOut, OutboundMessage, Sighting

log = logging.getLogger(__name__)


# Document class → {stored path: encryption context}.
SEALED: Mapping[type[me.Document], SealedPaths] = {
    # An Open311 request's contact fields, in its embedded origin.
    Report: {**sealed_paths(Report), "open311.contact": CONTACT_CONTEXT},
    Reporter: sealed_paths(Reporter),
    Officer: sealed_paths(Officer),
    phonebook.Secret: sealed_paths(phonebook.Secret),
    InboundMessage: {
        "text": TEXT_CONTEXT, "sender": phonebook.SMS_PHONE,
        **{f"raw.{name}": TEXT_CONTEXT for name in TEXT_PARAMS},
        **{f"raw.{name}": phonebook.SMS_PHONE for name in PHONE_PARAMS},
    },
    OutboundMessage: {"to": phonebook.SMS_PHONE, "text": OUTBOUND_CONTEXT},
    Sighting: {"phone": phonebook.SMS_PHONE, "details": TEXT_CONTEXT},
    Dispatch: {**dict.fromkeys(SEALED_TEXT_FIELDS, DISPATCH_TEXT_CONTEXT),
               "notes[].text": DISPATCH_TEXT_CONTEXT},
}

# Where a phone number is kept, and its blind index beside it.
_PHONES: tuple[tuple[type[me.Document], str, str, str], ...] = (
    (Reporter, "phone", "phone_index", phonebook.REPORTER_PHONE),
    (Officer, "phone", "phone_index", phonebook.OFFICER_PHONE),
    (OptOut, "phone", "phone_index", phonebook.SMS_PHONE),
    (InboundMessage, "sender", "sender_index", phonebook.SMS_PHONE),
    (OutboundMessage, "to", "to_index", phonebook.SMS_PHONE),
    (Sighting, "phone", "phone_index", phonebook.SMS_PHONE),
)
# Small collections, indexed at every start; the SMS records only by `reencrypt`.
_AT_START = (Reporter, Officer, OptOut)


def _raw(cls: type[me.Document]) -> Collection[Any]:
    """The collection behind `cls`, without mongoengine creating its indexes on first use
    (on an older database the unique blind index cannot be built before `upgrade`)."""
    return get_db(cls._meta.get("db_alias", DEFAULT_CONNECTION_NAME))[cls._get_collection_name()]


def index_phones(classes: tuple[type[me.Document], ...] | None = None) -> int:
    """Give every stored phone number that lacks one its blind index; returns how many.

    An opt-out keeps only the index: its clear number is removed.
    """
    done = 0
    for cls, field, index_field, context in _PHONES:
        if classes is not None and cls not in classes:
            continue
        collection = _raw(cls)
        query = {field: {"$type": "string"}, index_field: {"$exists": False}}
        if cls is InboundMessage:
            query["sender_valid"] = True  # an invalid sender is no number to find
        for doc in collection.find(query, {field: 1}):
            index = phonebook.phone_index(phonebook.unseal(doc[field], context))
            change: dict[str, object] = {"$set": {index_field: index}}
            if cls is OptOut:
                change["$unset"] = {field: ""}
            done += collection.update_one({"_id": doc["_id"], field: doc[field]},
                                          change).modified_count
    return done


def _drop_clear_phone_indexes() -> None:
    for cls in _AT_START:
        collection = _raw(cls)
        try:
            if "phone_1" in collection.index_information():
                collection.drop_index("phone_1")
                log.info("dropped the index on clear phone numbers of %s", collection.name)
        except OperationFailure as exc:  # the collection does not exist yet
            log.debug("no indexes to check on %s: %s", collection.name, exc)


def upgrade() -> None:
    """Bring a database written before phones were sealed up to date (idempotent, cheap)."""
    _drop_clear_phone_indexes()
    count = index_phones(_AT_START)
    if count:
        log.info("gave %d stored phone numbers their blind index", count)

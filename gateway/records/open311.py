"""Open311 GeoReport v2 as stored: client API keys, and where a service request came from.

A key is stored only as its SHA-256, like an API token (gateway/access/tokens.py).
A request is an ordinary Report (source `open311`, trust `public`) that carries an
`Open311Origin`: the key that filed it, and the contact fields the client sent, sealed.
"""

from __future__ import annotations

import json

import mongoengine as me

from gateway.privacy.crypto import EncryptedStringField
from grid.documents import utcnow

# Encryption context of a request's contact fields (AES-GCM associated data): never change.
CONTACT_CONTEXT = "open311.contact"


class Open311Key(me.Document):
    """A client's API key (a FixMyStreet or SeeClickFix server); only its SHA-256 is kept."""

    key_hash = me.StringField(required=True, unique=True)
    label = me.StringField(required=True, max_length=100)  # who holds it
    county_code = me.StringField(max_length=6)  # None: every county this deployment serves
    created_at = me.DateTimeField(default=utcnow)
    revoked_at = me.DateTimeField()

    meta = {"collection": "open311_keys"}


class Open311Origin(me.EmbeddedDocument):
    """Which key filed a report through Open311, and the reporter's contact, sealed."""

    key_id = me.ObjectIdField(required=True)
    county_code = me.StringField()
    # JSON of the contact fields sent (first_name, last_name, email, phone, device_id,
    # account_id), encrypted like a reporter's phone and name.
    contact = EncryptedStringField(context=CONTACT_CONTEXT)


def contact_fields(origin: Open311Origin | None) -> dict[str, str]:
    """The contact fields a request's client sent (unsealed; empty when there were none)."""
    if origin is None or not origin.contact:
        return {}
    fields: dict[str, str] = json.loads(origin.contact)
    return fields

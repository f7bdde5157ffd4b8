"""People as stored: reporters (grid workers and mandated reporters) and officers.

Their phone numbers and names are sealed (gateway/privacy/crypto.py) and found
by a keyed blind index (gateway/privacy/phonebook.py).
"""

from __future__ import annotations

from typing import Any

import mongoengine as me

from gateway.privacy.crypto import EncryptedStringField
from gateway.privacy.phonebook import OFFICER_PHONE, REPORTER_PHONE, phone_index
from grid.documents import utcnow

REPORTER_ROLES = ("grid_worker", "teacher", "medical", "registrar", "transport", "public")
OFFICER_ROLES = ("officer", "supervisor")


class FoundByPhone:
    """A document with a sealed `phone`, found by its blind index `phone_index`.

    Saving keeps the index in step with the number; raw upserts must set both.
    """

    phone: str | None
    phone_index: str | None
    objects: Any  # mongoengine's manager, on the Document this is mixed into

    def clean(self) -> None:
        self.phone_index = phone_index(self.phone) if self.phone else None

    @classmethod
    def by_phone(cls, phone: str) -> Any:
        """The queryset of documents with this (normalised, E.164) number."""
        return cls.objects(phone_index=phone_index(phone))


class Reporter(FoundByPhone, me.Document):
    """Someone who files reports: a grid worker (网格员) or a mandated reporter (强制报告)."""

    # E.164, sealed; found by `phone_index` (gateway/privacy/phonebook.py), set on save.
    phone = EncryptedStringField(context=REPORTER_PHONE, required=True, max_length=20)
    phone_index = me.StringField(required=True, unique=True)
    name = EncryptedStringField(context="reporter.name", required=True, max_length=100)
    role = me.StringField(required=True, choices=REPORTER_ROLES)
    organisation = me.StringField(max_length=200)
    home_cell = me.StringField(max_length=15)
    county_code = me.StringField(max_length=6)
    password_hash = me.StringField()  # scrypt (gateway/access/passwords.py); app login only
    sms_pin_hash = me.StringField()  # scrypt of the SMS PIN (gateway/access/sms_pin.py), optional
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "reporters"}


class Officer(FoundByPhone, me.Document):
    """A police officer at a station, or a county bureau supervisor."""

    name = me.StringField(required=True, max_length=100)
    role = me.StringField(required=True, choices=OFFICER_ROLES)
    station_code = me.StringField(max_length=32)  # officers
    county_code = me.StringField(required=True, max_length=6)
    phone = EncryptedStringField(context=OFFICER_PHONE, max_length=20)  # E.164, sealed
    phone_index = me.StringField(unique=True, sparse=True)  # set on save
    password_hash = me.StringField()  # scrypt (gateway/access/passwords.py)
    # TOTP second factor (gateway/access/mfa.py): base32 secret, sealed; and the time step of
    # the last code accepted, so a code is good once.
    totp_secret = EncryptedStringField(context="officer.totp", max_length=64)
    totp_last_step = me.IntField()

    meta = {"collection": "officers"}

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

# ROSTER_FORMAT.md's roles; `public` is the record of an unregistered SMS sender (a tip).
REPORTER_ROLES = ("grid_worker", "teacher", "medical", "registrar", "transport", "hotel",
                  "child_director", "other", "public")
LANGUAGES = ("zh", "en", "ug", "bo", "ii")  # 中文, English, ئۇيغۇرچە, བོད་ཡིག, ꆈꌠꉙ
# Access roles: what a token may do. `officer` is scoped to a station, `supervisor` to a county.
OFFICER_ROLES = ("officer", "supervisor")
# Duty roles: a place in the escalation chain (docs/security.md, 4.1), each with its access role.
DUTY_ROLES = {"officer": "officer", "duty_officer": "officer", "chief": "officer",
              "county_desk": "officer", "supervisor": "supervisor"}


# An erased person's blind index: unique per record, never a number's, so the phone is free.
ERASED_PREFIX = "erased:"


class FoundByPhone:
    """A document with a sealed `phone`, found by its blind index `phone_index`.

    Saving keeps the index in step with the number; raw upserts must set both.
    """

    phone: str | None
    phone_index: str | None
    objects: Any  # mongoengine's manager, on the Document this is mixed into

    def clean(self) -> None:
        if self.phone:
            self.phone_index = phone_index(self.phone)
        elif not str(self.phone_index or "").startswith(ERASED_PREFIX):
            self.phone_index = None

    @classmethod
    def by_phone(cls, phone: str) -> Any:
        """The queryset of documents with this (normalised, E.164) number."""
        return cls.objects(phone_index=phone_index(phone))


class Reporter(FoundByPhone, me.Document):
    """Someone who files reports: a grid worker (网格员) or a mandated reporter (强制报告)."""

    # E.164, sealed; found by `phone_index` (gateway/privacy/phonebook.py), set on save.
    # Phone and name are gone only once erased (PIPL); the admin API requires them.
    phone = EncryptedStringField(context=REPORTER_PHONE, max_length=20)
    phone_index = me.StringField(required=True, unique=True)
    name = EncryptedStringField(context="reporter.name", max_length=100)
    role = me.StringField(required=True, choices=REPORTER_ROLES)
    organisation = me.StringField(max_length=200)
    home_cell = me.StringField(max_length=15)
    county_code = me.StringField(max_length=6)
    unit = me.StringField(max_length=40)  # a Unit's code (gateway/records/units.py)
    # Documents written before these fields read as active, Chinese.
    language = me.StringField(choices=LANGUAGES, default="zh")
    active = me.BooleanField(default=True)
    erased_at = me.DateTimeField()
    updated_at = me.DateTimeField()
    password_hash = me.StringField()  # scrypt (gateway/access/passwords.py); app login only
    sms_pin_hash = me.StringField()  # scrypt of the SMS PIN (gateway/access/sms_pin.py), optional
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "reporters",
            "indexes": [("county_code", "role"), ("county_code", "unit"),
                        ("county_code", "home_cell"),
                        # An alert's ring finds the people of its cells, across counties.
                        "home_cell"]}


class Officer(FoundByPhone, me.Document):
    """A police officer at a station, or a county bureau supervisor."""

    name = me.StringField(max_length=100)  # gone only once erased (PIPL)
    role = me.StringField(required=True, choices=OFFICER_ROLES)  # the access role
    # The place in the escalation chain; older documents read as their access role.
    duty_role = me.StringField(choices=tuple(DUTY_ROLES))
    station_code = me.StringField(max_length=32)  # station roles
    county_code = me.StringField(required=True, max_length=6)
    phone = EncryptedStringField(context=OFFICER_PHONE, max_length=20)  # E.164, sealed
    phone_index = me.StringField(unique=True, sparse=True)  # set on save
    password_hash = me.StringField()  # scrypt (gateway/access/passwords.py)
    # TOTP second factor (gateway/access/mfa.py): base32 secret, sealed; and the time step of
    # the last code accepted, so a code is good once.
    totp_secret = EncryptedStringField(context="officer.totp", max_length=64)
    totp_last_step = me.IntField()
    active = me.BooleanField(default=True)
    erased_at = me.DateTimeField()
    updated_at = me.DateTimeField()

    meta = {"collection": "officers",
            "indexes": [("county_code", "station_code"), ("county_code", "duty_role")]}

    def clean(self) -> None:
        super().clean()
        if self.duty_role:  # the access role follows the duty role
            self.role = DUTY_ROLES[self.duty_role]

    @property
    def duty(self) -> str:
        """The duty role, for documents older than it: their access role."""
        return str(self.duty_role or self.role)

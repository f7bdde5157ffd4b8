"""People and reports, as stored: reporters, officers, reports, API tokens."""

from __future__ import annotations

from typing import Any

import mongoengine as me

from gateway.crypto import EncryptedStringField
from gateway.phonebook import OFFICER_PHONE, REPORTER_PHONE, phone_index
from grid.documents import utcnow

# Encryption contexts (AES-GCM associated data): never change one once data exists.
DETAILS_CONTEXT = "report.details"
# Officers' free text on a dispatch: notes, transfer and closing reasons.
DISPATCH_TEXT_CONTEXT = "dispatch.text"

REPORTER_ROLES = ("grid_worker", "teacher", "medical", "registrar", "transport", "public")
OFFICER_ROLES = ("officer", "supervisor")
LOCATION_METHODS = ("gps", "grid_code", "gazetteer", "geocoder", "reporter_home_cell")


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

    # E.164, sealed; found by `phone_index` (gateway/phonebook.py), set on save.
    phone = EncryptedStringField(context=REPORTER_PHONE, required=True, max_length=20)
    phone_index = me.StringField(required=True, unique=True)
    name = EncryptedStringField(context="reporter.name", required=True, max_length=100)
    role = me.StringField(required=True, choices=REPORTER_ROLES)
    organisation = me.StringField(max_length=200)
    home_cell = me.StringField(max_length=15)
    county_code = me.StringField(max_length=6)
    password_hash = me.StringField()  # scrypt (gateway/passwords.py); app login only
    sms_pin_hash = me.StringField()  # scrypt of the SMS PIN (gateway/sms_pin.py), optional
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
    password_hash = me.StringField()  # scrypt (gateway/passwords.py)
    # TOTP second factor (gateway/mfa.py): base32 secret, sealed; and the time step of
    # the last code accepted, so a code is good once.
    totp_secret = EncryptedStringField(context="officer.totp", max_length=64)
    totp_last_step = me.IntField()

    meta = {"collection": "officers"}


class Location(me.EmbeddedDocument):
    """Where a report is, in WGS-84, and how that was found."""

    lat = me.FloatField()
    lon = me.FloatField()
    datum = me.StringField()  # as the client sent it, before conversion
    method = me.StringField(choices=LOCATION_METHODS)
    precision_m = me.FloatField()
    grid_code = me.StringField()
    label = me.StringField()  # the place name that placed it (gazetteer, geocoder)
    candidates = me.ListField(me.StringField())  # other places of the same name


REPORT_STATUSES = ("received", "routed", "acknowledged", "closed")


class Report(me.Document):
    """A suspicion report. Stored before anything else happens to it."""

    code = me.StringField(required=True, unique=True, max_length=7)
    reporter_id = me.ObjectIdField(required=True)
    client_id = me.StringField(required=True, max_length=64)
    category = me.StringField(required=True)
    details = EncryptedStringField(context=DETAILS_CONTEXT, max_length=4000)
    location = me.EmbeddedDocumentField(Location)
    cell_code = me.StringField()
    station_code = me.StringField()
    placed_by = me.StringField()  # gps, grid_code, reporter_home_cell or county_default
    status = me.StringField(required=True, choices=REPORT_STATUSES, default="received")
    source = me.StringField(required=True, choices=("app", "sms"))
    priority = me.StringField()
    case_id = me.ObjectIdField()  # the linked Case (grid/documents.py)
    legal_hold = me.BooleanField(default=False)  # never anonymised while set
    # mandated: a registered reporter (强制报告); public: an unknown number's tip (lower trust).
    trust = me.StringField(choices=("mandated", "public"), default="mandated")
    flags = me.ListField(me.StringField())  # e.g. triage, outside_grid_nearest_cell
    created_at = me.DateTimeField(required=True, default=utcnow)
    routed_at = me.DateTimeField()

    meta = {
        "collection": "reports",
        "indexes": [
            # The client-generated id makes retries safe: one report per id per reporter.
            {"fields": ["reporter_id", "client_id"], "unique": True},
            ("status", "created_at"),  # the sweeper's query
        ],
    }


class ApiToken(me.Document):
    """A bearer token; only its SHA-256 is stored."""

    token_hash = me.StringField(required=True, unique=True)
    role = me.StringField(required=True,
                          choices=("reporter", *OFFICER_ROLES, "admin", "auditor"))
    subject_id = me.ObjectIdField()
    station_code = me.StringField()
    county_code = me.StringField()
    label = me.StringField(max_length=100)
    # access: short-lived, from login; refresh: exchanged once for a new pair (its
    # `family` is revoked whole if an old one is replayed); service: issued by the CLI.
    kind = me.StringField(choices=("access", "refresh", "service"), default="service")
    family = me.StringField()
    expires_at = me.DateTimeField()
    created_at = me.DateTimeField(default=utcnow)
    revoked = me.BooleanField(default=False)

    meta = {"collection": "api_tokens", "indexes": ["family"]}


ALL_DOCUMENTS = (Reporter, Officer, Report, ApiToken)

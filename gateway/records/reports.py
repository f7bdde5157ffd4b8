"""Reports as stored: one per suspicion, written before anything else happens to it."""

from __future__ import annotations

import mongoengine as me

from gateway.privacy.crypto import EncryptedStringField
from gateway.records.open311 import Open311Origin
from grid.documents import utcnow

# Encryption contexts (AES-GCM associated data): never change one once data exists.
DETAILS_CONTEXT = "report.details"
# Officers' free text on a dispatch: notes, transfer and closing reasons.
DISPATCH_TEXT_CONTEXT = "dispatch.text"

LOCATION_METHODS = ("gps", "grid_code", "gazetteer", "geocoder", "reporter_home_cell")


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
    source = me.StringField(required=True, choices=("app", "sms", "open311"))
    priority = me.StringField()
    outcome = me.StringField()  # the case's outcome, once a dispatch of it is closed
    case_id = me.ObjectIdField()  # the linked Case (grid/documents.py)
    # The dispatches that hold this report (its station's, the county desk's): at
    # most one per station, so bounded however large its case grows.
    dispatch_ids = me.ListField(me.ObjectIdField())
    legal_hold = me.BooleanField(default=False)  # never anonymised while set
    # mandated: a registered reporter (强制报告); public: an unknown number's tip (lower trust).
    trust = me.StringField(choices=("mandated", "public"), default="mandated")
    flags = me.ListField(me.StringField())  # e.g. triage, outside_grid_nearest_cell
    open311 = me.EmbeddedDocumentField(Open311Origin)  # filed through Open311 (docs/interop.md)
    created_at = me.DateTimeField(required=True, default=utcnow)
    routed_at = me.DateTimeField()

    meta = {
        "collection": "reports",
        "indexes": [
            # The client-generated id makes retries safe: one report per id per reporter.
            {"fields": ["reporter_id", "client_id"], "unique": True},
            ("status", "created_at"),  # the sweeper's query
            # A case's and a dispatch's reports; sparse: nothing to write at intake.
            {"fields": ["case_id"], "sparse": True},
            {"fields": ["dispatch_ids"], "sparse": True},
            # An Open311 client's own requests, newest first (GET requests.json).
            {"fields": ["open311.key_id", "-created_at"], "sparse": True},
            # The bureau's figures (gateway/insight/): a county's stations over a period,
            # and every report of a period.
            ("station_code", "created_at"),
            "created_at",
        ],
    }

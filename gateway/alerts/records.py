"""An Alert as stored: one document, changed only by single-document atomic updates."""

from __future__ import annotations

import mongoengine as me

from gateway.records.reports import Location
from grid.documents import utcnow

ALERT_STATUSES = ("active", "updated", "found", "cancelled")
OPEN_STATUSES = ("active", "updated")
SEXES = ("male", "female", "unknown")


class Child(me.EmbeddedDocument):
    """Who is missing, as far as an SMS may say it (no photo in the SMS)."""

    sex = me.StringField(choices=SEXES, required=True)
    age_years = me.IntField(min_value=0, max_value=17, required=True)
    height_cm = me.IntField(min_value=30, max_value=200)
    clothing = me.StringField(max_length=60)
    # An access-controlled link to a photo, for officers and the app; never texted.
    photo_url = me.StringField(max_length=500)


class AlertRing(me.EmbeddedDocument):
    radius_m = me.FloatField(required=True)
    delay_s = me.IntField(required=True)
    due_at = me.DateTimeField(required=True)
    sent_at = me.DateTimeField()  # when its fan-out was queued; None while due


class AlertEvent(me.EmbeddedDocument):
    """One step of the alert's life, beside its audit entry."""

    at = me.DateTimeField(default=utcnow)
    actor = me.StringField(required=True)
    action = me.StringField(required=True)  # issue, update, found, cancel
    text = me.StringField()


class Alert(me.Document):
    """A missing-child alert: `active` → `updated` → `found` | `cancelled`."""

    code = me.StringField(required=True, unique=True, min_length=6, max_length=6)
    status = me.StringField(choices=ALERT_STATUSES, default="active")
    child = me.EmbeddedDocumentField(Child, required=True)
    summary = me.StringField(required=True)  # the child as the SMS says it (男孩约5岁红上衣)
    last_seen = me.EmbeddedDocumentField(Location, required=True)
    last_seen_place = me.StringField()  # the place as the SMS says it
    seen_at = me.DateTimeField(required=True)
    cell_code = me.StringField()
    county_code = me.StringField(required=True)
    station_code = me.StringField(required=True)  # the issuing station (the county desk)
    issued_by = me.StringField(required=True)  # the audit actor, not a name
    rings = me.EmbeddedDocumentListField(AlertRing)
    events = me.EmbeddedDocumentListField(AlertEvent)
    update_text = me.StringField()
    followups_sent = me.ListField(me.StringField())  # update-<n>, found, cancel: fanned out
    issued_at = me.DateTimeField(default=utcnow)
    updated_at = me.DateTimeField(default=utcnow)
    ended_at = me.DateTimeField()

    meta = {"collection": "alerts",
            "indexes": [("status", "county_code"), ("status", "rings.due_at"), "updated_at"]}

"""API tokens as stored: only a token's SHA-256, never the token itself."""

from __future__ import annotations

import mongoengine as me

from gateway.records.people import OFFICER_ROLES
from grid.documents import utcnow


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

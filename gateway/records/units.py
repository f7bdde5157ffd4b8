"""Mandated units as stored: the bodies that must report under the mandatory-reporting system.

Schools, hospitals, village and residents' committees, marriage registries,
transport stations, hotels, welfare institutions, employers and job agencies
(强制报告责任单位). A reporter belongs to at most one; the duty-compliance
figures count by unit. Nothing personal is stored here.
"""

from __future__ import annotations

import mongoengine as me

from grid.documents import utcnow

UNIT_TYPES = (
    "school", "kindergarten", "hospital", "clinic", "village_committee", "residents_committee",
    "marriage_registry", "transport", "hotel", "welfare", "employer", "agency",
)


class Unit(me.Document):
    """One mandated unit, in one grid cell of one county."""

    code = me.StringField(required=True, unique=True, max_length=40)  # e.g. its credit code
    name = me.StringField(required=True, max_length=100)
    type = me.StringField(required=True, choices=UNIT_TYPES)
    county_code = me.StringField(required=True, max_length=6)
    cell_code = me.StringField(required=True, max_length=15)
    active = me.BooleanField(default=True)
    created_at = me.DateTimeField(default=utcnow)
    updated_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "units",
        "indexes": [("county_code", "type", "code"), ("county_code", "cell_code")],
    }

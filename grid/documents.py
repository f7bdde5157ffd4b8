"""Where and who, as stored: grid cells (网格), police stations (派出所), dispatches.

Every state change on these documents is a single-document atomic update with
a guard on the current state, so it behaves the same on SecantusDB and on a
MongoDB replica set (no multi-document transactions).
"""

from __future__ import annotations

import datetime as dt

import mongoengine as me


def utcnow() -> dt.datetime:
    """Naive UTC now: storage is naive UTC everywhere."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Station(me.Document):
    """A police station (派出所) or a county duty desk that receives clues."""

    code = me.StringField(required=True, unique=True, max_length=32)
    name = me.StringField(required=True, max_length=100)
    duty_phone = me.StringField(max_length=20)  # E.164, the station's duty officer
    chief_phone = me.StringField(max_length=20)  # E.164, the station chief (所长): escalation
    county_code = me.StringField(required=True, max_length=6)  # 6-digit county adcode
    county_bureau = me.StringField(max_length=100)  # 县公安局 the station reports to
    kind = me.StringField(choices=("station", "county_desk"), default="station")
    # Deactivated only while it holds no cells (gateway/enrolment/stations.py); older
    # documents read as active.
    active = me.BooleanField(default=True)
    updated_at = me.DateTimeField()

    meta = {"collection": "stations", "indexes": ["county_code"]}


class GridCell(me.Document):
    """One grid cell: 12-digit village/community division code + 3-digit grid suffix."""

    code = me.StringField(required=True, unique=True, min_length=9, max_length=15)
    name = me.StringField(required=True, max_length=100)
    # Exterior ring as [[lon, lat], ...] in WGS-84 (GeoJSON order); geometry is
    # done in memory by grid.index, not by database geo queries.
    ring = me.ListField(me.ListField(me.FloatField()), required=True)
    # Cells that touch or overlap this one (grid.linking.neighbours), computed on import.
    neighbours = me.ListField(me.StringField())
    village_code = me.StringField(required=True, max_length=12)
    village_name = me.StringField(max_length=100)  # 村/社区 name, for the gazetteer
    township_code = me.StringField(required=True, max_length=12)
    county_code = me.StringField(required=True, max_length=6)
    station_code = me.StringField(required=True, max_length=32)

    meta = {"collection": "grid_cells", "indexes": ["county_code", "station_code"]}


class Case(me.Document):
    """Reports linked as one incident (grid/linking.py, docs/linking.md). A station gets
    one dispatch per case instead of one per report.

    Fixed size, whatever the number of its reports: each report names its case
    (`Report.case_id`), and the case keeps only a summary. New reports are
    compared with its anchor, the report that opened it (place, category,
    reporter), and with the time of its latest report (`last_at`), so a case
    cannot creep across a district one report at a time.
    """

    category = me.StringField(required=True)  # the anchor's
    group = me.StringField()  # grid.linking.category_group(category)
    anchor_report_id = me.ObjectIdField()
    reporter = me.StringField()  # the anchor's reporter id, as text
    lat = me.FloatField()  # the anchor's point (WGS-84), None when it had none
    lon = me.FloatField()
    precision_m = me.FloatField()
    cell_code = me.StringField()  # the anchor's cell
    # The anchor's cell and the cells touching it: where a new report must be to
    # be compared by place. Bounded by the grid, not by the case.
    near_cells = me.ListField(me.StringField())
    # HMAC of normalised identifiers, never clear values; at most MAX_CASE_KEYS.
    keys = me.ListField(me.StringField())
    report_count = me.IntField(default=1)
    first_at = me.DateTimeField(required=True)
    last_at = me.DateTimeField(required=True)
    open = me.BooleanField(default=True)

    meta = {
        "collection": "cases",
        # A database written before reports named their case still holds the old
        # arrays until gateway/custody/case_links.py has moved them.
        "strict": False,
        "indexes": ["keys", ("open", "near_cells", "last_at")],
    }


# Identifiers kept on a case for linking: enough for any real clue, and a bound
# on the document whatever the number of its reports.
MAX_CASE_KEYS = 32


DISPATCH_STATUSES = ("new", "delivered", "acknowledged", "transfer_requested", "closed")


class Dispatch(me.Document):
    """One clue handed to one station: exactly one per (report, station)."""

    report_id = me.ObjectIdField(required=True)  # the case's first report at this station
    report_code = me.StringField(required=True)
    case_id = me.ObjectIdField()
    # How many reports it holds; the reports name it (Report.dispatch_ids), so
    # the dispatch stays one size however many reports join it.
    report_count = me.IntField(default=1)
    station_code = me.StringField(required=True)
    priority = me.StringField(required=True, choices=("critical", "urgent", "routine"))
    status = me.StringField(required=True, choices=DISPATCH_STATUSES, default="new")
    # A summary copied from the report so the inbox is one query; no reporter
    # identity and no victim details here (sealed, see ARCHITECTURE.md).
    category = me.StringField(required=True)
    cell_code = me.StringField()
    cell_name = me.StringField()
    flags = me.ListField(me.StringField())
    reported_at = me.DateTimeField(required=True)
    created_at = me.DateTimeField(required=True, default=utcnow)
    # Moves when a new report joins the clue, so it rises in the inbox.
    updated_at = me.DateTimeField()
    # When a joining report last texted the duty phone (one text per window, routing).
    witness_notice_at = me.DateTimeField()
    delivered_at = me.DateTimeField()
    acknowledged_at = me.DateTimeField()
    acknowledged_by = me.StringField()
    # Acknowledgement deadline and how far up the chain it has gone (grid/escalation.py).
    ack_deadline = me.DateTimeField()
    escalation_level = me.IntField(default=0)
    next_check_at = me.DateTimeField()  # when the next escalation step is due
    # A pending transfer (grid/lifecycle.py): the target must accept or reject.
    transfer_to = me.StringField()
    status_before_transfer = me.StringField()
    transfer_reason = me.StringField()
    transfer_rejection_reason = me.StringField()
    transferred_from = me.StringField()
    transfer_requested_at = me.DateTimeField()
    transfer_rejected_at = me.DateTimeField()
    transferred_at = me.DateTimeField()
    # The receiving station's own window to answer a transfer request; the clue's
    # ack_deadline keeps running meanwhile (grid/lifecycle.py).
    transfer_answer_by = me.DateTimeField()
    outcome = me.StringField()
    outcome_reason = me.StringField()
    # Closed because the case was closed at this dispatch (another station's copy).
    duplicate_of = me.StringField()
    closed_by = me.StringField()
    closed_at = me.DateTimeField()
    # Reopened after closing (grid/lifecycle.py): who, when, and why (sealed).
    reopened_by = me.StringField()
    reopened_at = me.DateTimeField()
    reopen_reason = me.StringField()
    notes = me.ListField(me.DictField())  # {text, by, station, at}
    # Every transition, written in the same update as the transition itself.
    history = me.ListField(me.DictField())

    meta = {
        "collection": "dispatches",
        "strict": False,  # report_codes of an older database, until case_links moves it
        "indexes": [
            {"fields": ["report_id", "station_code"], "unique": True},
            ("station_code", "-created_at"),
            ("station_code", "-updated_at", "-created_at"),  # the inbox, latest news first
            ("station_code", "status", "-created_at"),
            ("status", "next_check_at"),  # the escalation sweeper's query
            ("transfer_to", "status"),  # transfers offered to a station
            ("case_id", "station_code"),
        ],
    }

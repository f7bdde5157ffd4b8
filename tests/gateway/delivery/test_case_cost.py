"""Linking costs the same whatever the size of the clue (issue 18), shown without a clock:
the database commands a route job sends for a report joining a clue of 2 reports and
one of 200 are the same commands, of the same size, in both directions.
"""

from __future__ import annotations

import mongoengine
from bson import BSON, ObjectId
from pymongo import monitoring

from gateway.delivery.routing import route
from gateway.records.people import Reporter
from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Case, Dispatch, utcnow

# Far from each other (other townships): two clues that never meet.
SMALL_CELL, LARGE_CELL = cell_code(0, 0, 0), cell_code(2, 3, 3)


class Recorder(monitoring.CommandListener):
    """Every command and reply on the connection: name, collection, BSON size."""

    def __init__(self) -> None:
        self.on = False
        self.sent: list[tuple[str, str, int]] = []
        self.replies: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.on:
            name = event.command_name
            self.sent.append((name, str(event.command.get(name)), len(BSON.encode(event.command))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.on:
            self.replies.append(len(BSON.encode(event.reply)))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        raise AssertionError(f"command failed: {event.failure}")


def new_report(reporter_id: ObjectId, cell: str, n: int) -> str:
    """A stored report as intake leaves it: received, placed by its grid code."""
    doc = {"code": f"L{n:06d}", "reporter_id": reporter_id, "client_id": f"cost-{n:06d}",
           "category": "WOMAN", "location": {"method": "grid_code", "grid_code": cell},
           "status": "received", "source": "app", "trust": "mandated", "flags": [],
           "created_at": utcnow()}
    Report._get_collection().insert_one(doc)
    return str(doc["_id"])


def test_a_route_job_sends_the_same_commands_for_a_clue_of_2_and_of_200(settings, county):
    recorder = Recorder()
    # The same server and database, with the recorder on the connection.
    mongoengine.disconnect()
    mongoengine.connect(host=settings.mongodb_uri, uuidRepresentation="standard",
                        tz_aware=False, event_listeners=[recorder])
    reporter = Reporter.objects.first().id
    numbers = iter(range(1_000_000))
    for cell, size in ((SMALL_CELL, 2), (LARGE_CELL, 200)):
        for _ in range(size):
            route(new_report(reporter, cell, next(numbers)))
    assert sorted(c.report_count for c in Case.objects) == [2, 200]

    def joining(cell: str) -> tuple[list[tuple[str, str, int]], list[int]]:
        report_id = new_report(reporter, cell, next(numbers))
        recorder.sent, recorder.replies, recorder.on = [], [], True
        route(report_id)
        recorder.on = False
        return recorder.sent, recorder.replies

    small_sent, small_replies = joining(SMALL_CELL)
    large_sent, large_replies = joining(LARGE_CELL)
    assert sorted(c.report_count for c in Case.objects) == [3, 201]
    assert sorted(d.report_count for d in Dispatch.objects) == [3, 201]
    # The same commands on the same collections, in the same order ...
    assert [c[:2] for c in small_sent] == [c[:2] for c in large_sent]
    # ... and no command or reply carries anything that grows with the clue: one
    # ObjectId per report would add 200 x 19 bytes. (A few bytes move with the
    # numbers in them, e.g. a count in a reply.)
    for small, large in zip(small_sent, large_sent, strict=True):
        assert abs(small[2] - large[2]) <= 16, (small, large)
    for small, large in zip(small_replies, large_replies, strict=True):
        assert abs(small - large) <= 16, (small_replies, large_replies)
    # Nor does the server hold anything that grows with it: the case and the
    # dispatch a report joins stay one size (an array of the clue's reports in
    # either would make every join rewrite it).
    for cls in (Case, Dispatch):
        small_doc, large_doc = (stored_size(cls, cell) for cell in (SMALL_CELL, LARGE_CELL))
        assert abs(small_doc - large_doc) <= 16, (cls.__name__, small_doc, large_doc)


def stored_size(cls: type[mongoengine.Document], cell: str) -> int:
    """The BSON size of the stored case or dispatch of the clue in `cell`."""
    [doc] = cls._get_collection().find({"cell_code": cell})
    return len(BSON.encode(doc))

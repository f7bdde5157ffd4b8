"""A route job takes the backlog queued behind it and routes it in one go (route_many)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from bson import ObjectId
from rq import Queue

from gateway.delivery import queues, routing
from gateway.extensions import redis_store
from gateway.intake.reports import new_report_code
from gateway.records.reports import Location, Report
from gateway.records.tallies import Tally
from gateway.sample import COUNTY_DESK, cell_code
from grid.documents import Case, Dispatch, GridCell, utcnow
from sms.records import OutboundMessage
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import with_sms

ROUTINE = "OTHER"  # a routine category, no extra recipient
URGENT_WITH_DESK = "ADOPT"  # urgent, and the county desk gets a copy


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms)


def stored(cell: str, category: str = ROUTINE, age_s: float = 0.0) -> Report:
    return Report(
        code=new_report_code(), reporter_id=ObjectId(), client_id=f"batch-{ObjectId()}",
        category=category, location=Location(method="grid_code", grid_code=cell),
        source="app", created_at=utcnow() - dt.timedelta(seconds=age_s),
    ).save()


def queued(reports: list[Report], priority: str = "routine") -> None:
    for report in reports:
        assert routing.enqueue_route(str(report.id), priority) is not None


def total_counted() -> int:
    """Reports counted in the place tallies (each report once, whatever the batch)."""
    return sum(n for tally in Tally.objects(kind="place") for day in tally.days.values()
               for n in day.values())


def station_of(cell: str) -> str:
    return str(GridCell.objects(code=cell).get().station_code)


def finished_route_jobs(name: str = queues.ROUTINE) -> int:
    queue = Queue(name, connection=redis_store.conn)
    return len(queue.finished_job_registry.get_job_ids())


def test_a_backlog_is_routed_by_one_job_as_it_would_be_one_by_one(county):
    here, there = cell_code(0, 1, 1), cell_code(2, 0, 0)
    reports = [stored(here, age_s=30 - i) for i in range(12)]
    reports += [stored(there, URGENT_WITH_DESK, age_s=20 - i) for i in range(5)]
    queued(reports[:12])
    queued(reports[12:], "urgent")
    run_jobs()
    # The first routine job took the other 11; the urgent queue's first job its 4.
    assert finished_route_jobs() == 1
    assert Queue(queues.URGENT, connection=redis_store.conn).count == 0
    ids = [r.id for r in reports]
    assert Report.objects(id__in=ids, status="routed").count() == 17
    # One incident in each cell: one case, one clue a station holding every report.
    assert {c.report_count for c in Case.objects} == {12, 5}
    assert Case.objects.count() == 2
    clues = sorted((d.station_code, d.report_count) for d in Dispatch.objects)
    assert clues == sorted([("530627-WF", 12), (station_of(there), 5), (COUNTY_DESK[0], 5)])
    for report in Report.objects(id__in=ids):
        assert len(report.dispatch_ids) == (2 if report.category == URGENT_WITH_DESK else 1)
        held = Dispatch.objects(id__in=report.dispatch_ids)
        assert {d.case_id for d in held} == {report.case_id}
    assert total_counted() == 17
    # The clue's first report texted the station, the others one witness notice.
    assert OutboundMessage.objects(purpose="dispatch_notice").count() == 3
    assert OutboundMessage.objects(purpose="linked_notice").count() == 3


def test_a_batch_run_again_changes_nothing(county):
    reports = [stored(cell_code(0, 1, 1), age_s=10 - i) for i in range(6)]
    answers = routing.route_many([str(r.id) for r in reports])
    assert set(answers.values()) == {"530627-WF"}
    # As if it died before its last write: the reports are `received` again.
    Report._get_collection().update_many({"_id": {"$in": [r.id for r in reports]}},
                                         {"$set": {"status": "received", "routed_at": None,
                                                   "dispatch_ids": []}})
    Tally.objects.delete()
    routing.route_many([str(r.id) for r in reports])
    assert Dispatch.objects.count() == 1
    assert Case.objects.count() == 1
    assert Report.objects(status="routed", dispatch_ids=Dispatch.objects.first().id).count() == 6
    assert total_counted() == 6


def test_a_worker_killed_mid_batch_leaves_its_backlog_to_the_sweeper(county, monkeypatch):
    reports = [stored(cell_code(0, 1, 1), age_s=120) for _ in range(8)]
    queued(reports)
    queue = Queue(queues.ROUTINE, connection=redis_store.conn)
    head = queue.job_ids[0]

    class Killed(BaseException):
        """kill -9: nothing of the job's own runs after it."""

    def killed(report_ids, requests=None):
        raise Killed

    monkeypatch.setattr(routing, "get_current_job",
                        lambda: SimpleNamespace(id=head, origin=queues.ROUTINE))
    monkeypatch.setattr(routing, "route_many", killed)
    queue.remove(head)  # the worker took it
    with pytest.raises(Killed):
        routing.route(head.removeprefix("route-"))
    assert queue.count == 0  # the backlog went with the killed worker
    assert Report.objects(status="received").count() == 8
    monkeypatch.undo()
    assert routing.sweep(older_than_s=60) == 8
    run_jobs()
    assert Report.objects(status="routed").count() == 8
    assert Dispatch.objects.count() == 1
    assert Dispatch.objects.first().report_count == 8


def test_a_failed_batch_puts_what_it_took_back_on_its_queue(county, monkeypatch):
    reports = [stored(cell_code(0, 1, 1)) for _ in range(5)]
    queued(reports)
    queue = Queue(queues.ROUTINE, connection=redis_store.conn)
    head = queue.job_ids[0]

    def store_down(report_ids, requests=None):
        raise ConnectionError("store down")

    monkeypatch.setattr(routing, "get_current_job",
                        lambda: SimpleNamespace(id=head, origin=queues.ROUTINE))
    monkeypatch.setattr(routing, "route_many", store_down)
    queue.remove(head)
    with pytest.raises(ConnectionError):
        routing.route(head.removeprefix("route-"))
    # RQ retries the head; the other four are queued again at once, not left for the sweeper.
    assert sorted(queue.job_ids) == sorted(routing.route_job_id(str(r.id)) for r in reports[1:])


def test_a_batch_leaves_a_report_another_run_is_routing(county):
    reports = [stored(cell_code(0, 1, 1), age_s=5 - i) for i in range(4)]
    busy = str(reports[2].id)
    redis_store.conn.set(routing.ROUTING_LOCK.format(report_id=busy), "other", ex=10)
    answers = routing.route_many([str(r.id) for r in reports])
    assert answers[busy] == "routing"
    assert Report.objects(id=reports[2].id).first().status == "received"
    assert Report.objects(status="routed").count() == 3
    assert redis_store.conn.get(routing.ROUTING_LOCK.format(report_id=busy)) == b"other"


def test_a_clue_closed_while_a_batch_joins_it_takes_none_of_its_reports(county, monkeypatch):
    first = stored(cell_code(0, 1, 1), age_s=60)
    routing.route_many([str(first.id)])
    clue = Dispatch.objects(report_id=first.id).get()
    later = [stored(cell_code(0, 1, 1), age_s=10 - i) for i in range(3)]
    join = routing._join

    def closed_meanwhile(joins, clue_of):
        Dispatch._get_collection().update_one({"_id": clue.id}, {"$set": {"status": "closed"}})
        return join(joins, clue_of)

    monkeypatch.setattr(routing, "_join", closed_meanwhile)
    routing.route_many([str(r.id) for r in later])
    assert Dispatch.objects(id=clue.id).get().report_count == 1
    for report in Report.objects(id__in=[r.id for r in later]):
        assert report.status == "routed"
        (own,) = Dispatch.objects(id__in=report.dispatch_ids)
        assert own.id != clue.id
        assert own.status == "delivered"


def test_a_case_closed_while_a_batch_joins_it_links_its_reports_again(county, monkeypatch):
    from gateway.delivery import cases

    first = stored(cell_code(0, 1, 1), age_s=60)
    routing.route_many([str(first.id)])
    old_case = Report.objects(id=first.id).get().case_id
    later = [stored(cell_code(0, 1, 1), age_s=10 - i) for i in range(3)]
    join = cases._join
    calls = []

    def closed_meanwhile(joins, known_keys):
        if not calls:
            Case._get_collection().update_one({"_id": old_case}, {"$set": {"open": False}})
        calls.append(set(joins))
        return join(joins, known_keys)

    monkeypatch.setattr(cases, "_join", closed_meanwhile)
    routing.route_many([str(r.id) for r in later])
    assert calls[0] == {old_case}
    assert Case.objects(id=old_case).get().report_count == 1
    new_cases = {r.case_id for r in Report.objects(id__in=[r.id for r in later])}
    assert len(new_cases) == 1
    assert old_case not in new_cases
    assert Case.objects(id__in=list(new_cases)).get().report_count == 3


def test_each_report_of_a_batch_keeps_the_request_it_was_filed_under(county, caplog):
    """One trail per report (docs/metrics.md): its log line and the SMS its routing queues
    carry its own request id, not that of the job that took it along."""
    import logging

    from gateway import jsonlog
    from gateway.worker import TracedWorker

    reports = [stored(cell_code(0, 1, 1), URGENT_WITH_DESK, age_s=5 - i) for i in range(3)]
    reports.append(stored(cell_code(2, 0, 0), URGENT_WITH_DESK))
    for n, report in enumerate(reports):
        with jsonlog.under(f"request-{n}"):
            routing.enqueue_route(str(report.id), "urgent")
    class Burst(TracedWorker):
        def subscribe(self) -> None:  # no command channel in a burst (see run_jobs)
            pass

        def unsubscribe(self) -> None:
            pass

    worker = Burst([queues.queue(queues.URGENT)], connection=redis_store.conn)
    with caplog.at_level(logging.INFO, logger="gateway.delivery.routing"):
        worker.work(burst=True)
    routed = {record.report_id: record.request_id for record in caplog.records
              if record.getMessage().startswith("routed to")}
    assert routed == {str(r.id): f"request-{n}" for n, r in enumerate(reports)}
    assert finished_route_jobs(queues.URGENT) == 1
    # The new clue of the other cell was announced under its own report's request.
    sms = Queue(queues.SMS, connection=redis_store.conn)
    requests = {job.meta.get("request_id") for job in sms.jobs}
    assert "request-3" in requests
    assert "request-0" in requests


def test_a_batch_keeps_its_locks_however_long_it_takes(county, monkeypatch):
    """Each step renews the batch's locks: a slow batch is not taken over mid-way, while a
    killed one's locks expire a lock's life after its last step."""
    import time

    from gateway.delivery import cases

    monkeypatch.setattr(routing, "ROUTING_LOCK_S", 1)
    reports = [stored(cell_code(0, 1, 1), age_s=5 - i) for i in range(3)]
    keys = [routing.ROUTING_LOCK.format(report_id=r.id) for r in reports]
    attach, deliver, seen = cases.attach_many, routing._deliver, []

    def slow_attach(*args):
        time.sleep(0.7)
        return attach(*args)

    def slow_deliver(*args):
        time.sleep(0.7)  # 1.4 s since the locks were taken: past a 1 s life unrenewed
        seen.append([redis_store.conn.exists(key) for key in keys])
        return deliver(*args)

    monkeypatch.setattr(cases, "attach_many", slow_attach)
    monkeypatch.setattr(routing, "_deliver", slow_deliver)
    routing.route_many([str(r.id) for r in reports])
    assert seen == [[1, 1, 1]]
    assert Report.objects(status="routed").count() == 3
    assert [redis_store.conn.exists(key) for key in keys] == [0, 0, 0]  # released at the end

"""Routing jobs and the outbox sweeper."""

from __future__ import annotations

import datetime as dt

from bson import ObjectId
from rq import Queue

from gateway import telemetry
from gateway.delivery import queues
from gateway.delivery.routing import ROUTING_LOCK, ROUTING_LOCK_S, route_job_id, sweep
from gateway.extensions import redis_store
from gateway.intake.reports import new_report_code
from gateway.records.reports import Location, Report
from gateway.sample import cell_code
from grid.documents import Dispatch, utcnow
from tests.gateway.api.test_reports_api import run_jobs


def stored_but_never_queued(age_s: int, category: str = "CHILD") -> Report:
    """A report as left behind when the process died between the insert and the enqueue."""
    return Report(
        code=new_report_code(),
        reporter_id=ObjectId(), client_id=f"lost-{ObjectId()}", category=category,
        location=Location(method="grid_code", grid_code=cell_code(0, 1, 1)),
        source="app", created_at=utcnow() - dt.timedelta(seconds=age_s),
    ).save()


def test_sweep_requeues_old_unrouted_reports_on_their_priority_queue(county):
    old = stored_but_never_queued(120)
    fresh = stored_but_never_queued(0)
    assert sweep(older_than_s=60) == 1
    assert [(labels, value) for name, labels, value in telemetry.read_counters(redis_store.conn)
            if name == "sweeper_found"] == [({"kind": "report"}, 1)]  # for /metrics' alert
    critical = Queue(queues.CRITICAL, connection=redis_store.conn)
    assert critical.job_ids == [route_job_id(str(old.id))]
    run_jobs()
    assert Report.objects(id=old.id).first().status == "routed"
    assert Report.objects(id=fresh.id).first().status == "received"
    assert Dispatch.objects(report_id=old.id, station_code="530627-WF").count() == 1


def test_sweep_leaves_a_report_a_run_is_routing_now(county):
    """A batch takes its reports' jobs off the queue and locks them: not lost, not queued
    again; once the lock of a run that died expires, the next sweep takes the report."""
    old = stored_but_never_queued(120)
    lock = ROUTING_LOCK.format(report_id=str(old.id))
    redis_store.conn.set(lock, "a-batch-run", ex=ROUTING_LOCK_S)
    assert sweep(older_than_s=60) == 0
    assert Queue(queues.CRITICAL, connection=redis_store.conn).job_ids == []
    redis_store.conn.delete(lock)  # that run died, and its lock expired
    assert sweep(older_than_s=60) == 1
    run_jobs()
    assert Report.objects(id=old.id).first().status == "routed"


def test_sweep_twice_still_one_dispatch(county):
    old = stored_but_never_queued(120, category="OTHER")
    assert sweep(older_than_s=60) == 1
    Queue(queues.ROUTINE, connection=redis_store.conn).empty()  # lost: a Redis restart
    assert sweep(older_than_s=60) == 1
    run_jobs()
    assert Dispatch.objects(report_id=old.id).count() == 1
    assert Dispatch.objects(report_id=old.id).first().priority == "routine"


def test_a_backlog_is_not_queued_again_behind_itself(county):
    """A report whose route job still waits (a flood's backlog, a retry) keeps its one place;
    before, each sweep added the job to the queue again, growing the backlog it was behind."""
    waiting = [stored_but_never_queued(120, category="OTHER") for _ in range(3)]
    retried = stored_but_never_queued(120, category="WOMAN")
    assert sweep(older_than_s=60) == 4
    routine = Queue(queues.ROUTINE, connection=redis_store.conn)
    urgent = Queue(queues.URGENT, connection=redis_store.conn)
    # One route job waits for its retry in RQ's scheduled registry, not in the queue.
    job = urgent.fetch_job(route_job_id(str(retried.id)))
    urgent.remove(job)
    urgent.scheduled_job_registry.schedule(job, utcnow() + dt.timedelta(seconds=30))
    assert sweep(older_than_s=60) == 0
    assert sweep(older_than_s=60) == 0
    assert routine.job_ids == [route_job_id(str(r.id)) for r in waiting]
    assert urgent.job_ids == []
    routine.remove(route_job_id(str(waiting[1].id)))  # a job lost: that one comes back
    assert sweep(older_than_s=60) == 1
    assert sorted(routine.job_ids) == sorted(route_job_id(str(r.id)) for r in waiting)


def test_routed_reports_are_not_swept(county):
    old = stored_but_never_queued(120)
    sweep(older_than_s=60)
    run_jobs()
    assert sweep(older_than_s=60) == 0
    assert Report.objects(id=old.id).first().status == "routed"


def test_route_of_a_missing_report_is_harmless(county):
    from gateway.delivery.routing import route

    assert route(str(ObjectId())) == "missing"
    assert Dispatch.objects.count() == 0


def test_a_report_routes_by_the_jurisdiction_in_force_when_it_was_made(county):
    from grid import jurisdiction

    cell = cell_code(0, 1, 1)  # 乌峰派出所 today
    jurisdiction.record_generation({cell: "530627-NT"}, dt.datetime(2026, 1, 1), "old map")
    jurisdiction.record_generation({cell: "530627-WF"}, dt.datetime(2026, 6, 1), "new map")
    made_before = stored_but_never_queued(120)
    Report.objects(id=made_before.id).update_one(set__created_at=dt.datetime(2026, 3, 1))
    made_after = stored_but_never_queued(120)
    sweep(older_than_s=60)
    run_jobs()
    before = Report.objects(id=made_before.id).first()
    assert before.station_code == "530627-NT"
    assert "routed_by_earlier_jurisdiction" in before.flags
    assert Report.objects(id=made_after.id).first().station_code == "530627-WF"


def test_two_runs_of_one_route_at_once_place_it_once(county, monkeypatch):
    """The SMS handler routes inline while the queued route job runs on a routing worker:
    neither places the report a second time; the handler waits and answers the station."""
    import threading

    from gateway.delivery import routing

    report = stored_but_never_queued(0, category="OTHER")
    inside, release, attached = threading.Event(), threading.Event(), []
    attach = routing.cases.attach_many

    def slow_attach(*args, **kwargs):
        attached.extend(report.id for report, _ in args[0])
        inside.set()
        release.wait(10)
        return attach(*args, **kwargs)

    monkeypatch.setattr(routing.cases, "attach_many", slow_attach)
    answers: list[str] = []
    first = threading.Thread(target=lambda: answers.append(routing.route(str(report.id))))
    first.start()
    assert inside.wait(10)
    # Meanwhile: the queued job leaves it to that run; the SMS handler waits for it.
    assert routing.route(str(report.id)) == "routing"
    second = threading.Thread(
        target=lambda: answers.append(routing.route(str(report.id), wait=True)))
    second.start()
    second.join(0.5)
    release.set()
    first.join(10)
    second.join(15)
    assert attached == [report.id]
    assert answers == ["530627-WF", "530627-WF"]
    assert Dispatch.objects(report_id=report.id).count() == 1


def test_a_route_whose_run_died_holding_the_lock_is_placed_when_it_expires(county):
    from gateway.delivery import routing

    report = stored_but_never_queued(0, category="OTHER")
    # A run killed mid-route left its lock (here with a 1 s life instead of 10 s).
    redis_store.conn.set(routing.ROUTING_LOCK.format(report_id=report.id), "dead", ex=1)
    assert routing.route(str(report.id)) == "routing"  # a queued job leaves it (swept later)
    assert Report.objects(id=report.id).first().status == "received"
    assert routing.route(str(report.id), wait=True) == "530627-WF"  # takes over on expiry
    assert Report.objects(id=report.id).first().status == "routed"


def test_a_report_acknowledged_before_the_route_jobs_last_write_stays_acknowledged(
        client, county, monkeypatch):
    from gateway.delivery import routing
    from tests.helpers import auth, token_of

    officer = auth(token_of(county, "officer 乌峰派出所"))
    scheduled = routing.schedule_escalation

    def acknowledge_first(dispatch_id: str, *args: object) -> None:
        # The officer is quicker than the route job: the dispatch is in the inbox already.
        resp = client.post(f"/api/v1/dispatches/{dispatch_id}/acknowledge", headers=officer)
        assert resp.status_code == 200, resp.json
        scheduled(dispatch_id, *args)

    monkeypatch.setattr(routing, "schedule_escalation", acknowledge_first)
    resp = client.post("/api/v1/reports", headers=auth(token_of(county, "reporter 张秀英")),
                       json={"client_id": "race-0001-ack", "category": "OTHER",
                             "grid_code": cell_code(0, 0, 0)})
    run_jobs()
    report = Report.objects(code=resp.json["code"]).first()
    assert report.status == "acknowledged"
    assert (report.station_code, report.cell_code) == ("530627-WF", cell_code(0, 0, 0))
    assert report.routed_at is not None
    assert report.case_id is not None

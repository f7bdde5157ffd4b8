"""Lanes: an SMS, a critical clue and the sweeper never wait behind a routing backlog.

Real `safegrid worker --lane …` processes, as `make run` starts them
(`Stack.lanes`), on the test's Redis and SecantusDB. Order of completion is
checked, never wall time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from rq.job import Job

from deploy.processes import Stack, app_env
from gateway.delivery import queues
from gateway.delivery.routing import sweep
from gateway.extensions import redis_store
from gateway.intake.inbound_sms import receive
from gateway.intake.reports import NewReport, file_report
from gateway.records.people import Reporter
from gateway.records.reports import Report
from grid.documents import GridCell
from sms.providers import InboundSms
from sms.records import InboundMessage

pytestmark = pytest.mark.e2e

BACKLOG = 240  # urgent and routine reports queued before the SMS and the critical one
REGISTERED = "+8613800001001"  # 张秀英, grid worker


@pytest.fixture
def env(settings, county) -> dict[str, str]:
    return app_env(settings.mongodb_uri, settings.redis_url, settings.data_keys,
                   SAFEGRID_CASE_WINDOW_S="1")


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "logs")
    try:
        yield stack
    finally:
        stack.stop()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def listening(pid: int) -> bool:
    from rq import Worker

    return any(w.pid == pid for w in Worker.all(connection=redis_store.conn))


def test_sms_critical_and_sweeper_finish_before_a_routing_backlog_drains(env, stack, county):
    reporter = str(Reporter.objects(role="grid_worker").first().id)
    cells = [c.code for c in GridCell.objects.only("code")]
    backlog = []
    for i in range(BACKLOG):  # urgent and routine, every cell: a flood's routing backlog
        doc, _ = file_report(NewReport(reporter_id=reporter, client_id=f"flood-{i:05d}",
                                       category=("WOMAN", "LABOUR", "ONLINE")[i % 3],
                                       details="可疑", source="app",
                                       grid_code=cells[i % len(cells)]))
        backlog.append(doc["_id"])
    # Then a texted report, a critical clue and the sweeper, all behind the backlog.
    inbound_id, _ = receive("kannel", InboundSms(
        message_id="lane-sms-1", sender=REGISTERED, receiver="10690110",
        text="R 4 砖厂里有几个不会说话的孩子在干活", received_at=None, charset="utf-8",
        coding="0", smsc="fake"))
    critical, _ = file_report(NewReport(reporter_id=reporter, client_id="critical-1",
                                        category="CHILD", details="陌生人抱走男孩",
                                        source="app", grid_code=cells[0]))
    sweeper = queues.queue(queues.MAINTENANCE).enqueue(sweep)
    assert queues.queue(queues.URGENT).count + queues.queue(queues.ROUTINE).count == BACKLOG

    # The lanes `make run` starts (Stack.lanes): the fast one listening first, so the
    # order below does not depend on which process happened to import faster.
    fast = stack.worker(env, name="worker-fast", lane="fast")
    wait_until(lambda: listening(fast.proc.pid), 60, "the fast-lane worker listening")
    for i in range(2):
        stack.worker(env, name=f"worker-route-{i + 1}", lane="route")
    wait_until(lambda: Report.objects(status="received").count() == 0
               and InboundMessage.objects(state="stored").count() == 0, 180,
               "every report routed and the SMS handled")

    routed = sorted(r.routed_at for r in Report.objects(id__in=backlog).only("routed_at"))
    drained = routed[-1]
    sms_done = InboundMessage.objects(id=inbound_id).first().handled_at
    critical_done = Report.objects(id=critical["_id"]).first().routed_at
    sweeper_done = Job.fetch(sweeper.id, connection=redis_store.conn).ended_at
    assert sweeper_done is not None
    sweeper_done = sweeper_done.replace(tzinfo=None)
    for what, done in (("the SMS", sms_done), ("the critical report", critical_done),
                       ("the sweeper", sweeper_done)):
        ahead = sum(1 for r in routed if r < done)
        # Handled while most of the backlog still waited, not after it drained.
        assert done < drained, what
        assert ahead < BACKLOG // 2, (what, ahead)

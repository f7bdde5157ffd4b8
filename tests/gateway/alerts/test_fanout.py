"""Fan-out of an alert: each ring's new recipients, batched, texted once, however it runs."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest
from rq.registry import ScheduledJobRegistry

from gateway import telemetry
from gateway.alerts import fanout
from gateway.alerts.fanout import (
    AlertSend,
    open_ring,
    records_with_state,
    send_batch,
    states,
    sweep_alerts,
)
from gateway.alerts.records import Alert
from gateway.delivery import queues
from gateway.extensions import redis_store
from gateway.privacy import phonebook
from gateway.privacy.audit import AuditEntry
from gateway.records.people import Reporter
from gateway.sample import COUNTY, cell_code
from grid.documents import GridCell
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, cell_centre, sendsms_messages, token_of, with_sms

BEIJING = dt.timezone(dt.timedelta(hours=8))
# Sample people living within 1 km of the middle of cell (0, 0, 0): 张秀英 (its grid
# worker) and 王丽 (a teacher in 城北社区's first column); the rest of the county is further.
NEAR = {"+8613800001001", "+8613800001003"}
OURS = {"+8613900000001": "zh", "+8613900000002": "en", "+8613900000003": "zh"}
PUBLIC_TIPSTERS = {"+8613800001011", "+8613800001012"}


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, sms_rate_per_s=10_000)


@pytest.fixture
def people(county):
    for phone, lang in OURS.items():
        Reporter(phone=phone, name="网格员", role="grid_worker", home_cell=cell_code(0, 0, 1),
                 county_code=COUNTY, language=lang).save()
    # Neither an inactive grid worker nor a public tipster of the cell is texted.
    Reporter(phone="+8613900000009", name="离职", role="grid_worker", active=False,
             home_cell=cell_code(0, 0, 0), county_code=COUNTY).save()
    Reporter(phone="+8613900000008", name="路人", role="public",
             home_cell=cell_code(0, 0, 0), county_code=COUNTY).save()
    return county


def issue(client, county, **extra):
    lat, lon = cell_centre(GridCell.objects.get(code=cell_code(0, 0, 0)).ring)
    body = {"child": {"sex": "male", "age_years": 5, "clothing": "红上衣"},
            "seen_at": (dt.datetime.now(BEIJING) - dt.timedelta(minutes=10)).isoformat(),
            "location": {"lat": lat, "lon": lon}, "place": "城关车站",
            "rings": [{"radius_km": 1, "after_min": 0}, {"radius_km": 10, "after_min": 30}],
            **extra}
    resp = client.post("/api/v1/alerts", headers=auth(token_of(county, "supervisor")), json=body)
    assert resp.status_code == 201, resp.json
    return resp.json["code"]


def texted(sendsms) -> Counter[str]:
    return Counter(to for to, _ in sendsms_messages(sendsms))


def test_the_first_ring_texts_its_cells_once_each_in_their_language(client, people, sendsms):
    code = issue(client, people)
    run_jobs()
    assert texted(sendsms) == Counter(NEAR | set(OURS))
    texts = {to: params["text"] for to, params in sendsms_messages(sendsms)}
    assert re.fullmatch(rf"【寻人{code}】男孩约5岁，红上衣，\d\d:\d\d在城关车站走失。"
                        rf"见到回S{code}\+地点，已找过回OK{code}", texts["+8613800001001"])
    assert f"S{code}" in texts["+8613900000002"]
    assert texts["+8613900000002"] != texts["+8613900000001"]  # English
    assert all(r.params["coding"] == "2" for r in sendsms.requests)
    alert = Alert.objects.get(code=code)
    assert alert.rings[0].sent_at is not None
    assert alert.rings[1].sent_at is None  # scheduled for +30 min
    assert ScheduledJobRegistry(queues.ALERTS, connection=redis_store.conn).get_job_ids() == [
        fanout.ring_job_id(code, 1)]
    assert states(code)["sent"] == len(NEAR | OURS.keys())
    ring = AuditEntry.objects(subject=f"alert:{code}", action="alert.ring").get()
    assert ring.details == {"ring": 0, "radius_km": 1.0, "recipients": 5}
    # The fan-out rate on /metrics counts every message handed to Kannel.
    counted = {name: n for name, _, n in telemetry.read_counters(redis_store.conn)}
    assert counted["alert_recipients"] == len(NEAR | OURS.keys())


def test_the_second_ring_adds_only_new_recipients_and_a_rerun_adds_none(
        client, people, sendsms):
    code = issue(client, people)
    run_jobs()
    first = set(texted(sendsms))
    added = open_ring(code, 1)
    run_jobs()
    counts = texted(sendsms)
    assert max(counts.values()) == 1  # nobody twice across rings
    everyone = {r.phone for r in Reporter.objects(active=True, role__ne="public")}
    assert set(counts) == everyone
    assert added == len(everyone - first)
    assert not set(counts) & (PUBLIC_TIPSTERS | {"+8613900000008", "+8613900000009"})
    # A ring job run twice, a batch job run twice: nothing more.
    assert open_ring(code, 1) == 0
    assert open_ring(code, 0) == 0
    for batch in AlertSend.objects(alert_code=code).distinct("batch"):
        assert send_batch(batch) == 0
    run_jobs()
    assert texted(sendsms) == counts


def test_one_job_per_batch_not_per_phone(client, people, sendsms, monkeypatch):
    monkeypatch.setattr(fanout, "BATCH_SIZE", 2)
    code = issue(client, people)
    assert open_ring(code, 0) == 5
    batches = AlertSend.objects(alert_code=code).distinct("batch")
    assert len(batches) == 3  # five recipients, two a batch
    jobs = queues.queue(queues.ALERTS).get_job_ids()
    assert sorted(jobs) == sorted([fanout.ring_job_id(code, 0)]
                                  + [fanout.batch_job_id(b) for b in batches])
    run_jobs()  # the queued copy of the ring job adds nobody and queues no batch again
    assert sum(texted(sendsms).values()) == 5


def test_a_worker_killed_mid_batch_loses_nobody_and_texts_nobody_twice(
        client, people, sendsms):
    code = issue(client, people)
    # The ring job ran; its batch job was taken by a worker that died after claiming the
    # batch and texting two people (their records say sent), and Redis lost the job.
    open_ring(code, 0)
    batch = AlertSend.objects(alert_code=code).first().batch
    token, doc, claimed = fanout._claim(batch)
    assert len(claimed) == 5
    done = [c["_id"] for c in claimed[:2]]
    fanout.AlertBatch.objects(id=batch).update(push_all__sent=done)
    redis_store.conn.flushdb()
    assert sweep_alerts(0) == 0  # the dead worker's lease has not expired yet
    fanout.AlertBatch.objects(id=batch).update(set__sending_until=dt.datetime(2000, 1, 1))
    assert sweep_alerts(0) == 1
    assert sweep_alerts(0) == 0  # already waiting: not queued twice
    run_jobs()
    assert sum(texted(sendsms).values()) == 3
    assert states(code)["sent"] == 5


def test_a_worker_killed_after_kannel_answered_texts_nobody_again(
        client, people, sendsms, monkeypatch):
    # What a request got through is on the batch as soon as Kannel answers: a worker
    # killed before the batch's last write (here, in it) leaves nothing to send twice.
    code = issue(client, people)
    open_ring(code, 0)
    [batch] = AlertSend.objects(alert_code=code).distinct("batch")

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(fanout, "_record", killed)
    with pytest.raises(RuntimeError, match="worker killed"):
        send_batch(batch)
    monkeypatch.undo()
    assert sum(texted(sendsms).values()) == 5
    assert states(code)["sent"] == 5  # recorded request by request
    redis_store.conn.flushdb()
    fanout.AlertBatch.objects(id=batch).update(set__sending_until=dt.datetime(2000, 1, 1))
    assert sweep_alerts(0) == 1  # still open: its last write never happened
    run_jobs()
    assert sum(texted(sendsms).values()) == 5  # nobody twice
    assert fanout.AlertBatch.objects.get(id=batch).open is False


def test_the_sweeper_sends_a_due_ring_whose_scheduled_job_redis_lost(client, people, sendsms):
    code = issue(client, people)
    run_jobs()
    redis_store.conn.flushdb()  # Redis restarted empty: the +30 min job is gone
    assert sweep_alerts(0) == 0  # not due yet
    Alert.objects(code=code).update_one(set__rings__1__due_at=dt.datetime(2000, 1, 1))
    assert sweep_alerts(0) == 1
    run_jobs()
    assert Alert.objects.get(code=code).rings[1].sent_at is not None
    assert max(texted(sendsms).values()) == 1
    assert len(texted(sendsms)) > len(NEAR | OURS.keys())


def test_an_ended_alert_stops_widening_and_unsent_batches_are_withdrawn(
        client, people, sendsms):
    code = issue(client, people)
    open_ring(code, 0)  # recorded and queued, not yet sent
    supervisor = auth(token_of(people, "supervisor"))
    assert client.post(f"/api/v1/alerts/{code}/found", headers=supervisor).status_code == 200
    run_jobs()
    assert open_ring(code, 1) == 0
    assert texted(sendsms) == Counter()
    assert states(code)["withdrawn"] == 5


def test_a_retryable_kannel_error_leaves_the_record_for_the_sweeper(client, people, sendsms):
    sendsms.status, sendsms.body = 503, "Service unavailable"
    code = issue(client, people)
    run_jobs()
    assert states(code)["queued"] == 5
    sendsms.status, sendsms.body = 202, "0: Accepted for delivery"
    assert sweep_alerts(0) == 1
    run_jobs()
    assert states(code)["sent"] == 5


def test_a_batch_kannel_never_takes_fails_after_its_attempts_and_is_swept_no_more(
        client, people, sendsms):
    sendsms.status, sendsms.body = 503, "Service unavailable"
    code = issue(client, people)
    run_jobs()  # attempt 1
    for _ in range(fanout.MAX_ATTEMPTS - 1):
        assert sweep_alerts(0) == 1
        run_jobs()
    assert states(code) == {"failed": 5}
    [batch] = fanout.AlertBatch.objects(alert_code=code)
    assert (batch.open, batch.runs, batch.last_error) == (False, fanout.MAX_ATTEMPTS,
                                                          "retryable")
    assert sweep_alerts(0) == 0
    assert len(sendsms.requests) == 2 * fanout.MAX_ATTEMPTS  # a zh and an en request a run


def test_receivers_kannel_names_as_failed_are_sent_again_and_only_they(
        client, people, sendsms):
    # One request per language carries the batch (a multi-cast); Kannel took all the
    # Chinese text's receivers but one, and the English text's only receiver not at all
    # (a 500 for one receiver names nobody: it is tried again).
    failed = sorted(NEAR)[0]
    english = next(phone for phone, lang in OURS.items() if lang == "en")
    sendsms.status, sendsms.body = 500, f"Sending failed. Failed receivers are: {failed}"
    code = issue(client, people)
    run_jobs()
    assert sorted(len(r.params["to"].split()) for r in sendsms.requests) == [1, 4]
    left = {r["phone_index"] for r in records_with_state(code, fields=("phone_index",))
            if r["state"] == "queued"}
    assert left == {phonebook.phone_index(p) for p in (failed, english)}
    assert states(code)["sent"] == 3
    sendsms.status, sendsms.body = 202, "0: Accepted for delivery"
    assert sweep_alerts(0) == 1
    run_jobs()
    assert sorted(to for to, _ in sendsms_messages(sendsms)[5:]) == sorted([failed, english])
    assert states(code)["sent"] == 5


def test_a_batch_takes_the_carriers_rate_a_slice_at_a_time_never_more_than_it_allows(
        monkeypatch, app):
    from gateway.delivery import outbound_sms

    monkeypatch.setattr(outbound_sms.time, "time", lambda: 1_000_000.5)  # one second
    key = outbound_sms.RATE_KEY.format(second=1_000_000)
    assert outbound_sms.take_slots(10, 6) == 6
    assert outbound_sms.take_slots(10, 6) == 4  # what is left of the second
    assert int(redis_store.conn.get(key)) == 10  # the refused part given back

"""Nothing lost under faults: RQ workers `kill -9`ed at random moments and Redis crashed
mid-load, with real gunicorn, RQ workers, `safegrid cron`, Redis and SecantusDB.

A smaller run of bench/faults.py (which has the full 500-report drill). The seed
is printed; set SAFEGRID_DRILL_SEED to replay a failing run's fault timings.
"""

from __future__ import annotations

import os

import pytest

from bench.faults import run_fault_drill

pytestmark = pytest.mark.e2e

REPORTS = 120


@pytest.mark.timeout(420)  # start-up, ~8 s of load, up to 120 s to settle, the inbox reads
def test_no_report_lost_or_duplicated_when_workers_are_killed_and_redis_restarts(tmp_path):
    seed = os.environ.get("SAFEGRID_DRILL_SEED")
    result = run_fault_drill(tmp_path, reports=REPORTS, rate_per_s=15.0, kills=10,
                             redis_restart=True, seed=int(seed) if seed else None,
                             settle_timeout_s=120.0)
    summary = result.summary()
    print(summary)

    # The faults really happened.
    assert result.kills >= 10, summary
    assert result.redis_restarts == 1, summary
    # Every report was acknowledged (503s retried with the same client_id) and stored once.
    assert result.not_acknowledged == 0, summary
    assert result.sent_201 + result.answered_200 == REPORTS, summary
    assert result.unique_reports_stored == REPORTS, summary
    assert result.reports_stored_twice == 0, summary
    # Routed, each to exactly the stations the rules name, once each, and delivered.
    assert result.losses == 0, summary
    assert result.duplicates == 0, summary
    assert result.unexpected_dispatches == 0, summary
    assert result.undelivered == [], summary
    assert result.settled_s is not None, summary
    # In each responsible station's inbox: in the store, and as the inbox API lists it.
    assert len(result.expected_pairs) == result.expected_dispatches
    not_in_store = [(code, station) for code, station in result.expected_pairs
                    if code not in result.db_inbox.get(station, set())]
    not_listed = [(code, station) for code, station in result.expected_pairs
                  if code not in result.http_inbox.get(station, set())]
    assert not_in_store == [], summary
    assert not_listed == [], summary


@pytest.mark.timeout(420)  # start-up, ~10 s of SMS, up to 120 s to settle
def test_no_sms_lost_or_handled_twice_when_workers_are_killed_and_redis_restarts(tmp_path):
    """The SMS leg of bench/faults.py, smaller: inbound SMS through the webhook (first
    messages of new numbers racing), both lanes' workers killed, Redis crashed."""
    from bench.faults_sms import run_sms_drill

    seed = os.environ.get("SAFEGRID_DRILL_SEED")
    result = run_sms_drill(tmp_path, messages=100, rate_per_s=10.0, kills=6,
                           redis_restart=True, seed=int(seed) if seed else None,
                           settle_timeout_s=120.0)
    summary = result.summary()
    print(summary)
    assert result.kills >= 6, summary
    assert result.redis_restarts == 1, summary
    assert result.answered == 100, summary
    assert sum(result.outcomes.values()) == 100, summary
    assert result.outcomes["stored"] == 0, summary
    assert result.lost == [], summary
    assert result.twice == [], summary
    assert len(result.resent_after_kill) <= result.kills_mid_send, summary
    assert result.settled_s is not None, summary


def test_a_reply_handed_over_twice_is_excused_only_when_its_sender_died_mid_send():
    """At least once is the contract only for a send cut between the carrier's accept
    and its record; two sends for any other reason stay `twice` in the SMS leg."""
    from bench.faults_sms import _cut_mid_send

    ref, job = "reply-1", "sms-reply-1"
    assert _cut_mid_send([10.0, 41.0], ref, [(10.004, job)]) is not None
    assert _cut_mid_send([10.0, 41.0], ref, []) is None  # nobody was killed
    assert _cut_mid_send([10.0, 41.0], ref, [(10.004, "sms-reply-2")]) is None  # another job
    assert _cut_mid_send([10.0, 41.0], ref, [(9.9, job)]) is None  # killed before it sent
    assert _cut_mid_send([10.0, 10.02], ref, [(10.004, job)]) is None  # claim not expired
    assert _cut_mid_send([10.0, 41.0, 72.0], ref, [(10.004, job)]) is None  # three times


@pytest.mark.timeout(300)  # start-up, the fan-out, a killed batch's lease (30 s)
def test_an_alert_reaches_everyone_when_its_workers_are_killed_and_redis_restarts(tmp_path):
    """The alert leg of bench/faults.py, smaller: an alert to 1,000 grid workers through
    real Kannel and fakesmsc while the workers sending it are killed and Redis crashed;
    nobody missed at the carrier, and texted twice only what was in flight at a kill."""
    from bench.faults_alert import run_alert_drill

    seed = os.environ.get("SAFEGRID_DRILL_SEED")
    result = run_alert_drill(tmp_path, people=1000, kills=4, redis_restart=True,
                             seed=int(seed) if seed else None, rate_per_s=150,
                             settle_timeout_s=150.0)
    summary = result.summary()
    print(summary)
    assert result.kills >= 4, summary
    assert result.redis_restarts == 1, summary
    assert result.seconds is not None, summary
    assert result.missed == 0, summary
    assert 0 <= result.extra <= result.bound, summary

"""An update, found or cancel reaches everyone the alert reached, once each."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.alerts.fanout import followup, states, sweep_alerts
from gateway.extensions import redis_store
from tests.gateway.alerts.test_fanout import NEAR, issue, texted
from tests.gateway.api.test_reports_api import run_jobs
from tests.gateway.intake.test_inbound_sms import SECRET, mo
from tests.helpers import auth, sendsms_messages, token_of, with_sms

STRANGER = "+8613912345678"


@pytest.fixture
def settings(settings, sendsms):  # type: ignore[override]
    return with_sms(settings, sendsms, SECRET, kannel_password="pw", sms_rate_per_s=10_000)


def texts(sendsms, phone: str) -> list[str]:
    return [params["text"] for to, params in sendsms_messages(sendsms) if to == phone]


def test_an_update_then_found_reach_everyone_reached_and_thank_who_answered(
        client, county, sendsms):
    code = issue(client, county)
    run_jobs()
    mo(client, f"S{code} 城关车站看到", sender=STRANGER)  # never texted: a public sighting
    run_jobs()
    supervisor = auth(token_of(county, "supervisor"))
    assert client.post(f"/api/v1/alerts/{code}/update", headers=supervisor,
                       json={"text": "改穿蓝色外套"}).status_code == 200
    run_jobs()
    for phone in NEAR:
        assert texts(sendsms, phone)[-1] == f"【寻人{code}更新】改穿蓝色外套。见到回S{code}+地点"
    assert not any("更新" in t for t in texts(sendsms, STRANGER))
    assert client.post(f"/api/v1/alerts/{code}/found", headers=supervisor).status_code == 200
    run_jobs()
    thanks = f"【寻人{code}】孩子已找到，感谢您的协助！无需再回复。"
    for phone in NEAR | {STRANGER}:
        assert texts(sendsms, phone).count(thanks) == 1
    # Run again (a retry, the sweeper): nobody texted twice.
    before = texted(sendsms)
    assert followup(code, "found") == 0
    assert followup(code, "update-1") == 0
    run_jobs()
    assert texted(sendsms) == before


def test_cancel_reaches_those_reached_and_the_sweeper_sends_a_lost_followup(
        client, county, sendsms):
    code = issue(client, county)
    run_jobs()
    client.post(f"/api/v1/alerts/{code}/cancel", headers=auth(token_of(county, "supervisor")),
                json={"reason": "家长已联系上孩子"})
    redis_store.conn.flushdb()  # the follow-up job is lost before it ran
    assert sweep_alerts(0) == 1
    assert sweep_alerts(0) == 0  # waiting already
    run_jobs()
    assert states(code, "cancel")["sent"] == 2
    counts = Counter(to for to, params in sendsms_messages(sendsms)
                     if "协查已撤销" in params["text"])
    assert counts == Counter(NEAR)
    assert sweep_alerts(0) == 0  # done: not again

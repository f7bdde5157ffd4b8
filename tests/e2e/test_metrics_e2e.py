"""/metrics scraped from real processes after real traffic: the counters match what was done.

Two gunicorn processes take app reports (so the numbers must add up across processes),
Kannel with fakesmsc carries a texted report, its receipt, the duty-phone notices and
their delivery reports, the RQ workers of both lanes route and send. Then /metrics,
scraped over HTTP with the token, must agree with what MongoDB holds.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from deploy.processes import Stack
from gateway.records.reports import Report
from gateway.sample import cell_code
from sms.records import OutboundMessage
from tests.e2e.sms_app import SHORT_CODE, start_sms_app
from tests.helpers import auth, token_of

pytestmark = pytest.mark.e2e

TOKEN = "e2e-metrics-token-0123456789abcdef"
APP_REPORTS = 6


@pytest.fixture
def stack_with_sms(settings, county, tmp_path):
    stack = Stack(tmp_path / "logs")
    try:
        app = start_sms_app(stack, settings, web_workers=2, SAFEGRID_METRICS_TOKEN=TOKEN)
        yield stack, app.base_url, app.carrier
    finally:
        stack.stop()


def wait_until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    resp = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10)
    assert resp.status_code == 200, resp.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def total(found: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items()
               if n == name and all(dict(ls).get(k) == want for k, want in labels.items()))


def test_metrics_after_real_traffic_match_the_store(stack_with_sms, county):
    stack, base, carrier = stack_with_sms
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
    reporter = auth(token_of(county, "reporter 张秀英"))
    request_ids = []
    with requests.Session() as session:
        for i in range(APP_REPORTS):
            rid = f"e2e-metrics-{i:04d}-{uuid.uuid4().hex[:8]}"
            body = {"client_id": f"e2e-{uuid.uuid4()}", "category": "CHILD" if i % 2 else "WOMAN",
                    "details": "穿红衣男孩被抱上面包车", "grid_code": cell_code(1, 0, 0)}
            resp = session.post(f"{base}/api/v1/reports", json=body,
                                headers={**reporter, "X-Request-Id": rid}, timeout=10)
            assert resp.status_code == 201, resp.text
            assert resp.headers["X-Request-Id"] == rid
            request_ids.append(rid)
            # Each new connection may land on the other gunicorn process.
            session.close()
    carrier.send_mo("+8613800001003", SHORT_CODE, "举报 拐卖儿童 校门口陌生人抱走一个哭闹的女孩",
                    ucs2=True)

    wait_until(lambda: Report.objects(status="received").count() == 0
               and Report.objects.count() == APP_REPORTS + 1)
    # Every SMS sent and its delivery report back (fakesmsc acknowledges each).
    wait_until(lambda: OutboundMessage.objects.count() > 0
               and OutboundMessage.objects(state__in=("queued", "sent")).count() == 0)
    found = scrape(base)

    assert total(found, "safegrid_reports_total", channel="app") == APP_REPORTS
    assert total(found, "safegrid_reports_total", channel="app", category="child") == 3
    assert total(found, "safegrid_reports_total", channel="sms") == 1
    assert found[("safegrid_intake_seconds_count", ())] == APP_REPORTS
    assert found[("safegrid_route_seconds_count", ())] == APP_REPORTS + 1
    assert total(found, "safegrid_sms_sent_total") == OutboundMessage.objects(
        state__in=("sent", "delivered", "failed"), sent_at__ne=None).count()
    assert total(found, "safegrid_sms_delivered_total") == OutboundMessage.objects(
        state="delivered").count() > 0
    assert total(found, "safegrid_sms_failed_total") == OutboundMessage.objects(
        state="failed").count()
    assert total(found, "safegrid_rq_queue_depth", queue="critical") == 0
    assert ("safegrid_dispatches_overdue", ()) in found

    # The request id travelled into the route job and the worker logged it (JSON lines).
    logs = [json.loads(line) for s in stack.services
            if s.name.startswith("worker") and s.log_path
            for line in s.log_path.read_text(errors="replace").splitlines()
            if line.startswith("{")]
    routed = {line["request_id"] for line in logs
              if line["message"].startswith("routed to") and line["job_id"]}
    assert set(request_ids) <= routed

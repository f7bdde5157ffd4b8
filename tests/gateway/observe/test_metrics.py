"""/metrics: the token or loopback guard, and numbers that match what was done."""

from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq.job import Job

from gateway import jsonlog, telemetry
from gateway.app import create_app
from gateway.delivery import queues
from gateway.delivery.outbound_sms import record_delivery
from gateway.extensions import redis_store
from gateway.sample import cell_code
from gateway.worker import TracedWorker
from sms.providers import DeliveryReport
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, token_of, with_sms

TOKEN = "metrics-test-token-0123456789"


@pytest.fixture
def metrics_client(settings, app, sendsms):
    app = create_app(with_sms(settings, sendsms, metrics_token=TOKEN))
    return app.test_client()


def scrape(client, **headers) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.get_data(as_text=True))
            for s in family.samples}


def file(client, county, client_id: str, category: str = "CHILD"):
    headers = {**auth(token_of(county, "reporter 张秀英")), "X-Request-Id": "req-abcdef-0001"}
    resp = client.post("/api/v1/reports", json={"client_id": client_id, "category": category,
                                               "details": "穿红衣男孩被抱上面包车",
                                               "grid_code": cell_code(1, 0, 0)},
                       headers=headers)
    assert resp.status_code in (200, 201), resp.json
    return resp


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer "])
def test_metrics_refuses_a_missing_or_wrong_token(metrics_client, header):
    headers = {"Authorization": header} if header else {}
    resp = metrics_client.get("/metrics", headers=headers)
    assert resp.status_code == 401
    assert resp.json["code"] == 401
    assert "WWW-Authenticate" in resp.headers


def test_without_a_token_metrics_answers_loopback_only(client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    far = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert far.status_code == 403
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403


def test_reports_and_latencies_are_counted_once_per_new_report(metrics_client, county):
    file(metrics_client, county, "app-metrics-0001")
    file(metrics_client, county, "app-metrics-0001")  # a retry: the same report
    file(metrics_client, county, "app-metrics-0002", category="WOMAN")
    before = scrape(metrics_client)
    key = ("safegrid_reports_total", (("category", "child"), ("channel", "app")))
    assert before[key] == 1
    assert before[("safegrid_reports_total",
                   (("category", "woman"), ("channel", "app")))] == 1
    assert before[("safegrid_intake_seconds_count", ())] == 2
    assert before[("safegrid_rq_queue_depth", (("queue", "critical"),))] >= 1
    assert before[("safegrid_rq_oldest_job_age_seconds", (("queue", "critical"),))] >= 0
    assert before[("safegrid_route_seconds_count", ())] == 0
    run_jobs()
    after = scrape(metrics_client)
    assert after[("safegrid_route_seconds_count", ())] == 2
    assert after[("safegrid_route_seconds_bucket", (("le", "+Inf"),))] == 2
    assert after[("safegrid_rq_queue_depth", (("queue", "critical"),))] == 0


def test_oldest_job_age_reads_the_queue_head(metrics_client, county):
    file(metrics_client, county, "app-metrics-0003")
    head = redis_store.conn.lindex(queues.queue("critical").key, 0).decode()
    redis_store.conn.hset(Job.key_for(head), "enqueued_at", "2020-01-01T00:00:00.000000Z")
    age = scrape(metrics_client)[("safegrid_rq_oldest_job_age_seconds", (("queue", "critical"),))]
    assert age > 3 * 365 * 86400


def test_delivery_reports_count_once(metrics_client, county):
    from gateway.delivery.outbound_sms import queue_sms

    queue_sms("+8613800001004", "测试", "notice", ref="metrics-ref-1")
    queue_sms("+8613800001005", "测试", "notice", ref="metrics-ref-2")
    for ref, status in (("metrics-ref-1", "delivered"), ("metrics-ref-1", "delivered"),
                        ("metrics-ref-2", "failed")):
        record_delivery(DeliveryReport(ref=ref, status=status, smsc_id=None, answer=None))
    found = scrape(metrics_client)
    assert found[("safegrid_sms_delivered_total", ())] == 1
    assert found[("safegrid_sms_failed_total", (("reason", "dlr_failed"),))] == 1


def test_label_values_never_carry_free_text():
    assert telemetry.label_value("+8613800001004") == "other"
    assert telemetry.label_value("陈建华") == "other"
    assert telemetry.label_value("CHILD") == "child"
    with pytest.raises(ValueError, match="unknown counter"):
        telemetry.series("reports_by_phone", {})


def test_request_id_is_echoed_queued_and_logged(metrics_client, county):
    resp = file(metrics_client, county, "app-metrics-0004")
    assert resp.headers["X-Request-Id"] == "req-abcdef-0001"
    head = redis_store.conn.lindex(queues.queue("critical").key, 0).decode()
    assert Job.fetch(head, connection=redis_store.conn).meta["request_id"] == "req-abcdef-0001"


@pytest.mark.parametrize("sent", [None, "13800001004", "+86 138 0000 1004", "a b", "x" * 200])
def test_an_odd_request_id_is_replaced(metrics_client, sent):
    headers = {"X-Request-Id": sent} if sent is not None else {}
    got = metrics_client.get("/healthz", headers=headers).headers["X-Request-Id"]
    assert got != sent
    assert len(got) == 32


def test_json_log_lines_carry_ids_and_no_personal_data():
    jsonlog.request_id.set("req-abcdef-0002")
    jsonlog.job_id.set("route-123")
    record = logging.LogRecord("gateway.x", logging.INFO, __file__, 1, "routed to %s", ("S1",),
                               None)
    record.report_id = "64f0c0ffee"
    line = json.loads(jsonlog.JsonFormatter().format(record))
    assert line["request_id"] == "req-abcdef-0002"
    assert line["job_id"] == "route-123"
    assert line["report_id"] == "64f0c0ffee"
    assert line["message"] == "routed to S1"
    assert set(line) == {"time", "level", "logger", "message", "request_id", "job_id",
                         "report_id"}


class TracedBurstWorker(TracedWorker):
    """The worker's job wrapper, in a burst, without RQ's command channel (see BurstWorker)."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def test_the_worker_logs_the_request_id_and_job_id_of_the_route_job(metrics_client, county):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(jsonlog.JsonFormatter())
    logger = logging.getLogger("gateway")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        file(metrics_client, county, "app-metrics-0005")
        jsonlog.request_id.set(None)  # the test's own context is not the worker's
        TracedBurstWorker([queues.queue(n) for n in queues.WORKER_QUEUES],
                          connection=redis_store.conn).work(burst=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    routed = [line for line in lines if line["message"].startswith("routed to")]
    assert routed, lines
    assert routed[0]["request_id"] == "req-abcdef-0001"
    assert routed[0]["job_id"].startswith("route-")
    assert "report_id" in routed[0]
    assert jsonlog.request_id.get() is None  # reset after the job
    for text in ("13800001004", "张秀英", "面包车"):
        assert text not in stream.getvalue()


def test_geocoder_cache_hits_and_misses_are_counted(settings, county, sendsms):
    from gateway import startup
    from grid.documents import GridCell
    from tests.fakes import recording_server
    from tests.helpers import cell_centre

    cell = GridCell.objects(code=cell_code(1, 2, 1)).first()
    lat, lon = cell_centre(cell.ring)
    answer = [{"lat": str(lat), "lon": str(lon), "display_name": "镇雄客运站",
               "boundingbox": [str(lat - 0.001), str(lat + 0.001), str(lon - 0.001),
                               str(lon + 0.001)], "class": "amenity", "type": "bus_station"}]
    reporter = auth(token_of(county, "reporter 张秀英"))
    with recording_server(status=200, body=json.dumps(answer)) as nominatim:
        app = create_app(with_sms(settings, sendsms, metrics_token=TOKEN,
                                  geocoder_url=nominatim.url, geocoder_min_delay_s=0.01))
        client = app.test_client()
        for client_id in ("app-geo-0001", "app-geo-0002"):  # the same text twice
            resp = client.post("/api/v1/reports", headers=reporter, json={
                "client_id": client_id, "category": "WOMAN",
                "details": "客运站候车室有人拉着哭泣女子"})
            assert resp.status_code == 201
            run_jobs()
        startup.configure(settings)
    assert len(nominatim.requests) == 1  # the second came from the cache
    found = scrape(client)
    assert found[("safegrid_geocoder_cache_total", (("result", "miss"),))] == 1
    assert found[("safegrid_geocoder_cache_total", (("result", "hit"),))] == 1

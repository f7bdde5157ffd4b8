"""End to end with real processes: gunicorn, RQ workers, Redis and SecantusDB.

A report posted to gunicorn over HTTP is routed by a separate `safegrid worker`
process and appears in the station's inbox; killing the worker with SIGKILL
while reports are queued loses none of them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from deploy.processes import Stack, app_env
from gateway.records.reports import Report
from gateway.sample import cell_code
from grid.documents import Dispatch, GridCell
from tests.helpers import auth, cell_centre, token_of

pytestmark = pytest.mark.e2e


@pytest.fixture
def running(settings, county, tmp_path) -> Iterator[tuple[Stack, str, dict[str, str]]]:
    """gunicorn and one RQ worker on the test's stores, with the sample county loaded."""
    env = app_env(settings.mongodb_uri, settings.redis_url, settings.data_keys,
                  SAFEGRID_SWEEP_AFTER_S="1")
    stack = Stack(tmp_path / "logs")
    try:
        web = stack.gunicorn(env, workers=2, threads=2)
        stack.worker(env)
        yield stack, f"http://127.0.0.1:{web.port}", env
    finally:
        stack.stop()


def wait_until(predicate, timeout: float = 15.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


def test_gps_report_reaches_the_station_inbox_and_is_acknowledged(running, county):
    _, base, _ = running
    cell = GridCell.objects(code=cell_code(1, 3, 2)).first()
    lat, lon = cell_centre(cell.ring)
    reporter = auth(token_of(county, "reporter 王丽"))
    officer = auth(token_of(county, "officer 南台派出所"))
    body = {"client_id": f"e2e-{uuid.uuid4()}", "category": "CHILD",
            "details": "校门口陌生人带走一名哭闹的女孩", "location": {"lat": lat, "lon": lon}}

    started = time.monotonic()
    resp = requests.post(f"{base}/api/v1/reports", json=body, headers=reporter, timeout=10)
    assert resp.status_code == 201, resp.text
    code = resp.json()["code"]

    def in_inbox():
        got = requests.get(f"{base}/api/v1/stations/530627-NT/dispatches", headers=officer,
                           timeout=10).json()
        return [d for d in got if d["report_code"] == code]

    [dispatch] = wait_until(in_inbox)
    delay = time.monotonic() - started
    print(f"report {code} in the inbox after {delay:.3f} s")
    assert dispatch["cell_code"] == cell.code
    assert dispatch["priority"] == "critical"

    again = requests.post(f"{base}/api/v1/reports", json=body, headers=reporter, timeout=10)
    assert again.status_code == 200
    assert again.json()["code"] == code

    ack = requests.post(f"{base}/api/v1/dispatches/{dispatch['id']}/acknowledge",
                        headers=officer, timeout=10)
    assert ack.status_code == 200, ack.text
    mine = requests.get(f"{base}/api/v1/reports/{code}", headers=reporter, timeout=10).json()
    assert mine["status"] == "acknowledged"
    assert Report.objects(code=code).count() == 1
    assert Dispatch.objects(report_code=code, station_code="530627-NT").count() == 1

    # The access log names routes, never the report code or the dispatch id in a path.
    stack = running[0]
    [web] = [s for s in stack.services if s.name.startswith("gunicorn")]
    ack_route = "/api/v1/dispatches/<string:dispatch_id>/acknowledge"
    mine_line = '"GET /api/v1/reports/<string:code>" 200'
    # gunicorn writes a request's line after answering it: wait for the last one (the GET
    # of the report, made after the acknowledgement).
    def logged() -> str | None:
        # One JSON object a line (deploy/logging.json): the access line is its message.
        text = "\n".join(json.loads(line)["message"] for line in
                         web.log_path.read_text(encoding="utf-8").splitlines() if line.strip())
        return text if ack_route in text and mine_line in text else None

    access = wait_until(logged)
    assert mine_line in access
    assert "/api/v1/dispatches/<string:dispatch_id>/acknowledge" in access
    assert code not in access
    assert dispatch["id"] not in access


def test_killing_the_worker_loses_no_queued_report(running, county):
    stack, base, env = running
    reporter = auth(token_of(county, "reporter 赵敏"))
    [worker] = [s for s in stack.services if s.name == "worker"]
    worker.kill()

    codes = []
    for i in range(12):
        resp = requests.post(f"{base}/api/v1/reports", headers=reporter, timeout=10, json={
            "client_id": f"kill-{i:03d}-{uuid.uuid4().hex[:8]}", "category": "WOMAN",
            "grid_code": cell_code(i % 3, i % 4, i % 4)})
        assert resp.status_code == 201, resp.text
        codes.append(resp.json()["code"])
    time.sleep(0.5)
    assert Report.objects(code__in=codes, status="received").count() == len(codes)

    stack.worker(env, name="worker-2")
    wait_until(lambda: Report.objects(code__in=codes, status="routed").count() == len(codes))
    for code in codes:
        assert Dispatch.objects(report_code=code).count() == 1  # WOMAN: the station only

"""Slow clients cannot hold the embedded default (gunicorn as `make run` starts it).

Fifty connections send their headers and one byte of a 1,000-byte body, then
wait. Meanwhile a reporter files a report and a load balancer asks /healthz:
both are answered. With threads that read bodies (gunicorn's gthread worker,
8 threads in all) both would wait for as long as the slow clients like.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
import requests

from deploy.processes import Stack, app_env
from tests.helpers import auth, token_of

pytestmark = pytest.mark.e2e

SLOW_CLIENTS = 50


@pytest.fixture
def web(settings, county, tmp_path) -> Iterator[str]:
    env = app_env(settings.mongodb_uri, settings.redis_url, settings.data_keys)
    stack = Stack(tmp_path / "logs")
    try:
        yield f"http://127.0.0.1:{stack.gunicorn(env).port}"  # make run's settings
    finally:
        stack.stop()


def hold(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    return sock


def test_fifty_slow_bodies_do_not_hold_a_report_or_the_health_check(web, county):
    port = int(web.rsplit(":", 1)[1])
    slow = [hold(port) for _ in range(SLOW_CLIENTS)]
    try:
        health = requests.get(f"{web}/healthz", timeout=15)
        assert health.status_code == 200
        body = {"client_id": f"slow-{uuid.uuid4()}", "category": "CHILD",
                "details": "车站有人带着一个哭闹的孩子"}
        resp = requests.post(f"{web}/api/v1/reports", json=body, timeout=15,
                             headers=auth(token_of(county, "reporter 王丽")))
        assert resp.status_code == 201, resp.text
    finally:
        for sock in slow:
            sock.close()

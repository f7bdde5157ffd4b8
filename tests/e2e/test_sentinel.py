"""Redis behind Sentinel: the API, the RQ workers and the rate limiter find the master
through three real sentinels, keep working across a failover, and a sentinel set that
names no master is said plainly (log, and /readyz 503 with a reason).

Real processes: a redis-server master, a replica, three `redis-server --sentinel`, gunicorn
and a `safegrid worker`, on the test's SecantusDB.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis as redis_lib
import requests

from deploy.processes import Stack, app_env
from gateway.app import create_app
from gateway.extensions import limiter_storage, redis_store
from gateway.records.reports import Report
from gateway.sample import cell_code
from gateway.settings import Settings, from_env, sentinel_addresses
from grid.documents import Dispatch, GridCell
from tests.helpers import auth, cell_centre, token_of

pytestmark = pytest.mark.e2e

MASTER = "safegrid"


@dataclass
class Sentinels:
    stack: Stack
    master_port: int
    replica_port: int
    addresses: str  # REDIS_SENTINELS

    def sentinel(self) -> redis_lib.Redis:
        host, port = sentinel_addresses(self.addresses)[0]
        return redis_lib.Redis(host=host, port=port, socket_timeout=2)


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except (redis_lib.RedisError, requests.RequestException):
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def role(port: int) -> str:
    return str(redis_lib.Redis(port=port, socket_timeout=2).info("replication")["role"])


@pytest.fixture
def sentinels(tmp_path) -> Iterator[Sentinels]:
    stack = Stack(tmp_path / "redis-ha")
    try:
        master = stack.redis()
        replica = stack.redis(replica_of=master.port)
        wait_until(lambda: redis_lib.Redis(port=replica.port).info("replication")
                   ["master_link_status"] == "up", 20, "the replica did not sync")
        ports = [stack.sentinel(master.port, MASTER).port for _ in range(3)]
        ha = Sentinels(stack, master.port, replica.port,
                       ",".join(f"127.0.0.1:{p}" for p in ports))
        # Each sentinel must know the replica (from the master's INFO) and the other two
        # (from their hellos) before a failover can pick the replica.
        for port in ports:
            one = redis_lib.Redis(port=port, socket_timeout=2)
            wait_until(lambda one=one: one.sentinel_slaves(MASTER), 20,
                       "a sentinel did not see the replica")
            wait_until(lambda one=one: len(one.sentinel_sentinels(MASTER)) == 2, 20,
                       "a sentinel did not see the other two")
        yield ha
    finally:
        stack.stop()


@pytest.fixture
def settings(settings: Settings, sentinels: Sentinels) -> Settings:
    """The test's settings, with Redis reached only through the sentinels."""
    return settings.with_(redis_url="redis://sentinel-names-the-host/0",
                          redis_sentinels=sentinels.addresses, redis_master=MASTER)


def test_sentinels_are_read_from_the_environment():
    s = from_env({"REDIS_SENTINELS": "h1:26379, h2:26380,h3", "SAFEGRID_REDIS_MASTER": "sg"})
    assert sentinel_addresses(s.redis_sentinels) == [("h1", 26379), ("h2", 26380),
                                                     ("h3", 26379)]
    assert s.redis_master == "sg"
    assert from_env({}).redis_master == "safegrid"
    with pytest.raises(ValueError, match="REDIS_SENTINELS"):
        from_env({"REDIS_SENTINELS": "h1:26379,h2:port"})


def test_rate_limiter_counts_on_the_master_the_sentinels_name(settings):
    uri, options = limiter_storage(settings)
    assert uri == f"redis+sentinel://{settings.redis_sentinels}/{MASTER}"
    assert options["use_replicas"] is False
    assert options["db"] == 0


def test_app_readyz_and_limiter_use_the_master_through_sentinel(app, client, sentinels):
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.json
    assert resp.json["reasons"] == {}
    # The process's connection is on the master the sentinels name, not on the replica.
    redis_store.conn.set("safegrid:probe", "1")
    assert redis_lib.Redis(port=sentinels.master_port).get("safegrid:probe") == b"1"
    # The login limiter counts in the same Redis through Sentinel: its keys are there.
    for _ in range(3):
        client.get("/api/v1/reports/R0000000", headers=auth("made-up-token"))
    keys = redis_lib.Redis(port=sentinels.master_port).keys("LIMITS*")
    assert keys, "the rate limiter wrote nothing to the master"


def test_no_master_is_said_in_the_log_and_readyz_is_503(settings, caplog):
    lost = settings.with_(redis_master="no-such-master")
    with caplog.at_level(logging.ERROR, logger="gateway"):
        app = create_app(lost)
    assert any("names a master called 'no-such-master'" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["status"] == "not ready"
    assert resp.json["reasons"] == {"redis": "no-master"}
    assert "no-such-master" in resp.json["checks"]["redis"]
    assert resp.json["checks"]["mongodb"] == "ok"


def test_no_sentinel_answering_is_no_master_too(settings, sentinels):
    dead = settings.with_(redis_sentinels="127.0.0.1:1")
    resp = create_app(dead).test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["reasons"]["redis"] == "no-master"


def test_report_is_routed_through_sentinel_and_after_a_failover(settings, county, sentinels):
    env = app_env(settings.mongodb_uri, settings.redis_url, settings.data_keys,
                  REDIS_SENTINELS=settings.redis_sentinels, SAFEGRID_REDIS_MASTER=MASTER,
                  SAFEGRID_SWEEP_AFTER_S="1")
    stack = sentinels.stack
    web = stack.gunicorn(env, workers=1)
    stack.worker(env, name="worker-sentinel")
    base = f"http://127.0.0.1:{web.port}"
    reporter = auth(token_of(county, "reporter 王丽"))
    cell = GridCell.objects(code=cell_code(1, 3, 2)).first()
    lat, lon = cell_centre(cell.ring)

    def file_and_route() -> str:
        body = {"client_id": f"sentinel-{uuid.uuid4()}", "category": "CHILD",
                "details": "车站有人带着一个哭闹的女孩", "location": {"lat": lat, "lon": lon}}
        resp = requests.post(f"{base}/api/v1/reports", json=body, headers=reporter, timeout=10)
        assert resp.status_code == 201, resp.text
        code = str(resp.json()["code"])
        # Routed: the report has its time of routing and a case (a second report of the
        # same kind and cell joins the first one's case and its dispatch).
        wait_until(lambda: Report.objects(code=code, routed_at__ne=None).count(), 30,
                   f"report {code} was not routed")
        return code

    file_and_route()
    assert role(sentinels.master_port) == "master"
    assert redis_lib.Redis(port=sentinels.master_port).keys("rq:worker:*")

    # Failover: the replica becomes the master; the old master is made its replica.
    assert sentinels.sentinel().execute_command("SENTINEL FAILOVER", MASTER)
    wait_until(lambda: role(sentinels.replica_port) == "master", 30,
               "the replica was not promoted")
    wait_until(lambda: role(sentinels.master_port) == "slave", 30,
               "the old master was not demoted")
    wait_until(lambda: requests.get(f"{base}/readyz", timeout=5).status_code == 200, 30,
               "the API was not ready after the failover")

    code = file_and_route()
    # The job went through the new master: the worker re-registered there.
    wait_until(lambda: redis_lib.Redis(port=sentinels.replica_port).keys("rq:worker:*"), 30,
               "the worker did not register on the new master")
    case = Report.objects(code=code).first().case_id
    assert Dispatch.objects(case_id=case, station_code="530627-NT").count() == 1


def test_with_no_master_a_report_is_still_stored_and_acknowledged(settings, county):
    """Redis unusable through Sentinel: the report is stored and acknowledged (the sweeper
    queues it once a master is back), never a 500."""
    cell = GridCell.objects(code=cell_code(1, 3, 2)).first()
    lat, lon = cell_centre(cell.ring)
    lost = create_app(settings.with_(redis_master="no-such-master")).test_client()
    try:
        resp = lost.post("/api/v1/reports", headers=auth(token_of(county, "reporter 王丽")),
                         json={"client_id": f"no-master-{uuid.uuid4()}", "category": "CHILD",
                               "details": "路口有人强行带走一个孩子",
                               "location": {"lat": lat, "lon": lon}})
    finally:
        create_app(settings)  # the process's Redis back on the master, for the teardown
    assert resp.status_code == 201, resp.json
    [stored] = Report.objects(code=resp.json["code"])
    assert stored.status == "received"  # stored, not yet routed: the sweeper's to queue

"""The grid snapshot follows changes announced by other processes (Redis pub/sub)."""

from __future__ import annotations

import time

from gateway import gridcache
from gateway.extensions import redis_store
from grid.documents import GridCell

NEW_CELL = "530627101004009"


def add_cell() -> None:
    GridCell(code=NEW_CELL, name="新设网格", village_code="530627101004",
             township_code="530627101000", county_code="530627", station_code="530627-PJ",
             ring=[[105.5, 27.5], [105.51, 27.5], [105.51, 27.51], [105.5, 27.51],
                   [105.5, 27.5]]).save()


def wait_for_cell(code: str, timeout: float = 5.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if code in gridcache.current().cells:
            return
        time.sleep(0.02)
    raise AssertionError(f"{code} not in the snapshot after {timeout} s")


def test_an_announced_change_is_picked_up_without_the_periodic_check(county, monkeypatch):
    before = gridcache.current()
    monkeypatch.setattr(gridcache, "CHECK_EVERY_S", 1e9)  # only the announcement can do it
    assert NEW_CELL not in before.cells
    add_cell()
    assert NEW_CELL not in gridcache.current().cells  # nothing announced yet
    deadline = time.monotonic() + 30
    while not redis_store.conn.pubsub_numsub(gridcache.CHANNEL)[0][1]:
        assert time.monotonic() < deadline, "the listener never subscribed"
        time.sleep(0.02)
    # Another process announces the change: increment + publish, as bump_version does.
    version = redis_store.conn.incr(gridcache.VERSION_KEY)
    redis_store.conn.publish(gridcache.CHANNEL, str(version))
    wait_for_cell(NEW_CELL, timeout=30.0)
    snapshot = gridcache.current()
    assert snapshot.index.locate(27.505, 105.505) == NEW_CELL
    assert snapshot is not before


def test_without_an_announcement_the_periodic_check_finds_the_new_version(county, monkeypatch):
    gridcache.current()
    add_cell()
    redis_store.conn.incr(gridcache.VERSION_KEY)  # changed, but no message published
    monkeypatch.setattr(gridcache, "CHECK_EVERY_S", 0.2)
    wait_for_cell(NEW_CELL)

"""Each process's current grid snapshot, reloaded when the grid changes.

Whoever changes grid cells or stations calls `bump_version()`: it increments
a version in Redis and publishes on `CHANNEL`. Each process listens on that
channel (a daemon thread) and checks the version at its next lookup; as a
safety net for a missed message it also compares the version at most every
`CHECK_EVERY_S` seconds. A changed version rebuilds the snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from gateway.extensions import redis_store
from grid.documents import GridCell, Station
from grid.snapshot import CellInfo, GridSnapshot, StationInfo, Village

log = logging.getLogger(__name__)

VERSION_KEY = "safegrid:grid:version"
CHANNEL = "safegrid:grid:changed"
CHECK_EVERY_S = 10.0



class _Current:
    """The snapshot this process routes with, and when Redis was last asked."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshot: GridSnapshot | None = None
        self.version: int | None = None
        self.checked = 0.0
        self.stale = True  # set by the listener when another process announces a change
        self.listener: threading.Thread | None = None


_current = _Current()


def load_snapshot() -> GridSnapshot:
    """Read every cell and station from the store into a fresh snapshot."""
    stations = [
        StationInfo(s.code, s.name, s.county_code, s.kind, s.duty_phone, s.active is not False)
        for s in Station.objects.only("code", "name", "county_code", "kind", "duty_phone",
                                      "active")
    ]
    cells = []
    # village code -> [name, sum of lat, sum of lon, cells]: the gazetteer's village points.
    villages: dict[str, list[Any]] = {}
    for c in GridCell.objects.only("code", "name", "station_code", "county_code", "ring",
                                   "neighbours", "village_code", "village_name"):
        ring = [(float(p[0]), float(p[1])) for p in c.ring]
        cells.append((CellInfo(c.code, c.name, c.station_code, c.county_code,
                               tuple(c.neighbours or ())), ring))
        if c.village_name:
            lons, lats = [p[0] for p in ring], [p[1] for p in ring]
            entry = villages.setdefault(c.village_code, [c.village_name, 0.0, 0.0, 0])
            entry[1] += (min(lats) + max(lats)) / 2
            entry[2] += (min(lons) + max(lons)) / 2
            entry[3] += 1
    return GridSnapshot(cells, stations, [
        Village(code, name, lat / n, lon / n) for code, (name, lat, lon, n) in villages.items()])


def bump_version() -> None:
    """Tell every process that the grid changed (this one at once, not when the message comes)."""
    version = redis_store.conn.incr(VERSION_KEY)
    _current.stale = True  # after the increment: a lookup meanwhile cannot keep the old one
    redis_store.conn.publish(CHANNEL, str(version))


def _listen() -> None:
    """Mark the snapshot stale whenever another process announces a grid change."""
    while True:
        try:
            pubsub = redis_store.conn.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(CHANNEL)
            # Announcements made before this subscription (the first one, or while Redis
            # was away) were not heard: the next lookup compares versions once.
            _current.stale = True
            for message in pubsub.listen():
                if message.get("type") == "message":
                    _current.stale = True  # the next lookup compares versions
        except Exception as exc:  # noqa: BLE001 - Redis away: the periodic check still works
            log.warning("grid change listener lost Redis (%s); retrying in 5 s", exc)
            time.sleep(5.0)


def _ensure_listener() -> None:
    if _current.listener is None or not _current.listener.is_alive():
        _current.listener = threading.Thread(target=_listen, name="grid-changes", daemon=True)
        _current.listener.start()


def _read_version() -> int:
    raw = redis_store.conn.get(VERSION_KEY)
    return int(raw) if raw is not None else 0


def current() -> GridSnapshot:
    """The snapshot in force for this process (loads or reloads as needed)."""
    now = time.monotonic()
    fresh = not _current.stale and now - _current.checked < CHECK_EVERY_S
    if _current.snapshot is not None and fresh:
        return _current.snapshot
    with _current.lock:
        _ensure_listener()
        # Mark checked before reading, so a change announced meanwhile still counts.
        _current.checked, _current.stale = now, False
        version = _read_version()
        if _current.snapshot is None or version != _current.version:
            started = time.perf_counter()
            _current.snapshot = load_snapshot()
            _current.version = version
            log.info(
                "grid snapshot loaded: %d cells, version %d, %.3f s",
                len(_current.snapshot), version, time.perf_counter() - started,
            )
        return _current.snapshot


def reset() -> None:
    """Forget the snapshot (tests, and after a database switch)."""
    with _current.lock:
        _current.snapshot, _current.version, _current.checked = None, None, 0.0
        _current.stale = True

"""Placing a report by the place names in its text: gazetteer, then geocoder.

Each process keeps one gazetteer (the real county-level divisions shipped by
cpca, plus the villages and communities of the loaded grid), rebuilt when the
grid snapshot changes, and one geocoder client when a URL is configured, with
its results cached in Redis. Runs in the route job, never in the HTTP request.
"""

from __future__ import annotations

import threading

from gateway import telemetry
from gateway.extensions import redis_store
from gateway.runtime import settings
from geo.gazetteer import Gazetteer
from geo.geocoder import GeopyGeocoder, Located, locate_text, nominatim
from grid.snapshot import GridSnapshot

VILLAGE_PRECISION_M = 1000.0


class RedisCache:
    """geo.geocoder's Cache over this process's Redis."""

    def get(self, key: str) -> str | None:
        raw = redis_store.conn.get(key)
        telemetry.count("geocoder_cache", result="miss" if raw is None else "hit")
        return raw.decode() if isinstance(raw, bytes) else raw

    def set(self, key: str, value: str, ttl_s: int) -> None:
        redis_store.conn.set(key, value, ex=ttl_s)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshot: GridSnapshot | None = None
        self.gazetteer: Gazetteer | None = None
        self.geocoder: GeopyGeocoder | None = None
        self.geocoder_url = ""


_state = _State()


def gazetteer(snapshot: GridSnapshot) -> Gazetteer:
    """The gazetteer for this snapshot (divisions + the grid's villages)."""
    with _state.lock:
        if _state.snapshot is not snapshot or _state.gazetteer is None:
            names = Gazetteer()
            for village in snapshot.villages:
                names.add(village.name, village.lat, village.lon, village.code, "village",
                          VILLAGE_PRECISION_M)
            _state.gazetteer, _state.snapshot = names, snapshot
        return _state.gazetteer


def geocoder() -> GeopyGeocoder | None:
    """The online geocoder, when one is configured."""
    config = settings()
    if not config.geocoder_url:
        return None
    with _state.lock:
        if _state.geocoder is None or _state.geocoder_url != config.geocoder_url:
            _state.geocoder = nominatim(
                config.geocoder_url, config.geocoder_user_agent, config.geocoder_timeout_s,
                min_delay_s=config.geocoder_min_delay_s, max_wait_s=config.geocoder_max_wait_s,
                cache=RedisCache())
            _state.geocoder_url = config.geocoder_url
        return _state.geocoder


def locate(text: str, snapshot: GridSnapshot, county_code: str | None) -> Located | None:
    """Where the text says the report is, if it names a place precisely enough."""
    if not text.strip():
        return None
    found = locate_text(text, gazetteer=gazetteer(snapshot), geocoder=geocoder(),
                        prefer_county=county_code)
    if found is None or found.precision_m > settings().text_location_max_m:
        return None
    return found

"""The geocoder chain over geopy, against a fake Nominatim on loopback (never the internet)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis

from geo.gazetteer import Gazetteer
from geo.geocoder import (
    FLAG_AMBIGUOUS,
    FLAG_GEOCODER_FAILED,
    FLAG_NOT_PLACED,
    HIT_TTL_S,
    MAX_PRECISION_M,
    MAX_QUERY_CHARS,
    MIN_PRECISION_M,
    MISS_TTL_S,
    GeopyGeocoder,
    GeoResult,
    home_cell,
    locate_text,
    nominatim,
    precision_from_raw,
    query_for_geocoder,
)
from tests.fakes import Recorded, RecordingServer, recording_server

USER_AGENT = "safegrid-tests"

# What Nominatim's /search?format=json answers (strings for numbers, as it sends
# them). The box is [south, north, west, east].
ZHUANTANG = {
    "place_id": 218730051,
    "licence": "Data © OpenStreetMap contributors, ODbL 1.0. https://osm.org/copyright",
    "osm_type": "relation",
    "osm_id": 4570512,
    "boundingbox": ["30.1500000", "30.1700000", "120.0400000", "120.0600000"],
    "lat": "30.1600000",
    "lon": "120.0500000",
    "display_name": "转塘街道, 西湖区, 杭州市, 浙江省, 中国",
    "class": "boundary",
    "type": "administrative",
    "importance": 0.35,
}
HIT = json.dumps([ZHUANTANG], ensure_ascii=False)
# Half the diagonal of that 0.02° × 0.02° box at 30.16° N, worked out by hand:
# 2224 m north-south, 1923 m east-west → diagonal 2940 m → 1470 m.
HIT_PRECISION_M = 1470.0
LONG_DIGITS = re.compile(r"\d(?:\D{0,3}\d){6,}")


class DictCache:
    """The `Cache` protocol over a dict, remembering each TTL it was given."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.ttls: dict[str, int] = {}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def set(self, key: str, value: str, ttl_s: int) -> None:
        self.data[key] = value
        self.ttls[key] = ttl_s


class RedisCache:
    """The adapter the gateway needs, in ten lines: `Cache` over a real Redis."""

    def __init__(self, url: str) -> None:
        self.conn = redis.Redis.from_url(url, decode_responses=True)

    def get(self, key: str) -> str | None:
        value = self.conn.get(key)
        return value if isinstance(value, str) else None

    def set(self, key: str, value: str, ttl_s: int) -> None:
        self.conn.set(key, value, ex=ttl_s)


class BrokenCache:
    def get(self, key: str) -> str | None:
        raise ConnectionError("redis is down")

    def set(self, key: str, value: str, ttl_s: int) -> None:
        raise ConnectionError("redis is down")


class StampedRequests(list[Recorded]):
    """A request list that also notes when each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Recorded) -> None:
        self.times.append(time.monotonic())
        super().append(item)


@dataclass
class SlowServer:
    url: str
    arrivals: list[dict[str, str]] = field(default_factory=list)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hung up on a slow answer: that is what these tests do


@contextmanager
def slow_server(delay_s: float, body: str = HIT) -> Iterator[SlowServer]:
    """A Nominatim that answers only after `delay_s` (cut short when the test ends)."""
    stop = threading.Event()
    state = SlowServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            state.arrivals.append(dict(parse_qsl(urlsplit(self.path).query)))
            stop.wait(delay_s)
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def _nominatim_server() -> Iterator[RecordingServer]:
    # One server for the module: stopping one costs up to its 0.5 s poll interval.
    with recording_server(status=200, body=HIT) as server:
        yield server


@pytest.fixture
def fake(_nominatim_server: RecordingServer) -> RecordingServer:
    """The fake Nominatim, answering HIT with 200 and with no requests seen yet."""
    _nominatim_server.status, _nominatim_server.body = 200, HIT
    _nominatim_server.requests = []
    return _nominatim_server


def make(url: str, *, cache: object = None, timeout_s: float = 2.0, min_delay_s: float = 0.0,
         max_wait_s: float = 10.0) -> GeopyGeocoder:
    return nominatim(url, USER_AGENT, timeout_s, min_delay_s=min_delay_s, max_wait_s=max_wait_s,
                     cache=cache)  # type: ignore[arg-type]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- the geocoder ----------------------------------------------------------


def test_found_place_has_precision_from_its_bounding_box(fake: RecordingServer) -> None:
    cache = DictCache()
    geocoder = make(fake.url, cache=cache)

    result = geocoder.geocode("西湖区转塘街道")

    assert result is not None
    assert (result.lat, result.lon) == (30.16, 120.05)
    assert result.label == "转塘街道, 西湖区, 杭州市, 浙江省, 中国"
    assert result.provider == "nominatim"
    assert result.precision_m == pytest.approx(HIT_PRECISION_M, rel=0.01)
    [request] = fake.requests
    assert request.path == "/search"
    assert request.params["q"] == "西湖区转塘街道"
    assert request.params["countrycodes"] == "cn"
    assert request.params["format"] == "json"
    assert request.params["limit"] == "1"
    assert request.params["accept-language"] == "zh"
    assert list(cache.ttls.values()) == [HIT_TTL_S]


def test_found_place_is_served_from_the_cache_next_time(fake: RecordingServer) -> None:
    geocoder = make(fake.url, cache=DictCache())
    first = geocoder.lookup("转塘街道")
    second = geocoder.lookup("转塘街道")

    assert len(fake.requests) == 1
    assert (first.status, first.cached) == ("found", False)
    assert (second.status, second.cached) == ("found", True)
    assert second.result == first.result


def test_a_miss_is_cached_for_less_time_than_a_hit(fake: RecordingServer) -> None:
    fake.body = "[]"
    cache = DictCache()
    geocoder = make(fake.url, cache=cache)

    assert geocoder.geocode("不存在的地方") is None
    again = geocoder.lookup("不存在的地方")

    assert len(fake.requests) == 1
    assert (again.status, again.cached, again.result) == ("not_found", True, None)
    assert list(cache.ttls.values()) == [MISS_TTL_S]
    assert MISS_TTL_S < HIT_TTL_S


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, HIT, "GeocoderServiceError"),
        (503, HIT, "GeocoderTimedOut"),  # geopy's own mapping of 503
        (200, "<html>Bad Gateway</html>", "GeocoderParseError"),
        (200, '"not a list"', "bad answer"),
        (200, '[{"lat": "north", "lon": "east"}]', "bad answer"),
        pytest.param(200, json.dumps([dict(ZHUANTANG, lat="95.0")]), "bad answer",
                     marks=pytest.mark.filterwarnings("ignore:Latitude normalization")),
    ],
)
def test_a_failure_returns_none_and_is_not_cached(
    fake: RecordingServer, status: int, body: str, error: str
) -> None:
    fake.status, fake.body = status, body
    cache = DictCache()
    geocoder = make(fake.url, cache=cache)

    failed = geocoder.lookup("转塘街道")

    assert failed.result is None
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.startswith(error)
    assert geocoder.counts["failed"] == 1
    assert cache.data == {}
    # The service recovers: the next call asks it again and is answered.
    fake.status, fake.body = 200, HIT
    assert geocoder.geocode("转塘街道") is not None
    assert len(fake.requests) == 2


def test_an_unreachable_geocoder_returns_none() -> None:
    geocoder = make(closed_port_url(), cache=DictCache())
    started = time.monotonic()

    outcome = geocoder.lookup("转塘街道")

    assert (outcome.result, outcome.status) == (None, "failed")
    assert outcome.error is not None
    assert outcome.error.startswith("Geocoder")
    assert time.monotonic() - started < 2.0


def test_a_slow_geocoder_times_out_quickly_and_returns_none() -> None:
    with slow_server(delay_s=5.0) as server:
        cache = DictCache()
        geocoder = make(server.url, cache=cache, timeout_s=0.3)
        started = time.monotonic()

        outcome = geocoder.lookup("转塘街道")
        elapsed = time.monotonic() - started

    assert (outcome.result, outcome.status, outcome.error) == (None, "failed", "GeocoderTimedOut")
    assert elapsed < 1.5  # one attempt, no retries: bounded by the timeout
    assert len(server.arrivals) == 1
    assert cache.data == {}


def test_the_rate_limiter_spaces_requests_across_threads(fake: RecordingServer) -> None:
    fake.requests = StampedRequests()
    min_delay = 0.2
    geocoder = make(fake.url, min_delay_s=min_delay)
    threads = [threading.Thread(target=geocoder.geocode, args=(f"地点{i}",)) for i in range(4)]

    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    times = sorted(fake.requests.times)  # type: ignore[attr-defined]
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # At least the delay apart (10 ms for loopback jitter); no upper bound, a
    # slow machine may space them more.
    assert min(gaps) >= min_delay - 0.01, gaps


def test_a_full_rate_limit_queue_fails_at_once_instead_of_waiting() -> None:
    with slow_server(delay_s=0.6) as server:
        geocoder = make(server.url, min_delay_s=0.5, max_wait_s=0.0)
        first = threading.Thread(target=geocoder.geocode, args=("第一处",))
        first.start()
        deadline = time.monotonic() + 5
        while not server.arrivals and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.arrivals, "the first request never arrived"

        started = time.monotonic()
        busy = geocoder.lookup("第二处")
        elapsed = time.monotonic() - started
        first.join(5)

    assert (busy.status, busy.error) == ("failed", "busy")
    assert elapsed < 0.3
    assert len(server.arrivals) == 1


def test_phone_and_id_numbers_never_reach_the_geocoder(fake: RecordingServer) -> None:
    text = ("转塘街道 联系 138 1234 5678 或 13812345678，+86-571-8765-4321，"
            "身份证330106199001011234，3号楼")
    geocoder = make(fake.url)

    geocoder.geocode(text)

    sent = fake.requests[0].params["q"]
    assert LONG_DIGITS.search(sent) is None, sent
    assert "转塘街道" in sent
    assert "3号楼" in sent  # short numbers are addresses, not people


def test_queries_are_cut_after_masking() -> None:
    # A number straddling the cut leaves no six-digit stump behind.
    text = "杭" * 95 + "13812345678" + "州" * 50
    query = query_for_geocoder(text)

    assert len(query) <= MAX_QUERY_CHARS
    assert not any(ch.isdigit() for ch in query)
    assert query_for_geocoder(query) == query
    assert query_for_geocoder(" 12345678 ") == ""


def test_a_query_of_only_a_phone_number_is_not_sent(fake: RecordingServer) -> None:
    outcome = make(fake.url).lookup("13812345678")

    assert (outcome.status, outcome.result) == ("skipped", None)
    assert fake.requests == []


def test_a_broken_cache_does_not_stop_geocoding(fake: RecordingServer) -> None:
    geocoder = make(fake.url, cache=BrokenCache())

    assert geocoder.geocode("转塘街道") is not None
    assert geocoder.counts["cache_error"] == 2  # the read and the write


def test_nominatim_keeps_the_path_of_a_self_hosted_url(fake: RecordingServer) -> None:
    make(fake.url + "/nominatim/").geocode("转塘街道")

    assert fake.requests[0].path == "/nominatim/search"


@pytest.mark.parametrize("url", ["ftp://host", "nominatim.local", "http://host/?q=1", ""])
def test_nominatim_rejects_urls_it_cannot_use(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        nominatim(url, USER_AGENT, 1.0)


def test_precision_defaults_and_clamps() -> None:
    tiny = {"boundingbox": ["30.16", "30.16", "120.05", "120.05"]}
    huge = {"boundingbox": ["18.0", "54.0", "73.0", "135.0"]}
    assert precision_from_raw(tiny) == MIN_PRECISION_M
    assert precision_from_raw(huge) == MAX_PRECISION_M
    assert precision_from_raw({"class": "place", "type": "village"}) == 1_000.0
    assert precision_from_raw({"class": "highway", "type": "residential"}) == 1_000.0
    assert precision_from_raw({"boundingbox": ["x", "y", "z", "w"], "type": "city"}) == 30_000.0
    assert precision_from_raw(None) > 0


def test_cache_across_instances_in_real_redis(
    fake: RecordingServer, stores: tuple[str, str]
) -> None:
    cache = RedisCache(stores[1])
    writer = make(fake.url, cache=cache)
    reader = make(fake.url, cache=cache)  # another process, as far as the cache can tell
    key = writer.cache_key("转塘街道")
    cache.conn.delete(key)
    try:
        first = writer.geocode("转塘街道")
        second = reader.lookup("转塘街道")

        assert len(fake.requests) == 1
        assert second.cached
        assert second.result == first
        assert 0 < int(cache.conn.ttl(key)) <= HIT_TTL_S  # type: ignore[arg-type]
        assert "转塘" not in key  # Redis holds a hash, not the report's words
    finally:
        cache.conn.delete(key)


# --- the chain ---------------------------------------------------------------


@pytest.fixture
def gazetteer() -> Gazetteer:
    g = Gazetteer(divisions=[])
    g.add("西湖区", 30.2596, 120.1303, "330106000000", "county")
    g.add("新华村", 30.30, 120.10, "330106001000", "village")
    g.add("新华村", 29.90, 121.50, "330212002000", "village")
    g.add("梅家坞村", 30.20, 120.11, "330106003000", "village")
    return g


def test_chain_prefers_the_gazetteer(fake: RecordingServer, gazetteer: Gazetteer) -> None:
    located = locate_text("梅家坞村口有可疑车辆", gazetteer=gazetteer,
                          geocoder=make(fake.url), prefer_county="330106")

    assert located is not None
    assert (located.method, located.label, located.precision_m) == ("gazetteer", "梅家坞村",
                                                                      1_000.0)
    assert (located.lat, located.lon) == (30.20, 120.11)
    assert located.candidates == ()
    assert fake.requests == []  # nothing left the building


def test_chain_takes_the_most_precise_place_named(gazetteer: Gazetteer) -> None:
    # The gazetteer lists 西湖区 first (same length, earlier in the text).
    located = locate_text("西湖区新华村", gazetteer=gazetteer, geocoder=None,
                          prefer_county="330106")

    assert located is not None
    assert (located.label, located.precision_m) == ("新华村", 1_000.0)
    assert (located.lat, located.lon) == (30.30, 120.10)


def test_chain_keeps_ambiguous_candidates(gazetteer: Gazetteer) -> None:
    located = locate_text("新华村小卖部", gazetteer=gazetteer, geocoder=None,
                          prefer_county="330212")

    assert located is not None
    assert (located.lat, located.lon) == (29.90, 121.50)  # the preferred county's
    assert located.candidates == ("新华村(330212002000)", "新华村(330106001000)")


def test_chain_flags_a_shared_name_nothing_settles(fake: RecordingServer,
                                                    gazetteer: Gazetteer) -> None:
    # Two 新华村, the reporter's county has neither: no silent pick, and no
    # question to the geocoder, which would pick one silently too.
    located = locate_text("新华村小卖部", gazetteer=gazetteer, geocoder=make(fake.url),
                          prefer_county="110101")

    assert located is not None
    assert located.flags == (FLAG_AMBIGUOUS,)
    assert set(located.candidates) == {"新华村(330212002000)", "新华村(330106001000)"}
    # Precise enough to cover both villages, ~50 km apart: too coarse to pick a cell.
    assert located.precision_m > 40_000
    assert fake.requests == []


def test_chain_falls_back_to_the_geocoder(fake: RecordingServer, gazetteer: Gazetteer) -> None:
    located = locate_text("转塘街道菜市场门口，电话13812345678", gazetteer=gazetteer,
                          geocoder=make(fake.url))

    assert located is not None
    assert located.method == "geocoder"
    assert located.precision_m == pytest.approx(HIT_PRECISION_M, rel=0.01)
    assert located.label.startswith("转塘街道")
    assert located.flags == ()
    assert "13812345678" not in fake.requests[0].params["q"]


def test_chain_gives_a_flagged_fallback_when_the_geocoder_fails(
    fake: RecordingServer, gazetteer: Gazetteer
) -> None:
    fake.status = 503
    home = home_cell(30.25, 120.15, precision_m=300.0, label="HZ-XH-0001")

    located = locate_text("转塘街道菜市场", gazetteer=gazetteer, geocoder=make(fake.url),
                          fallback=home)
    without_fallback = locate_text("转塘街道菜市场", gazetteer=gazetteer,
                                   geocoder=make(fake.url))

    assert located is not None
    assert (located.method, located.lat, located.lon) == ("reporter_home_cell", 30.25, 120.15)
    assert located.flags == (FLAG_NOT_PLACED, FLAG_GEOCODER_FAILED)
    assert without_fallback is None


def test_chain_flags_a_plain_miss_differently(fake: RecordingServer) -> None:
    fake.body = "[]"
    home = home_cell(30.25, 120.15, precision_m=300.0)

    located = locate_text("某某地方", gazetteer=None, geocoder=make(fake.url), fallback=home)

    assert located is not None
    assert located.flags == (FLAG_NOT_PLACED,)


def test_chain_survives_a_geocoder_that_raises() -> None:
    class Raising:
        def geocode(self, query: str, *, country_codes: str = "cn") -> GeoResult | None:
            raise RuntimeError("third-party bug")

    home = home_cell(30.25, 120.15, precision_m=300.0)
    located = locate_text("某某地方", gazetteer=None, geocoder=Raising(), fallback=home)

    assert located is not None
    assert FLAG_GEOCODER_FAILED in located.flags

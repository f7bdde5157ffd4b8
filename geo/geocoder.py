"""The geocoder chain: places the offline gazetteer cannot find, from an online geocoder.

Order of the text steps: the gazetteer (offline, exact names) first, then a
geocoder through geopy (Nominatim at a configured URL by default), then the
caller's fallback (the reporter's registered home cell), flagged so a human
knows the point is a guess. Every `Located` says which method placed it and
how precise it is.

Privacy: the geocoder is an outside service (even a self-hosted Nominatim is
another system with its own access logs) and report text can name victims,
suspects and reporters. So only a short, masked query ever leaves: digit runs
of seven or more (phone and ID-card numbers, also when written with spaces or
dashes) are blanked, and at most the first `MAX_QUERY_CHARS` characters are
sent. Names cannot be told apart from place names reliably; that is why the
default is a self-hosted Nominatim and the public instance must not be used in
production. Logs and outcomes carry the provider and the error class, never
the query: geopy's exception messages can embed the request URL, and so the
query. geopy itself logs the URL at DEBUG on the "geopy" logger: keep that
logger at INFO or above in production. Cache keys are hashes of the query.

Ambiguous names: a name shared by several places (鼓楼区 in four cities)
that neither the text (长春市朝阳区) nor the reporter's county settles gives a
gazetteer `Located` flagged FLAG_AMBIGUOUS, with every place as a candidate.
Its point is the first candidate's and its precision the reach of all of them
from that point (hundreds of kilometres across provinces), so a caller that
needs a cell-sized place takes it for no place (the gateway then routes by the
reporter's home cell), and one that keeps the candidates can show them. The
chain does not ask the geocoder then: it would silently pick one.

Failure policy: `GeopyGeocoder.geocode` never raises. Timeouts, refused
connections, HTTP errors, unparseable answers and a full rate-limit queue all
return None; `lookup` returns the same call's `GeocodeOutcome` (status
"failed" and the error class), `counts` tallies outcomes, and failures are
never cached, so the next report asks again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from geopy.adapters import URLLibAdapter
from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim

from geo.distance import haversine_m
from geo.gazetteer import Gazetteer, Mention, Place

logger = logging.getLogger(__name__)

# Every way a report can be placed, most precise source first (the gateway's
# Location.method takes the same values).
METHODS: Final = ("gps", "grid_code", "gazetteer", "geocoder", "reporter_home_cell")

MAX_QUERY_CHARS: Final = 100
KEY_PREFIX: Final = "safegrid:geocode:"
HIT_TTL_S: Final = 30 * 24 * 3600
# Misses expire sooner: the place may be added to the map, or the miss may
# come from a query that a fixed Nominatim import would answer.
MISS_TTL_S: Final = 24 * 3600

MIN_PRECISION_M: Final = 50.0
MAX_PRECISION_M: Final = 200_000.0
DEFAULT_PRECISION_M: Final = 5_000.0

# Flags on a fallback `Located`.
FLAG_NOT_PLACED: Final = "text_not_placed"
FLAG_GEOCODER_FAILED: Final = "geocoder_failed"
# On a gazetteer `Located` whose text names a place shared by several, and
# says nothing that tells them apart (鼓楼区 alone).
FLAG_AMBIGUOUS: Final = "place_ambiguous"

# When a result has no bounding box: by Nominatim's "type" (the OSM tag's
# value), then its "class" (the tag's key). Close to the gazetteer's figures.
_PRECISION_BY_TYPE: Final[Mapping[str, float]] = {
    "house": 50.0,
    "building": 50.0,
    "hamlet": 500.0,
    "neighbourhood": 500.0,
    "village": 1_000.0,
    "quarter": 1_000.0,
    "suburb": 2_000.0,
    "town": 5_000.0,
    "county": 10_000.0,
    "city": 30_000.0,
    "state": 200_000.0,
    "province": 200_000.0,
}
_PRECISION_BY_CLASS: Final[Mapping[str, float]] = {
    "building": 50.0,
    "amenity": 100.0,
    "shop": 100.0,
    "tourism": 200.0,
    "railway": 500.0,
    "highway": 1_000.0,
    "place": 3_000.0,
    "boundary": 10_000.0,
}

# Seven or more digits, allowing the separators people type inside phone
# numbers (138 1234 5678, 138-1234-5678, +86 (10) 1234 5678). \d also matches
# full-width digits. Chinese numerals (一三八…) are not caught.
_LONG_NUMBER = re.compile(r"[+＋]?\d(?:[\s\-.()（）－—]*\d){6,}")

Status = Literal["found", "not_found", "failed", "skipped"]


@dataclass(frozen=True)
class GeoResult:
    """A geocoder's answer in WGS-84, with how far the true place may be from the point."""

    lat: float
    lon: float
    precision_m: float
    label: str
    provider: str


@dataclass(frozen=True)
class GeocodeOutcome:
    """What one geocoding call did.

    status: "found" (result set), "not_found" (the service answered, no
    match), "failed" (timeout, unreachable, HTTP or parse error, or the rate
    limiter's queue is full; `error` names it), "skipped" (nothing left to
    send after masking).
    """

    result: GeoResult | None
    status: Status
    cached: bool = False
    error: str | None = None


class Geocoder(Protocol):
    """Anything that turns a short place query into a point; never raises."""

    def geocode(self, query: str, *, country_codes: str = "cn") -> GeoResult | None: ...


@runtime_checkable
class ExplainingGeocoder(Protocol):
    """A geocoder that also says why it found nothing (a miss, or a failure)."""

    def lookup(self, query: str, *, country_codes: str = "cn") -> GeocodeOutcome: ...


class Cache(Protocol):
    """A string key-value store with expiry (Redis in the gateway, a dict in tests)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl_s: int) -> None: ...


def mask_numbers(text: str) -> str:
    """`text` with every run of seven or more digits (phone, ID card) replaced by a space."""
    return _LONG_NUMBER.sub(" ", text)


def query_for_geocoder(text: str) -> str:
    """The only part of a report's text that may go to a geocoder: masked, spaces collapsed, short.

    Numbers are masked before cutting, so a phone number at the cut cannot
    leave a six-digit stump behind. Masking an already masked query changes
    nothing.
    """
    return " ".join(mask_numbers(text).split())[:MAX_QUERY_CHARS].strip()


def precision_from_raw(raw: object) -> float:
    """Metres of uncertainty of a Nominatim result: half its bounding box's diagonal, clamped.

    Without a usable box: a figure by the result's type or class. Nominatim's
    box is [south, north, west, east] as strings.
    """
    if not isinstance(raw, Mapping):
        return DEFAULT_PRECISION_M
    box = raw.get("boundingbox")
    if isinstance(box, list | tuple) and len(box) == 4:
        try:
            south, north, west, east = (float(v) for v in box)
        except (TypeError, ValueError):
            pass
        else:
            if (
                all(math.isfinite(v) for v in (south, north, west, east))
                and -90.0 <= south <= north <= 90.0
                and -180.0 <= west <= 180.0
                and -180.0 <= east <= 180.0
            ):
                half = haversine_m(south, west, north, east) / 2.0
                return min(MAX_PRECISION_M, max(MIN_PRECISION_M, half))
    kind = raw.get("type")
    if isinstance(kind, str) and kind in _PRECISION_BY_TYPE:
        return _PRECISION_BY_TYPE[kind]
    klass = raw.get("class", raw.get("category"))
    if isinstance(klass, str) and klass in _PRECISION_BY_CLASS:
        return _PRECISION_BY_CLASS[klass]
    return DEFAULT_PRECISION_M


class _BadAnswer(Exception):
    """The service answered, but not with a usable point."""


class GeopyGeocoder:
    """Any geopy geocoder behind geopy's RateLimiter, with a timeout and a cache.

    `lookup` returns the call's `GeocodeOutcome`; `geocode` (the `Geocoder`
    protocol) returns just its result. Found places and misses are cached
    (misses for `miss_ttl_s`); failures are not. `counts` tallies statuses
    plus "cache_error"; `last_outcome` is the latest call's outcome, for
    diagnostics only (with threads, use what `lookup` returns).

    The RateLimiter spaces requests at least `min_delay_s` apart across all
    threads (Nominatim's public policy is 1 request/s). geopy's own retries
    are off: its retry log line carries the query, and a report is better
    served by the next step of the chain than by waiting. For the same
    reason a call that would wait more than `max_wait_s` for its slot fails
    at once ("busy") instead of queueing.
    """

    def __init__(
        self,
        geocoder: Any,
        *,
        provider: str | None = None,
        timeout_s: float = 5.0,
        min_delay_s: float = 1.0,
        max_wait_s: float = 10.0,
        cache: Cache | None = None,
        hit_ttl_s: int = HIT_TTL_S,
        miss_ttl_s: int = MISS_TTL_S,
        key_prefix: str = KEY_PREFIX,
        country_kwarg: str | None = "country_codes",
        options: Mapping[str, object] | None = None,
    ) -> None:
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        if not (math.isfinite(min_delay_s) and min_delay_s >= 0):
            raise ValueError(f"min_delay_s must be non-negative, got {min_delay_s!r}")
        if not max_wait_s >= 0:
            raise ValueError(f"max_wait_s must be non-negative, got {max_wait_s!r}")
        if hit_ttl_s <= 0 or miss_ttl_s <= 0:
            raise ValueError("cache TTLs must be positive")
        self.provider = provider or type(geocoder).__name__.lower()
        self.timeout_s = float(timeout_s)
        self.min_delay_s = float(min_delay_s)
        self.max_wait_s = float(max_wait_s)
        self.cache = cache
        self.hit_ttl_s = int(hit_ttl_s)
        self.miss_ttl_s = int(miss_ttl_s)
        self.key_prefix = key_prefix
        # Not every geopy geocoder takes country_codes (Nominatim does); None: don't pass it.
        self.country_kwarg = country_kwarg
        self.options: dict[str, object] = dict(options or {})
        self._geocoder = geocoder
        self._limited = RateLimiter(
            geocoder.geocode,
            min_delay_seconds=self.min_delay_s,
            max_retries=0,
            error_wait_seconds=self.min_delay_s,  # unused without retries; must be ≥ min delay
            swallow_exceptions=False,
        )
        self._lock = threading.Lock()
        self._pending = 0
        self.counts: Counter[str] = Counter()
        self.last_outcome: GeocodeOutcome | None = None

    def geocode(self, query: str, *, country_codes: str = "cn") -> GeoResult | None:
        """The place `query` names, or None if not found or the service failed."""
        return self.lookup(query, country_codes=country_codes).result

    def lookup(self, query: str, *, country_codes: str = "cn") -> GeocodeOutcome:
        """Geocode `query` (masked and cut first) and say how it went; never raises."""
        q = query_for_geocoder(query)
        if not q:
            return self._record(GeocodeOutcome(None, "skipped"))
        key = self.cache_key(q, country_codes)
        cached = self._cache_get(key)
        if cached is not None:
            return self._record(cached)
        outcome = self._ask(q, country_codes)
        if outcome.status == "found" and outcome.result is not None:
            self._cache_set(key, _encode(outcome.result), self.hit_ttl_s)
        elif outcome.status == "not_found":
            self._cache_set(key, _MISS, self.miss_ttl_s)
        return self._record(outcome)

    def cache_key(self, query: str, country_codes: str = "cn") -> str:
        """The cache key for an already masked query; hashed so Redis holds no report text."""
        digest = hashlib.sha256(f"{country_codes}\x1f{query}".encode()).hexdigest()
        return f"{self.key_prefix}{self.provider}:{digest}"

    def _ask(self, query: str, country_codes: str) -> GeocodeOutcome:
        with self._lock:
            if self._pending * self.min_delay_s > self.max_wait_s:
                return GeocodeOutcome(None, "failed", error="busy")
            self._pending += 1
        kwargs: dict[str, object] = dict(self.options)
        kwargs["exactly_one"] = True
        kwargs["timeout"] = self.timeout_s
        if self.country_kwarg and country_codes:
            kwargs[self.country_kwarg] = country_codes
        try:
            location = self._limited(query, **kwargs)
            result = self._to_result(location)
        except GeopyError as exc:
            return GeocodeOutcome(None, "failed", error=type(exc).__name__)
        except Exception as exc:
            # The answer comes from outside: geopy's parsers meet JSON of the
            # wrong shape with TypeError, AttributeError, IndexError... The
            # chain must go on to its fallback whatever the service sent.
            return GeocodeOutcome(None, "failed", error=f"bad answer: {type(exc).__name__}")
        finally:
            with self._lock:
                self._pending -= 1
        if result is None:
            return GeocodeOutcome(None, "not_found")
        return GeocodeOutcome(result, "found")

    def _to_result(self, location: Any) -> GeoResult | None:
        if location is None:
            return None
        lat = float(location.latitude)
        lon = float(location.longitude)
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
                and -180 <= lon <= 180):
            raise _BadAnswer("coordinates out of range")
        address = location.address
        label = address if isinstance(address, str) else ""
        return GeoResult(lat, lon, precision_from_raw(location.raw), label, self.provider)

    def _cache_get(self, key: str) -> GeocodeOutcome | None:
        if self.cache is None:
            return None
        try:
            value = self.cache.get(key)
        except Exception as exc:
            # A cache outage must not stop geocoding; the service is still there.
            self._cache_error("get", exc)
            return None
        if value is None:
            return None
        try:
            return _decode(value)
        except (ValueError, TypeError, KeyError) as exc:
            self._cache_error("decode", exc)
            return None

    def _cache_set(self, key: str, value: str, ttl_s: int) -> None:
        if self.cache is None:
            return
        try:
            self.cache.set(key, value, ttl_s)
        except Exception as exc:
            self._cache_error("set", exc)

    def _cache_error(self, what: str, exc: Exception) -> None:
        with self._lock:
            self.counts["cache_error"] += 1
        logger.warning("geocoder cache %s failed: %s", what, type(exc).__name__)

    def _record(self, outcome: GeocodeOutcome) -> GeocodeOutcome:
        with self._lock:
            self.counts[outcome.status] += 1
            self.last_outcome = outcome
        if outcome.status == "failed":
            logger.warning("geocoder %s failed (%s); the chain falls back",
                           self.provider, outcome.error)
        return outcome


_MISS: Final = json.dumps({"miss": True})


def _encode(result: GeoResult) -> str:
    return json.dumps(
        {"lat": result.lat, "lon": result.lon, "precision_m": result.precision_m,
         "label": result.label, "provider": result.provider},
        ensure_ascii=False,
    )


def _decode(value: str) -> GeocodeOutcome:
    data = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("cached geocode is not an object")
    if data.get("miss") is True:
        return GeocodeOutcome(None, "not_found", cached=True)
    result = GeoResult(float(data["lat"]), float(data["lon"]), float(data["precision_m"]),
                       str(data["label"]), str(data["provider"]))
    return GeocodeOutcome(result, "found", cached=True)


def nominatim(
    url: str,
    user_agent: str,
    timeout_s: float,
    *,
    min_delay_s: float = 1.0,
    max_wait_s: float = 10.0,
    cache: Cache | None = None,
    language: str | None = "zh",
    proxies: Mapping[str, str] | None = None,
) -> GeopyGeocoder:
    """A `GeopyGeocoder` over the Nominatim at `url` (e.g. http://nominatim.internal:8080).

    The URL's path, if any, is kept (a Nominatim mounted under /nominatim).
    `proxies` None connects directly: environment proxy settings are ignored
    on purpose, so report text does not pass through a third party unasked.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"geocoder URL must be http(s)://host[:port][/path], got {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"geocoder URL must not carry a query or fragment, got {url!r}")
    if not user_agent.strip():
        raise ValueError("Nominatim requires an identifying user agent")
    domain = parts.netloc + parts.path.rstrip("/")
    geolocator = Nominatim(
        domain=domain,
        scheme=parts.scheme,
        user_agent=user_agent,
        timeout=timeout_s,
        proxies=dict(proxies or {}),
        # urllib, not requests: one attempt per call with no transport-level
        # retries (so the timeout bounds it), and JSON decoded as UTF-8 when
        # the server names no charset (RFC 8259); requests would read a
        # text/plain answer as Latin-1. At ≤ 1 request/s keep-alive buys nothing.
        adapter_factory=URLLibAdapter,
    )
    return GeopyGeocoder(
        geolocator,
        provider="nominatim",
        timeout_s=timeout_s,
        min_delay_s=min_delay_s,
        max_wait_s=max_wait_s,
        cache=cache,
        options={"language": language} if language else None,
    )



@dataclass(frozen=True)
class Located:
    """Where a report is (WGS-84), which method placed it, and how precise that is.

    `candidates` names the places the text could mean when the gazetteer
    found several ("name(adcode)", winner first): the other places of the
    same name, then places of the winner's kind named elsewhere in the text;
    empty when only one. `flags` says why a fallback was used, or
    FLAG_AMBIGUOUS when the text does not say which candidate it means.
    """

    lat: float
    lon: float
    method: str
    precision_m: float
    label: str
    candidates: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown location method {self.method!r}")
        if not (math.isfinite(self.lat) and math.isfinite(self.lon)
                and -90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError(f"bad coordinates lat={self.lat!r}, lon={self.lon!r}")
        if not (math.isfinite(self.precision_m) and self.precision_m > 0):
            raise ValueError(f"precision must be positive, got {self.precision_m!r}")


def home_cell(lat: float, lon: float, *, precision_m: float, label: str = "") -> Located:
    """The reporter's registered home cell as the last-resort `Located`."""
    return Located(lat, lon, "reporter_home_cell", precision_m, label)


def _place_label(p: Place) -> str:
    return f"{p.name}({p.adcode})" if p.adcode else p.name


def _spread_m(mention: Mention) -> float:
    # How far the true place may be from the first place: its own precision,
    # or, when the text leaves a tie, the reach of every tied place from it.
    first = mention.places[0]
    if not mention.ambiguous:
        return first.precision_m
    return max(
        haversine_m(first.lat, first.lon, p.lat, p.lon) + p.precision_m
        for p in mention.places[: mention.tied]
    )


def _from_gazetteer(mentions: list[Mention]) -> Located:
    # The most precise mention wins (西湖区 over 杭州市 over 浙江省 in one
    # address), each counted at its first place: the gazetteer already ranked
    # a shared name's places (海南 is the province, not the prefecture). An
    # ambiguous mention counts at the spread of its tied places, so a clear
    # coarser name (杭州) beats an unresolved finer one (鼓楼区).
    spreads = [_spread_m(m) for m in mentions]
    k = min(range(len(mentions)), key=lambda i: (spreads[i], i))
    mention = mentions[k]
    best = mention.places[0]
    # Officers see what else the text could mean: the mention's open places,
    # then places of the same kind named elsewhere in the text (新华村 ... 红星村).
    others = [m.places[0] for m in mentions if m is not mention and m.places[0].kind == best.kind]
    labels = tuple(dict.fromkeys(_place_label(p) for p in (*mention.candidates, *others)))
    candidates = labels if len(labels) > 1 else ()
    flags = (FLAG_AMBIGUOUS,) if mention.ambiguous else ()
    return Located(best.lat, best.lon, "gazetteer", spreads[k], best.name, candidates, flags)


def locate_text(
    text: str,
    *,
    gazetteer: Gazetteer | None,
    geocoder: Geocoder | None,
    prefer_county: str | None = None,
    fallback: Located | None = None,
    country_codes: str = "cn",
) -> Located | None:
    """Place a report by its text: gazetteer, then geocoder, then `fallback` (flagged).

    Only `query_for_geocoder(text)` (masked, at most 100 characters) is sent
    to the geocoder. Never raises for geocoder trouble: a failure gives the
    fallback with FLAG_GEOCODER_FAILED, or None without a fallback.
    """
    if gazetteer is not None:
        mentions = gazetteer.mentions(text, prefer_county)
        if mentions:
            # An ambiguous name stops here too: a geocoder would pick one silently.
            return _from_gazetteer(mentions)
    failed = False
    query = query_for_geocoder(text)
    if geocoder is not None and query:
        result: GeoResult | None
        try:
            if isinstance(geocoder, ExplainingGeocoder):
                outcome = geocoder.lookup(query, country_codes=country_codes)
                result, failed = outcome.result, outcome.status == "failed"
            else:
                result = geocoder.geocode(query, country_codes=country_codes)
        except Exception as exc:
            # The protocol says geocoders never raise; a third-party one might.
            logger.warning("geocoder raised %s; the chain falls back", type(exc).__name__)
            result, failed = None, True
        if result is not None:
            return Located(result.lat, result.lon, "geocoder", result.precision_m, result.label)
    if fallback is None:
        return None
    flags = (FLAG_NOT_PLACED, FLAG_GEOCODER_FAILED) if failed else (FLAG_NOT_PLACED,)
    return replace(fallback, flags=fallback.flags + tuple(f for f in flags
                                                          if f not in fallback.flags))

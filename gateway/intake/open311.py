"""Open311 GeoReport v2: client keys, services, filing and reading service requests.

What the spec calls a service is a report category; a service request is a public
tip (trust `public`), stored and routed like any other report: stored before the
client is answered, then located (GPS, or the place named in `address_string` by
the route job's text locating) and routed by the route job. A client reads back
only its own requests, and only their status (docs/interop.md, docs/security.md).

Refusals are `Refusal(status, description)`; the web layer (gateway/open311/)
writes them as the spec's list of `{code, description}`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument

from gateway import gridcache
from gateway.access.tokens import hash_token
from gateway.errors import Refusal
from gateway.extensions import redis_store
from gateway.intake.reports import NewReport, file_report
from gateway.privacy import audit
from gateway.privacy.crypto import keyring
from gateway.privacy.genetic import carries_genetic_data
from gateway.records.open311 import CONTACT_CONTEXT, Open311Key
from gateway.records.people import Reporter
from gateway.records.reports import Report
from gateway.runtime import rules, settings
from grid.documents import Dispatch, utcnow
from sms.grammar import UNCLASSIFIED
from sms.replies import CATEGORY_NAMES

log = logging.getLogger(__name__)

KEY_PREFIX = "o311_"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
MAX_DESCRIPTION = 4000  # the spec's limit
MAX_ADDRESS = 500
MAX_FIELD = 200  # a contact field (name, email, phone, device or account id)
MAX_MEDIA_URL = 2000
MAX_RESULTS = 1000  # the spec's default query limit
MAX_SPAN = dt.timedelta(days=90)  # ...and its longest date range
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "device_id", "account_id")
OPEN, CLOSED = "open", "closed"
# Generic on purpose: nothing about the case, and what to do when it cannot wait.
SERVICE_NOTICE = "已收到，将转交负责的派出所。情况紧急请立即拨打110。"
INVALID_KEY = "Invalid api_key received -- can't proceed with create_request."
LIMIT_KEY = "safegrid:open311:filed:{key_id}:{hour}"

# Services: the report categories (sms/replies.py names them), not UNCLASSIFIED, which
# only marks free text for a person to read.
SERVICE_DESCRIPTIONS = {
    "CHILD": "儿童被拐骗、抢夺、拐卖的线索",
    "WOMAN": "妇女被拐卖、被强迫婚姻的线索",
    "ORIGIN": "来历不明的儿童",
    "LABOUR": "强迫劳动、限制人身自由",
    "ADOPT": "非法收养、买卖婴儿",
    "BIRTH": "可疑的分娩或出生登记",
    "ABUSE": "性侵未成年人",
    "ONLINE": "网络诱骗、招工或交友骗局",
    "OTHER": "其他涉嫌拐卖人口的情况",
}
SERVICE_GROUP = "反拐"


@dataclass(frozen=True)
class Service:
    service_code: str
    service_name: str
    description: str
    metadata: bool = False
    type: str = "realtime"
    keywords: str = ""
    group: str = SERVICE_GROUP

    def as_dict(self) -> dict[str, Any]:
        return {"service_code": self.service_code, "service_name": self.service_name,
                "description": self.description, "metadata": self.metadata,
                "type": self.type, "keywords": self.keywords, "group": self.group}


def services() -> list[Service]:
    """Every category a client may file, in the routing table's order."""
    return [Service(code, CATEGORY_NAMES.get(code, code), SERVICE_DESCRIPTIONS.get(code, ""),
                    keywords=code)
            for code in rules().rules if code != UNCLASSIFIED]


def service(code: str | None) -> Service:
    """The service of `code`; 400 when not given, 404 when there is none."""
    if not code:
        raise Refusal(400, "service_code was not provided")
    for found in services():
        if found.service_code == code:
            return found
    raise Refusal(404, "service_code provided was not found")


# --- Jurisdictions -------------------------------------------------------------------


def served_counties() -> list[str]:
    """The county adcodes of the grid this deployment serves: the valid jurisdiction_ids."""
    snapshot = gridcache.current()
    counties = {cell.county_code for cell in snapshot.cells.values()}
    counties |= {station.county_code for station in snapshot.stations.values()}
    return sorted(c for c in counties if c)


def jurisdiction(given: str | None, key: Open311Key | None = None) -> str | None:
    """The county a call is for: `given`, else the key's, else the only one served.

    404 for a county not served here, 403 for one the key may not act for, 400 when
    the deployment serves several and the call does not say which.
    """
    served = served_counties()
    if given:
        if given not in served:
            raise Refusal(404, "jurisdiction_id provided was not found")
        if key is not None and key.county_code and key.county_code != given:
            raise Refusal(403, "this api_key may not be used for that jurisdiction_id")
        return given
    if key is not None and key.county_code:
        return key.county_code
    if len(served) == 1:
        return served[0]
    if not served:
        return None
    raise Refusal(400, "jurisdiction_id was not provided")


# --- Keys -----------------------------------------------------------------------------


def issue_key(label: str, county_code: str | None, actor: str) -> tuple[str, Open311Key]:
    """A new client key, shown once (only its hash is stored); audited."""
    if county_code is not None and county_code not in served_counties():
        raise Refusal(404, f"county {county_code} is not served by this deployment")
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    key = Open311Key(key_hash=hash_token(api_key), label=label, county_code=county_code)
    key.save(force_insert=True)
    audit.append(actor, "open311.key.issue", f"open311-key:{key.id}",
                 {"label": label, "county": county_code})
    return api_key, key


def revoke_key(key_id: str, actor: str) -> bool:
    """Revoke a key at once (its next call is 403); False if there is no such active key."""
    try:
        oid = ObjectId(key_id)
    except (InvalidId, TypeError):
        return False
    done = Open311Key.objects(id=oid, revoked_at=None).update_one(set__revoked_at=utcnow())
    if done:
        audit.append(actor, "open311.key.revoke", f"open311-key:{oid}")
    return bool(done)


def all_keys() -> list[Open311Key]:
    return list(Open311Key.objects.order_by("created_at"))


def key_for(api_key: str | None) -> Open311Key:
    """The active key presented; 403 (the spec's code for a bad key) otherwise."""
    if api_key:
        key = Open311Key.objects(key_hash=hash_token(api_key), revoked_at=None).first()
        if key is not None:
            return key
    raise Refusal(403, INVALID_KEY)


def _count_filing(key: Open311Key) -> None:
    """429 once a key has filed its hourly budget (a fixed window per clock hour)."""
    hour = int(utcnow().timestamp() // 3600)
    counter = LIMIT_KEY.format(key_id=key.id, hour=hour)
    with redis_store.conn.pipeline() as pipe:
        pipe.incr(counter)
        pipe.expire(counter, 7200)
        count = int(pipe.execute()[0])
    if count > settings().open311_requests_per_key_hour:
        retry = 3600 - int(utcnow().timestamp()) % 3600
        raise Refusal(429, "too many service requests with this api_key; retry later",
                      errors={"retry_after": retry})


# --- Filing ---------------------------------------------------------------------------


def _number(form: Mapping[str, str], name: str, low: float, high: float) -> float:
    try:
        value = float(form[name])
    except ValueError:
        raise Refusal(400, f"{name} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise Refusal(400, f"{name} is out of range ({low} to {high})")
    return value


def _location(form: Mapping[str, str]) -> tuple[float | None, float | None, str]:
    """(lat, long, address_string) as sent; 400 for half a point or none at all."""
    has_lat, has_lon = bool(form.get("lat")), bool(form.get("long"))
    if has_lat != has_lon:
        raise Refusal(400, "lat and long must be sent together")
    address = (form.get("address_string") or "").strip()
    if len(address) > MAX_ADDRESS:
        raise Refusal(400, f"address_string is longer than {MAX_ADDRESS} characters")
    if not has_lat and not address:
        if form.get("address_id"):
            raise Refusal(400, "address_id is not supported here: send lat and long, "
                               "or address_string")
        raise Refusal(400, "a location was not provided: send lat and long, or address_string")
    if not has_lat:
        return None, None, address
    return _number(form, "lat", -90, 90), _number(form, "long", -180, 180), address


def _text(form: Mapping[str, str], name: str, limit: int) -> str:
    value = (form.get(name) or "").strip()
    if len(value) > limit:
        raise Refusal(400, f"{name} is longer than {limit} characters")
    return value


def _client_reporter(key: Open311Key, county: str | None) -> str:
    """The public reporter record that stands for a key's tips in one county.

    Never found by the phone the client sends: that number is not verified, and must
    not attach a tip to a registered reporter who owns it (docs/interop.md).
    """
    index = f"open311:{key.id}:{county or '-'}"
    doc = Reporter._get_collection().find_one_and_update(
        {"phone_index": index},
        {"$setOnInsert": {"phone_index": index, "role": "public", "county_code": county,
                          "created_at": utcnow(),
                          "name": keyring().encrypt("公众（Open311）", context="reporter.name")}},
        upsert=True, return_document=ReturnDocument.AFTER, projection={"_id": 1},
    )
    return str(doc["_id"])


def _client_id(key: Open311Key, form: Mapping[str, str]) -> str:
    """The same POST from the same key is the same request: a client's retry files once."""
    body = urlencode(sorted(form.items()))
    return "o311-" + hashlib.sha256(f"{key.id}\n{body}".encode()).hexdigest()[:40]


def file_request(key: Open311Key, form: Mapping[str, str]) -> dict[str, Any]:
    """Validate a POSTed request, store it as a public tip and queue its routing."""
    county = jurisdiction(form.get("jurisdiction_id"), key)
    found = service(form.get("service_code"))
    lat, lon, address = _location(form)
    description = _text(form, "description", MAX_DESCRIPTION)
    media_url = _text(form, "media_url", MAX_MEDIA_URL)
    contact = {name: _text(form, name, MAX_FIELD) for name in CONTACT_FIELDS}
    if carries_genetic_data(description):
        raise Refusal(400, "description carries DNA data, which SafeGrid may not collect")
    _count_filing(key)
    # The place named in address_string comes first: the route job's text locating reads
    # the details when there is no point.
    details = "\n".join(filter(None, [f"地址：{address}" if address else "", description,
                                      f"媒体：{media_url}" if media_url else ""]))
    sealed = json.dumps({k: v for k, v in contact.items() if v}, ensure_ascii=False)
    origin = {"key_id": key.id, "county_code": county,
              "contact": keyring().encrypt(sealed, context=CONTACT_CONTEXT)}
    doc, created = file_report(NewReport(
        reporter_id=_client_reporter(key, county),
        client_id=_client_id(key, form),
        category=found.service_code,
        details=details,
        source="open311",
        lat=lat,
        lon=lon,
        trust="public",
        also={"open311": origin},
    ))
    if created:
        audit.append(f"open311:{key.id}", "open311.request", doc["code"],
                     {"service_code": found.service_code, "county": county})
        log.info("open311 request %s filed", doc["code"])
    return doc


# --- Reading --------------------------------------------------------------------------


def status_of(report_status: str) -> str:
    """The spec's two states: closed once the case is closed, open until then."""
    return CLOSED if report_status == "closed" else OPEN


def w3_time(at: dt.datetime | None) -> str | None:
    """A stored (naive UTC) time in the spec's w3 format, in the display time zone."""
    if at is None:
        return None
    zone = ZoneInfo(settings().timezone)
    return at.replace(tzinfo=dt.UTC, microsecond=0).astimezone(zone).isoformat()


def parse_w3(name: str, value: str | None) -> dt.datetime | None:
    """A w3 date-time query argument as naive UTC; 400 when it is not one with a zone."""
    if not value:
        return None
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refusal(400, f"{name} is not a w3 date-time such as 2010-01-01T00:00:00Z") from None
    if at.tzinfo is None:
        raise Refusal(400, f"{name} must give its time zone (Z or an offset)")
    return at.astimezone(dt.UTC).replace(tzinfo=None)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _as_request(report: Mapping[str, Any], dispatches: Mapping[Any, Mapping[str, Any]]
                ) -> dict[str, Any]:
    """A stored report as the spec's request: status and who handles it, nothing more."""
    station = gridcache.current().stations.get(report.get("station_code") or "")
    times = [report.get("created_at"), report.get("routed_at")]
    for dispatch_id in report.get("dispatch_ids") or ():
        held = dispatches.get(dispatch_id, {})
        times += [held.get("acknowledged_at"), held.get("closed_at")]
    code = report["category"]
    return {
        "service_request_id": report["code"],
        "status": status_of(report["status"]),
        "status_notes": None,
        "service_name": CATEGORY_NAMES.get(code, code),
        "service_code": code,
        "description": None,
        "agency_responsible": station.name if station else None,
        "service_notice": None,
        "requested_datetime": w3_time(report["created_at"]),
        "updated_datetime": w3_time(max(t for t in times if t is not None)),
        "expected_datetime": None,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


PROJECTION = {"code": 1, "category": 1, "status": 1, "station_code": 1, "created_at": 1,
              "routed_at": 1, "dispatch_ids": 1}


def _as_requests(reports: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    found = list(reports)
    ids = [d for r in found for d in r.get("dispatch_ids") or ()]
    dispatches = {d["_id"]: d for d in Dispatch._get_collection().find(
        {"_id": {"$in": ids}}, {"acknowledged_at": 1, "closed_at": 1})} if ids else {}
    return [_as_request(r, dispatches) for r in found]


def requests_of(key: Open311Key, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """GET requests: the key's own requests, filtered as the spec's arguments say."""
    county = jurisdiction(query.get("jurisdiction_id"), key)
    match: dict[str, Any] = {"open311.key_id": key.id}
    if county is not None and not key.county_code:
        match["open311.county_code"] = county
    wanted = _split(query.get("service_request_id"))
    if wanted:  # "This overrides all other arguments."
        match["code"] = {"$in": [code.upper() for code in wanted[:MAX_RESULTS]]}
    else:
        codes = _split(query.get("service_code"))
        for code in codes:
            service(code)
        if codes:
            match["category"] = {"$in": codes}
        statuses = _split(query.get("status"))
        if set(statuses) - {OPEN, CLOSED}:
            raise Refusal(400, "status must be open or closed")
        if len(set(statuses)) == 1:
            match["status"] = "closed" if statuses[0] == CLOSED else {"$ne": "closed"}
        match["created_at"] = _date_range(query)
    cursor = Report._get_collection().find(match, PROJECTION).sort("created_at", -1)
    return _as_requests(cursor.limit(MAX_RESULTS))


def _date_range(query: Mapping[str, str]) -> dict[str, dt.datetime]:
    start = parse_w3("start_date", query.get("start_date"))
    end = parse_w3("end_date", query.get("end_date"))
    if start is not None and end is not None:
        if end < start:
            raise Refusal(400, "end_date is before start_date")
        if end - start > MAX_SPAN:
            raise Refusal(400, "start_date and end_date may not span more than 90 days")
    elif start is not None:
        end = start + MAX_SPAN
    elif end is not None:
        start = end - MAX_SPAN
    else:
        end = utcnow()
        start = end - MAX_SPAN
    return {"$gte": start, "$lte": end}


def request_of(key: Open311Key, code: str, jurisdiction_id: str | None) -> dict[str, Any]:
    """GET a request: one of the key's own; anyone else's answers like a missing one (404)."""
    jurisdiction(jurisdiction_id, key)
    report = Report._get_collection().find_one(
        {"code": code.upper(), "open311.key_id": key.id}, PROJECTION)
    if report is None:
        raise Refusal(404, "service_request_id provided was not found")
    return _as_requests([report])[0]

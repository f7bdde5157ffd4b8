"""An alert as an OASIS CAP 1.2 document, and the Atom feed of the open ones.

CAP (Common Alerting Protocol, ITU-T X.1303) is how other alerting systems take an
alert in: a broadcaster, a neighbouring county's platform. The document says only
what the alert SMS says (the child, when and where last seen, the rings as CAP
circles) plus the issuing station; never a photo link, an officer, or a recipient.

Each step of the alert is a CAP message of its own: `Alert` when issued, `Update`
for an update and for found (responseType `AllClear`), `Cancel` when withdrawn. Its
identifier carries the step number, and an Update or Cancel references the first.
"""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from gateway import gridcache
from gateway.alerts.records import OPEN_STATUSES, Alert
from gateway.errors import Refusal
from gateway.runtime import settings

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MIMETYPE = "application/cap+xml"
ATOM_MIMETYPE = "application/atom+xml"
SENDER = "safegrid@{county}.gov.cn"
MSG_TYPES = {"active": "Alert", "updated": "Update", "found": "Update", "cancelled": "Cancel"}
# How long a CAP consumer should keep showing an open alert without news.
EXPIRES_AFTER = dt.timedelta(hours=24)


def _when(at: dt.datetime) -> str:
    """CAP's dateTime: local time with its offset, no fraction, never `Z` (CAP 1.2, 3.3.2)."""
    local = at.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(settings().timezone))
    return local.replace(microsecond=0).isoformat()


def identifier(alert: Alert, step: int | None = None) -> str:
    n = len(alert.events) if step is None else step
    return f"safegrid-{alert.county_code}-{alert.code}-{n}"


def cap_url(alert: Alert) -> str:
    return f"{settings().public_base_url}/api/v1/alerts/{alert.code}/cap.xml"


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{CAP_NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def cap_document(alert: Alert) -> bytes:
    """The alert's current step as a CAP 1.2 `alert` document (UTF-8 XML)."""
    sender = SENDER.format(county=alert.county_code)
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", identifier(alert))
    _sub(root, "sender", sender)
    _sub(root, "sent", _when(alert.updated_at))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", MSG_TYPES[alert.status])
    _sub(root, "source", alert.station_code)
    _sub(root, "scope", "Public")
    if alert.status != "active":
        _sub(root, "references", f"{sender},{identifier(alert, 1)},{_when(alert.issued_at)}")
    _sub(root, "incidents", f"alert-{alert.code}")
    info = _sub(root, "info")
    _sub(info, "language", "zh-CN")
    _sub(info, "category", "Rescue")
    _sub(info, "event", "寻找走失儿童")
    if alert.status == "found":
        _sub(info, "responseType", "AllClear")
    elif alert.status != "cancelled":
        _sub(info, "responseType", "Monitor")
    ended = alert.status not in OPEN_STATUSES
    _sub(info, "urgency", "Past" if ended else "Immediate")
    _sub(info, "severity", "Minor" if ended else "Severe")
    _sub(info, "certainty", "Observed")
    code = _sub(info, "eventCode")
    _sub(code, "valueName", "SafeGrid")
    _sub(code, "value", "CHILD_MISSING")
    _sub(info, "effective", _when(alert.issued_at))
    _sub(info, "onset", _when(alert.seen_at))
    _sub(info, "expires", _when(alert.ended_at or alert.updated_at + EXPIRES_AFTER))
    station = gridcache.current().stations.get(alert.station_code)
    _sub(info, "senderName", station.name if station else alert.station_code)
    headline = {"found": "孩子已找到", "cancelled": "协查已撤销"}.get(alert.status, "寻人")
    _sub(info, "headline", f"【寻人{alert.code}】{headline}")
    seen = _when(alert.seen_at)[11:16]
    description = f"{alert.summary}，{seen}在{alert.last_seen_place or '不明地点'}走失。"
    if alert.update_text:
        description += f"更新：{alert.update_text}。"
    _sub(info, "description", description)
    if not ended:
        _sub(info, "instruction", f"见到请短信回复S{alert.code}+地点，或拨打110。")
    area = _sub(info, "area")
    _sub(area, "areaDesc", alert.last_seen_place or "最后出现地点周边")
    loc = alert.last_seen
    sent = [r for r in alert.rings if r.sent_at is not None] or alert.rings[:1]
    for ring in sent:
        # CAP circles: "lat,lon radius", the radius in kilometres, WGS-84.
        _sub(area, "circle", f"{loc.lat:.6f},{loc.lon:.6f} {ring.radius_m / 1000:g}")
    geocode = _sub(area, "geocode")
    _sub(geocode, "valueName", "adcode")
    _sub(geocode, "value", alert.county_code)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True,
                             default_namespace=CAP_NS))


def atom_feed() -> bytes:
    """An Atom feed of the open alerts, each entry linking to its CAP document."""
    # Atom's elements unprefixed: ElementTree's default_namespace refuses unqualified
    # attributes (href, rel), so the namespace is registered with the empty prefix.
    ET.register_namespace("", ATOM_NS)
    alerts = list(Alert.objects(status__in=OPEN_STATUSES).order_by("-updated_at").limit(200))
    feed = ET.Element(f"{{{ATOM_NS}}}feed")

    def sub(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> None:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{name}", attrs)
        if text is not None:
            element.text = text

    base = settings().public_base_url
    sub(feed, "id", f"{base}/cap/alerts.atom")
    sub(feed, "title", "SafeGrid 寻人协查 (CAP 1.2)")
    newest = max((a.updated_at for a in alerts), default=None)
    sub(feed, "updated", _when(newest) if newest else "1970-01-01T00:00:00+00:00")
    sub(feed, "link", rel="self", href=f"{base}/cap/alerts.atom", type=ATOM_MIMETYPE)
    author = ET.SubElement(feed, f"{{{ATOM_NS}}}author")
    sub(author, "name", "SafeGrid")
    for alert in alerts:
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        sub(entry, "id", f"urn:safegrid:alert:{identifier(alert)}")
        sub(entry, "title", f"【寻人{alert.code}】{alert.summary}")
        sub(entry, "updated", _when(alert.updated_at))
        sub(entry, "summary", f"{alert.summary}，在{alert.last_seen_place or '不明地点'}走失")
        sub(entry, "link", rel="alternate", href=cap_url(alert), type=CAP_MIMETYPE)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))


def public_alert(code: str) -> Alert:
    """Any alert by code, for its public CAP document (404 when none)."""
    alert = Alert.objects(code=code).first()
    if alert is None:
        raise Refusal(404, f"no alert {code}")
    return alert

"""Reading a clue's reports, and breaking the seal on a reporter's identity (破封).

Officers working a dispatch read its reports: category, details, place, and
who reported only as a role and a kind of organisation. A reporter's name and
phone stay sealed: an officer may "break the glass" with a stated reason; that
read is written to the audit log before anything is shown (no log entry, no
data) and the county supervisor is told by SMS. Unsealing more often than the
limit allows is refused, audited, and also told to the supervisor.

The limit (`SAFEGRID_RATE_LIMIT_UNSEAL`) is counted here, once per person, for every
way in: the API and the console both call `unseal`, so a day's allowance is one
allowance however it is spent.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from bson import ObjectId
from limits import parse_many

from gateway import gridcache
from gateway.access.tokens import Principal
from gateway.delivery.cases import dispatch_reports
from gateway.delivery.escalation import supervisor_phone
from gateway.delivery.outbound_sms import queue_sms
from gateway.delivery.visibility import held_dispatch, visible_dispatch
from gateway.errors import Refusal
from gateway.extensions import limiter
from gateway.privacy import audit
from gateway.records.open311 import contact_fields
from gateway.records.people import Officer, Reporter
from gateway.records.reports import Report
from gateway.settings import Settings
from grid.documents import Dispatch, utcnow

log = logging.getLogger(__name__)

LIMIT_SCOPE = "unseal"
LIMIT_MESSAGE = "too many reporter identities unsealed: your supervisor has been told"

ORGANISATION_KIND = {
    "grid_worker": "村/社区网格", "teacher": "学校", "medical": "医疗机构",
    "registrar": "婚姻登记机关", "transport": "交通/住宿", "hotel": "交通/住宿",
    "child_director": "村/社区儿童主任", "other": "其他", "public": "公众",
}


def _reports(dispatch: Dispatch) -> list[Report]:
    return list(dispatch_reports(dispatch.id))


def read_reports(principal: Principal, dispatch_id: str) -> list[dict[str, Any]]:
    """The dispatch's reports with their details, reporters as role and kind only (audited)."""
    dispatch = visible_dispatch(principal, dispatch_id)
    reports = _reports(dispatch)
    roles = {r.id: r.role for r in Reporter.objects(
        id__in=[rep.reporter_id for rep in reports]).only("role")}
    audit.append(principal.actor, "dispatch.read_reports",
                 f"dispatch:{dispatch.id}", {"reports": [r.code for r in reports]})
    exact = principal.role == "officer"  # the station working it goes there; others see the cell
    return [{
        "code": r.code, "category": r.category, "details": r.details, "status": r.status,
        "trust": r.trust, "source": r.source, "cell_code": r.cell_code,
        "placed_by": r.placed_by, "created_at": r.created_at,
        "location": _location(r, exact), "flags": list(r.flags or []),
        "reporter_role": roles.get(r.reporter_id, "unknown"),
        "reporter_organisation_kind": ORGANISATION_KIND.get(roles.get(r.reporter_id, ""),
                                                            "未知"),
    } for r in reports]


def _location(report: Report, exact: bool) -> dict[str, Any] | None:
    """The location a report was routed on; the exact point only when `exact`."""
    where = report.location
    if where is None:
        return None
    return {
        "lat": where.lat if exact else None, "lon": where.lon if exact else None,
        "datum": where.datum, "method": where.method, "precision_m": where.precision_m,
        "label": where.label, "candidates": list(where.candidates or []),
        "grid_code": where.grid_code,
    }


class TooManyUnseals(Refusal):
    """Over the person's break-glass limit: nothing is shown; `retry_after_s` says when."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(429, LIMIT_MESSAGE, {"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


def count_unseal(principal: Principal, settings: Settings, via: str) -> None:
    """Count one break-glass attempt against the person's limit, whichever way it came.

    Over the limit: audited, the supervisor told (once a day), and TooManyUnseals. The
    count lives in the rate limiter's Redis storage under the person, not the address
    or the login, so a fresh login or the other door (API, console) does not reset it.
    With rate limits switched off nothing is counted; with Redis unreachable the
    limiter's rule holds (counted in this process's memory, never refused for that).
    """
    if not settings.rate_limits_enabled:
        return
    who = principal.actor
    over: tuple[str, int] | None = None
    try:
        strategy = limiter.limiter
        for limit in parse_many(settings.rate_limit_unseal):
            if not strategy.hit(limit, LIMIT_SCOPE, who):
                reset_at = strategy.get_window_stats(limit, LIMIT_SCOPE, who).reset_time
                left = math.ceil(reset_at - time.time())
                over = (str(limit), max(1, min(limit.get_expiry(), left)))
                break
    except Exception:  # noqa: BLE001 - as the limiter: its storage failing refuses no one
        log.exception("break-glass limit not counted: rate-limit storage failed")
    if over is not None:
        unusual_volume(who, principal, over[0], via)
        raise TooManyUnseals(over[1])


def unseal(principal: Principal, dispatch_id: str, reason: str, settings: Settings,
           via: str) -> list[dict[str, Any]]:
    """Break the glass: the reporters' names and phones, audited first, the supervisor told.

    Only the station that holds the clue, or the county's supervisor, may. Every attempt
    counts against the person's limit first (`count_unseal`; `via` is the address it
    came through, kept in the audit entry of a refusal).
    """
    count_unseal(principal, settings, via)
    dispatch = held_dispatch(principal, dispatch_id)
    reports = _reports(dispatch)
    actor = principal.actor
    # Written before anything is shown: if the audit log cannot take it, nothing is.
    entry = audit.append(actor, "report.unseal", f"dispatch:{dispatch.id}",
                         {"reports": [r.code for r in reports], "reason": reason,
                          "station": principal.station_code})
    _tell_supervisor(dispatch, entry.seq)
    people = {p.id: p for p in Reporter.objects(id__in=[r.reporter_id for r in reports])}
    return [_identity(r, people.get(r.reporter_id)) for r in reports]


def _identity(report: Report, person: Reporter | None) -> dict[str, Any]:
    """Who reported: the reporter record; for an Open311 request, the contact its client sent."""
    identity: dict[str, Any] = {
        "report_code": report.code,
        "name": person.name if person else "",
        "phone": person.phone if person else "",
        "role": person.role if person else "unknown",
        "organisation": person.organisation if person else None,
    }
    contact = contact_fields(report.open311)
    if contact:
        name = " ".join(filter(None, (contact.get("first_name"), contact.get("last_name"))))
        identity.update(name=name or identity["name"], phone=contact.get("phone", ""),
                        contact=contact)
    return identity


def unusual_volume(who: str, principal: Principal | None, limit: str, path: str) -> None:
    """Over the break-glass limit: audited, and the supervisor told (once a day per person).

    `who` is the person's actor (the limit's key).
    """
    audit.append(who, "report.unseal_refused", f"limit:{limit}", {"path": path})
    if principal is None or not principal.subject_id:
        return
    found = Officer.objects(id=ObjectId(principal.subject_id)).only("name", "county_code")
    officer = found.first()  # no Officer for a reporter's or admin's token: no SMS
    phone = supervisor_phone(officer.county_code) if officer else None
    if officer and phone:
        queue_sms(phone,
                  f"【异常破封】{officer.name[:16]}今日查看举报人身份超限，已暂停，请核查审计记录。",
                  "unseal_volume", ref=_volume_ref(who))


def _volume_ref(who: str) -> str:
    """One notice a day per person; an RQ job id allows no ':' (the actor has one)."""
    return f"unseal-volume-{who.replace(':', '-')}-{utcnow().date().isoformat()}"


def _tell_supervisor(dispatch: Dispatch, audit_seq: int) -> None:
    station = gridcache.current().stations.get(dispatch.station_code)
    if station is None:
        return
    phone = supervisor_phone(station.county_code)
    if phone:
        queue_sms(phone,
                  f"【破封提示】{station.name[:16]}查看了线索{dispatch.report_code}"
                  "的举报人身份，请核查审计记录。",
                  "unseal_notice", ref=f"unseal-{dispatch.id}-{audit_seq}")

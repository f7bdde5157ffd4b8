"""The lists police work from: a station's inbox and transfers, a county's overdue clues.

Each function checks the caller may see what it asks for (gateway/delivery/
visibility.py) and returns a mongoengine queryset in the order it is shown;
the API pages through it.
"""

from __future__ import annotations

from typing import Any

from mongoengine.queryset import QuerySet

from gateway import gridcache
from gateway.access.tokens import Principal
from gateway.delivery.visibility import may_see_station
from gateway.errors import Refusal
from grid.documents import Dispatch, utcnow
from grid.escalation import OVERDUE_STATES


def _filters(query: dict[str, Any]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if "status" in query:
        filters["status"] = query["status"]
    if "priority" in query:
        filters["priority"] = query["priority"]
    if query.get("overdue"):
        filters["ack_deadline__lte"] = utcnow()
        filters["acknowledged_at"] = None  # taken, then offered to a neighbour: not overdue
        filters.setdefault("status__in", sorted(OVERDUE_STATES))
    return filters


def station_inbox(principal: Principal, code: str, query: dict[str, Any]) -> QuerySet:
    """The station's dispatches, latest news first, filtered by status, priority and overdue."""
    if code not in gridcache.current().stations:
        raise Refusal(404, f"no station {code}")
    if not may_see_station(principal, code):
        raise Refusal(403, f"you may not read station {code}'s inbox")
    # A clue a new report joined rises to the top (updated_at), then the newest.
    return Dispatch.objects(station_code=code, **_filters(query)).order_by(
        "-updated_at", "-created_at", "-id")


def station_transfers(principal: Principal, code: str) -> QuerySet:
    """Clues other stations ask `code` to take over, newest request first."""
    if not may_see_station(principal, code):
        raise Refusal(403, f"you may not read station {code}'s transfers")
    return Dispatch.objects(transfer_to=code, status="transfer_requested").order_by(
        "-transfer_requested_at")


def county_overdue(principal: Principal, code: str) -> QuerySet:
    """Everything past its acknowledgement deadline in the supervisor's county, oldest first."""
    if principal.county_code != code:
        raise Refusal(403, f"you supervise county {principal.county_code}, not {code}")
    stations = [s.code for s in gridcache.current().stations.values() if s.county_code == code]
    return Dispatch.objects(station_code__in=stations, status__in=sorted(OVERDUE_STATES),
                            acknowledged_at=None,
                            ack_deadline__lte=utcnow()).order_by("ack_deadline")

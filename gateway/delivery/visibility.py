"""Who may see which dispatch: the visibility rule of the station inbox.

Officers see their own station's dispatches and those another station offers to
it (a pending transfer); supervisors see every dispatch of their county's
stations. Reporters and admins see none. A dispatch that is not there is a 404;
one that is there but not the caller's is a 403.
"""

from __future__ import annotations

from gateway import gridcache
from gateway.access.tokens import Principal
from gateway.errors import Refusal
from grid.documents import Dispatch


def supervises(principal: Principal, station_code: str) -> bool:
    """True when `principal` is the supervisor of the county `station_code` belongs to."""
    station = gridcache.current().stations.get(station_code)
    return (principal.role == "supervisor" and station is not None
            and station.county_code == principal.county_code)


def may_see_station(principal: Principal, station_code: str) -> bool:
    """True when `principal` may read the inbox and transfers of `station_code`."""
    if principal.role == "officer":
        return principal.station_code == station_code
    return supervises(principal, station_code)


def visible_dispatch(principal: Principal, dispatch_id: str) -> Dispatch:
    """The dispatch if the caller may see it: Refusal 404 when there is none, else 403."""
    doc: Dispatch | None = (Dispatch.objects(id=dispatch_id).first()
                            if _is_id(dispatch_id) else None)
    if doc is None:
        raise Refusal(404, f"no dispatch {dispatch_id}")
    visible = (principal.station_code in (doc.station_code, doc.transfer_to)
               if principal.role == "officer" else supervises(principal, doc.station_code))
    if not visible:
        raise Refusal(403, "this dispatch belongs to another station")
    return doc


def held_dispatch(principal: Principal, dispatch_id: str) -> Dispatch:
    """The dispatch if the caller's station holds it (or they supervise it), for acts such
    as break-glass and unlinking: a station only offered the clue may look, not act, until
    it accepts."""
    doc = visible_dispatch(principal, dispatch_id)
    if principal.role == "officer" and principal.station_code != doc.station_code:
        raise Refusal(403, "this clue is only offered to your station: accept the transfer "
                           "before unsealing its reporters or unlinking its reports")
    return doc


def _is_id(value: str) -> bool:
    return len(value) == 24 and all(c in "0123456789abcdef" for c in value.lower())

"""The station inbox (派出所) and working a clue: acknowledge, transfer, note, close."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, Page, abort
from flask_smorest.pagination import PaginationMetadataSchema
from mongoengine.queryset import QuerySet

from gateway import gridcache, workflow
from gateway.api.schemas import (
    CloseInSchema,
    DispatchOutSchema,
    DispatchQuerySchema,
    NoteInSchema,
    ReasonInSchema,
    TransferInSchema,
    error_responses,
)
from gateway.auth import Principal, current_principal, require
from grid.documents import Dispatch, utcnow
from grid.escalation import OVERDUE_STATES
from grid.lifecycle import TransitionError


class PagedBlueprint(Blueprint):
    """A Blueprint whose X-Pagination header is documented as what it is: JSON.

    flask-smorest documents it with `schema: PaginationMetadata`, which by OpenAPI's
    header serialization (style `simple`) means `total,5,page,1,...`; the header
    carries `{"total": 5, "page": 1, ...}`, which a header spells with `content`.
    """

    def _document_pagination_metadata(self, spec: Any, resp_doc: dict[str, Any]) -> None:
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "Pagination metadata (JSON)",
            "content": {"application/json": {"schema": PaginationMetadataSchema}},
        }


blp = PagedBlueprint("dispatches", __name__, description="Clues handed to police stations")
DISPATCH = DispatchOutSchema()
DISPATCHES = DispatchOutSchema(many=True)


class QuerySetPage(Page):
    """flask-smorest pagination over a mongoengine queryset (skip/limit + count)."""

    @property
    def items(self) -> list[Dispatch]:
        first = self.page_params.first_item
        if first >= 2**62:
            # Past the end of any collection, like every page after the last; and
            # MongoDB's skip is a signed 64-bit int (?page=9223372036854775807 was a 500).
            return []
        query: QuerySet = self.collection
        return list(query.skip(first).limit(self.page_params.page_size))

    @property
    def item_count(self) -> int:
        query: QuerySet = self.collection
        return int(query.count())


def _supervises(principal: Principal, station_code: str) -> bool:
    station = gridcache.current().stations.get(station_code)
    return (principal.role == "supervisor" and station is not None
            and station.county_code == principal.county_code)


def _may_see_station(principal: Principal, station_code: str) -> bool:
    if principal.role == "officer":
        return principal.station_code == station_code
    return _supervises(principal, station_code)


def _filters(query: dict[str, Any]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if "status" in query:
        filters["status"] = query["status"]
    if "priority" in query:
        filters["priority"] = query["priority"]
    if query.get("overdue"):
        filters["ack_deadline__lte"] = utcnow()
        filters.setdefault("status__in", sorted(OVERDUE_STATES))
    return filters


@blp.route("/stations/<string:code>/dispatches")
class StationInbox(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.arguments(DispatchQuerySchema, location="query")
    @blp.response(200, DISPATCHES)
    @blp.paginate(QuerySetPage)
    def get(self, query: dict[str, Any], code: str) -> QuerySet:
        """The station's dispatches, newest first; filter by status, priority, overdue."""
        if code not in gridcache.current().stations:
            abort(404, message=f"no station {code}")
        if not _may_see_station(current_principal(), code):
            abort(403, message=f"you may not read station {code}'s inbox")
        return Dispatch.objects(station_code=code, **_filters(query)).order_by("-created_at", "-id")


@blp.route("/stations/<string:code>/transfers")
class StationTransfers(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403)
    @blp.response(200, DISPATCHES)
    @blp.paginate(QuerySetPage)
    def get(self, code: str) -> QuerySet:
        """Clues other stations ask this station to take over (accept or reject them)."""
        if not _may_see_station(current_principal(), code):
            abort(403, message=f"you may not read station {code}'s transfers")
        return Dispatch.objects(transfer_to=code, status="transfer_requested").order_by(
            "-transfer_requested_at")


@blp.route("/counties/<string:code>/overdue")
class CountyOverdue(MethodView):
    @require("supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403)
    @blp.response(200, DISPATCHES)
    @blp.paginate(QuerySetPage)
    def get(self, code: str) -> QuerySet:
        """Everything past its acknowledgement deadline in the supervisor's county, oldest first."""
        if current_principal().county_code != code:
            abort(403, message=f"you supervise county {current_principal().county_code}, "
                               f"not {code}")
        stations = [s.code for s in gridcache.current().stations.values() if s.county_code == code]
        return Dispatch.objects(station_code__in=stations, status__in=sorted(OVERDUE_STATES),
                                ack_deadline__lte=utcnow()).order_by("ack_deadline")


@blp.route("/dispatches/<string:dispatch_id>")
class DispatchDetail(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, DISPATCH)
    def get(self, dispatch_id: str) -> Dispatch:
        """One dispatch with its notes (officers of its station or of a transfer's target)."""
        return visible_dispatch(current_principal(), dispatch_id)


def visible_dispatch(principal: Principal, dispatch_id: str) -> Dispatch:
    """The dispatch if the caller may see it: 404 when there is none, else 403 if not theirs.

    Officers see their station's dispatches and those offered to it; supervisors their county's.
    """
    doc: Dispatch | None = (Dispatch.objects(id=dispatch_id).first()
                            if _is_id(dispatch_id) else None)
    if doc is None:
        abort(404, message=f"no dispatch {dispatch_id}")
    assert doc is not None  # abort raised
    visible = (principal.station_code in (doc.station_code, doc.transfer_to)
               if principal.role == "officer" else _supervises(principal, doc.station_code))
    if not visible:
        abort(403, message="this dispatch belongs to another station")
    return doc


def _is_id(value: str) -> bool:
    return len(value) == 24 and all(c in "0123456789abcdef" for c in value.lower())


def _act(dispatch_id: str, action: str, **inputs: Any) -> Dispatch:
    principal = current_principal()
    try:
        updated = workflow.apply(dispatch_id, action, actor=f"officer:{principal.subject_id}",
                                 actor_station=principal.station_code, **inputs)
    except workflow.NotFound:
        abort(404, message=f"no dispatch {dispatch_id}")
    except TransitionError as exc:
        errors: dict[str, Any] = {"code": exc.code}
        if exc.current_state is not None:
            errors["current_status"] = exc.current_state
        abort(exc.http_status, message=exc.message, errors=errors)
    return Dispatch._from_son(updated)


@blp.route("/dispatches/<string:dispatch_id>/acknowledge")
class Acknowledge(MethodView):
    @require("officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415)
    @blp.response(200, DISPATCH)
    def post(self, dispatch_id: str) -> Dispatch:
        """Acknowledge a clue for your station (409 with the current state if not allowed)."""
        return _act(dispatch_id, "acknowledge")


@blp.route("/dispatches/<string:dispatch_id>/transfer")
class Transfer(MethodView):
    @require("officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(TransferInSchema)
    @blp.response(200, DISPATCH)
    def post(self, data: dict[str, str], dispatch_id: str) -> Dispatch:
        """Ask another station to take this clue over; it must accept or reject."""
        return _act(dispatch_id, "request_transfer", target_station=data["to_station"],
                    reason=data["reason"])


@blp.route("/dispatches/<string:dispatch_id>/accept-transfer")
class AcceptTransfer(MethodView):
    @require("officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415)
    @blp.response(200, DISPATCH)
    def post(self, dispatch_id: str) -> Dispatch:
        """Take over a clue offered to your station (it arrives as new, under a fresh SLA)."""
        return _act(dispatch_id, "accept_transfer")


@blp.route("/dispatches/<string:dispatch_id>/reject-transfer")
class RejectTransfer(MethodView):
    @require("officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(ReasonInSchema)
    @blp.response(200, DISPATCH)
    def post(self, data: dict[str, str], dispatch_id: str) -> Dispatch:
        """Return a clue offered to your station, with the reason."""
        return _act(dispatch_id, "reject_transfer", reason=data["reason"])


@blp.route("/dispatches/<string:dispatch_id>/notes")
class Notes(MethodView):
    @require("officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(NoteInSchema)
    @blp.response(200, DISPATCH)
    def post(self, data: dict[str, str], dispatch_id: str) -> Dispatch:
        """Add a note to an open clue."""
        return _act(dispatch_id, "note", reason=data["text"])


@blp.route("/dispatches/<string:dispatch_id>/close")
class Close(MethodView):
    @require("officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(CloseInSchema)
    @blp.response(200, DISPATCH)
    def post(self, data: dict[str, Any], dispatch_id: str) -> Dispatch:
        """Close an acknowledged clue with its outcome (some outcomes need a reason)."""
        return _act(dispatch_id, "close", outcome=data["outcome"], reason=data["reason"])

"""The station inbox (派出所) and working a clue: acknowledge, transfer, note, close."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, Page
from flask_smorest.pagination import PaginationMetadataSchema
from mongoengine.queryset import QuerySet

from gateway.access.tokens import current_principal, require
from gateway.api.schemas import (
    CloseInSchema,
    DispatchOutSchema,
    DispatchQuerySchema,
    NoteInSchema,
    ReasonInSchema,
    TransferInSchema,
    UnlinkInSchema,
    UnlinkOutSchema,
    error_responses,
)
from gateway.delivery import inbox, unlinking, workflow
from gateway.delivery.visibility import visible_dispatch
from grid.documents import Dispatch


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
        return inbox.station_inbox(current_principal(), code, query)


@blp.route("/stations/<string:code>/transfers")
class StationTransfers(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403)
    @blp.response(200, DISPATCHES)
    @blp.paginate(QuerySetPage)
    def get(self, code: str) -> QuerySet:
        """Clues other stations ask this station to take over (accept or reject them)."""
        return inbox.station_transfers(current_principal(), code)


@blp.route("/counties/<string:code>/overdue")
class CountyOverdue(MethodView):
    @require("supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403)
    @blp.response(200, DISPATCHES)
    @blp.paginate(QuerySetPage)
    def get(self, code: str) -> QuerySet:
        """Everything past its acknowledgement deadline in the supervisor's county, oldest first."""
        return inbox.county_overdue(current_principal(), code)


@blp.route("/dispatches/<string:dispatch_id>")
class DispatchDetail(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404)
    @blp.response(200, DISPATCH)
    def get(self, dispatch_id: str) -> Dispatch:
        """One dispatch with its notes (officers of its station or of a transfer's target)."""
        return visible_dispatch(current_principal(), dispatch_id)


def _act(dispatch_id: str, action: str, **inputs: Any) -> Dispatch:
    return Dispatch._from_son(workflow.act(current_principal(), dispatch_id, action, **inputs))


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


@blp.route("/dispatches/<string:dispatch_id>/reopen")
class Reopen(MethodView):
    @require("officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(ReasonInSchema)
    @blp.response(200, DISPATCH)
    def post(self, data: dict[str, str], dispatch_id: str) -> Dispatch:
        """Reopen a closed clue of your station, with the reason (audited): it is
        acknowledged again, and so are its reports."""
        return _act(dispatch_id, "reopen", reason=data["reason"])


@blp.route("/dispatches/<string:dispatch_id>/unlink")
class Unlink(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 409, 415, 422)
    @blp.arguments(UnlinkInSchema)
    @blp.response(200, UnlinkOutSchema)
    def post(self, data: dict[str, str], dispatch_id: str) -> dict[str, Dispatch]:
        """Take a report that is another incident out of the clue: it becomes a clue of its
        own at the same station, under the SLA running since it was first routed."""
        clue, own = unlinking.unlink(current_principal(), dispatch_id, data["report"],
                                     data["reason"])
        return {"dispatch": clue, "new_dispatch": own}

"""The station inbox (派出所) and acknowledging a clue."""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId
from flask.views import MethodView
from flask_smorest import Blueprint, Page, abort
from mongoengine.queryset import QuerySet

from gateway import gridcache
from gateway.api.schemas import DispatchOutSchema, DispatchQuerySchema
from gateway.auth import Principal, current_principal, require
from gateway.documents import Report
from grid.documents import Dispatch, utcnow

blp = Blueprint("dispatches", __name__, description="Clues handed to police stations")


class QuerySetPage(Page):
    """flask-smorest pagination over a mongoengine queryset (skip/limit + count)."""

    @property
    def items(self) -> list[Dispatch]:
        query: QuerySet = self.collection
        return list(query.skip(self.page_params.first_item).limit(self.page_params.page_size))

    @property
    def item_count(self) -> int:
        query: QuerySet = self.collection
        return int(query.count())


def _may_see_station(principal: Principal, station_code: str) -> bool:
    if principal.role == "officer":
        return principal.station_code == station_code
    if principal.role == "supervisor":
        station = gridcache.current().stations.get(station_code)
        return station is not None and station.county_code == principal.county_code
    return False


@blp.route("/stations/<string:code>/dispatches")
class StationInbox(MethodView):
    @require("officer", "supervisor")
    @blp.doc(security=[{"bearerAuth": []}])
    @blp.arguments(DispatchQuerySchema, location="query")
    @blp.response(200, DispatchOutSchema(many=True))
    @blp.paginate(QuerySetPage)
    def get(self, query: dict[str, str], code: str) -> QuerySet:
        """The station's dispatches, newest first; filter by `status`."""
        if code not in gridcache.current().stations:
            abort(404, message=f"no station {code}")
        if not _may_see_station(current_principal(), code):
            abort(403, message=f"you may not read station {code}'s inbox")
        filters = {"station_code": code}
        if "status" in query:
            filters["status"] = query["status"]
        return Dispatch.objects(**filters).order_by("-created_at", "-id")


@blp.route("/dispatches/<string:dispatch_id>/acknowledge")
class Acknowledge(MethodView):
    @require("officer")
    @blp.doc(security=[{"bearerAuth": []}])
    @blp.response(200, DispatchOutSchema)
    def post(self, dispatch_id: str) -> Dispatch:
        """Acknowledge a clue for your station (one guarded update; 409 if already done)."""
        try:
            oid = ObjectId(dispatch_id)
        except InvalidId:
            abort(404, message=f"no dispatch {dispatch_id}")
        principal = current_principal()
        updated = Dispatch.objects(
            id=oid, station_code=principal.station_code, status__in=("new", "delivered")
        ).modify(
            set__status="acknowledged",
            set__acknowledged_at=utcnow(),
            set__acknowledged_by=principal.subject_id,
            new=True,
        )
        if updated is None:
            current = Dispatch.objects(id=oid).only("station_code", "status").first()
            if current is None:
                abort(404, message=f"no dispatch {dispatch_id}")
            if current.station_code != principal.station_code:
                abort(403, message="this dispatch belongs to another station")
            abort(409, message=f"cannot acknowledge: the dispatch is {current.status}",
                  errors={"current_status": current.status})
        Report.objects(id=updated.report_id, status="routed").update_one(
            set__status="acknowledged"
        )
        return updated

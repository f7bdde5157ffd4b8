"""The bureau's figures (分析研判): counts, hotspots, response times (supervisors, admins)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from gateway.access.tokens import current_principal, require
from gateway.fields import error_responses
from gateway.insight import counts, duty, response, summary, tables
from gateway.insight.scope import county_for, scope_of
from gateway.insight_api.schemas import (
    CountsQuerySchema,
    CountsSchema,
    DutySchema,
    ExportQuerySchema,
    HotspotQuerySchema,
    HotspotsSchema,
    ResponseTimesSchema,
    ScopeQuerySchema,
    SummaryQuerySchema,
    TrendsQuerySchema,
    TrendsSchema,
)

MEDIA = tables.MEDIA_TYPES
blp = Blueprint("insight", __name__, description="The bureau's figures (分析研判)")
READERS = ("supervisor", "admin")


def _scope(args: dict[str, Any]) -> Any:
    return scope_of(current_principal(), args.get("county"), args.get("start"), args.get("end"))


@blp.route("/insight/counts")
class Counts(MethodView):
    @require(*READERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 422)
    @blp.arguments(CountsQuerySchema, location="query")
    @blp.response(200, CountsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Reports by cell, township or county × category × week or month (small counts
        suppressed)."""
        return counts.counts(_scope(args), args["by"], args["every"], args["category"])


@blp.route("/insight/hotspots")
class Hotspots(MethodView):
    @require(*READERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 422)
    @blp.arguments(HotspotQuerySchema, location="query")
    @blp.response(200, HotspotsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The hotspot map: GeoJSON of grid cells or H3 hexagons with their reports."""
        return counts.hotspots(_scope(args), args["category"], args["h3_resolution"])


@blp.route("/insight/response-times")
class ResponseTimes(MethodView):
    @require(*READERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 422)
    @blp.arguments(ScopeQuerySchema, location="query")
    @blp.response(200, ResponseTimesSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Station response times: acknowledgement p50/p90, share within SLA, escalations,
        transfers, overdue now."""
        return response.response_times(_scope(args))


@blp.route("/insight/duty")
class Duty(MethodView):
    @require(*READERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 422)
    @blp.arguments(ScopeQuerySchema, location="query")
    @blp.response(200, DutySchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The reporting duty (强制报告): every mandated unit and its reports, the units
        silent for 90 days, shares of units that reported by type and township, reporters
        by role."""
        return duty.duty(_scope(args))


@blp.route("/insight/trends")
class Trends(MethodView):
    @require(*READERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 422)
    @blp.arguments(TrendsQuerySchema, location="query")
    @blp.response(200, TrendsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Each area's reports against the period of the same length before (趋势)."""
        return counts.trends(_scope(args), args["by"], args["category"])


@blp.route("/insight/export")
class Export(MethodView):
    @require(*READERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 422)
    @blp.arguments(ExportQuerySchema, location="query")
    @blp.response(200, description="the figures as CSV (one table) or XLSX (a sheet a "
                                   "table), for the monthly report; formulas escaped")
    def get(self, args: dict[str, Any]) -> Response:
        """Every figure as CSV or XLSX, as published (small counts suppressed)."""
        fmt, name = args["format"], args["table"]
        data = tables.export(_scope(args), fmt, name, args["every"])
        filename = f"insight-{name or 'all'}.{fmt}"
        return Response(data, mimetype=MEDIA[fmt], headers={
            "Content-Disposition": f"attachment; filename={filename}"})


@blp.route("/insight/summary")
class Summary(MethodView):
    @require(*READERS)
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 404, 422)
    @blp.arguments(SummaryQuerySchema, location="query")
    @blp.response(200, description="a printable HTML page: map, charts, tables",
                  content_type="text/html")
    def get(self, args: dict[str, Any]) -> Response:
        """The monthly summary of a county (月度研判), printable: map, charts, response
        times, the reporting duty."""
        county = county_for(current_principal(), args["county"])
        page = summary.render(summary.county_required(county), summary.month_of(args["month"]))
        return Response(page, mimetype="text/html", headers={"Content-Security-Policy":
                                                             summary.CSP})

"""The supervisor's downloads (研判数据下载): the county's figures as CSV or XLSX and the
printable monthly summary (月度研判), exactly as the insight API publishes them
(`/api/v1/insight/export`, `/api/v1/insight/summary`: small counts "<5", formulas
escaped), for the console's own session instead of a bearer token.
"""

from __future__ import annotations

import re

from flask import request
from werkzeug.wrappers import Response

from gateway.console.site import blp, page_error, session, signed_in
from gateway.console.words import N_
from gateway.insight import summary, tables
from gateway.insight.scope import scope_of

MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def _county() -> str | None:
    return session().county_code or None


@blp.get("/county/figures.<fmt>")
@signed_in("supervisor")
def figures(fmt: str) -> Response:
    """Every figure of the last 30 days: CSV (counts by township) or XLSX (a sheet a table)."""
    county = _county()
    if fmt not in tables.MEDIA_TYPES or county is None:
        return page_error(404, N_("没有这个下载。"))
    data = tables.export(scope_of(session().principal, county, None, None), fmt, None)
    return Response(data, mimetype=tables.MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f"attachment; filename=insight-{county}.{fmt}"})


@blp.get("/county/summary")
@signed_in("supervisor")
def monthly_summary() -> Response:
    """The county's monthly summary, printable; `?month=YYYY-MM`, last month by default."""
    county = _county()
    if county is None:
        return page_error(404, N_("没有这个下载。"))
    asked = request.args.get("month")
    if asked is not None and not MONTH.fullmatch(asked):
        return page_error(422, N_("月份要写成YYYY-MM，例如2026-11。"))
    page = summary.render(county, summary.month_of(asked))
    return Response(page, mimetype="text/html",
                    headers={"Content-Security-Policy": summary.CSP})

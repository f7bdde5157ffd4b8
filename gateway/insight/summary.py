"""The monthly summary of a county (月度研判): one printable HTML page, rendered here.

A map of the county's grid cells shaded by their reports (inline SVG), the
reports by category and by week (SVG bar charts), the month against the month
before, station response times and the reporting duty. Nothing is loaded from
anywhere: no script, no font, no image file, so the page prints as it is shown
and can be saved into the bureau's monthly report. Every count is the published
one (banded and guarded, docs/insight.md); text is escaped.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from html import escape
from typing import Any

from gateway.errors import Refusal
from gateway.insight import counts, duty, response
from gateway.insight.scope import Scope
from grid.figures import LOCAL, SUPPRESSED, Count, Period, bounds

# Map shades from no reports to the most: light to dark red (print-safe).
SHADES = ("#f7f7f7", "#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
MAP_W, MAP_H = 640, 420
CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
STYLE = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
         "margin:1em 0}td,th{border:1px solid #999;padding:2px 8px;text-align:right}"
         "th:first-child,td:first-child{text-align:left}h2{margin-top:1.5em}"
         "@media print{body{margin:0}}")


def county_required(county: str | None) -> str:
    """A summary is of one county: a platform operator must name it."""
    if county is None:
        raise Refusal(422, "say which county (county=6 digits)",
                      {"query": {"county": ["required for a platform operator's token"]}})
    return county


def month_of(text: str | None, today: dt.date | None = None) -> dt.date:
    """The first day of a YYYY-MM month; by default the month before this one (Beijing)."""
    if text is None:
        today = today or dt.datetime.now(LOCAL).date()
        return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    year, month = (int(part) for part in text.split("-"))
    return dt.date(year, month, 1)


def month_period(month: dt.date) -> Period:
    """The calendar month (Beijing) starting on `month`."""
    start = month.replace(day=1)
    end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return Period(start, end)


def _low(figure: Count) -> int:
    """A published figure's lowest meaning, for drawing (withheld draws as nothing)."""
    return 0 if figure == "withheld" else bounds(figure)[0]


def _label(figure: Count) -> str:
    return str(figure) if figure in (SUPPRESSED, "withheld") else f"{figure:,}" if isinstance(
        figure, int) else str(figure)


def render(county: str, month: dt.date) -> str:
    """The whole page for `county` and the month starting on `month`."""
    period = month_period(month)
    scope = Scope(county, period)
    before = Scope(county, month_period(period.start - dt.timedelta(days=1)))
    by_week = counts.counts(scope, "county", "week", None)["rows"]
    by_month = counts.counts(scope, "county", "month", None)["rows"]
    last_month = counts.counts(before, "county", "month", None)["rows"]
    map_figure = counts.hotspots(scope, None, None)
    times = response.response_times(scope)["stations"]
    compliance = duty.duty(scope)

    def total(rows: list[dict[str, Any]]) -> Count:
        return next((r["reports"] for r in rows if r["category"] is None), 0)

    categories = [(r["category"], r["reports"]) for r in by_month if r["category"]]
    weeks = [(r["period_start"].isoformat(), r["reports"]) for r in by_week
             if r["category"] is None]
    title = f"县级月度研判 Monthly summary — county {county}, {period.start:%Y-%m}"
    parts = [
        "<!DOCTYPE html>", '<html lang="zh"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Period {period.start} to {period.end - dt.timedelta(days=1)} (Beijing time). "
        "Counts of 1 to 4 read &lt;5; larger counts are rounded down to a multiple of 5 "
        "(n means n to n+4); \"withheld\" marks a total that would reveal a small one.</p>",
        "<h2>Reports 报告数</h2>",
        _table(["", "this month", "previous month"],
               [["all categories", _label(total(by_month)), _label(total(last_month))]]),
        "<h2>Map 热点地图</h2>", _map(map_figure),
        "<h2>By category 按类别</h2>", _bars(categories, "category"),
        "<h2>By week 按周</h2>", _bars(weeks, "week"),
        "<h2>Station response 派出所响应</h2>",
        _table(["station", "clues", "acknowledged", "p50 s", "p90 s", "within SLA %",
                "escalated", "overdue now"],
               [[t["station"], _label(t["clues"]), _label(t["acknowledged"]),
                 _opt(t["ack_p50_s"]), _opt(t["ack_p90_s"]), _opt(t["within_sla_pct"]),
                 _label(t["escalated"]), _label(t["overdue_now"])] for t in times]),
        "<h2>Reporting duty 强制报告履职</h2>",
        _table(["township", "units", "reported", "%"],
               [[t["township"] or "—", str(t["units"]), str(t["units_reported"]),
                 _opt(t["reported_pct"])] for t in compliance["by_township"]]),
        f"<p>Units with no report since {compliance['silent_since']}: "
        f"{len(compliance['silent_units'])} of {len(compliance['units'])}.</p>",
        _table(["unit", "type", "township"],
               [[u["name"], u["type"], u["township"] or "—"]
                for u in compliance["silent_units"]]),
        "</body></html>",
    ]
    return "\n".join(parts)


def _opt(value: int | None) -> str:
    return "—" if value is None else str(value)


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["<table><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out += ["<tr>", *(f"<td>{escape(str(v))}</td>" for v in row), "</tr>"]
    out.append("</table>")
    return "".join(out)


def _shade(figure: Count, top: int) -> str:
    low = _low(figure)
    if low == 0:
        return SHADES[0]
    step = max(1, -(-top // (len(SHADES) - 1)))
    return SHADES[min(len(SHADES) - 1, 1 + (low - 1) // step)]


def _map(figure: dict[str, Any]) -> str:
    """The cells as SVG polygons in an equirectangular frame fitted to the county."""
    features = [f for f in figure["features"] if f["geometry"]["coordinates"][0]]
    if not features:
        return "<p>No grid cells.</p>"
    points = [p for f in features for p in f["geometry"]["coordinates"][0]]
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    scale = min(MAP_W / max(east - west, 1e-9), MAP_H / max(north - south, 1e-9))
    top = max((_low(f["properties"]["reports"]) for f in features), default=0)
    shapes = []
    for f in features:
        ring = " ".join(f"{(x - west) * scale:.1f},{(north - y) * scale:.1f}"
                        for x, y in f["geometry"]["coordinates"][0])
        props = f["properties"]
        shapes.append(
            f'<polygon points="{ring}" fill="{_shade(props["reports"], top)}" '
            f'stroke="#666" stroke-width="0.5"><title>{escape(props["name"])} '
            f'{escape(props["cell"])}: {escape(_label(props["reports"]))}</title></polygon>')
    legend = "".join(
        f'<rect x="{10 + i * 60}" y="{MAP_H + 10}" width="20" height="12" fill="{shade}" '
        f'stroke="#666"/>' for i, shade in enumerate(SHADES))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{MAP_W}" '
            f'height="{MAP_H + 30}" viewBox="0 0 {MAP_W} {MAP_H + 30}">'
            f'<title>Reports by grid cell</title>{"".join(shapes)}{legend}</svg>')


def _bars(items: list[tuple[str, Count]], what: str) -> str:
    """A horizontal bar chart of published counts; a bar's label is the published figure."""
    if not items:
        return "<p>No reports.</p>"
    top = max(_low(v) for _, v in items) or 1
    height = 22 * len(items) + 10
    bars = []
    grouped: dict[str, Count] = defaultdict(int)
    for name, value in items:
        grouped[name] = value
    for i, (name, value) in enumerate(grouped.items()):
        width = 400 * _low(value) / top
        y = 5 + 22 * i
        bars.append(
            f'<text x="0" y="{y + 14}" font-size="12">{escape(name)}</text>'
            f'<rect x="110" y="{y}" width="{width:.1f}" height="16" fill="#de2d26"/>'
            f'<text x="{115 + width:.1f}" y="{y + 13}" font-size="12">'
            f'{escape(_label(value))}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="600" '
            f'height="{height}" viewBox="0 0 600 {height}"><title>Reports by {escape(what)}'
            f'</title>{"".join(bars)}</svg>')

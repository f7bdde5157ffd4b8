"""Every figure as tables, for the monthly report the bureau files: CSV (one table) or an
XLSX workbook (a sheet a table), written by the roster's writers (gateway/enrolment/
exports.py), so a cell a spreadsheet would take for a formula is escaped the same way.

The figures are the published ones (banded, guarded): a file holds nothing the API
does not show. Township and unit names come from the roster; no person is named.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.enrolment.exports import to_csv, to_xlsx
from gateway.errors import Refusal
from gateway.insight import counts, duty, response
from gateway.insight.scope import Scope

TABLES = ("counts_by_township", "counts_by_cell", "hotspots", "trends_by_township",
          "response_times", "duty_units", "silent_units", "duty_by_type", "duty_by_township",
          "duty_by_role")
FORMATS = ("csv", "xlsx")

Table = tuple[list[str], list[list[Any]]]


def _rows(items: Iterable[dict[str, Any]], columns: list[str]) -> Table:
    return columns, [[_text(item.get(c)) for c in columns] for item in items]


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value.isoformat() if hasattr(value, "isoformat") else value


def table(scope: Scope, name: str, every: str = "month",
          memo: dict[str, Any] | None = None) -> Table:
    """One table of the figures, header and rows (`memo` keeps the duty figure, which
    five tables share)."""
    memo = {} if memo is None else memo
    if name in ("counts_by_township", "counts_by_cell"):
        by = "township" if name == "counts_by_township" else "cell"
        figure = counts.counts(scope, by, every, None)
        rows = [{**r, "category": r["category"] or "ALL"} for r in figure["rows"]]
        return _rows(rows, ["county", "area", "category", "period_start", "reports"])
    if name == "hotspots":
        features = counts.hotspots(scope, None, None)["features"]
        return _rows((f["properties"] for f in features), ["cell", "name", "reports"])
    if name == "trends_by_township":
        figure = counts.trends(scope, "township", None)
        rows = [{**r, "category": r["category"] or "ALL"} for r in figure["rows"]]
        return _rows(rows, ["county", "area", "category", "reports", "previous", "change_pct"])
    if name == "response_times":
        return _rows(response.response_times(scope)["stations"],
                     ["station", "clues", "acknowledged", "ack_p50_s", "ack_p90_s",
                      "within_sla_pct", "escalated", "transferred_in", "overdue_now"])
    if "duty" not in memo:
        memo["duty"] = duty.duty(scope)
    figure = memo["duty"]
    if name == "duty_units":
        return _rows(figure["units"], ["code", "name", "type", "county", "township", "cell",
                                       "reporters", "reports", "reported_in_90_days"])
    if name == "silent_units":
        return _rows(figure["silent_units"], ["code", "name", "type", "county", "township"])
    if name == "duty_by_type":
        return _rows(figure["by_type"], ["type", "units", "units_reported", "reported_pct"])
    if name == "duty_by_township":
        return _rows(figure["by_township"], ["township", "units", "units_reported",
                                             "reported_pct"])
    if name == "duty_by_role":
        return _rows(figure["by_role"], ["role", "reporters", "reporters_reported", "reports"])
    raise Refusal(422, f"no table {name}; one of {', '.join(TABLES)}")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX}  # export's formats


def export(scope: Scope, fmt: str, name: str | None, every: str = "month") -> bytes:
    """A CSV of one table (counts by township when none is named), or a workbook of the
    named table or of all of them."""
    if fmt == "csv":
        head, body = table(scope, name or TABLES[0], every)
        return to_csv(head, body)
    names = [name] if name else list(TABLES)
    memo: dict[str, Any] = {}
    return to_xlsx({n: table(scope, n, every, memo) for n in names})

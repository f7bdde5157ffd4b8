"""The mandatory-reporting duty (强制报告) checked (考核): which mandated units and which
kinds of reporter filed reports, and which units have filed none in 90 days.

Counts the units that never file, not only the reports. A report belongs to the
unit of its reporter (`Reporter.unit`), wherever it was filed from. Reporters
appear only as counts by role and unit, never one by one. Reports per reporter come
from the reporter tallies (gateway/records/tallies.py), by Beijing day. Report counts are
banded (docs/insight.md); counts of units and of enrolled reporters come from
the roster and are exact.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from gateway.insight import tallies
from gateway.insight.scope import Scope
from gateway.records.people import Reporter
from gateway.records.units import Unit
from grid.documents import GridCell
from grid.figures import band

SILENT_DAYS = 90


def percent(part: int, whole: int) -> int | None:
    """A share of units in whole percent (units are not people: no suppression)."""
    return None if whole == 0 else int(100 * part / whole + 0.5)


def duty(scope: Scope) -> dict[str, Any]:
    """Every mandated unit with its reports in the period, the silent ones, and shares of
    units that reported by type and by township; reporters by role."""
    where = {"county_code": scope.county} if scope.county else {}
    units = list(Unit.objects(active__ne=False, **where).only(
        "code", "name", "type", "county_code", "cell_code").order_by("code"))
    # The county's cells (or all): a long $in of the units' cells is slow on SecantusDB.
    townships: dict[str, str | None] = {c.code: c.township_code for c in GridCell.objects(
        **where).only("code", "township_code")}
    reporters = list(Reporter.objects(role__ne="public", **where).only(
        "id", "role", "unit", "active", "erased_at"))
    since = scope.period.end - dt.timedelta(days=SILENT_DAYS)
    filed = tallies.reporter_counts(scope.period, since,
                                    [r.id for r in reporters] if scope.county else None)

    unit_reports: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    unit_people: dict[str, int] = defaultdict(int)
    roles: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for person in reporters:
        period, recent = filed.get(person.id, (0, 0))
        enrolled = person.active is not False and person.erased_at is None
        role = roles[person.role]
        role["reporters"] += enrolled
        role["reporters_reported"] += period > 0
        role["reports"] += period
        if person.unit:
            unit_reports[person.unit][0] += period
            unit_reports[person.unit][1] += recent
            unit_people[person.unit] += enrolled

    rows, silent = [], []
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_township: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    for unit in units:
        period, recent = unit_reports.get(unit.code, [0, 0])
        township: str | None = townships.get(unit.cell_code)
        row = {"code": unit.code, "name": unit.name, "type": unit.type,
               "county": unit.county_code, "township": township, "cell": unit.cell_code,
               "reporters": unit_people.get(unit.code, 0), "reports": band(period),
               "reported_in_90_days": recent > 0}
        rows.append(row)
        if not recent:
            silent.append({k: row[k] for k in ("code", "name", "type", "county", "township")})
        by_type[unit.type][0] += 1
        by_type[unit.type][1] += period > 0
        by_township[township][0] += 1
        by_township[township][1] += period > 0
    return {
        "county": scope.county, "start": scope.period.start, "end": scope.period.end,
        "silent_since": since,
        "units": rows, "silent_units": silent,
        "by_type": [{"type": t, "units": n, "units_reported": k, "reported_pct": percent(k, n)}
                    for t, (n, k) in sorted(by_type.items())],
        "by_township": [{"township": t, "units": n, "units_reported": k,
                         "reported_pct": percent(k, n)}
                        for t, (n, k) in sorted(by_township.items(), key=lambda i: i[0] or "")],
        "by_role": [{"role": r, "reporters": v["reporters"],
                     "reporters_reported": v["reporters_reported"], "reports": band(v["reports"])}
                    for r, v in sorted(roles.items())],
    }

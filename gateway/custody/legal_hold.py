"""Legal hold (司法保全): a supervisor keeps a report from being anonymised.

A report under hold is never anonymised by retention (gateway/custody/retention.py),
whatever its outcome, until the hold is lifted. Only a supervisor of the county
whose station holds the report may set or lift it through the API; the CLI's
`safegrid retention hold` is for administrators. Every change is audited.
"""

from __future__ import annotations

from gateway import gridcache
from gateway.access.tokens import Principal
from gateway.errors import Refusal
from gateway.privacy import audit
from gateway.records.reports import Report


def set_hold(report_code: str, hold: bool, *, actor: str, reason: str) -> bool:
    """Put a report under legal hold (or lift it), audited; False when there is no such report."""
    code = report_code.upper()
    if not Report.objects(code=code).update_one(set__legal_hold=hold):
        return False
    audit.append(actor, "report.legal_hold" if hold else "report.legal_hold_release",
                 f"report:{code}", {"reason": reason})
    return True


def hold_in_county(principal: Principal, report_code: str, hold: bool, reason: str) -> str:
    """A supervisor sets or lifts the hold of a report of their county; returns its code.

    Refused 404 for another county's report (codes are not an oracle), 409 once anonymised.
    """
    code = report_code.upper()
    report = Report.objects(code=code).only("code", "station_code", "flags").first()
    station = gridcache.current().stations.get(report.station_code or "") if report else None
    if report is None or station is None or station.county_code != principal.county_code:
        raise Refusal(404, f"no report {code} in your county")
    if "anonymised" in (report.flags or []):
        raise Refusal(409, f"{report.code} is already anonymised: nothing is left to hold")
    set_hold(report.code, hold, actor=principal.actor, reason=reason)
    return str(report.code)

"""PUT /api/v1/reports/<code>/legal-hold: supervisors of the report's county, audited."""

from __future__ import annotations

from gateway.access.tokens import issue_token
from gateway.custody import retention
from gateway.privacy import audit
from gateway.records.reports import Report
from tests.gateway.custody.test_retention import file_and_close
from tests.helpers import auth, token_of


def hold(client, headers, code, value=True, reason="刑侦立案 2026-118"):
    return client.put(f"/api/v1/reports/{code}/legal-hold", headers=headers,
                      json={"hold": value, "reason": reason})


def test_a_supervisor_holds_a_report_so_retention_keeps_it(client, county):
    code = file_and_close(client, county, 0, "false_report", 400)
    supervisor = auth(token_of(county, "supervisor"))
    resp = hold(client, supervisor, code.lower())
    assert resp.status_code == 200, resp.json
    assert resp.json == {"report_code": code, "legal_hold": True}
    assert retention.run(365) == (0, 1)
    assert "张三" in Report.objects(code=code).first().details
    [entry] = audit.AuditEntry.objects(action="report.legal_hold")
    assert (entry.details["reason"], entry.actor.startswith("supervisor:")) == (
        "刑侦立案 2026-118", True)
    assert hold(client, supervisor, code, value=False).status_code == 200
    assert retention.run(365) == (1, 0)
    assert audit.AuditEntry.objects(action="report.legal_hold_release").count() == 1
    again = hold(client, supervisor, code)
    assert again.status_code == 409  # anonymised: nothing left to hold


def test_other_counties_blank_reasons_and_unknown_codes_are_refused(client, county):
    code = file_and_close(client, county, 0, "false_report", 400)
    elsewhere = auth(issue_token("supervisor", county_code="530628", label="other county"))
    assert hold(client, elsewhere, code).status_code == 404  # not an oracle for codes
    supervisor = auth(token_of(county, "supervisor"))
    assert hold(client, supervisor, code, reason="  ").status_code == 422
    assert hold(client, supervisor, "RZZZZZZ").status_code == 404
    assert client.put(f"/api/v1/reports/{code}/legal-hold", headers=supervisor,
                      json={"hold": True}).status_code == 422
    assert not Report.objects(code=code).first().legal_hold

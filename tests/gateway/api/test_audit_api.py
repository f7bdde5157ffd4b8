"""GET /api/v1/audit: the trail for auditors."""

from __future__ import annotations

from gateway.privacy import audit


def test_auditors_page_the_trail_and_huge_cursors_are_refused(client, county):
    from gateway.access.tokens import issue_token
    from tests.helpers import auth

    for i in range(3):
        audit.append("officer:1", "dispatch.note", f"dispatch:{i}", {})
    auditor = auth(issue_token("auditor", label="test auditor"))
    trail = client.get("/api/v1/audit", headers=auditor, query_string={"after_seq": 1})
    assert [e["seq"] for e in trail.json] == [2, 3]
    too_big = client.get("/api/v1/audit", headers=auditor,
                         query_string={"after_seq": 2**63 + 1})  # found by schemathesis
    assert too_big.status_code == 422
    assert "after_seq" in too_big.json["errors"]["query"]

"""Every operation of the API × every role: allowed or denied, as the table says.

Deny by default: an operation missing from TABLE fails the test, so a new
endpoint cannot ship without a decision about who may call it.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest

from gateway.access.tokens import issue_token
from gateway.records.people import Officer, Reporter
from gateway.sample import cell_code
from grid.documents import Dispatch
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, token_of

ROLES = ("anonymous", "reporter", "other_reporter", "officer", "other_officer", "supervisor",
         "admin", "auditor")
PUBLIC = "public"  # no token needed (probes, login); checked only for "never a 5xx"
SECRET = "secret"  # Kannel's webhooks: the shared secret, not a token

TABLE: dict[tuple[str, str], set[str] | str] = {
    ("get", "/healthz"): PUBLIC,
    ("get", "/readyz"): PUBLIC,
    ("post", "/api/v1/auth/login"): PUBLIC,
    ("post", "/api/v1/auth/refresh"): PUBLIC,
    ("post", "/api/v1/auth/logout"): {"reporter", "other_reporter", "officer", "other_officer",
                                      "supervisor", "admin"},
    ("post", "/api/v1/reports"): {"reporter", "other_reporter"},
    ("get", "/api/v1/reports/{code}"): {"reporter"},
    ("put", "/api/v1/reports/{code}/legal-hold"): {"supervisor"},
    ("get", "/api/v1/stations/{code}/dispatches"): {"officer", "supervisor"},
    ("get", "/api/v1/stations/{code}/transfers"): {"officer", "supervisor"},
    ("get", "/api/v1/counties/{code}/overdue"): {"supervisor"},
    ("get", "/api/v1/dispatches/{dispatch_id}"): {"officer", "supervisor"},
    ("post", "/api/v1/dispatches/{dispatch_id}/acknowledge"): {"officer"},
    ("post", "/api/v1/dispatches/{dispatch_id}/transfer"): {"officer"},
    ("post", "/api/v1/dispatches/{dispatch_id}/accept-transfer"): {"officer"},
    ("post", "/api/v1/dispatches/{dispatch_id}/reject-transfer"): {"officer"},
    ("post", "/api/v1/dispatches/{dispatch_id}/notes"): {"officer"},
    ("post", "/api/v1/dispatches/{dispatch_id}/close"): {"officer"},
    ("post", "/api/v1/dispatches/{dispatch_id}/reopen"): {"officer"},
    ("get", "/api/v1/dispatches/{dispatch_id}/reports"): {"officer", "supervisor"},
    ("post", "/api/v1/dispatches/{dispatch_id}/unseal"): {"officer", "supervisor"},
    ("post", "/api/v1/dispatches/{dispatch_id}/unlink"): {"officer", "supervisor"},
    ("get", "/api/v1/audit"): {"auditor"},
    # The admin API. Officers are listed to their station's chief (an officer: tested in
    # test_admin_api.py) and the county supervisor; the matrix's officer is no chief.
    ("get", "/api/v1/units"): {"admin"},
    ("post", "/api/v1/units"): {"admin"},
    ("get", "/api/v1/units/{code}"): {"admin"},
    ("patch", "/api/v1/units/{code}"): {"admin"},
    ("post", "/api/v1/units/{code}/deactivate"): {"admin"},
    ("post", "/api/v1/units/{code}/reactivate"): {"admin"},
    ("get", "/api/v1/reporters"): {"admin"},
    ("post", "/api/v1/reporters"): {"admin"},
    ("get", "/api/v1/reporters/{reporter_id}"): {"admin"},
    ("patch", "/api/v1/reporters/{reporter_id}"): {"admin"},
    ("post", "/api/v1/reporters/{reporter_id}/deactivate"): {"admin"},
    ("post", "/api/v1/reporters/{reporter_id}/reactivate"): {"admin"},
    ("post", "/api/v1/reporters/{reporter_id}/erase"): {"admin"},
    ("post", "/api/v1/reporters/{reporter_id}/welcome"): {"admin"},
    ("post", "/api/v1/imports"): {"admin"},
    ("get", "/api/v1/imports/{import_id}"): {"admin"},
    ("get", "/api/v1/imports/{import_id}/errors"): {"admin"},
    ("get", "/api/v1/roster/export"): {"admin"},
    ("get", "/api/v1/officers"): {"supervisor", "admin"},
    ("post", "/api/v1/officers"): {"admin"},
    ("get", "/api/v1/officers/{officer_id}"): {"supervisor", "admin"},
    ("patch", "/api/v1/officers/{officer_id}"): {"admin"},
    ("post", "/api/v1/officers/{officer_id}/deactivate"): {"admin"},
    ("post", "/api/v1/officers/{officer_id}/reactivate"): {"admin"},
    ("post", "/api/v1/officers/{officer_id}/erase"): {"admin"},
    ("get", "/api/v1/stations"): {"admin"},
    ("post", "/api/v1/stations"): {"admin"},
    ("get", "/api/v1/stations/{code}"): {"admin"},
    ("patch", "/api/v1/stations/{code}"): {"admin"},
    ("post", "/api/v1/stations/{code}/deactivate"): {"admin"},
    ("post", "/api/v1/stations/{code}/reactivate"): {"admin"},
    # Missing-child alerts: supervisors, and officers of the county desk (not the matrix's
    # station officer: tests/gateway/alerts/test_issuing.py tries the desk's).
    ("post", "/api/v1/alerts"): {"supervisor"},
    ("get", "/api/v1/alerts/{code}"): {"supervisor"},
    ("get", "/api/v1/alerts/{code}/coverage"): {"supervisor"},
    ("get", "/api/v1/alerts/active"): {"reporter", "other_reporter"},
    ("get", "/api/v1/alerts/{code}/cap.xml"): PUBLIC,  # public like the alert SMS: for CAP
    ("post", "/api/v1/alerts/{code}/update"): {"supervisor"},
    ("post", "/api/v1/alerts/{code}/found"): {"supervisor"},
    ("post", "/api/v1/alerts/{code}/cancel"): {"supervisor"},
    # The bureau's figures: supervisors (their county) and administrators.
    ("get", "/api/v1/insight/counts"): {"supervisor", "admin"},
    ("get", "/api/v1/insight/hotspots"): {"supervisor", "admin"},
    ("get", "/api/v1/insight/response-times"): {"supervisor", "admin"},
    ("get", "/api/v1/insight/duty"): {"supervisor", "admin"},
    ("get", "/api/v1/insight/trends"): {"supervisor", "admin"},
    ("get", "/api/v1/insight/export"): {"supervisor", "admin"},
    ("get", "/api/v1/insight/summary"): {"supervisor", "admin"},
    ("get", "/sms/inbound/kannel"): SECRET,
    ("post", "/sms/inbound/kannel"): SECRET,
    ("get", "/sms/dlr/kannel"): SECRET,
    ("post", "/sms/dlr/kannel"): SECRET,
}

BODIES = {
    "/api/v1/reports": {"client_id": "matrix-0001", "category": "OTHER"},
    "/api/v1/dispatches/{dispatch_id}/transfer": {"to_station": "530627-NT", "reason": "测试转交"},
    "/api/v1/dispatches/{dispatch_id}/reject-transfer": {"reason": "测试退回"},
    "/api/v1/dispatches/{dispatch_id}/notes": {"text": "测试备注"},
    "/api/v1/dispatches/{dispatch_id}/close": {"outcome": "other", "reason": "测试"},
    "/api/v1/dispatches/{dispatch_id}/reopen": {"reason": "测试重开"},
    "/api/v1/dispatches/{dispatch_id}/unseal": {"reason": "测试破封所需要的理由说明"},
    "/api/v1/dispatches/{dispatch_id}/unlink": {"report": "R7K3Q9M", "reason": "测试拆分"},
    "/api/v1/reports/{code}/legal-hold": {"hold": True, "reason": "测试保全"},
    "/api/v1/units": {"code": "matrix-unit", "name": "矩阵小学", "type": "school",
                      "cell_code": cell_code(0, 0, 0)},
    "/api/v1/units/{code}": {"name": "矩阵小学"},
    "/api/v1/reporters": {"name": "矩阵", "phone": "+8613912349999", "role": "other"},
    "/api/v1/reporters/{reporter_id}": {"language": "en"},
    "/api/v1/officers": {"name": "矩阵", "phone": "+8613912349998", "duty_role": "supervisor"},
    "/api/v1/officers/{officer_id}": {"name": "矩阵民警"},
    "/api/v1/stations": {"code": "matrix-station", "name": "矩阵派出所"},
    "/api/v1/stations/{code}": {"name": "乌峰派出所"},
    "/api/v1/alerts": {"child": {"sex": "female", "age_years": 6}, "grid_code": cell_code(0, 0, 0),
                       "seen_at": dt.datetime.now(dt.UTC).isoformat()},
    "/api/v1/alerts/{code}/update": {"text": "改穿蓝色外套"},
    "/api/v1/alerts/{code}/cancel": {"reason": "测试撤销"},
}


@pytest.fixture
def settings(settings):  # type: ignore[override]
    # One anonymous call per operation: more than the failed-authentication budget of an
    # address (tests/gateway/test_rate_limits.py checks that limit).
    return settings.with_(rate_limit_auth_failures="1000/minute")


def operations(client) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json
    return [(method, path) for path, item in spec["paths"].items() for method in item
            if method in {"get", "post", "put", "patch", "delete"}]


def test_every_operation_has_a_decision(client):
    missing = [op for op in operations(client) if op not in TABLE]
    assert missing == [], f"classify these operations in TABLE: {missing}"


@pytest.fixture
def world(client, county):
    reporter = token_of(county, "reporter 张秀英")
    resp = client.post("/api/v1/reports", headers=auth(reporter), json={
        "client_id": "matrix-own-0001", "category": "WOMAN", "grid_code": cell_code(0, 0, 0)})
    run_jobs()
    dispatch = Dispatch.objects(station_code="530627-WF").first()
    tokens = {
        "anonymous": None,
        "reporter": reporter,
        "other_reporter": token_of(county, "reporter 李国强"),
        "officer": token_of(county, "officer 乌峰派出所"),
        "other_officer": token_of(county, "officer 南台派出所"),
        "supervisor": token_of(county, "supervisor"),
        "admin": issue_token("admin", label="matrix admin"),
        "auditor": issue_token("auditor", label="matrix auditor"),
    }
    values = {"code": resp.json["code"], "dispatch_id": str(dispatch.id),
              # People no matrix token belongs to: deactivating or erasing them ends no one's
              # session here.
              "reporter_id": str(Reporter.by_phone("+8613800001005").get().id),
              "officer_id": str(Officer.by_phone("+8613800003098").get().id),
              "import_id": _an_import(client, tokens["admin"]),
              "alert": client.post("/api/v1/alerts", headers=auth(tokens["supervisor"]),
                                   json=BODIES["/api/v1/alerts"]).json["code"]}
    return tokens, values


def _an_import(client, admin: str) -> str:
    """An import with an error workbook, so its endpoints answer 200 to those allowed."""
    resp = client.post("/api/v1/imports", headers=auth(admin), content_type="multipart/form-data",
                       data={"file": (io.BytesIO(b"name,phone,role\nx,123,teacher\n"), "r.csv"),
                             "kind": "reporters", "county": "530627"})
    run_jobs()
    return str(resp.json["id"])


def url_for(path: str, values: dict[str, str]) -> str:
    path = path.replace("{reporter_id}", values["reporter_id"]).replace(
        "{officer_id}", values["officer_id"]).replace("{import_id}", values["import_id"])
    if path == "/api/v1/roster/export":
        return path + "?kind=units&county=530627"
    if path.startswith("/api/v1/insight/"):
        return path + "?county=530627"  # the matrix's admin is a platform operator
    if path.startswith("/api/v1/units/"):
        return path.replace("{code}", "530627-U05")
    if path.startswith("/api/v1/stations/"):
        return path.replace("{code}", "530627-WF")
    if path.startswith("/api/v1/alerts/"):
        return path.replace("{code}", values["alert"])
    if path.startswith("/api/v1/counties/"):
        return path.replace("{code}", "530627")
    return path.replace("{code}", values["code"]).replace("{dispatch_id}",
                                                           values["dispatch_id"])


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(client, world, role):
    tokens, values = world
    token = tokens[role]
    headers = auth(token) if token else {}
    wrong = []
    for method, path in sorted(TABLE):
        if path == "/api/v1/auth/logout":
            continue  # ends the session: checked below with a token of its own
        rule = TABLE[(method, path)]
        resp = getattr(client, method)(
            url_for(path, values), headers=headers,
            json=BODIES.get(path) if method in ("post", "put", "patch") else None)
        assert resp.status_code < 500, (method, path, resp.status_code)
        if rule == PUBLIC:
            continue
        if rule == SECRET:
            if resp.status_code != 403:  # no secret sent: always refused
                wrong.append((method, path, resp.status_code, "needs the webhook secret"))
            continue
        allowed = role in rule
        denied = resp.status_code in (401, 403) or (
            resp.status_code == 404 and path == "/api/v1/reports/{code}")
        if allowed == denied:
            wrong.append((method, path, resp.status_code, "allowed" if allowed else "denied"))
    assert wrong == [], f"{role}: {wrong}"


@pytest.mark.parametrize("role", ROLES)
def test_logout_needs_a_token(client, world, role):
    tokens, _ = world
    headers = auth(tokens[role]) if tokens[role] else {}
    status = client.post("/api/v1/auth/logout", headers=headers).status_code
    allowed = role in TABLE[("post", "/api/v1/auth/logout")]
    assert (status == 204) == allowed, (role, status)

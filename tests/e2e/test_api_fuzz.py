"""Fuzz every operation of /openapi.json with schemathesis, in process over WSGI.

Each operation gets up to 100 generated requests in the fuzzing phase (valid
and invalid ones) plus schemathesis' example and coverage phases, under every
built-in check: no 5xx; status codes, content types, headers and bodies as
documented; invalid input refused, valid input accepted; auth enforced; a 405
that says what is allowed. (An operation whose input space is smaller, such as
/healthz with no input at all, gets as many distinct requests as there are.)

Each request carries the credential its operation declares (a reporter's
token for reports, a 乌峰 officer's for stations and dispatches, the
supervisor's for counties, an auditor's for the audit trail, the webhook
secret for Kannel's callbacks), so the fuzzing reaches past the auth check;
the `ignored_auth` check still probes every operation without credentials and
with wrong ones. Most valid requests are aimed at things that exist (the
sample county's stations, the reporter's reports, dispatches in each state an
officer can act on), so successful answers are checked too, not only 404s.
The seed is fixed: CI and a laptop send the same requests.

At the end of the session, one line per operation: examples run (one request
each, besides the probes checks send), how many failed a check, and the
statuses of those that passed.
"""

from __future__ import annotations

import datetime as dt
import io
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any
from unittest import mock

import hypothesis
import pytest
import schemathesis
from flask import Flask
from schemathesis.config import SchemathesisConfig

from gateway.access.tokens import issue_token
from gateway.records.people import Officer, Reporter
from gateway.sample import COUNTY, SampleCounty, cell_code
from gateway.settings import Settings
from grid.documents import Dispatch, GridCell
from tests.gateway.api.test_reports_api import run_jobs
from tests.helpers import auth, cell_centre, token_of

WEBHOOK_SECRET = "fuzz-webhook-secret"
SEED = 20_240_601
MAX_EXAMPLES = 100
WF, NT = "530627-WF", "530627-NT"

# Schema-valid requests the API refuses with a documented status that depends on
# the data, not on the request's form; everything else valid must still get 2xx
# (or 401/403/404/409). Each one is a rule the schema cannot state:
#   reports: a well-formed grid code that names no cell (422);
#   transfer: a target station that does not exist, or is this one (422);
#   close: outcomes false_report, duplicate and other need a reason (422);
#   login: the account is locked after too many wrong passwords (423);
#   the admin API: a phone, cell, unit or station that is invalid, taken or unknown (422);
#   alerts: a last-seen time in the future or over 72 h ago, a grid code or place naming
#   nowhere, a description too long for one SMS (422).
POSITIVE_ALSO = {
    "POST /api/v1/reports": ["422"],
    **{f"{method} {path}": ["422"] for method, path in (
        ("POST", "/api/v1/units"), ("PATCH", "/api/v1/units/{code}"),
        ("POST", "/api/v1/reporters"), ("PATCH", "/api/v1/reporters/{reporter_id}"),
        ("POST", "/api/v1/officers"), ("PATCH", "/api/v1/officers/{officer_id}"),
        ("POST", "/api/v1/stations"), ("PATCH", "/api/v1/stations/{code}"))},
    # An upload that is empty; an export for a county the admin's token does not name.
    "POST /api/v1/imports": ["413", "422"],
    "GET /api/v1/roster/export": ["422"],
    "POST /api/v1/dispatches/{dispatch_id}/transfer": ["422"],
    "POST /api/v1/dispatches/{dispatch_id}/close": ["422"],
    "POST /api/v1/auth/login": ["423"],
    "POST /api/v1/alerts": ["422"],
    # Figures: a period with no days or over two years (start and end are free dates); a
    # county other than the supervisor's (403 is already expected).
    **{f"GET /api/v1/insight/{name}": ["422"]
       for name in ("counts", "hotspots", "response-times", "duty", "trends", "export")},
}
POSITIVE_DEFAULT = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def _spec() -> dict[str, Any]:
    """The app's OpenAPI document, for parametrizing at collection time.

    The document depends only on the blueprints, so the app is built without
    `startup.configure`: no store is needed, and no connection is bound for the
    rest of the session. `test_fuzzed_spec_is_the_apps` checks it is what the
    app under test serves. (`schemathesis.pytest.from_fixture` would load it
    from the `app` fixture instead, but schemathesis 4.32 fails under pytest
    9.2: it reads `Function._nodeid`, which pytest 9.2 no longer has.)
    """
    from gateway import startup
    from gateway.app import create_app

    with mock.patch.object(startup, "configure"):
        app = create_app(Settings(testing=True))
    spec: dict[str, Any] = app.test_client().get("/openapi.json").get_json()
    return spec


SPEC = _spec()
schema = schemathesis.openapi.from_dict(SPEC, config=SchemathesisConfig.from_dict({
    "seed": SEED,
    "generation": {
        "max-examples": MAX_EXAMPLES,
        # No example database: every run replays exactly the seeded requests.
        "database": "none",
        # Every request carries valid credentials (credentials_for); the
        # `ignored_auth` check still probes each operation without them and with
        # wrong ones, and requires a 401/403.
        "with-security-parameters": False,
    },
    "operations": [
        {"include-name": name,
         "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_DEFAULT + also}}}
        for name, also in POSITIVE_ALSO.items()
    ],
}))


@pytest.fixture
def settings(settings: Settings) -> Settings:  # type: ignore[override]
    # Rate limits off: thousands of requests from one address in a minute meet them
    # by design, and which request met one would depend on the clock. Each seeded
    # report its own case (no linking), so each dispatch stays in its own state.
    return settings.with_(sms_webhook_secret=WEBHOOK_SECRET, rate_limits_enabled=False,
                          case_window_s=0)


class Tally:
    """Requests and failures per operation, printed in pytest's closing summary."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.statuses: dict[str, Counter[int]] = {}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.sent:
            return
        write = terminalreporter.write_line
        terminalreporter.section("schemathesis")
        write(f"{'operation':54s} {'examples':>8s} {'failed':>6s}  statuses")
        for label in sorted(self.sent, key=lambda k: (k.split()[1], k)):
            statuses = " ".join(f"{code}:{n}" for code, n in
                                sorted(self.statuses.get(label, Counter()).items()))
            write(f"{label:54s} {self.sent[label]:8d} {self.failed[label]:6d}  {statuses}")
        write(f"{'total':54s} {sum(self.sent.values()):8d} {sum(self.failed.values()):6d}")


@pytest.fixture(scope="session")
def tally(request: pytest.FixtureRequest) -> Tally:
    counts = Tally()
    request.config.pluginmanager.register(counts, "safegrid-fuzz-tally")
    return counts


@dataclass(frozen=True)
class Known:
    """Things that exist, for valid requests to aim at."""

    stations: tuple[str, ...]
    counties: tuple[str, ...]
    reports: tuple[str, ...]
    dispatches: tuple[str, ...]
    units: tuple[str, ...] = ()
    reporters: tuple[str, ...] = ()
    officers: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()

    def pool(self, path: str, name: str) -> tuple[str, ...]:
        if name == "dispatch_id":
            return self.dispatches
        if name == "import_id":
            return self.imports
        if name in ("reporter_id", "officer_id"):
            return self.reporters if name == "reporter_id" else self.officers
        if path.startswith("/api/v1/units/"):
            return self.units
        if path.startswith("/api/v1/stations/"):
            return self.stations
        if path.startswith("/api/v1/counties/"):
            return self.counties
        if path.startswith("/api/v1/reports/"):
            return self.reports
        if path.startswith("/api/v1/alerts/"):
            return self.alerts
        raise AssertionError(f"{path}: no known values for {{{name}}}")


@pytest.fixture
def known(app: Flask, county: SampleCounty) -> Known:
    """Four reports by 张秀英; 乌峰's dispatches delivered and acknowledged, one offered by 南台."""
    client = app.test_client()
    reporter = auth(token_of(county, "reporter 张秀英"))
    codes = []
    for i, township in enumerate((0, 0, 0, 1)):
        resp = client.post("/api/v1/reports", headers=reporter, json={
            "client_id": f"fuzz-seed-{i:04d}", "category": "LABOUR",
            "grid_code": cell_code(township, i, 0)})
        assert resp.status_code == 201, resp.json
        codes.append(resp.json["code"])
    run_jobs()
    delivered, acked, spare, offered = (
        str(Dispatch.objects(report_code=code, station_code__in=(WF, NT)).get().id)
        for code in codes)
    resp = client.post(f"/api/v1/dispatches/{acked}/acknowledge",
                       headers=auth(token_of(county, "officer 乌峰派出所")))
    assert resp.status_code == 200, resp.json
    resp = client.post(f"/api/v1/dispatches/{offered}/transfer",
                       headers=auth(token_of(county, "officer 南台派出所")),
                       json={"to_station": WF, "reason": "the family lives in 乌峰"})
    assert resp.status_code == 200, resp.json
    resp = client.post("/api/v1/imports", headers=auth(token_of(county, "admin")),
                       content_type="multipart/form-data", data={
                           "file": (io.BytesIO(b"name,phone,role\nx,123,teacher\n"), "r.csv"),
                           "kind": "reporters"})
    assert resp.status_code == 202, resp.json
    run_jobs()  # done, with an error workbook
    imported = str(resp.json["id"])
    lat, lon = cell_centre(GridCell.objects.get(code=cell_code(0, 0, 0)).ring)
    resp = client.post("/api/v1/alerts", headers=auth(token_of(county, "supervisor")), json={
        "child": {"sex": "female", "age_years": 6, "clothing": "蓝外套"},
        "seen_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).isoformat(),
        "location": {"lat": lat, "lon": lon}, "place": "城关车站"})
    assert resp.status_code == 201, resp.json
    return Known(stations=(WF, NT), counties=(COUNTY, "530628"), reports=tuple(codes),
                 dispatches=(delivered, acked, spare, offered),
                 units=("530627-U01", "530627-U05"),
                 reporters=tuple(str(r.id) for r in Reporter.objects(role="teacher")),
                 officers=tuple(str(o.id) for o in Officer.objects(duty_role="duty_officer")),
                 imports=(imported,), alerts=(resp.json["code"],))


def aim_at_known(case: Any, known: Known) -> None:
    """Point three in four valid requests at things that exist (chosen from the generated value,
    so the seed still decides everything)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    for name, value in list((case.path_parameters or {}).items()):
        pick = zlib.crc32(str(value).encode())
        if pick % 4:
            pool = known.pool(case.operation.path, name)
            case.path_parameters[name] = pool[pick // 4 % len(pool)]


# Who calls each bearer-protected path (the longest matching prefix wins).
ROLE_BY_PATH = {
    "/api/v1/auth/logout": "reporter (fresh)",  # revokes its token: a new one each time
    "/api/v1/reports": "reporter",
    "/api/v1/stations/{code}/dispatches": "officer",
    "/api/v1/stations/{code}/transfers": "officer",
    "/api/v1/stations": "admin",  # the admin API
    "/api/v1/units": "admin",
    "/api/v1/reporters": "admin",
    "/api/v1/officers": "admin",
    "/api/v1/imports": "admin",
    "/api/v1/roster": "admin",
    "/api/v1/dispatches/": "officer",
    "/api/v1/counties/": "supervisor",
    "/api/v1/alerts": "supervisor",  # issuing and ending missing-child alerts
    "/api/v1/alerts/active": "reporter",  # the app's list for the reporter's cell
    "/api/v1/audit": "auditor",
    "/api/v1/insight/": "supervisor",  # the bureau's figures, for the supervisor's county
}


def bearer_for(path: str, county: SampleCounty) -> str:
    """A valid token of the role that uses the operation at `path`."""
    prefix = max((p for p in ROLE_BY_PATH if path.startswith(p)), key=len, default=None)
    if prefix is None:
        raise AssertionError(f"{path} takes a bearer token: add its role to ROLE_BY_PATH")
    role = ROLE_BY_PATH[prefix]
    if role == "reporter":
        return token_of(county, "reporter 张秀英")
    if role == "officer":
        return token_of(county, "officer 乌峰派出所")
    if role == "supervisor":
        return token_of(county, "supervisor")
    if role == "auditor":
        return issue_token("auditor", label="fuzz auditor")
    if role == "admin":
        return token_of(county, "admin")
    return issue_token("reporter", label="fuzz logout")


def credentials_for(case: Any, county: SampleCounty) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, query) carrying the credential the operation declares it needs."""
    schemes = {name for requirement in case.operation.definition.raw.get("security", [])
               for name in requirement}
    if "bearerAuth" in schemes:
        return {"Authorization": f"Bearer {bearer_for(case.operation.path, county)}"}, {}
    if "kannelSecret" in schemes:
        return {}, {"secret": WEBHOOK_SECRET}
    assert not schemes, f"{case.operation.label}: no credential for {schemes}"
    return {}, {}  # public: /healthz, /readyz, login, refresh


def test_fuzzed_spec_is_the_apps(client: Any) -> None:
    assert client.get("/openapi.json").get_json() == SPEC


@schema.parametrize()
# One app and county per operation, shared by its examples: requests only add to the
# data (reports, notes, transitions), which later requests meet, as in production.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_schema(case: Any, app: Flask, county: SampleCounty, known: Known,
                                    tally: Tally) -> None:
    # This test's app, for the request and for the probes some checks send after it
    # (those read the app from the schema, not from the call's arguments).
    case.operation.app = case.operation.schema.app = app
    aim_at_known(case, known)
    headers, query = credentials_for(case, county)
    label = case.operation.label
    tally.sent[label] += 1
    try:
        response = case.call_and_validate(headers=headers, params=query or None)
    except BaseException:
        tally.failed[label] += 1
        raise
    tally.statuses.setdefault(label, Counter())[response.status_code] += 1

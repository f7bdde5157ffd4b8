"""Fuzz every operation of /openapi.json with schemathesis, in process over WSGI.

Each operation gets at least 100 generated requests (valid and invalid ones,
plus schemathesis' example and coverage phases) under every built-in check:
no 5xx; status codes, content types, headers and bodies as documented;
invalid input refused, valid input accepted; auth enforced. Each request
carries the credential its operation needs (a reporter for reports, an
officer for station and dispatch operations, a supervisor for counties, the
webhook secret for Kannel's callbacks), so the fuzzing reaches past the auth
check. The seed is fixed: CI and a laptop send the same requests.

At the end of the session, one line per operation: requests sent, and how
many of them failed a check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any
from unittest import mock

import hypothesis
import pytest
import schemathesis
from flask import Flask
from schemathesis.config import SchemathesisConfig

from gateway.sample import SampleCounty
from gateway.settings import Settings
from tests.helpers import token_of

WEBHOOK_SECRET = "fuzz-webhook-secret"
SEED = 20_240_601
MAX_EXAMPLES = 100


def _spec() -> dict[str, Any]:
    """The app's OpenAPI document, for parametrizing at collection time.

    The document depends only on the blueprints, so the app is built without
    `runtime.configure`: no store is needed, and no connection is bound for the
    rest of the session. `test_fuzzed_spec_is_the_apps` checks it is what the
    app under test serves. (`schemathesis.pytest.from_fixture` would load it
    from the `app` fixture instead, but schemathesis 4.32 fails under pytest
    9.2: it reads `Function._nodeid`, which pytest 9.2 no longer has.)
    """
    from gateway import create_app, runtime

    with mock.patch.object(runtime, "configure"):
        app = create_app(Settings(testing=True))
    spec: dict[str, Any] = app.test_client().get("/openapi.json").get_json()
    return spec


SPEC = _spec()
schema = schemathesis.openapi.from_dict(SPEC, config=SchemathesisConfig.from_dict({
    "seed": SEED,
    # No example database: every run replays exactly the seeded requests.
    "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
}))


@pytest.fixture
def settings(settings: Settings) -> Settings:  # type: ignore[override]
    return settings.with_(sms_webhook_secret=WEBHOOK_SECRET)


class Tally:
    """Requests and failures per operation, printed when the session ends."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()


@pytest.fixture(scope="session")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    counts = Tally()
    yield counts
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not counts.sent:
        return
    reporter.write_line("")
    reporter.write_line("schemathesis: requests sent, requests that failed a check, per operation")
    for label in sorted(counts.sent, key=lambda k: (k.split()[1], k)):
        reporter.write_line(f"  {label:55s} {counts.sent[label]:6d} {counts.failed[label]:6d}")
    reporter.write_line(f"  {'total':55s} {sum(counts.sent.values()):6d} "
                        f"{sum(counts.failed.values()):6d}")


def credentials_for(path: str, county: SampleCounty) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, query) carrying the credential the operation at `path` needs."""
    if path.startswith("/api/v1/reports"):
        return {"Authorization": f"Bearer {token_of(county, 'reporter 张秀英')}"}, {}
    if path.startswith("/api/v1/counties/"):
        return {"Authorization": f"Bearer {token_of(county, 'supervisor')}"}, {}
    if path.startswith(("/api/v1/stations/", "/api/v1/dispatches/")):
        return {"Authorization": f"Bearer {token_of(county, 'officer 乌峰派出所')}"}, {}
    if path.startswith("/sms/"):
        return {}, {"secret": WEBHOOK_SECRET}
    return {}, {}  # /healthz, /readyz: public


def test_fuzzed_spec_is_the_apps(client: Any) -> None:
    assert client.get("/openapi.json").get_json() == SPEC


@schema.parametrize()
# One app and county per operation, shared by its examples: requests only add reports
# and notes, which later requests may meet (as in production), never a reset state.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_schema(case: Any, app: Flask, county: SampleCounty,
                                    tally: Tally) -> None:
    label = case.operation.label
    headers, query = credentials_for(case.operation.path, county)
    tally.sent[label] += 1
    try:
        case.call_and_validate(headers=headers, params=query or None, app=app)
    except BaseException:
        tally.failed[label] += 1
        raise

"""TOTP second factor for officers' app login: enrolment, codes good once, lockout, policy."""

from __future__ import annotations

import time

import pyotp
import pytest

from gateway.access import mfa
from gateway.privacy import audit
from gateway.records.people import Officer

OFFICER = "+8613800003001"
OTHER_OFFICER = "+8613800003002"
SUPERVISOR = "+8613800003099"
REPORTER = "+8613800001001"


@pytest.fixture
def settings(settings):  # type: ignore[override]
    return settings.with_(login_max_failures=3, rate_limit_login="1000/minute")


def login(client, phone, password, otp=None):
    body = {"phone": phone, "password": password}
    if otp is not None:
        body["otp"] = otp
    return client.post("/api/v1/auth/login", json=body)


def enrol(phone: str) -> str:
    return mfa.enroll(Officer.by_phone(phone).first())


def wrong_code(secret: str) -> str:
    """A 6-digit code no step of the accepted window has."""
    totp, now = pyotp.TOTP(secret), time.time()
    valid = {totp.at(now + 30 * shift) for shift in (-2, -1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def test_an_enrolled_officer_without_a_code_is_asked_for_one(client, county):
    enrol(OFFICER)
    resp = login(client, OFFICER, county.password)
    assert resp.status_code == 401
    assert resp.json["errors"] == {"otp": ["required"]}
    assert resp.json["code"] == 401
    assert resp.json["status"] == "Unauthorized"
    assert "one-time code" in resp.json["message"]
    # A wrong password is not told that a code would be needed.
    wrong = login(client, OFFICER, "wrong")
    assert wrong.json == {"code": 401, "status": "Unauthorized",
                          "message": "wrong phone or password"}


def test_the_right_code_logs_in_once(client, county):
    secret = enrol(OFFICER)
    code = pyotp.TOTP(secret).now()
    resp = login(client, OFFICER, county.password, code)
    assert resp.status_code == 200, resp.json
    assert resp.json["role"] == "officer"
    replay = login(client, OFFICER, county.password, code)
    assert replay.status_code == 401
    assert replay.json == {"code": 401, "status": "Unauthorized",
                           "message": "wrong phone or password"}
    assert audit.AuditEntry.objects(action="auth.login_failed",
                                    details__factor="otp").count() == 1


def test_codes_of_an_earlier_step_are_refused_after_a_later_one(client, county):
    secret = enrol(OFFICER)
    totp = pyotp.TOTP(secret)
    assert login(client, OFFICER, county.password, totp.at(time.time() + 30)).status_code == 200
    assert login(client, OFFICER, county.password, totp.now()).status_code == 401


def test_one_step_of_clock_drift_is_accepted_two_are_not(county):
    secret = pyotp.random_base32()
    totp, now = pyotp.TOTP(secret), 1_700_000_015.0
    step = totp.timecode(now)
    assert mfa.matching_step(secret, totp.at(now - 30), now) == step - 1
    assert mfa.matching_step(secret, totp.at(now + 30), now) == step + 1
    assert mfa.matching_step(secret, totp.at(now - 60), now) is None


def test_wrong_codes_count_towards_the_lockout(client, county):
    secret = enrol(OFFICER)
    for _ in range(2):
        assert login(client, OFFICER, county.password, wrong_code(secret)).status_code == 401
    # The right password without a code neither counts nor clears the count.
    assert login(client, OFFICER, county.password).status_code == 401
    assert login(client, OFFICER, county.password, wrong_code(secret)).status_code == 401
    locked = login(client, OFFICER, county.password, pyotp.TOTP(secret).now())
    assert locked.status_code == 423
    assert login(client, OTHER_OFFICER, county.password).status_code == 200


def test_an_officer_not_enrolled_logs_in_with_the_password_alone(client, county):
    assert login(client, OFFICER, county.password).status_code == 200
    # A code sent anyway is ignored, by reporters too.
    assert login(client, OTHER_OFFICER, county.password, "123456").status_code == 200
    assert login(client, REPORTER, county.password, "123456").status_code == 200


def test_the_code_must_be_six_digits(client, county):
    for bad in ("12345", "1234567", "12345a", "１２３４５６"):
        assert login(client, OFFICER, county.password, bad).status_code == 422, bad


class TestRequiredRoles:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[override]
        return settings.with_(mfa_required_roles=" Supervisor ,nobody")

    def test_a_required_role_without_enrolment_is_refused_clearly(self, client, county):
        resp = login(client, SUPERVISOR, county.password)
        assert resp.status_code == 403
        assert "administrator" in resp.json["message"]
        assert resp.json["errors"] == {"otp": ["not_enrolled"]}
        # Only after the right password: a guess learns nothing.
        assert login(client, SUPERVISOR, "wrong").status_code == 401
        assert audit.AuditEntry.objects(action="auth.login_refused").count() == 1

    def test_other_roles_are_not_affected(self, client, county):
        assert login(client, OFFICER, county.password).status_code == 200
        assert login(client, REPORTER, county.password).status_code == 200

    def test_an_enrolled_supervisor_logs_in_with_a_code(self, client, county):
        secret = enrol(SUPERVISOR)
        assert login(client, SUPERVISOR, county.password).json["errors"] == {
            "otp": ["required"]}
        resp = login(client, SUPERVISOR, county.password, pyotp.TOTP(secret).now())
        assert resp.status_code == 200
        assert resp.json["role"] == "supervisor"


def test_required_roles_setting_names_officer_roles_only():
    assert mfa.required_roles("") == frozenset()
    assert mfa.required_roles("supervisor, officer,teacher") == {"supervisor", "officer"}


def test_the_cli_enrols_and_removes_audited_and_the_secret_is_sealed(client, county, run):
    enrolled = run("mfa", "enroll", "--phone", "13800003001")
    assert enrolled.exit_code == 0, enrolled.output
    uri = next(line for line in enrolled.output.splitlines() if line.startswith("otpauth://"))
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    assert totp.issuer == "SafeGrid"
    secret = enrolled.output.rsplit(":", 1)[-1].split()[0]
    assert totp.secret == secret
    stored = Officer._get_collection().find_one({"_id": Officer.by_phone(OFFICER).first().id})
    assert stored["totp_secret"].startswith("sg1:")
    assert secret not in stored["totp_secret"]
    assert audit.AuditEntry.objects(action="officer.mfa_enroll",
                                    actor__startswith="cli").count() == 1
    assert login(client, OFFICER, county.password, totp.now()).status_code == 200

    removed = run("mfa", "remove", "--phone", OFFICER)
    assert removed.exit_code == 0, removed.output
    assert audit.AuditEntry.objects(action="officer.mfa_remove",
                                    actor__startswith="cli").count() == 1
    assert login(client, OFFICER, county.password).status_code == 200
    assert "totp_secret" not in Officer._get_collection().find_one({"_id": stored["_id"]})


def test_the_cli_refuses_an_unknown_phone(run):
    result = run("mfa", "enroll", "--phone", "+8613899999999")
    assert result.exit_code != 0
    assert "no officer" in result.output


def test_the_sealed_secret_is_rotated_with_the_data_keys():
    from gateway.custody.sealed_data import SEALED

    assert SEALED[Officer]["totp_secret"] == "officer.totp"


def test_the_login_docs_describe_the_code(client):
    spec = client.get("/openapi.json").json
    otp = spec["components"]["schemas"]["LoginIn"]["properties"]["otp"]
    assert otp["pattern"] == "^[0-9]{6}$"
    assert "authenticator" in otp["description"]
    assert "otp" not in spec["components"]["schemas"]["LoginIn"]["required"]
    responses = spec["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "required" in responses["401"]["description"]
    assert "403" in responses

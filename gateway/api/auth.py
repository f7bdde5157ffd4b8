"""Logging in from the app: password → a short-lived access token and a refresh token.

Passwords are checked against scrypt hashes (gateway/passwords.py). Five wrong
passwords for one account lock it for a while (counted in Redis, whoever
tries), besides the per-address limit on login attempts. A refresh token is
good once: using it returns a new pair; using an old one again revokes the
whole family (a stolen token was replayed).

Officers and supervisors enrolled with `safegrid mfa enroll` also send a TOTP
code (gateway/mfa.py); `SAFEGRID_MFA_REQUIRED_ROLES` makes that compulsory for
some roles. A wrong or replayed code counts as a wrong password. Only a full
login clears the failure count: a right password with a missing code does not,
or guessing codes would never lock the account.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from gateway import audit, mfa
from gateway.api.schemas import StrictSchema, error_responses
from gateway.auth import current_principal, hash_token, issue_token, require, token_cache
from gateway.documents import ApiToken, Officer, Reporter
from gateway.extensions import login_limit, redis_store
from gateway.passwords import hash_secret, needs_rehash, verify_secret
from gateway.phonebook import phone_tag
from gateway.settings import Settings
from grid.documents import utcnow
from sms.phones import InvalidPhone, normalise

blp = Blueprint("auth", __name__, description="Login, token refresh and logout")

FAILS_KEY = "safegrid:login:fails:{account}"
# Checked when the account is unknown too, so timing does not tell who has an account.
_DUMMY_HASH = hash_secret(secrets.token_hex(16))


class LoginInSchema(StrictSchema):
    phone = fields.String(required=True, validate=validate.Length(3, 32))
    password = fields.String(required=True, validate=validate.Length(1, 200),
                             load_only=True)
    otp = fields.String(
        validate=validate.Regexp(r"^[0-9]{6}$", error="otp must be 6 digits"),
        load_only=True,
        metadata={"description": "the 6-digit code of the authenticator app; needed by "
                                 "officers and supervisors enrolled for a second factor "
                                 "(a 401 with errors.otp = [\"required\"] asks for it)"},
    )


class RefreshInSchema(StrictSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(10, 200))


class TokensSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})
    role = fields.String(required=True)


def _config() -> Settings:
    config: Settings = current_app.config["SAFEGRID"]
    return config


def _account_key(phone: str) -> str:
    # The blind index, so Redis holds no phone numbers (nor a hash open to enumeration).
    return FAILS_KEY.format(account=phone_tag(phone))


def _locked(phone: str) -> bool:
    fails = redis_store.conn.get(_account_key(phone))
    return fails is not None and int(fails) >= _config().login_max_failures


def _count_failure(phone: str) -> None:
    key = _account_key(phone)
    with redis_store.conn.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, _config().login_lockout_s)
        pipe.execute()


def _refuse(phone: str, subject: str, details: dict[str, str]) -> None:
    """A failed login: counted towards the lockout, audited, one answer for every cause."""
    _count_failure(phone)
    audit.append("anonymous", "auth.login_failed", subject, details)
    abort(401, message="wrong phone or password")


def _second_factor(officer: Officer, code: str | None, phone: str) -> None:
    """Abort unless `officer` passes the TOTP check their enrolment and role call for."""
    who = f"{officer.role}:{officer.id}"
    if not officer.totp_secret:
        if officer.role in mfa.required_roles(_config().mfa_required_roles):
            audit.append(who, "auth.login_refused", who, {"reason": "mfa_not_enrolled"})
            abort(403, message=f"a {officer.role} must log in with a one-time code, and this "
                               "account has none set up: ask an administrator to enrol you "
                               "(safegrid mfa enroll)",
                  errors={"otp": ["not_enrolled"]})
        return
    if code is None:
        abort(401, message="a one-time code is needed: send `otp`, the 6 digits your "
                           "authenticator app shows for SafeGrid",
              errors={"otp": ["required"]})
    assert code is not None
    if not mfa.accept(officer, code):
        _refuse(phone, who, {"factor": "otp"})


def _issue_pair(role: str, subject: Any, station: str | None, county: str | None,
                family: str) -> dict[str, Any]:
    config = _config()
    common = {"subject_id": subject, "station_code": station, "county_code": county,
              "family": family}
    return {
        "access_token": issue_token(role, kind="access", lifetime_s=config.access_token_s,
                                    **common),
        "refresh_token": issue_token(role, kind="refresh", lifetime_s=config.refresh_token_s,
                                     **common),
        "token_type": "Bearer", "expires_in": config.access_token_s, "role": role,
    }


@blp.route("/auth/login")
class Login(MethodView):
    @login_limit
    @error_responses(blp, 415)
    @blp.arguments(LoginInSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, description="wrong phone, password or one-time code; or, with "
                      "errors.otp = [\"required\"], the account needs a one-time code "
                      "(`otp`) as well")
    @blp.alt_response(403, description="the role must use a one-time code and the account "
                      "is not enrolled (errors.otp = [\"not_enrolled\"]): ask an "
                      "administrator")
    @blp.alt_response(423, description="too many wrong passwords or codes: the account is "
                      "locked")
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Log in with phone, password and, when enrolled, a one-time code.

        Returns an access and a refresh token.
        """
        try:
            phone = normalise(data["phone"])
        except InvalidPhone:
            phone = data["phone"]
        if _locked(phone):
            abort(423, message="too many wrong passwords or codes: try again later or ask your "
                               "administrator to unlock the account")
        officer = Officer.by_phone(phone).first()
        reporter = None if officer else Reporter.by_phone(phone).first()
        account = officer or reporter
        stored = account.password_hash if account is not None else None
        if not verify_secret(data["password"], stored or _DUMMY_HASH) or stored is None:
            _refuse(phone, f"account:{phone_tag(phone)}", {})
        assert account is not None
        if officer is not None:
            _second_factor(officer, data.get("otp"), phone)
        if stored is not None and needs_rehash(stored):
            account.update(set__password_hash=hash_secret(data["password"]))
        redis_store.conn.delete(_account_key(phone))
        if officer is not None:
            role, station, county = officer.role, officer.station_code, officer.county_code
        else:
            role, station, county = "reporter", None, account.county_code
        audit.append(f"{role}:{account.id}", "auth.login", f"{role}:{account.id}", {})
        return _issue_pair(role, account.id, station, county, secrets.token_hex(16))


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @login_limit
    @error_responses(blp, 415)
    @blp.arguments(RefreshInSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, description="unknown, expired, used or revoked refresh token")
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Exchange a refresh token (once) for a new access and refresh token."""
        key = hash_token(data["refresh_token"])
        doc = ApiToken.objects(token_hash=key, kind="refresh").first()
        if doc is None or (doc.expires_at is not None and doc.expires_at <= utcnow()):
            abort(401, message="unknown or expired refresh token")
        assert doc is not None
        used = ApiToken.objects(id=doc.id, revoked=False).update_one(set__revoked=True)
        if not used:
            # Replayed: someone else holds a copy. End every token of this login.
            ApiToken.objects(family=doc.family).update(set__revoked=True)
            token_cache.clear()
            audit.append("system:auth", "auth.refresh_replayed", f"family:{doc.family}", {})
            abort(401, message="refresh token already used: this login has been ended")
        return _issue_pair(doc.role, doc.subject_id, doc.station_code, doc.county_code,
                           doc.family)


@blp.route("/auth/logout")
class Logout(MethodView):
    @require("reporter", "officer", "supervisor", "admin")
    @blp.doc(security=[{"bearerAuth": []}])
    @error_responses(blp, 401, 403, 415)
    @blp.response(204)
    def post(self) -> None:
        """End this login: the access token and its refresh tokens are revoked."""
        from flask import request

        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        doc = ApiToken.objects(token_hash=hash_token(token)).first()
        if doc is not None:
            query = ApiToken.objects(family=doc.family) if doc.family else ApiToken.objects(
                id=doc.id)
            query.update(set__revoked=True)
        token_cache.clear()
        principal = current_principal()
        audit.append(f"{principal.role}:{principal.subject_id}", "auth.logout",
                     f"{principal.role}:{principal.subject_id}", {})
